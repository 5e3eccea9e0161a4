"""`hypomimia serve`: run the model endpoint locally; `hypomimia serve build`: build its bento offline."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from hypomimia.errors import UserError

serve_app = typer.Typer(
    help="The model endpoint (BentoML): run it locally or build its bento.", no_args_is_help=False
)


def _repo_root() -> Path:
    root = Path.cwd()
    if not (root / "serving" / "service.py").is_file():
        raise UserError("serving/service.py not found here", "run hypomimia serve from the repository root")
    return root


@serve_app.callback(invoke_without_command=True)
def serve(
    ctx: typer.Context,
    model: Annotated[
        str | None,
        typer.Option(
            help="models:/NAME@ALIAS, models:/NAME/VERSION or a folder [default: params serve.model]"
        ),
    ] = None,
    host: Annotated[str, typer.Option(help="interface to listen on")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="port")] = 3000,
    params: Annotated[Path, typer.Option(help="params file")] = Path("params.yaml"),
    tracking_uri: Annotated[
        str | None, typer.Option(help="MLflow store [default: MLFLOW_TRACKING_URI or work/mlflow]")
    ] = None,
) -> None:
    """Serve the model on http://HOST:PORT (page at /, API key from HYPOMIMIA_API_KEY)."""
    if ctx.invoked_subcommand:
        return
    from hypomimia.config import load_params

    cfg = load_params(params).serve  # a bad params file fails here, before the server starts
    root = _repo_root()
    env = {**os.environ, "HYPOMIMIA_PARAMS": str(params.resolve())}
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(root), env.get("PYTHONPATH", "")) if p)
    if model:
        env["HYPOMIMIA_SERVE_MODEL"] = model
    if tracking_uri:
        env["HYPOMIMIA_SERVE_TRACKING_URI"] = tracking_uri
    if not any(os.environ.get(v) for v in (cfg.api_key_env,)) and not cfg.api_key_file:
        Console(stderr=True).print(
            f"[yellow]no API key set[/yellow] ({cfg.api_key_env} is empty): every request but /livez, /readyz,"
            " /metrics and the page is refused (401)", highlight=False)  # fmt: skip
    cmd = [
        sys.executable,
        "-m",
        "bentoml",
        "serve",
        "serving.service:Gateway",
        "--host",
        host,
        "--port",
        str(port),
    ]
    sys.stdout.flush()
    sys.stderr.flush()
    from hypomimia.inference.process import supervise
    from hypomimia.logs import unfiltered_stderr

    # The server runs under a keeper: stop signals are forwarded, and nothing outlives this process,
    # kill -9 included (hypomimia.inference.process; docs/operations.md#processes-and-signals).
    code = supervise(cmd, env, root, grace_s=cfg.timeout_s + 5, stderr=unfiltered_stderr())
    raise typer.Exit(code)


@serve_app.command("build")
def build(
    model: Annotated[str | None, typer.Option(help="the model to pack [default: params serve.model]")] = None,
    params: Annotated[Path, typer.Option(help="params file")] = Path("params.yaml"),
    tracking_uri: Annotated[str | None, typer.Option(help="MLflow store")] = None,
) -> None:
    """Build the bento (offline, lock_packages: false) with the model inside; prints its tag."""
    from hypomimia.config import load_params
    from hypomimia.inference.bento import build_bento

    cfg = load_params(params).serve
    root = _repo_root()
    tag = build_bento(model or cfg.model, root / "serving", root / "requirements" / "requirements.lock.txt",
                      params, tracking_uri or cfg.tracking_uri)  # fmt: skip
    Console().print(f"serve build: bento {tag} (containerize: bentoml containerize {tag})", highlight=False)


def register(app: typer.Typer) -> None:
    app.add_typer(serve_app, name="serve")
