from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from hypomimia.config import load_params
from hypomimia.errors import GateFailed

_MAX_FAILED_ROWS = 12  # keep the report on one screen; summary.json has everything


def _observed(observed: dict) -> str:
    if "error" in observed:
        return f"error: {observed['error']}"
    if "unexpected_count" in observed:
        rows = [
            r.get("video_id") for r in observed.get("unexpected_rows", []) if r.get("video_id") is not None
        ]
        values = observed.get("unexpected_values", [])
        shown = (
            f"{observed['unexpected_count']} of {observed.get('element_count', '?')} rows; values {values}"
        )
        return shown + (f"; e.g. {', '.join(map(str, rows[:3]))}" if rows else "")
    return f"observed {observed.get('observed_value')}"


def report_table(result) -> Table:
    table = Table(title="data validation gate", title_justify="left")
    for col in ("area", "checks", "passed", "failed errors", "warnings"):
        table.add_column(col, justify="left" if col == "area" else "right")
    for area in dict.fromkeys(o.area for o in result.outcomes):
        mine = [o for o in result.outcomes if o.area == area]
        errors = sum(1 for o in mine if not o.success and o.severity == "error")
        warns = sum(1 for o in mine if not o.success and o.severity == "warning")
        table.add_row(
            area,
            str(len(mine)),
            str(sum(o.success for o in mine)),
            f"[red]{errors}[/red]" if errors else "0",
            f"[yellow]{warns}[/yellow]" if warns else "0",
        )
    return table


def failed_table(result) -> Table:
    table = Table(title="failed expectations", title_justify="left")
    for col in ("expectation", "severity", "observed"):
        table.add_column(col, overflow="fold")
    failed = result.failed_errors + result.warnings
    for o in failed[:_MAX_FAILED_ROWS]:
        colour = "red" if o.severity == "error" else "yellow"
        table.add_row(o.name, f"[{colour}]{o.severity}[/{colour}]", _observed(o.observed))
    if len(failed) > _MAX_FAILED_ROWS:
        table.add_row(f"... {len(failed) - _MAX_FAILED_ROWS} more in summary.json", "", "")
    return table


def validate(
    ingest: Annotated[Path, typer.Option(help="ingest output folder")] = Path("work/ingest"),
    tubes: Annotated[Path, typer.Option(help="facetubes output folder")] = Path("work/facetubes"),
    voice: Annotated[
        Path | None, typer.Option(help="voice output folder: also validate its table (voice.parquet)")
    ] = None,
    out: Annotated[
        Path, typer.Option(help="output folder: summary.json, data_docs/, reference_stats.json")
    ] = Path("work/validate"),
    params: Annotated[Path, typer.Option("--params", help="params file")] = Path("params.yaml"),
    write_suites: Annotated[
        bool,
        typer.Option(
            "--write-suites",
            help="regenerate the GX context gx/ (suites, checkpoints) from params, then stop",
        ),
    ] = False,
) -> None:
    """Data gate: validate manifest, videos, face tubes, folds, leakage (and the voice table with --voice);
    exit 3 if an error check fails."""
    from hypomimia.stages import validate as stage
    from hypomimia.validation.context import write_context

    cfg = load_params(params).validate_
    console = Console()
    if write_suites:
        changed = write_context(cfg, stage.REPO_GX_DIR)
        console.print(
            f"GX context {stage.REPO_GX_DIR}: {len(changed)} file(s) rewritten from {params}", soft_wrap=True
        )
        return
    result = stage.run(cfg, ingest, tubes, out, raise_on_error=False, voice_dir=voice)
    console.print(report_table(result))
    if result.failed_errors or result.warnings:
        console.print(failed_table(result))
    console.print(
        f"Data Docs: {result.data_docs_index}\nsummary: {result.summary_path}",
        highlight=False,
        soft_wrap=True,
    )
    if not result.success:
        raise GateFailed(stage.gate_message(result.failed_errors), f"see {result.data_docs_index}")


def register(app: typer.Typer) -> None:
    app.command("validate")(validate)
