from kfp import dsl
from kfp.dsl import Dataset, Input, Markdown, Metrics, Model, Output

from components import GPU_IMAGE


@dsl.component(base_image=GPU_IMAGE, install_kfp_package=False)
def train(
    params: str,
    tubes: Input[Dataset],
    ingested: Input[Dataset],
    tracking_uri: str,
    model: Output[Model],
    metrics: Output[Metrics],
    report: Output[Markdown],
):
    """Train the I3D face-tube classifier on one fold, log to MLflow (hypomimia.stages.train).

    ``model`` is the stage's output folder: model.pt, metadata.json, metrics.json, checkpoints/.
    ``tracking_uri``: MLflow server; empty -> the stage's default.
    """
    from pathlib import Path

    from components.pipeline_io import publish_stage_report
    from hypomimia.config.train import TrainConfig
    from hypomimia.stages import train as stage

    out = Path(model.path)
    cfg = TrainConfig.model_validate_json(params)
    result = stage.run(cfg, Path(tubes.path), Path(ingested.path), out, tracking_uri=tracking_uri or None)
    publish_stage_report(out, "metrics.json", metrics, report, "train", result)
