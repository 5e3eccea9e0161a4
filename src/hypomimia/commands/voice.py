from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from hypomimia.config import load_params


def voice(
    ingest: Annotated[Path, typer.Option(help="ingest output folder (holds ingested.parquet)")] = Path(
        "work/ingest"
    ),
    out: Annotated[Path, typer.Option(help="output folder (voice.parquet, voice_report.json)")] = Path(
        "work/voice"
    ),
    cache: Annotated[Path | None, typer.Option(help="per-clip cache folder [default: OUT/.cache]")] = None,
    shard_index: Annotated[int, typer.Option(help="this shard (for fan-out)")] = 0,
    num_shards: Annotated[int, typer.Option(help="number of shards")] = 1,
    params: Annotated[Path, typer.Option(help="params file")] = Path("params.yaml"),
) -> None:
    """Measure the voice of every accepted video (F0, loudness, jitter, shimmer, HNR, vowel space, rate)."""
    from hypomimia.stages.voice import run  # heavy imports only when the command runs

    r = run(load_params(params).voice, ingest, out, cache, shard_index, num_shards).report
    reasons = ", ".join(f"{k} {v}" for k, v in r["reasons"].items()) or "none"
    Console().print(
        f"voice: {r['measured']} measured, {r['without_audio']} without audio, {r['no_voice']} without "
        f"voiced speech, {r['failed']} failed ({reasons}); cache hits {r['cache_hits']}, processed "
        f"{r['processed']} in {r['wall_s']:.1f} s ({r['seconds_per_clip']['total']:.3f} s per clip); {out}",
        highlight=False,
    )


def register(app: typer.Typer) -> None:
    app.command("voice")(voice)
