from datetime import datetime
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from hypomimia.config import load_params

monitor_app = typer.Typer(
    help="Drift of new data against the training data (Evidently), the retrain decision, patient courses.",
    invoke_without_command=True,
)
console = Console()
DEFAULT_MODEL = Path("work/train/model.pt")


def _model(model: Path | None, use_model: bool) -> Path | None:
    if not use_model:
        return None
    if model is None and DEFAULT_MODEL.is_file():
        console.print(f"model: {DEFAULT_MODEL} (default; --no-model to compare quality features only)")
        return DEFAULT_MODEL
    return model


@monitor_app.callback()
def monitor(
    ctx: typer.Context,
    reference_ingest: Annotated[Path, typer.Option(help="ingest folder of the training data")] = Path(
        "work/ingest"
    ),
    reference_tubes: Annotated[Path, typer.Option(help="facetubes folder of the training data")] = Path(
        "work/facetubes"
    ),
    ingest: Annotated[Path | None, typer.Option(help="current window: ingest folder of a new batch")] = None,
    tubes: Annotated[Path | None, typer.Option(help="current window: facetubes folder of that batch")] = None,
    voice: Annotated[
        Path | None,
        typer.Option(
            help="voice folder of the training data: its SNR, bandwidth and voice measures join the audio tests"
        ),
    ] = None,
    current_voice: Annotated[
        Path | None, typer.Option(help="current window: voice folder of the batch (with --ingest)")
    ] = None,
    prediction_log: Annotated[
        Path | None, typer.Option(help="current window: the serving prediction log folder (last window_days)")
    ] = None,
    until: Annotated[datetime | None, typer.Option(help="end of the log window (UTC; default now)")] = None,
    model: Annotated[
        Path | None, typer.Option(help="model.pt (default work/train/model.pt when present)")
    ] = None,
    use_model: Annotated[
        bool, typer.Option("--model-outputs/--no-model", help="score with the model")
    ] = True,
    out: Annotated[Path, typer.Option(help="output folder")] = Path("work/monitor"),
    params: Annotated[Path, typer.Option(help="params file")] = Path("params.yaml"),
    mlflow: Annotated[bool, typer.Option("--mlflow/--no-mlflow", help="log the report to MLflow")] = True,
    tracking_uri: Annotated[str, typer.Option(help="MLflow URI (default: work/mlflow/mlflow.db)")] = "",
    submit: Annotated[
        bool, typer.Option("--submit", help="on retrain, start the training pipeline on KFP")
    ] = False,
    host: Annotated[
        str, typer.Option(envvar="KF_PIPELINES_ENDPOINT", help="KFP API URL (with --submit)")
    ] = "",
    data_uri: Annotated[
        str, typer.Option(help="data the retrain run imports (default: the current batch)")
    ] = "",
    package: Annotated[
        Path | None, typer.Option(help="compiled training pipeline (default: compile)")
    ] = None,
    max_reference: Annotated[
        int | None,
        typer.Option(help="reference videos for quality features (default monitor.max_reference)", min=20),
    ] = None,
    max_scored_reference: Annotated[
        int | None,
        typer.Option(
            help="held-out reference videos the model scores (default monitor.max_scored_reference)", min=4
        ),
    ] = None,
) -> None:
    """Compare a current window with the training data; decide ok | warn | retrain (docs/monitoring.md)."""
    if ctx.invoked_subcommand is not None:
        return
    from hypomimia.stages.monitor import run  # heavy imports only when the command runs

    uri = None
    if mlflow:
        from hypomimia.learning.mlflow_runs import default_tracking_uri

        uri = tracking_uri or default_tracking_uri()
    cfg = load_params(params).monitor
    if max_reference is not None:
        cfg = cfg.model_copy(update={"max_reference": max_reference})
    if max_scored_reference is not None:
        cfg = cfg.model_copy(update={"max_scored_reference": max_scored_reference})
    r = run(
        cfg, reference_ingest, reference_tubes, out, current_ingest=ingest, current_tubes=tubes,
        prediction_log=prediction_log, until=until, model=_model(model, use_model), data_uri=data_uri,
        tracking_uri=uri, voice=voice, current_voice=current_voice,
    )  # fmt: skip
    print_summary(r)
    if submit:
        _submit(r, host, package, params)


