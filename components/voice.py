from kfp import dsl
from kfp.dsl import Dataset, Input, Metrics, Output

from components import IMAGE


@dsl.component(base_image=IMAGE, install_kfp_package=False)
def voice_shard(
    params: str,
    ingested: Input[Dataset],
    shard_index: int,
    num_shards: int,
    voice_cache: str,
    shard: Output[Dataset],
):
    """Voice measures of one shard of the accepted videos (fan-out; hypomimia.stages.voice.run).

    ``voice_cache``: a folder shared between runs (a PVC path on a cluster, work/ locally) for the
    content-addressed per-clip cache; empty -> no cache.
    """
    from pathlib import Path

    from hypomimia.config.voice import VoiceConfig
    from hypomimia.stages import voice as stage

    stage.run(
        VoiceConfig.model_validate_json(params),
        Path(ingested.path),
        Path(shard.path),
        cache_dir=Path(voice_cache) if voice_cache else None,
        shard_index=shard_index,
        num_shards=num_shards,
    )


@dsl.component(base_image=IMAGE, install_kfp_package=False)
def voice(shards: Input[list[Dataset]], features: Output[Dataset], metrics: Output[Metrics]):
    """Gather the shards into one voice folder, identical to an unsharded run (hypomimia.stages.voice)."""
    from pathlib import Path

    from components.pipeline_io import publish_stage_report
    from hypomimia.stages import voice as stage

    result = stage.gather([Path(s.path) for s in shards], Path(features.path))
    publish_stage_report(Path(features.path), "voice_report.json", metrics, None, "voice", result)
