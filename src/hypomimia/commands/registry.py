"""`hypomimia registry`: the MLflow model registry's aliases (champion, challenger, previous)."""

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

registry_app = typer.Typer(
    help="Model registry: show aliases, promote a blessed model, roll back.", no_args_is_help=True
)

Name = Annotated[str | None, typer.Option(help="registered model (default: train.registered_model)")]
Uri = Annotated[str | None, typer.Option(help="MLflow URI; default $MLFLOW_TRACKING_URI or work/mlflow")]
Params = Annotated[Path, typer.Option(help="params file")]


def _client_and_name(name: str | None, uri: str | None, params: Path):
    from hypomimia.config import load_params
    from hypomimia.errors import UserError
    from hypomimia.evaluation import registry
    from hypomimia.learning import mlflow_runs

    name = name or load_params(params).train.registered_model
    if not name:
        raise UserError("no registered model name", "pass --name or set train.registered_model")
    return registry.client(uri or mlflow_runs.default_tracking_uri()), name


@registry_app.command("show")
def show(name: Name = None, tracking_uri: Uri = None, params: Params = Path("params.yaml")) -> None:
    """Versions, newest first, with their aliases and evaluation tags."""
    from hypomimia.evaluation import registry

    c, name = _client_and_name(name, tracking_uri, params)
    info = registry.show(c, name)
    console = Console()
    for v in info["versions"]:
        aliases = ", ".join(v["aliases"]) or "-"
        auc = v["subject_auroc"] or "-"
        flag = " (rolled back)" if v["rolled_back"] else ""
        console.print(
            f"{name} v{v['version']}: aliases {aliases}; subject AUROC {auc}{flag}", highlight=False
        )


@registry_app.command("promote")
def promote(
    decision: Annotated[Path | None, typer.Option(help="blessing.json from 'hypomimia evaluate'")] = None,
    version: Annotated[str | None, typer.Option(help="promote this version by hand (with --reason)")] = None,
    reason: Annotated[str | None, typer.Option(help="why (recorded in the audit log)")] = None,
    name: Name = None,
    tracking_uri: Uri = None,
    params: Params = Path("params.yaml"),
) -> None:
    """Make the blessed challenger (or --version) the champion; the old champion becomes 'previous'."""
    from hypomimia.errors import UserError
    from hypomimia.evaluation import registry

    console = Console()
    if decision is not None:
        d = json.loads(decision.read_text()) if decision.is_file() else {}
        c, name = _client_and_name(name or d.get("model"), tracking_uri, params)
        r = registry.promote_decision(c, decision)
    elif version is not None:
        if not reason:
            raise UserError(
                "a promotion by hand needs a reason", "add --reason '...' (it goes to the audit log)"
            )
        c, name = _client_and_name(name, tracking_uri, params)
        r = registry.promote(c, name, version, why=f"by hand: {reason}", evidence=None)
    else:
        raise UserError(
            "nothing to promote", "pass --decision work/evaluate/blessing.json or --version N --reason ..."
        )
    if r.get("changed"):
        console.print(
            f"{r['model']}: champion is now v{r['champion']} (previous: v{r['previous']})", highlight=False
        )
    else:
        console.print(
            f"{r['model']}: champion unchanged ({r.get('reason') or 'already champion'})", highlight=False
        )


@registry_app.command("rollback")
def rollback(
    reason: Annotated[str, typer.Option(help="why (recorded in the audit log)")] = "rollback requested",
    name: Name = None,
    tracking_uri: Uri = None,
    params: Params = Path("params.yaml"),
) -> None:
    """Restore the previous champion."""
    from hypomimia.evaluation import registry

    c, name = _client_and_name(name, tracking_uri, params)
    r = registry.rollback(c, name, why=reason)
    Console().print(f"{name}: champion is v{r['champion']} again (v{r['demoted']} demoted)", highlight=False)


def register(app: typer.Typer) -> None:
    app.add_typer(registry_app, name="registry")
