"""Stage `monitor`: reference vs current window -> Evidently drift report, ok | warn | retrain, trigger.

Reference: the training cohort (ingest folds + face tubes); with ``model``, only the model's
held-out folds, scored by it (probabilities and embeddings of videos it never trained on).
Current window: a new batch (ingest + facetubes folders, scored by the same model), or the serving
prediction log over the last ``monitor.window_days``. Outputs in ``out_dir``: ``drift.html``
(Evidently), ``evidently.json``, ``drift.json`` (every test), ``monitor.json`` (decision, drivers,
window, files), ``retrain_trigger.json`` (only when the outcome is retrain), and, where the window
has patients with sessions, ``patients.json`` + a plot per patient. Also logged to MLflow.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd

from hypomimia.config.monitor import MonitorConfig
from hypomimia.errors import UserError
from hypomimia.monitoring import course as course_mod
from hypomimia.monitoring import drift
from hypomimia.monitoring.decision import Decision, decide, too_small
from hypomimia.monitoring.trigger import write_trigger
from hypomimia.monitoring.window import (
    batch_table,
    from_prediction_log,
    heldout_folds,
    lost_counts,
    lost_from_log,
    sample_subjects,
    time_window,
    training_ids,
)

log = logging.getLogger(__name__)


@dataclass
class MonitorResult:
    out_dir: Path
    decision: Decision
    summary: dict[str, Any]
    window: dict[str, Any]
    n_reference: int
    n_current: int
    trigger: Path | None
    seconds: float
    files: dict[str, Path] = field(default_factory=dict)
    patients: dict[str, Any] | None = None


def reference_table(
    cfg: MonitorConfig, ingest_dir: Path, tubes_dir: Path, scorer=None, voice_dir: Path | None = None
) -> pd.DataFrame:
    """The training cohort (quality features, index, audio facts; SNR and voice measures from the voice
    table ``voice_dir``) for up to ``max_reference`` videos; with a model, its held-out subjects (up to
    ``max_scored_reference`` videos) carry ``p_pd``, ``label`` and the embedding (and ``p_pd_voice``: a
    model with the voice reads ``voice_dir``'s rows, as /predict measures the upload), the other rows NaN
    there (model outputs are compared with those only)."""
    folds = training_ids(ingest_dir)
    table = batch_table(ingest_dir, tubes_dir, set(folds["video_id"]), voice_dir)
    if table.empty:
        raise UserError(
            "the reference has no video with a face tube", "pass the facetubes folder of the training data"
        )
    if scorer is None:
        return sample_subjects(table, cfg.max_reference, cfg.seed)
    held = heldout_folds(scorer.metadata, int(folds["fold"].max()) + 1)
    held_ids = set(folds.loc[folds["fold"].isin(held), "video_id"])
    scored = sample_subjects(table[table["video_id"].isin(held_ids)], cfg.max_scored_reference, cfg.seed)
    if scored.empty:
        raise UserError(
            "the model's held-out folds have no video with a face tube",
            "pass the ingest/facetubes folders of the data this model was trained on",
        )
    quality = sample_subjects(table, cfg.max_reference, cfg.seed)
    quality = pd.concat(
        [scored, quality[~quality["video_id"].isin(set(scored["video_id"]))]], ignore_index=True
    )
    scored = scorer.score(scored, _voice_rows(scorer, voice_dir, "--voice"))[0]
    model_cols = [c for c in scored.columns if c not in quality.columns or c in ("p_pd", "label")]
    return (
        quality.drop(columns=["p_pd", "label"], errors="ignore")
        .merge(scored[["video_id", *model_cols]], on="video_id", how="left")
        .sort_values("video_id", ignore_index=True)
    )


def _voice_rows(scorer, voice_dir: Path | None, option: str) -> pd.DataFrame | None:
    """The voice table a model with the voice scores a side with (the rows the endpoint would measure from
    each upload), so its ``p_pd`` is fused as the log's is and it carries ``p_pd_voice``; None for a model
    without the voice, or when no table was given (``option`` names the flag that gives it)."""
    if scorer is None or scorer.model.voice_stream is None:
        return None
    if voice_dir is None:
        log.warning("the model has a voice stream but no voice table was given (%s): those videos are scored "
                    "from the face alone and the voice model's outputs are not tested", option)  # fmt: skip
        return None
    from hypomimia.voice.table import read_voice_table

    return read_voice_table(Path(voice_dir)).rows


def current_table(
    cfg: MonitorConfig,
    ingest_dir: Path | None,
    tubes_dir: Path | None,
    prediction_log: Path | None,
    until: datetime | None,
    scorer=None,
    voice_dir: Path | None = None,
) -> tuple[pd.DataFrame, dict[str, Any], pd.DataFrame | None, dict[str, int]]:
    """(window table, its description, per-clip scores or None, submitted/lost counts)."""
    if prediction_log is not None:
        from hypomimia.inference import prediction_log as plog

        since, until = time_window(until or datetime.now(UTC), cfg.window_days)
        got = plog.read_log(prediction_log, since, until)  # torn or unreadable lines: skipped, reported
        table = from_prediction_log(got.records)
        window = {"source": "prediction_log", "since": since.isoformat(), "until": until.isoformat(),
                  "skipped_lines": len(got.skipped)}  # fmt: skip
        return table, window, None, lost_from_log(got.records)
    if ingest_dir is None or tubes_dir is None:
        raise UserError(
            "no current window given", "pass --ingest and --tubes of a new batch, or --prediction-log"
        )
    table = batch_table(ingest_dir, tubes_dir, voice_dir=voice_dir)
    clips = None
    if scorer is not None and not table.empty:
        table, clips = scorer.score(table, _voice_rows(scorer, voice_dir, "--current-voice"))
    window = {"source": "batch", "ingest": Path(ingest_dir).name, "tubes": Path(tubes_dir).name}
    return table, window, clips, lost_counts(ingest_dir, tubes_dir)


def run(
    cfg: MonitorConfig,
    reference_ingest: Path,
    reference_tubes: Path,
    out_dir: Path,
    *,
    current_ingest: Path | None = None,
    current_tubes: Path | None = None,
    prediction_log: Path | None = None,
    until: datetime | None = None,
    model: Path | None = None,
    data_uri: str = "",
    tracking_uri: str | None = None,
    voice: Path | None = None,
    current_voice: Path | None = None,
) -> MonitorResult:
    """``voice``: the reference's voice table (its SNR, bandwidth and voice measures join the audio
    tests; a model with the voice scores the reference with it); ``current_voice``: the batch window's.
    Without them the audio tests use ingest's facts and the voice model's outputs are not tested."""
    t0 = time.perf_counter()
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    scorer = None
    if model is not None:
        from hypomimia.monitoring.scoring import Scorer

        scorer = Scorer.load(model, cfg.threads)
    reference = reference_table(cfg, reference_ingest, reference_tubes, scorer, voice)
    current, window, clips, lost = current_table(
        cfg, current_ingest, current_tubes, prediction_log, until, scorer, current_voice
    )
    lost["reference"] = lost_counts(reference_ingest, reference_tubes)
    window |= {"videos": len(current), "submitted": lost["submitted"], "lost": lost["submitted"] - len(current),
               "model": Path(model).name if model else None}  # fmt: skip
    files: dict[str, Path] = {}
    summary: dict[str, Any] = {}
    if lost["submitted"] < cfg.min_window:  # lost videos count: losing faces is a finding, not a small window
        decision = too_small(lost["submitted"], cfg)
    else:
        outcome = drift.compare(reference, current, cfg, lost)
        summary = outcome.summary
        decision = decide(summary, cfg)
        files |= drift.save(outcome, out_dir, decision.as_dict())
    if not data_uri and current_ingest is not None:
        data_uri = str(Path(current_ingest).resolve())
    trigger = write_trigger(out_dir, decision, window, data_uri)
    if trigger:
        files["trigger"] = trigger
    patients = _patients(cfg, current, clips, out_dir)
    if patients is not None:
        files["patients"] = out_dir / "patients.json"
    report = {
        "decision": decision.as_dict(),
        "window": window,
        "reference": {
            "videos": len(reference),
            "scored_videos": int(reference["p_pd"].notna().sum()) if "p_pd" in reference else 0,
            "ingest": Path(reference_ingest).name,
            "tubes": Path(reference_tubes).name,
            "voice": Path(voice).name if voice else None,
        },
        "files": {k: p.name for k, p in files.items()},
        "patients_with_alerts": patients["patients_with_alerts"] if patients else None,
    }
    files["report"] = out_dir / "monitor.json"
    files["report"].write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    if tracking_uri:
        _log_mlflow(tracking_uri, decision, summary, window, out_dir)
    seconds = time.perf_counter() - t0
    log.info("monitor: %s (%s) on %d videos vs %d reference", decision.outcome, ", ".join(decision.drivers) or "-",
             len(current), len(reference))  # fmt: skip
    return MonitorResult(
        out_dir, decision, summary, window, len(reference), len(current), trigger, seconds, files, patients
    )


def _patients(cfg: MonitorConfig, current: pd.DataFrame, clips, out_dir: Path) -> dict[str, Any] | None:
    """Courses of the window's patients (rows with a subject_ref and a session), by calibrated P(PD)."""
    if current.empty or "p_pd" not in current or current["subject_ref"].isna().all():
        return None
    scored = current.dropna(subset=["p_pd"])
    scored = scored[scored["session"].fillna("").astype(str) != ""]
    if scored.empty:
        return None
    result = course_mod.courses(scored.assign(score=scored["p_pd"]), cfg, course_mod.PROBABILITY)
    return write_patients(result, out_dir, "P(PD), calibrated")


