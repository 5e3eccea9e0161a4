from kfp import dsl
from kfp.dsl import HTML, Dataset, Input, Metrics, Model, Output

from components import IMAGE


@dsl.component(base_image=IMAGE, install_kfp_package=False)
def current_window(params: str, prediction_log: Input[Dataset], until: str, window: Output[Dataset]) -> str:
    """The serving prediction log's last ``monitor.window_days`` before ``until`` (ISO time; empty ->
    now), copied into ``window`` so the run keeps what it judged. Returns the window's end (ISO)."""
    from datetime import UTC, datetime
    from pathlib import Path

    from hypomimia.config.monitor import MonitorConfig
    from hypomimia.monitoring.window import snapshot_log

    cfg = MonitorConfig.model_validate_json(params)
    end = datetime.fromisoformat(until) if until else datetime.now(UTC)
    records, since, end = snapshot_log(Path(prediction_log.path), Path(window.path), end, cfg.window_days)
    window.metadata.update({"records": records, "since": since.isoformat(), "until": end.isoformat()})
    return end.isoformat()


@dsl.component(base_image=IMAGE, install_kfp_package=False)
def monitor(
    params: str,
    reference_ingest: Input[Dataset],
    reference_tubes: Input[Dataset],
    reference_voice: Input[Dataset],
    window: Input[Dataset],
    until: str,
    tracking_uri: str,
    drift: Output[Dataset],
    report: Output[HTML],
    metrics: Output[Metrics],
    model: Input[Model] = None,
) -> str:
    """Drift of the window against the training data, ok | warn | retrain (hypomimia.stages.monitor).

    ``reference_voice``: the voice stage's folder for the reference (SNR and the high band for the audio
    tests; a model with the voice scores the reference with it, as /predict scored the window's uploads).
    ``drift`` is the stage's output folder (monitor.json, drift.json, retrain_trigger.json on
    retrain); ``report`` the Evidently HTML. Returns the outcome, which the pipeline branches on.
    """
    import shutil
    from datetime import datetime
    from pathlib import Path

    from components.pipeline_io import publish_metrics
    from hypomimia.config.monitor import MonitorConfig
    from hypomimia.stages import monitor as stage

    out = Path(drift.path)
    result = stage.run(
        MonitorConfig.model_validate_json(params), Path(reference_ingest.path), Path(reference_tubes.path), out,
        prediction_log=Path(window.path), until=datetime.fromisoformat(until),
        model=Path(model.path) / "model.pt" if model is not None else None, tracking_uri=tracking_uri or None,
        voice=Path(reference_voice.path),
    )  # fmt: skip
    html = out / "drift.html"
    Path(report.path).parent.mkdir(parents=True, exist_ok=True)
    if html.is_file():
        shutil.copyfile(html, report.path)
    else:  # too_small: no test ran, say so in the report slot
        Path(report.path).write_text(f"<html><body>{result.decision.reasons}</body></html>", encoding="utf-8")
    values = {"videos": float(result.n_current), "retrain": float(result.decision.outcome == "retrain")}
    values["drivers"] = float(len(result.decision.drivers))
    publish_metrics(metrics, values)
    return result.decision.outcome


@dsl.component(base_image=IMAGE, install_kfp_package=False)
def retrain(drift: Input[Dataset], host: str, training_package: str, experiment: str) -> str:
    """Start the training pipeline (``training_package``, compiled) on the KFP API at ``host``, for the
    retrain trigger the monitor wrote (``hypomimia monitor submit``). Returns the run id."""
    import json
    import os
    import subprocess
    import sys
    import tempfile
    from pathlib import Path

    from hypomimia.monitoring.trigger import TRIGGER_NAME

    # A child process: inside a running component kfp is in runtime mode (_KFP_RUNTIME=true), where
    # importing its client fails (kfp.Client is not exported; kfp.client hits a circular import).
    env = {k: v for k, v in os.environ.items() if k != "_KFP_RUNTIME"}
    record = Path(tempfile.mkdtemp()) / "run.json"
    subprocess.run(
        [sys.executable, "-m", "hypomimia", "monitor", "submit", str(Path(drift.path) / TRIGGER_NAME), "--host", host,
         "--package", training_package, "--experiment", experiment, "--record", str(record)],
        env=env, check=True,
    )  # fmt: skip
    return json.loads(record.read_text(encoding="utf-8"))["run_id"]
