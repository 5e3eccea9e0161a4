"""KFP v2 components: one thin, typed wrapper per stage around ``hypomimia.stages.<stage>.run``.

Every component body only (1) parses its params section from a JSON string, (2) calls the
stage's ``run`` -- the same function the CLI and ``dvc.yaml`` call -- with artifact paths, and
(3) copies the stage's numbers onto typed artifacts (``components.pipeline_io``). No logic here.
The steps that are not stages call what their CLI command calls: ``promote`` the registry
(``hypomimia.evaluation.registry``), ``serve_build`` ``hypomimia.inference.bento.build_bento``,
``retrain`` ``hypomimia monitor submit``.

Images are ONE setting: ``params.yaml`` ``pipeline.image`` (every stage) and ``pipeline.gpu_image``
(train, evaluate_fit), applied to each task by ``pipeline.pipeline.create_pipeline`` with
``set_container_image``.
The decorator's ``base_image`` below is only the same default, so a component used on its own
still names a real image. ``install_kfp_package=False``: the image already has kfp (from the lock).

One module per stage: phantom, ingest, facetubes (shard + gather), voice (shard + gather), validate (+ gate_failed), train
(+ train_trainjob, the multi-node launcher), explain, evaluate (evaluate_fit, evaluate, promote),
serve_build; monitor (current_window, monitor, retrain) for the monitor pipeline. A new stage gets one
more in the same shape: docs/operations.md "Add a stage".
"""

from hypomimia.config.pipeline import PipelineConfig

_DEFAULTS = PipelineConfig()
IMAGE: str = _DEFAULTS.image
GPU_IMAGE: str = _DEFAULTS.gpu_image
