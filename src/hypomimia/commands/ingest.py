from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from hypomimia.config import load_params


def ingest(
    manifest: Annotated[Path, typer.Argument(help="manifest CSV or Parquet (docs/data-format.md section 1)")],
    out: Annotated[Path, typer.Option(help="output folder")] = Path("work/ingest"),
    video_root: Annotated[Path | None, typer.Option(help="folder that relative paths start from")] = None,
    params: Annotated[Path, typer.Option(help="params file")] = Path("params.yaml"),
) -> None:
    """Probe and hash every listed video; accept or quarantine each with a reason; make subject folds."""
    from hypomimia.stages.ingest import run  # heavy imports only when the command runs

    result = run(load_params(params).ingest, manifest, out, video_root)
    table = Table(title=f"ingest: {result.listed} listed", show_footer=False)
    table.add_column("status")
    table.add_column("videos", justify="right")
    table.add_row("[green]accepted[/green]", str(result.accepted))
    for reason, n in result.reasons.items():
        table.add_row(f"[yellow]quarantined[/yellow]: {reason}", str(n))
    table.add_row("unlisted on disk (not ingested)", str(result.unlisted))
    Console().print(table)
    typer.echo(
        f"accepted {result.accepted} + quarantined {result.quarantined} = listed {result.listed}; {out}"
    )


def register(app: typer.Typer) -> None:
    app.command("ingest")(ingest)