def print_summary(r) -> None:
    s = r.summary
    table = Table(
        title=f"drift: {r.n_current} videos vs {r.n_reference} reference ({r.window.get('source')})"
    )
    for col in ("test", "reference", "current", "p / score", "drift"):
        table.add_column(col, justify="left" if col == "test" else "right")
    mark = {True: "[red]DRIFT[/red]", False: "[green]no[/green]"}
    for col, v in (s.get("quality", {}) | s.get("population", {})).items():
        p = "const" if not v["tested"] else f"{v['p_value']:.2g}" if v["p_value"] is not None else "n/a"
        table.add_row(
            col, f"{v['reference_median']:.4g}", f"{v['current_median']:.4g}", p, mark[v["drifted"]]
        )
    pred = s.get("prediction") or {}
    if pred:
        v = pred["p_pd"]
        table.add_row("p_pd (mean)", f"{v['reference_mean']:.3f}", f"{v['current_mean']:.3f}", f"{v['p_value']:.2g}",
                      mark[v["drifted"]])  # fmt: skip
        v = pred["label"]
        table.add_row("uncertain share", f"{v['reference_shares']['uncertain']:.2f}",
                      f"{v['current_shares']['uncertain']:.2f}", f"{v['p_value']:.2g}", mark[v["drifted"]])  # fmt: skip
    sound = s.get("audio") or {}
    for col, v in (sound.get("columns") or {}).items():
        p = (
            f"{v['p_value']:.2g}"
            if v["p_value"] is not None
            else ("const" if "constant" in v["note"] else "shown")
        )
        if v["kind"] == "categorical":
            ref, cur = v["reference_shares"], v["current_shares"]
        elif v["kind"] == "share":
            ref, cur = v["reference_share"], v["current_share"]
        else:
            ref, cur = v["reference_median"], v["current_median"]
        table.add_row(col, _cell(ref), _cell(cur), p, mark[v["drifted"]])
    if s.get("embedding"):
        v = s["embedding"]
        score = f"{v['score']:.3g}" if v.get("score") is not None else "not tested: too few subjects"
        table.add_row(f"embedding ({v['method']}, {v['dim']} d)", "", "", score, mark[v["drifted"]])
    if s:
        console.print(table)
        console.print(
            f"{s['tests']} tests, each at {s['per_test_alpha']:.2g} (alpha {s['alpha']} per window)"
        )
        if sound.get("skipped"):
            console.print(f"audio: {sound['skipped']}", highlight=False, markup=False)
        if (sound.get("voice_model") or {}).get("skipped"):
            console.print(f"voice model: {sound['voice_model']['skipped']}", highlight=False, markup=False)
    colour = {"ok": "green", "warn": "yellow", "retrain": "red", "too_small": "yellow"}[r.decision.outcome]
    console.print(f"decision: [{colour}]{r.decision.outcome}[/{colour}]" +
                  (f" driven by {', '.join(r.decision.drivers)}" if r.decision.drivers else ""))  # fmt: skip
    for line in r.decision.reasons:
        console.print(f"  - {line}", highlight=False, markup=False)
    if r.patients:
        console.print(
            f"patients: {len(r.patients['patients'])}, with change alerts: {r.patients['patients_with_alerts']}"
        )
    for name, path in r.files.items():
        console.print(f"  {name:<9} {path}", highlight=False, soft_wrap=True)


def _cell(value) -> str:
    if isinstance(value, dict):
        return ", ".join(f"{k}: {v:.2f}" for k, v in value.items()) or "-"
    return "-" if value is None else f"{value:.4g}"


def _submit(r, host: str, package: Path | None, params: Path) -> None:
    from hypomimia.errors import UserError
    from hypomimia.monitoring.trigger import read_trigger

    if r.trigger is None:
        console.print(f"nothing submitted: the outcome is {r.decision.outcome}")
        return
    if not host:
        raise UserError("--submit needs the KFP API", "pass --host URL or set KF_PIPELINES_ENDPOINT")
    run_id = submit_trigger(read_trigger(r.trigger), host, package, params)
    console.print(
        f"[green]submitted[/green] retraining run {run_id} on {read_trigger(r.trigger)['data_uri'] or 'the phantom'}"
    )


def submit_trigger(
    trigger: dict, host: str, package: Path | None, params: Path, experiment: str = "hypomimia"
) -> str:
    """Start the training pipeline with pipeline.data_uri = the trigger's data (compiled unless --package)
    on the KFP API at ``host``, the run named after the trigger's drivers. Returns the run id."""
    import tempfile

    from hypomimia import pipeline_runner as runner
    from hypomimia.errors import UserError
    from hypomimia.monitoring.trigger import run_name

    if package is None:
        overrides = [f"pipeline.data_uri={trigger['data_uri']}"] if trigger.get("data_uri") else []
        cfg = runner.apply_overrides(load_params(params), overrides)
        package = runner.compile_pipeline(cfg, Path(tempfile.mkdtemp()) / "pipeline.yaml")
    if not Path(package).is_file():
        raise UserError(
            f"the training pipeline package {package} does not exist",
            "compile it (hypomimia pipeline compile) or set monitor.training_package",
        )
    options = runner.ClusterOptions(host=host, experiment=experiment)
    return runner.submit(Path(package), options, run_name(trigger))


