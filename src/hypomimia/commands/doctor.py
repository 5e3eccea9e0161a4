from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from hypomimia.doctor import run_checks


def doctor(
    workdir: Annotated[Path, typer.Option(help="work folder that must be writable")] = Path("work"),
) -> None:
    """Check this machine: Python, packages, mediapipe models, torch, disk, writable folders."""
    checks = run_checks(workdir)
    table = Table(title="hypomimia doctor")
    for col in ("check", "status", "detail"):
        table.add_column(col)
    for c in checks:
        status = (
            "[green]ok[/green]" if c.ok else ("[red]FAIL[/red]" if c.required else "[yellow]warn[/yellow]")
        )
        table.add_row(c.name, status, c.detail)
    Console().print(table)
    failed = [c.name for c in checks if c.required and not c.ok]
    if failed:
        Console(stderr=True).print(f"[red]doctor: needed but missing: {', '.join(failed)}[/red]")
        raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    app.command("doctor")(doctor)
