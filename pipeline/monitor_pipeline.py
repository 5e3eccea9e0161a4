"""The scheduled monitor pipeline: ``create_monitor_pipeline(params)``, compiled to ``monitor_pipeline.yaml``.

    import prediction log, reference ingest + facetubes (+ the served model, when monitor.model_uri)
      reference ingest -> voice_shard x pipeline.shards (dsl.ParallelFor) -> voice (gather): the reference's
                          voice table, measured as the training DAG measures it (pipeline.voice_fanout)
      -> current_window (the log's last monitor.window_days, kept as an artifact)
      -> monitor (Evidently drift, ok | warn | retrain; the voice table gives the reference its SNR and
                  high band, and a voice model scores the reference with it: fused p_pd and p_pd_voice)
      -> retrain, only when the outcome is retrain (dsl.If): submits the training pipeline via kfp.Client

``hypomimia pipeline schedule --pipeline monitor`` runs it weekly (``monitor.cron``). Every URI and
the KFP host are pipeline parameters with params.yaml's ``monitor:`` values as defaults, so one
compiled package serves any deployment. See docs/monitoring.md.
"""

from kfp import dsl
from kfp.dsl import Dataset, Model

from components.monitor import current_window, monitor, retrain
from hypomimia.config import Params
from pipeline.pipeline import voice_fanout


def create_monitor_pipeline(params: Params):
    """Build the ``@dsl.pipeline`` for these params (compile it, or call it under ``kfp.local``)."""
    cfg, cluster = params.monitor, params.pipeline

    @dsl.pipeline(
        name=cfg.pipeline_name,
        description="Drift of served data against the training data; starts retraining when it moved.",
    )
    def monitor_pipeline(
        monitor_params: str = cfg.model_dump_json(),
        prediction_log_uri: str = cfg.prediction_log_uri,
        reference_ingest_uri: str = cfg.reference_ingest_uri,
        reference_tubes_uri: str = cfg.reference_tubes_uri,
        until: str = "",
        mlflow_tracking_uri: str = cluster.mlflow_tracking_uri,
        kfp_host: str = cfg.kfp_host,
        training_package: str = cfg.training_package,
        experiment: str = cluster.name,
        voice_params: str = params.voice.model_dump_json(),
        voice_cache: str = "",
    ) -> str:
        log = _imported(prediction_log_uri, Dataset, "import-prediction-log")
        ref_ingest = _imported(reference_ingest_uri, Dataset, "import-reference-ingest")
        ref_tubes = _imported(reference_tubes_uri, Dataset, "import-reference-tubes")
        # The log's records carry the endpoint's own measures; the reference needs the voice stage's, on the
        # same params (params.yaml's voice section, which the endpoint measures with). KFP's cache and the
        # per-clip voice_cache make the weekly re-run of an unchanged reference cheap.
        ref_voice = voice_fanout(cluster, voice_params, ref_ingest, voice_cache)
        window = _stage(current_window(params=monitor_params, prediction_log=log, until=until), cluster)
        window.set_caching_options(False)  # "now" differs every run: never reuse an old window
        inputs = {
            "params": monitor_params, "reference_ingest": ref_ingest, "reference_tubes": ref_tubes,
            "reference_voice": ref_voice.outputs["features"], "window": window.outputs["window"],
            "until": window.outputs["Output"], "tracking_uri": mlflow_tracking_uri,
        }  # fmt: skip
        if cfg.model_uri:  # the served model: its probabilities and embeddings are monitored too
            inputs["model"] = _imported(cfg.model_uri, Model, "import-model")
        drift = _stage(monitor(**inputs), cluster)
        with dsl.If(drift.outputs["Output"] == "retrain", name="drifted"):
            submit = _stage(
                retrain(drift=drift.outputs["drift"], host=kfp_host, training_package=training_package,
                        experiment=experiment),
                cluster,
            )  # fmt: skip
            submit.set_caching_options(False)  # a trigger must start a run every time it fires
        return drift.outputs["Output"]

    return monitor_pipeline


def _imported(uri, artifact_class, name: str):
    task = dsl.importer(artifact_uri=uri, artifact_class=artifact_class, reimport=False)
    task.set_display_name(name)
    return task.output


def _stage(task: dsl.PipelineTask, cluster) -> dsl.PipelineTask:
    """The project's CPU image and the stage requests of params.yaml's pipeline: section."""
    task.set_container_image(cluster.image)
    task.set_cpu_request(cluster.stage_cpu_request).set_memory_request(cluster.stage_memory_request)
    return task