@monitor_app.command("patients")
def patients(
    ingest: Annotated[Path, typer.Option(help="ingest folder of the visits")] = Path("work/ingest"),
    tubes: Annotated[Path, typer.Option(help="facetubes folder of the visits")] = Path("work/facetubes"),
    model: Annotated[Path | None, typer.Option(help="model.pt: follow its calibrated P(PD)")] = None,
    voice: Annotated[
        Path | None,
        typer.Option(
            help="voice folder of the visits: a model with the voice scores them with it (fused P(PD))"
        ),
    ] = None,
    score: Annotated[str, typer.Option(help="model | expressivity (model-free hypomimia index)")] = "model",
    out: Annotated[Path, typer.Option(help="output folder")] = Path("work/monitor/patients"),
    params: Annotated[Path, typer.Option(help="params file")] = Path("params.yaml"),
) -> None:
    """Each patient's score per session with its CI, trend and change alerts beyond the test-retest spread."""
    from hypomimia.errors import UserError
    from hypomimia.stages.monitor import run_patients

    if score not in ("model", "expressivity"):
        raise UserError(f"--score {score!r}", "use --score model or --score expressivity")
    if score == "model":
        model = model or (DEFAULT_MODEL if DEFAULT_MODEL.is_file() else None)
        if model is None:
            raise UserError(
                "no model to score with", "pass --model work/train/model.pt, or --score expressivity"
            )
        console.print(f"score: calibrated P(PD) of {model}")
    result = run_patients(
        load_params(params).monitor, ingest, tubes, out, model if score == "model" else None, voice
    )
    table = Table(title=f"patient courses ({result['score']})")
    for col in ("patient", "sessions", "trend", "slope/session", "alerts"):
        table.add_column(col)
    for patient, c in result["patients"].items():
        alerts = (
            "; ".join(f"{a['kind']} {a['from']}->{a['to']} {a['change']:+.2f}" for a in c["alerts"]) or "-"
        )
        sessions = " ".join(f"{s['session']}:{s['score']:.2f}" for s in c["sessions"])
        table.add_row(patient, sessions, c["trend"], f"{c['slope_per_session']:+.3f}", alerts)
    console.print(table)
    sd = result["retest_sd"]
    console.print(
        f"test-retest SD {sd:.3f} from {result['retest_sessions']} sessions"
        if sd is not None
        else result["note"]
    )
    console.print(
        f"  report  {out / 'patients.json'}; plots {out / 'patients'}/", highlight=False, soft_wrap=True
    )


@monitor_app.command("submit")
def submit(
    trigger: Annotated[Path, typer.Argument(help="retrain_trigger.json written by hypomimia monitor")],
    host: Annotated[str, typer.Option(envvar="KF_PIPELINES_ENDPOINT", help="KFP API URL")],
    package: Annotated[
        Path | None,
        typer.Option(help="compiled training pipeline (default: compile with the trigger's data)"),
    ] = None,
    experiment: Annotated[str, typer.Option(help="KFP experiment")] = "hypomimia",
    params: Annotated[Path, typer.Option(help="params file (when compiling)")] = Path("params.yaml"),
    record: Annotated[Path | None, typer.Option(help="write {run_id, trigger} here as JSON")] = None,
) -> None:
    """Start the training pipeline for a retrain trigger (what --submit and the monitor pipeline do)."""
    import json

    from hypomimia.monitoring.trigger import read_trigger

    data = read_trigger(trigger)
    run_id = submit_trigger(data, host, package, params, experiment)
    if record is not None:
        record.write_text(json.dumps({"run_id": run_id, "trigger": str(trigger)}) + "\n", encoding="utf-8")
    console.print(
        f"[green]submitted[/green] retraining run {run_id} ({', '.join(data['drivers']) or 'drift'})"
    )


@monitor_app.command("camera")
def camera(
    src: Annotated[Path, typer.Argument(help="folder with manifest.csv + videos (e.g. a phantom)")],
    dst: Annotated[Path, typer.Argument(help="output folder: the same videos through another camera")],
    change: Annotated[
        str, typer.Option(help="blur | dark | lowres | compression | camera (all, milder)")
    ] = "camera",
    fps: Annotated[int, typer.Option(help="frame rate of the re-encoded videos")] = 25,
) -> None:
    """Re-encode a video folder as another camera would record it: a known drift (demo, benchmark)."""
    from hypomimia.errors import UserError
    from hypomimia.phantom.camera import CHANGES, apply_to_folder

    if change not in CHANGES:
        raise UserError(f"--change {change!r} is not a camera change", f"use one of: {', '.join(CHANGES)}")
    if not (src / "manifest.csv").is_file():
        raise UserError(f"{src} has no manifest.csv", "pass a folder written by hypomimia phantom")
    manifest = apply_to_folder(src, dst, CHANGES[change], fps=fps)
    console.print(f"[green]camera[/green] {change}: {CHANGES[change]} -> {manifest}", highlight=False)


def register(app: typer.Typer) -> None:
    app.add_typer(monitor_app, name="monitor")
