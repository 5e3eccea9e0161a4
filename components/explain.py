from kfp import dsl
from kfp.dsl import Dataset, Input, Markdown, Metrics, Model, Output

from components import IMAGE


@dsl.component(base_image=IMAGE, install_kfp_package=False)
def explain(
    params: str,
    model: Input[Model],
    tubes: Input[Dataset],
    ingested: Input[Dataset],
    tracking_uri: str,
    explanation: Output[Dataset],
    metrics: Output[Metrics],
    report: Output[Markdown],
):
    """Grad-CAM maps, region attribution and embeddings of the trained model (hypomimia.stages.explain)."""
    from pathlib import Path

    from components.pipeline_io import publish_stage_report
    from hypomimia.config.explain import ExplainConfig
    from hypomimia.stages import explain as stage

    out = Path(explanation.path)
    cfg = ExplainConfig.model_validate_json(params)
    result = stage.run(
        cfg, Path(model.path), Path(tubes.path), Path(ingested.path), out, tracking_uri=tracking_uri or None
    )
    publish_stage_report(out, "explain.json", metrics, report, "explain", result)
