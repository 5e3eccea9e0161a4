"""The Hypomimia DAG, defined once: ``create_pipeline(params)`` builds it for every runner.

    phantom (or importer of pipeline.data_uri)
      -> ingest
      -> facetubes_shard x pipeline.shards (dsl.ParallelFor) -> facetubes (gather)
      -> voice_shard x pipeline.shards (dsl.ParallelFor)     -> voice (gather)      (beside facetubes)
      -> validate --success--> train                       (dsl.If: the gate; it checks the voice table too;
                                                            train and evaluate read the voice table)
                  --failure--> gate_failed (fails the run; train never starts)
      train -> explain
      train -> evaluate_fit x (setting, fold, seed) (dsl.ParallelFor) -> evaluate (gather, blessing)
            --blessed--> promote (dsl.If: MLflow aliases challenger -> champion) -> serve-build (the bento)

The factory knows nothing about where it runs: ``pipeline/hypomimia_pipeline.yaml`` (compiled,
checked in) goes to a Kubeflow cluster, ``hypomimia.pipeline_runner.run_local`` runs the same
graph with ``kfp.local`` on this machine, and ``dvc.yaml`` holds the same stages from ingest to
evaluate (promote and serve-build change the registry and the bento store: DAG only). Each stage's
params section is a JSON string pipeline parameter, so the defaults come from params.yaml and a run
can override any section. The scheduled drift monitor is a second pipeline
(``pipeline/monitor_pipeline.py``). Adding a stage: docs/operations.md "Add a stage".
"""

from typing import NamedTuple

from kfp import dsl, kubernetes
from kfp.dsl import Dataset

from components.evaluate import evaluate, evaluate_fit, promote
from components.explain import explain
from components.facetubes import facetubes, facetubes_shard
from components.ingest import ingest
from components.phantom import phantom
from components.serve_build import serve_build
from components.train import train, train_trainjob
from components.validate import gate_failed, validate
from components.voice import voice, voice_shard
from hypomimia.config import Params
from hypomimia.config.pipeline import PipelineConfig


class PipelineOutputs(NamedTuple):
    tubes: Dataset
    validation: Dataset
    voice: Dataset  # the voice measures (train and evaluate read them too)


def section_json(params: Params) -> dict[str, str]:
    """Each stage's params section as the JSON string its component parses back."""
    return {
        "phantom": params.phantom.model_dump_json(),
        "ingest": params.ingest.model_dump_json(),
        "facetubes": params.facetubes.model_dump_json(),
        "voice": params.voice.model_dump_json(),
        "validate": params.validate_.model_dump_json(),
        "train": params.train.model_dump_json(),
        "explain": params.explain.model_dump_json(),
        "evaluate": params.evaluate.model_dump_json(),
        "serve": params.serve.model_dump_json(),
    }


