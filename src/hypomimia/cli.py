"""The `hypomimia` command line. Commands are registered from ``hypomimia.commands``."""

from __future__ import annotations

import importlib
import sys
from typing import Annotated

import typer
from rich.console import Console

from hypomimia import __version__
from hypomimia.config import ConfigError
from hypomimia.errors import UserError
from hypomimia.logs import setup_logging, silence_native_logs, telemetry_off

# One module per command group; each has register(app).
COMMAND_MODULES = [
    "config",
    "doctor",
    "pipeline",
    "ingest",
    "validate",
    "phantom",
    "facetubes",
    "voice",
    "train",
    "explain",
    "crossval",
    "serve",
    "lineage",
    "audit",
    "monitor",
    "evaluate",
    "external",
    "registry",
]

_app = typer.Typer(
    name="hypomimia",
    help=(
        "Facial video -> Parkinson's hypomimia biomarker: phantom data, ingest, face tubes, validation, "
        "training, explanations, evaluation and the registry, lineage, serving, drift monitoring."
    ),
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"hypomimia {__version__}")
        raise typer.Exit()


@_app.callback()
def main(
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="print the version")
    ] = False,
    log_json: Annotated[bool, typer.Option("--log-json", help="JSON-lines logs for machines")] = False,
    log_level: Annotated[str, typer.Option(help="DEBUG, INFO, WARNING")] = "INFO",
) -> None:
    setup_logging(log_level, json_lines=log_json)


for _name in COMMAND_MODULES:
    importlib.import_module(f"hypomimia.commands.{_name}").register(_app)


def app() -> None:
    """Entry point: user errors become one clear message and a non-zero exit, never a traceback."""
    telemetry_off()
    silence_native_logs()  # mediapipe/TFLite native lines never reach the user (workers inherit it)
    err = Console(stderr=True, soft_wrap=True)
    try:
        _app(standalone_mode=True)
    except ConfigError as e:
        err.print(f"[red]invalid config[/red] {e.source}:", highlight=False)
        for line in e.errors:
            err.print(f"  - {line}", highlight=False, markup=False)
        sys.exit(2)
    except UserError as e:
        err.print(f"[red]error:[/red] {e.problem}", highlight=False)
        if e.fix:
            err.print(f"  [bold]fix:[/bold] {e.fix}", highlight=False)
        sys.exit(e.exit_code)
