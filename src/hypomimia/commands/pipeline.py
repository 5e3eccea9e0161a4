import tempfile
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from hypomimia import pipeline_runner as runner
from hypomimia.config import load_params
from hypomimia.errors import UserError

pipeline_app = typer.Typer(
    help="The KFP DAG: compile, run locally (kfp.local), submit or schedule on Kubeflow."
)
console = Console()

ParamsOpt = Annotated[Path, typer.Option("--params", help="params file")]
SetOpt = Annotated[list[str], typer.Option("--set", "-s", help="override KEY=VALUE, e.g. train.epochs=1")]
SmokeOpt = Annotated[bool, typer.Option("--smoke", help="smoke-size profile (tiny data, 1 epoch)")]
HostOpt = Annotated[str, typer.Option("--host", envvar="KF_PIPELINES_ENDPOINT", help="KFP API URL")]
PipelineOpt = Annotated[
    str,
    typer.Option("--pipeline", help="main (the training DAG) or monitor (drift, weekly; docs/monitoring.md)"),
]


def _params(path: Path, overrides: list[str] | None, smoke: bool = False):
    extra = (list(runner.SMOKE_OVERRIDES) if smoke else []) + list(overrides or [])
    return runner.apply_overrides(load_params(path), extra)


@pipeline_app.command("compile")
def compile_(
    params: ParamsOpt = Path("params.yaml"),
    out: Annotated[
        Path | None, typer.Option(help="KFP package to write (default pipeline/<name>.yaml)")
    ] = None,
    check: Annotated[bool, typer.Option(help="only check that OUT is up to date (CI)")] = False,
    pipeline: PipelineOpt = "main",
    overrides: SetOpt = None,
) -> None:
    """Compile the DAG to KFP YAML (deterministic; the checked-in package must match the code)."""
    out = out or (runner.MONITOR_PACKAGE_PATH if pipeline == "monitor" else runner.PACKAGE_PATH)
    target = Path(tempfile.mkdtemp()) / out.name if check else out
    runner.compile_named(pipeline, _params(params, overrides), target)
    if check and (not out.is_file() or out.read_bytes() != target.read_bytes()):
        again = "hypomimia pipeline compile" + (f" --pipeline {pipeline}" if pipeline != "main" else "")
        console.print(f"[red]{out} is out of date[/red]: run '{again}'")
        raise typer.Exit(1)
    console.print(f"[green]ok[/green] {out}" + (" is up to date" if check else " written"))


@pipeline_app.command("run")
def run(
    local: Annotated[bool, typer.Option("--local", help="run on this machine with kfp.local")] = False,
    params: ParamsOpt = Path("params.yaml"),
    overrides: SetOpt = None,
    smoke: SmokeOpt = False,
    root: Annotated[Path, typer.Option(help="pipeline root (artifacts + cache)")] = Path("work/kfp"),
    cache: Annotated[bool, typer.Option(help="reuse outputs of unchanged tasks")] = True,
    tracking_uri: Annotated[str, typer.Option(help="MLflow URI (default: work/mlflow/mlflow.db)")] = "",
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="stream task logs")] = False,
) -> None:
    """Run the whole DAG: phantom -> ingest -> face tubes and voice (fan-out) -> validate -> train -> explain,
    evaluate (fan-out) -> promote + serve-build when blessed."""
    if not local:
        raise UserError("only local runs start here", "add --local, or use 'hypomimia pipeline submit'")
    log_file = None if verbose else root / "logs" / "last-run.log"
    result = runner.run_local(
        _params(params, overrides, smoke), root, cache, tracking_uri or None, log_file=log_file
    )
    console.print(f"[green]pipeline done[/green] in {result.seconds:.1f} s")
    for name in ("tubes", "voice", "validation", "model"):
        console.print(f"  {name:<10} {getattr(result, name)}", highlight=False, soft_wrap=True)
    if result.log_file:
        console.print(f"  {'task logs':<10} {result.log_file}", highlight=False, soft_wrap=True)


def _package(params: Path, overrides: list[str] | None, package: Path | None) -> Path:
    if package is not None:
        return package
    return runner.compile_pipeline(_params(params, overrides), Path(tempfile.mkdtemp()) / "pipeline.yaml")