def create_pipeline(params: Params, gpu: bool | None = None):
    """Build the ``@dsl.pipeline`` for these params.

    ``gpu``: request an accelerator for train (default ``params.pipeline.gpu``); local runs pass False,
    the CPU-only variant. Returns the pipeline function: compile it, or call it under ``kfp.local``.
    """
    cfg = params.pipeline
    use_gpu = cfg.gpu if gpu is None else gpu
    defaults = section_json(params)

    @dsl.pipeline(
        name=cfg.name,
        description="Facial video -> face tubes + voice measures -> validation gate -> I3D hypomimia classifier.",
    )
    def hypomimia_pipeline(
        phantom_params: str = defaults["phantom"],
        ingest_params: str = defaults["ingest"],
        facetubes_params: str = defaults["facetubes"],
        voice_params: str = defaults["voice"],
        validate_params: str = defaults["validate"],
        train_params: str = defaults["train"],
        explain_params: str = defaults["explain"],
        evaluate_params: str = defaults["evaluate"],
        serve_params: str = defaults["serve"],
        mlflow_tracking_uri: str = cfg.mlflow_tracking_uri,
        tube_cache: str = "",
        voice_cache: str = "",
    ) -> PipelineOutputs:
        videos = _source(cfg, phantom_params)
        ing = _stage(ingest(params=ingest_params, videos=videos), cfg)

        with dsl.ParallelFor(
            items=list(range(cfg.shards)), parallelism=cfg.shards, name="facetube-shards"
        ) as i:
            shard = facetubes_shard(
                params=facetubes_params,
                ingested=ing.outputs["ingested"],
                shard_index=i,
                num_shards=cfg.shards,
                tube_cache=tube_cache,
            )
            _stage(shard, cfg)
        tubes = _stage(facetubes(shards=dsl.Collected(shard.outputs["shard"])), cfg)
        voiced = voice_fanout(cfg, voice_params, ing.outputs["ingested"], voice_cache)

        gate = _stage(
            validate(params=validate_params, ingested=ing.outputs["ingested"], tubes=tubes.outputs["tubes"],
                     voice=voiced.outputs["features"]),
            cfg,
        )  # fmt: skip
        with dsl.If(gate.outputs["success"] == True, name="gate-passed"):  # noqa: E712 (a KFP condition)
            trained = _train(cfg, use_gpu, train_params, tubes, ing, voiced, mlflow_tracking_uri)
            _evaluate_and_promote(params, cfg, use_gpu, trained, tubes, ing, voiced, explain_params, evaluate_params,
                                  train_params, serve_params, mlflow_tracking_uri)  # fmt: skip
        with dsl.Else(name="gate-blocked"):
            _stage(gate_failed(validation=gate.outputs["validation"]), cfg)

        return PipelineOutputs(
            tubes=tubes.outputs["tubes"],
            validation=gate.outputs["validation"],
            voice=voiced.outputs["features"],
        )

    return hypomimia_pipeline


def voice_fanout(cfg: PipelineConfig, voice_params, ingested, voice_cache) -> dsl.PipelineTask:
    """The voice measures of ``ingested`` (an ingest artifact), fanned out over the same shards as the face
    tubes and gathered; it reads only ingest, so it runs beside facetubes. The monitor pipeline measures
    its reference with it too, so both DAGs run the voice stage alike (its table: ``.outputs["features"]``)."""
    with dsl.ParallelFor(items=list(range(cfg.shards)), parallelism=cfg.shards, name="voice-shards") as i:
        shard = voice_shard(
            params=voice_params,
            ingested=ingested,
            shard_index=i,
            num_shards=cfg.shards,
            voice_cache=voice_cache,
        )
        _stage(shard, cfg)
    return _stage(voice(shards=dsl.Collected(shard.outputs["shard"])), cfg)


def evaluation_tasks(params: Params) -> list[str]:
    """The evaluation's (setting, fold, seed) tasks as JSON strings (seed null for the deterministic landmark
    baselines): static, so the fan-out is known at compile time."""
    from hypomimia.evaluation import plan
    from hypomimia.stages.evaluate import task_json

    folds = params.evaluate.folds or list(range(params.ingest.folds))
    return [task_json(t) for t in plan.tasks(params.evaluate, params.train, folds)]


def _evaluate_and_promote(params, cfg, use_gpu, trained, tubes, ing, voiced, explain_params, evaluate_params,
                          train_params, serve_params, tracking_uri) -> None:  # fmt: skip
    """explain and evaluate after train; promotion, then the endpoint's bento for the new champion, only
    when the evaluation blessed the challenger."""
    inputs = {
        "model": trained.outputs["model"],
        "tubes": tubes.outputs["tubes"],
        "ingested": ing.outputs["ingested"],
    }
    _stage(explain(params=explain_params, tracking_uri=tracking_uri, **inputs), cfg)
    with dsl.ParallelFor(
        items=evaluation_tasks(params), parallelism=cfg.shards, name="evaluation-tasks"
    ) as task:
        fit = evaluate_fit(evaluate_params=evaluate_params, train_params=train_params, task=task,
                           voice=voiced.outputs["features"], **inputs)  # fmt: skip
        _train_resources(fit, cfg, use_gpu)
    gathered = _stage(
        evaluate(evaluate_params=evaluate_params, train_params=train_params, runs=dsl.Collected(fit.outputs["run"]),
                 tracking_uri=tracking_uri, **inputs),
        cfg,
    )  # fmt: skip
    with dsl.If(gathered.outputs["blessed"] == True, name="blessed"):  # noqa: E712 (a KFP condition)
        promoted = _stage(promote(evaluation=gathered.outputs["evaluation"], tracking_uri=tracking_uri), cfg)
        champion = f"models:/{params.train.registered_model}@champion"
        built = serve_build(
            params=serve_params, model_uri=champion, tracking_uri=tracking_uri, bentoml_home=""
        )
        _stage(built, cfg).after(promoted)