def write_patients(result: dict[str, Any], out_dir: Path, score_name: str) -> dict[str, Any]:
    plots = {}
    for patient, c in result["patients"].items():
        plots[patient] = course_mod.plot(
            patient, c, Path(out_dir) / "patients" / f"{patient}.png", score_name
        ).name
    result = result | {"score": score_name, "plots": plots}
    (Path(out_dir) / "patients.json").write_text(
        json.dumps(result, indent=2, default=float) + "\n", encoding="utf-8"
    )
    return result


def run_patients(
    cfg: MonitorConfig,
    ingest_dir: Path,
    tubes_dir: Path,
    out_dir: Path,
    model: Path | None = None,
    voice_dir: Path | None = None,
) -> dict[str, Any]:
    """``hypomimia monitor patients``: each subject's course over sessions, by the model's calibrated P(PD)
    (``model``) or, without one, by the model-free hypomimia index (monitoring.expressivity).

    ``voice_dir``: the visits' voice table; a model with the voice scores each visit with it, so the course
    follows the fused P(PD) /predict answers with (without it: the face alone, with a warning)."""
    table = batch_table(ingest_dir, tubes_dir, voice_dir=voice_dir)
    if table.empty:
        raise UserError("no video with a face tube in this batch", "run hypomimia facetubes on it first")
    if model is not None:
        from hypomimia.monitoring.scoring import Scorer

        scorer = Scorer.load(model, cfg.threads)
        scored, _ = scorer.score(table, _voice_rows(scorer, voice_dir, "--voice"))
        clips, scale, name = scored.assign(score=scored["p_pd"]), course_mod.PROBABILITY, "P(PD), calibrated"
    else:
        from hypomimia.monitoring.expressivity import hypomimia_index

        index = [hypomimia_index(Path(t)) for t in table["tube"]]
        clips, scale, name = table.assign(score=index), course_mod.IDENTITY, "hypomimia index (model-free)"
    Path(out_dir).mkdir(parents=True, exist_ok=True)
    return write_patients(course_mod.courses(clips, cfg, scale), out_dir, name)


def _log_mlflow(tracking_uri: str, decision: Decision, summary: dict, window: dict, out_dir: Path) -> None:
    import mlflow

    from hypomimia.learning.mlflow_runs import setup_experiment

    exp = setup_experiment(tracking_uri, "hypomimia-monitor")
    with mlflow.start_run(experiment_id=exp, run_name=f"monitor-{decision.outcome}"):
        mlflow.set_tags(
            {
                "outcome": decision.outcome,
                "drivers": ",".join(decision.drivers),
                "source": window.get("source"),
            }
        )
        metrics = {"videos": float(window.get("videos", 0)), "retrain": float(decision.outcome == "retrain")}
        audio_cols = (summary.get("audio") or {}).get("columns") or {}
        for col, v in (summary.get("quality", {}) | summary.get("population", {}) | audio_cols).items():
            if v.get("p_value") is not None:
                metrics[f"p_value.{col}"] = float(v["p_value"])
        if (summary.get("embedding") or {}).get("score") is not None:
            metrics["embedding_score"] = float(summary["embedding"]["score"])
        mlflow.log_metrics(metrics)
        mlflow.log_artifacts(str(out_dir), artifact_path="monitor")
