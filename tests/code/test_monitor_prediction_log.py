"""The serving prediction log as the current window: records written with prediction_log.append,
selected by time (the last monitor.window_days before --until), answered requests only; no video."""

import json
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from hypomimia.config.monitor import MonitorConfig
from hypomimia.inference import prediction_log
from hypomimia.inference.prediction_log import PredictionRecord
from hypomimia.stages import monitor as stage
from hypomimia.validation.synthetic import make_dataset

CFG = MonitorConfig(min_window=10)
UNTIL = datetime(2026, 3, 9, tzinfo=UTC)


def _record(rng, i, when, blur=(50, 300), bright=(90, 160), outcome="ok", **extra):
    """A request scored like the synthetic reference's videos (same quality ranges unless shifted)."""
    quality = {
        "face_found_ratio": rng.uniform(0.9, 1.0), "face_size_mean": rng.uniform(0.3, 0.5),
        "blur_mean": rng.uniform(*blur), "brightness_mean": rng.uniform(*bright),
        "yaw_range": rng.uniform(2, 20), "pitch_range": rng.uniform(2, 15), "roll_range": rng.uniform(1, 10),
        "n_frames": 20, "nominal_fps": 25.0, "width": 320, "height": 320, "duration_s": 4.0,
    }  # fmt: skip
    answered = outcome in ("ok", "uncertain")
    p = float(rng.uniform(0.05, 0.95))
    return PredictionRecord(
        request_id=f"r{i:04d}", time=when, outcome=outcome, status_code=200 if answered else 422,
        reason="" if answered else "no_face", p_pd=p if answered else None,
        label=("pd" if p >= 0.5 else "control") if answered else None,
        tube_quality=quality if answered else {}, **extra,
    )  # fmt: skip


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    return make_dataset(tmp_path_factory.mktemp("ref"), n_subjects=24, videos_per_subject=2)


def _log(folder, seed, shifted_last_week=False):
    rng = np.random.default_rng(seed)
    shift = {"blur": (5, 30), "bright": (30, 60)} if shifted_last_week else {}
    for i in range(30):  # the window: the last 7 days, one patient followed over two sessions
        who = {"subject_ref": "pt-7", "session": f"s{1 + i % 2}"} if i < 8 else {}
        prediction_log.append(_record(rng, i, UNTIL - timedelta(hours=5 * i + 1), **shift, **who), folder)
    # Refusals carry no tube: not scored, but they count as submitted and lost (2 of 32: within
    # monitor.max_lost_share; tests/code/test_monitor_clusters.py flags a window that loses more).
    for i in range(2):
        prediction_log.append(_record(rng, 100 + i, UNTIL - timedelta(hours=3), outcome="refused"), folder)
    for i in range(30):  # outside the window (two weeks ago), and much darker: must not count
        old = UNTIL - timedelta(days=14, hours=i)
        prediction_log.append(_record(rng, 200 + i, old, blur=(5, 30), bright=(30, 60)), folder)
    prediction_log.append(_record(rng, 300, UNTIL + timedelta(hours=1)), folder)  # after --until
    return folder


def test_same_distribution_log_window_is_ok_and_follows_the_patient(reference, tmp_path):
    store = _log(tmp_path / "log", seed=1)
    assert len(list(store.glob("predictions-*.jsonl"))) > 5  # one file per UTC day
    r = stage.run(CFG, *reference, tmp_path / "out", prediction_log=store, until=UNTIL)
    assert r.window["source"] == "prediction_log" and r.n_current == 30, r.window
    assert r.window["since"] == (UNTIL - timedelta(days=7)).isoformat()
    assert r.decision.outcome == "ok", r.decision
    tested = {c for c, v in r.summary["quality"].items() if v["tested"]}
    assert {"blur_mean", "brightness_mean", "face_size_mean", "yaw_range"} <= tested
    assert not r.summary["quality"]["width"]["tested"]  # 320 everywhere: shown, not tested
    assert r.summary["prediction"] == {}  # the reference has no model scores: prediction drift not tested
    assert r.trigger is None and (tmp_path / "out" / "drift.html").is_file()
    patients = json.loads((tmp_path / "out" / "patients.json").read_text())
    assert [s["n"] for s in patients["patients"]["pt-7"]["sessions"]] == [4, 4]


def test_a_shifted_log_window_means_retrain(reference, tmp_path):
    store = _log(tmp_path / "log", seed=2, shifted_last_week=True)
    r = stage.run(CFG, *reference, tmp_path / "out", prediction_log=store, until=UNTIL, data_uri="s3://b/w")
    assert r.decision.outcome == "retrain" and {"blur_mean", "brightness_mean"} <= set(r.decision.drivers)
    trigger = json.loads(r.trigger.read_text())
    assert trigger["data_uri"] == "s3://b/w" and trigger["window"]["source"] == "prediction_log"


def test_a_quiet_week_is_too_small(reference, tmp_path):
    store = _log(tmp_path / "log", seed=3)
    r = stage.run(CFG, *reference, tmp_path / "out", prediction_log=store, until=UNTIL - timedelta(days=30))
    assert r.decision.outcome == "too_small" and r.n_current == 0 and r.trigger is None