def _train(
    cfg: PipelineConfig, use_gpu: bool, train_params, tubes, ing, voiced, tracking_uri
) -> dsl.PipelineTask:
    """train in its own pod on one GPU (``pipeline.train_launcher: pod``), or a launcher that runs it as a
    Kubeflow Trainer TrainJob on ``trainjob.nodes`` x ``gpus_per_node`` GPUs (``trainjob``); same outputs."""
    inputs = {
        "params": train_params,
        "tubes": tubes.outputs["tubes"],
        "ingested": ing.outputs["ingested"],
        "voice": voiced.outputs["features"],
        "tracking_uri": tracking_uri,
    }
    if cfg.train_launcher == "pod":
        task = train(**inputs)
        _train_resources(task, cfg, use_gpu)
        return task
    task = train_trainjob(pipeline=cfg.model_dump_json(), **inputs)
    _trainjob_launcher(task, cfg)
    return task


def _source(cfg: PipelineConfig, phantom_params):
    """The input videos: real data imported from ``data_uri``, else the phantom generated in the run."""
    if cfg.data_uri:
        imported = dsl.importer(artifact_uri=cfg.data_uri, artifact_class=Dataset, reimport=False)
        imported.set_display_name("import-videos")
        return imported.output
    return _stage(phantom(params=phantom_params), cfg).outputs["videos"]


def _stage(task: dsl.PipelineTask, cfg: PipelineConfig) -> dsl.PipelineTask:
    """Every CPU stage: the project image and the same modest requests."""
    task.set_container_image(cfg.image)
    task.set_cpu_request(cfg.stage_cpu_request).set_memory_request(cfg.stage_memory_request)
    return task


def _train_resources(task: dsl.PipelineTask, cfg: PipelineConfig, gpu: bool) -> None:
    """Train: the CUDA image, its own CPU/memory requests, and (cluster) a GPU on the GPU node pool."""
    task.set_container_image(cfg.gpu_image)
    task.set_cpu_request(cfg.train_cpu_request).set_memory_request(cfg.train_memory_request)
    if gpu:
        task.set_accelerator_type(cfg.accelerator_type).set_accelerator_limit(cfg.accelerator_limit)
        # GPU node pools are tainted so that only GPU work lands there.
        kubernetes.add_toleration(task, key=cfg.accelerator_type, operator="Exists", effect="NoSchedule")
        for key, value in sorted(cfg.gpu_node_selector.items()):
            kubernetes.add_node_selector(task, label_key=key, label_value=value)
    if cfg.mlflow_secret:
        keys = {k: k for k in cfg.mlflow_secret_keys}
        kubernetes.use_secret_as_env(task, secret_name=cfg.mlflow_secret, secret_key_to_env=keys)


def _trainjob_launcher(task: dsl.PipelineTask, cfg: PipelineConfig) -> None:
    """The TrainJob launcher: the CPU image and stage requests (the GPUs are the job's), the shared PVC it
    stages the inputs on and reads the model from, /dev/shm and the MLflow Secret as the job's nodes get them
    (hypomimia.cluster.trainjob), and the KFP run id to label the job with."""
    _stage(task, cfg)
    tj = cfg.trainjob
    kubernetes.mount_pvc(task, pvc_name=tj.pvc, mount_path=tj.mount_path)
    kubernetes.empty_dir_mount(
        task, volume_name="dshm", mount_path="/dev/shm", medium="Memory", size_limit=tj.shm_size
    )
    kubernetes.use_field_path_as_env(
        task, env_name="HYPOMIMIA_KFP_RUN_ID", field_path="metadata.labels['pipeline/runid']"
    )
    if cfg.mlflow_secret:
        keys = {k: k for k in cfg.mlflow_secret_keys}
        kubernetes.use_secret_as_env(task, secret_name=cfg.mlflow_secret, secret_key_to_env=keys)
