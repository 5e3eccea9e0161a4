from kfp import dsl
from kfp.dsl import Dataset, Input, Metrics, Output

from components import IMAGE


@dsl.component(base_image=IMAGE, install_kfp_package=False)
def facetubes_shard(
    params: str,
    ingested: Input[Dataset],
    shard_index: int,
    num_shards: int,
    tube_cache: str,
    shard: Output[Dataset],
):
    """Face tubes of one shard of the accepted videos (fan-out; hypomimia.stages.facetubes.run).

    ``tube_cache``: a folder shared between runs (a PVC path on a cluster, work/ locally) for the
    content-addressed tube cache; empty -> no cache.
    """
    from pathlib import Path

    from hypomimia.config.facetubes import FacetubesConfig
    from hypomimia.stages import facetubes as stage

    stage.run(
        FacetubesConfig.model_validate_json(params),
        Path(ingested.path),
        Path(shard.path),
        cache_dir=Path(tube_cache) if tube_cache else None,
        shard_index=shard_index,
        num_shards=num_shards,
    )


@dsl.component(base_image=IMAGE, install_kfp_package=False)
def facetubes(shards: Input[list[Dataset]], tubes: Output[Dataset], metrics: Output[Metrics]):
    """Gather the shards into one face-tube folder, identical to an unsharded run (hypomimia.stages.facetubes)."""
    from pathlib import Path

    from components.pipeline_io import publish_stage_report
    from hypomimia.stages import facetubes as stage

    result = stage.gather([Path(s.path) for s in shards], Path(tubes.path))
    publish_stage_report(Path(tubes.path), "report.json", metrics, None, "facetubes", result)