def _cluster(
    host, experiment, namespace, service_account, token, pipeline_root, cache
) -> runner.ClusterOptions:
    return runner.ClusterOptions(
        host=host, experiment=experiment, namespace=namespace or None, service_account=service_account or None,
        token=token or None, pipeline_root=pipeline_root or None, enable_caching=cache,
    )  # fmt: skip


ExpOpt = Annotated[str, typer.Option(help="KFP experiment name")]
NsOpt = Annotated[str, typer.Option(help="Kubeflow profile namespace (multi-user)")]
SaOpt = Annotated[str, typer.Option(help="Kubernetes service account of the run's pods")]
TokenOpt = Annotated[str, typer.Option(envvar="KFP_TOKEN", help="bearer token for the KFP API")]
RootOpt = Annotated[str, typer.Option(help="pipeline root, e.g. s3://bucket/hypomimia")]
PkgOpt = Annotated[Path | None, typer.Option(help="compiled package (default: compile from --params)")]
CacheOpt = Annotated[bool | None, typer.Option("--cache/--no-cache", help="override task caching")]


@pipeline_app.command("submit")
def submit(
    host: HostOpt,
    params: ParamsOpt = Path("params.yaml"),
    overrides: SetOpt = None,
    package: PkgOpt = None,
    experiment: ExpOpt = "hypomimia",
    run_name: Annotated[str, typer.Option(help="run display name")] = "hypomimia",
    namespace: NsOpt = "",
    service_account: SaOpt = "",
    token: TokenOpt = "",
    pipeline_root: RootOpt = "",
    cache: CacheOpt = None,
) -> None:
    """Start one run on a Kubeflow Pipelines cluster."""
    opts = _cluster(host, experiment, namespace, service_account, token, pipeline_root, cache)
    run_id = runner.submit(_package(params, overrides, package), opts, run_name)
    console.print(f"[green]submitted[/green] run {run_id} (experiment {experiment})")


@pipeline_app.command("schedule")
def schedule(
    host: HostOpt,
    cron: Annotated[
        str,
        typer.Option(
            help="KFP cron, 6 fields, seconds first: '0 0 3 * * 1' (required for main; monitor: monitor.cron)"
        ),
    ] = "",
    params: ParamsOpt = Path("params.yaml"),
    overrides: SetOpt = None,
    package: PkgOpt = None,
    name: Annotated[
        str, typer.Option(help="recurring run name (default hypomimia-retrain; monitor: hypomimia-monitor)")
    ] = "",
    pipeline: PipelineOpt = "main",
    experiment: ExpOpt = "hypomimia",
    namespace: NsOpt = "",
    service_account: SaOpt = "",
    token: TokenOpt = "",
    pipeline_root: RootOpt = "",
    cache: CacheOpt = None,
    max_concurrency: Annotated[int, typer.Option(min=1)] = 1,
    catchup: Annotated[bool, typer.Option(help="backfill missed intervals")] = False,
) -> None:
    """Create a recurring run (e.g. weekly retraining, or the weekly drift monitor) on a Kubeflow Pipelines cluster."""
    opts = _cluster(host, experiment, namespace, service_account, token, pipeline_root, cache)
    if pipeline == "monitor":
        cfg = _params(params, overrides)
        cron, name = cron or cfg.monitor.cron, name or cfg.monitor.pipeline_name
        package_path = package or runner.compile_named(
            "monitor", cfg, Path(tempfile.mkdtemp()) / "monitor.yaml"
        )
    elif pipeline == "main":
        if not cron:
            raise UserError(
                "schedule --pipeline main needs --cron", "e.g. --cron '0 0 3 * * 1' (Mondays 03:00)"
            )
        name = name or "hypomimia-retrain"
        package_path = _package(params, overrides, package)
    else:
        raise UserError(f"no pipeline named {pipeline!r}", f"use one of: {', '.join(runner.PIPELINES)}")
    job_id = runner.schedule(package_path, opts, name, cron, max_concurrency=max_concurrency, catchup=catchup)
    console.print(f"[green]scheduled[/green] {name} ({cron}) as recurring run {job_id}")


def register(app: typer.Typer) -> None:
    app.add_typer(pipeline_app, name="pipeline")
