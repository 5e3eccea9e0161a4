from kfp import dsl
from kfp.dsl import Dataset, Metrics, Output

from components import IMAGE


@dsl.component(base_image=IMAGE, install_kfp_package=False)
def phantom(params: str, videos: Output[Dataset], metrics: Output[Metrics]):
    """Synthetic face videos with a known PD/control answer: videos + manifest.csv (hypomimia.stages.phantom)."""
    from pathlib import Path

    from components.pipeline_io import publish_stage_report
    from hypomimia.config.phantom import PhantomConfig
    from hypomimia.stages import phantom as stage

    result = stage.run(PhantomConfig.model_validate_json(params), Path(videos.path), progress=False)
    publish_stage_report(Path(videos.path), "report.json", metrics, None, "phantom", result)
