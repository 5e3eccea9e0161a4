from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from hypomimia.config import load_params


def facetubes(
    ingest: Annotated[Path, typer.Option(help="ingest output folder (holds ingested.parquet)")] = Path(
        "work/ingest"
    ),
    out: Annotated[Path, typer.Option(help="output folder")] = Path("work/facetubes"),
    cache: Annotated[Path | None, typer.Option(help="tube cache folder [default: OUT/.cache]")] = None,
    shard_index: Annotated[int, typer.Option(help="this shard (for fan-out)")] = 0,
    num_shards: Annotated[int, typer.Option(help="number of shards")] = 1,
    params: Annotated[Path, typer.Option(help="params file")] = Path("params.yaml"),
) -> None:
    """Track, align and crop a face tube for every accepted video; quarantine videos without a usable face."""
    from hypomimia.stages.facetubes import run  # heavy imports only when the command runs

    r = run(load_params(params).facetubes, ingest, out, cache, shard_index, num_shards).report
    reasons = ", ".join(f"{k} {v}" for k, v in r["reasons"].items()) or "none"
    Console().print(
        f"facetubes: {r['accepted']} tubes, {r['quarantined']} quarantined ({reasons}); "
        f"cache hits {r['cache_hits']}, processed {r['processed']} in {r['wall_s']:.1f} s "
        f"({r['videos_per_s']:.2f} videos/s, {r['frames_per_s']:.0f} frames/s); {out}",
        highlight=False,
    )


def register(app: typer.Typer) -> None:
    app.command("facetubes")(facetubes)
