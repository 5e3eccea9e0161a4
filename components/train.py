from kfp import dsl
from kfp.dsl import Dataset, Input, Markdown, Metrics, Model, Output

from components import GPU_IMAGE, IMAGE


@dsl.component(base_image=GPU_IMAGE, install_kfp_package=False)
def train(
    params: str,
    tubes: Input[Dataset],
    ingested: Input[Dataset],
    voice: Input[Dataset],
    tracking_uri: str,
    model: Output[Model],
    metrics: Output[Metrics],
    report: Output[Markdown],
):
    """Train the I3D face-tube classifier on one fold, log to MLflow (hypomimia.stages.train).

    ``model`` is the stage's output folder: model.pt, metadata.json, metrics.json, checkpoints/.
    ``voice``: the voice stage's folder (read when train.voice_stream is enabled).
    ``tracking_uri``: MLflow server; empty -> the stage's default.
    """
    from pathlib import Path

    from components.pipeline_io import publish_stage_report
    from hypomimia.config.train import TrainConfig
    from hypomimia.stages import train as stage

    out = Path(model.path)
    cfg = TrainConfig.model_validate_json(params)
    result = stage.run(cfg, Path(tubes.path), Path(ingested.path), out, tracking_uri=tracking_uri or None,
                       voice_dir=Path(voice.path))  # fmt: skip
    publish_stage_report(out, "metrics.json", metrics, report, "train", result)


@dsl.component(base_image=IMAGE, install_kfp_package=False)
def train_trainjob(
    params: str,
    pipeline: str,
    tubes: Input[Dataset],
    ingested: Input[Dataset],
    voice: Input[Dataset],
    tracking_uri: str,
    model: Output[Model],
    metrics: Output[Metrics],
    report: Output[Markdown],
):
    """Train on several GPU nodes: ``hypomimia train`` under torchrun as a Kubeflow Trainer TrainJob, awaited
    here, its model folder copied into ``model`` (hypomimia.cluster.trainjob). The same outputs as ``train``.

    ``pipeline``: the pipeline section (JSON) with the TrainJob settings (``trainjob``); this pod only stages
    the inputs on the shared PVC, waits and copies, so it runs on the CPU image without a GPU.
    """
    import os
    from pathlib import Path

    from components.pipeline_io import publish_stage_report
    from hypomimia.cluster import trainjob
    from hypomimia.config.pipeline import PipelineConfig
    from hypomimia.config.train import TrainConfig
    from hypomimia.logs import setup_logging

    setup_logging()
    out = Path(model.path)
    cfg, pipe = TrainConfig.model_validate_json(params), PipelineConfig.model_validate_json(pipeline)
    run_id = os.environ.get("HYPOMIMIA_KFP_RUN_ID", "")  # the pod's pipeline/runid label: labels the TrainJob
    trainjob.launch(cfg, pipe, Path(tubes.path), Path(ingested.path), out, tracking_uri, run_id=run_id,
                    voice_dir=Path(voice.path))  # fmt: skip
    publish_stage_report(out, "metrics.json", metrics, report, "train")
