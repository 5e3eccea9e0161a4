from pathlib import Path
from typing import Annotated

import typer
import yaml
from rich.console import Console

from hypomimia.config import load_params

config_app = typer.Typer(help="Validate and show params.yaml.", no_args_is_help=True)
console = Console()


@config_app.command("validate")
def validate(file: Annotated[Path, typer.Argument(help="params file")] = Path("params.yaml")) -> None:
    """Check a params file: every error with its key path, value and allowed range."""
    load_params(file)
    console.print(f"[green]ok[/green] {file} is valid")


@config_app.command("show")
def show(file: Annotated[Path, typer.Option("--params", help="params file")] = Path("params.yaml")) -> None:
    """Print the resolved configuration (file values plus defaults) as YAML."""
    console.print(yaml.safe_dump(load_params(file).to_yaml_dict(), sort_keys=False), end="", markup=False)


def register(app: typer.Typer) -> None:
    app.add_typer(config_app, name="config")
