from kfp import dsl
from kfp.dsl import Dataset, Input, Markdown, Metrics, Output

from components import IMAGE


@dsl.component(base_image=IMAGE, install_kfp_package=False)
def ingest(
    params: str,
    videos: Input[Dataset],
    ingested: Output[Dataset],
    metrics: Output[Metrics],
    report: Output[Markdown],
):
    """Probe, checksum and quarantine every listed video; subject-grouped folds (hypomimia.stages.ingest).

    ``videos`` is a folder holding ``manifest.csv``; relative video paths are resolved against it.
    """
    from pathlib import Path

    from components.pipeline_io import publish_stage_report
    from hypomimia.config.ingest import IngestConfig
    from hypomimia.stages import ingest as stage

    out = Path(ingested.path)
    result = stage.run(IngestConfig.model_validate_json(params), Path(videos.path) / "manifest.csv", out)
    publish_stage_report(out, "report.json", metrics, report, "ingest", result)
