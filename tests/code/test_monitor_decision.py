"""Decision logic of drift monitoring on small synthetic frames (no video, ~1 s each)."""

import numpy as np
import pandas as pd
import pytest

from hypomimia.config.monitor import MonitorConfig
from hypomimia.monitoring.decision import decide, too_small
from hypomimia.monitoring.drift import compare

CFG = MonitorConfig(min_window=5)


def frame(n, seed, blur=200.0, bright=120.0, logit=0.0, emb_shift=0.0):
    rng = np.random.default_rng(seed)
    p = 1 / (1 + np.exp(-rng.normal(logit, 1.5, n)))
    d = {
        "face_size_mean": rng.normal(0.3, 0.03, n),
        "blur_mean": rng.normal(blur, 40, n),
        "brightness_mean": rng.normal(bright, 10, n),
        "fps": np.full(n, 25.0),
        "p_pd": p,
        "label": np.where(abs(p - 0.5) < 0.1, "uncertain", np.where(p >= 0.5, "pd", "control")),
    }
    d |= {f"emb_{i}": rng.normal(emb_shift, 1, n) for i in range(8)}
    return pd.DataFrame(d)


@pytest.fixture(scope="module")
def reference():
    return frame(200, 0)


def test_same_distribution_is_ok(reference):
    out = compare(reference, frame(40, 1), CFG)
    assert decide(out.summary, CFG).outcome == "ok"
    # 3 varying quality columns + p_pd + label + embedding; fps is constant and equal: shown, not tested
    assert out.summary["tests"] == 6 and not out.summary["quality"]["fps"]["tested"]
    assert out.summary["per_test_alpha"] == pytest.approx(0.05 / 6)


def test_one_camera_column_warns_and_names_it(reference):
    d = decide(compare(reference, frame(40, 2, blur=60.0), CFG).summary, CFG)
    assert d.outcome == "warn" and d.drivers == ["blur_mean"] and "blur_mean: median" in d.reasons[0]


def test_two_camera_columns_or_model_outputs_mean_retrain(reference):
    d = decide(compare(reference, frame(40, 3, blur=60.0, bright=70.0), CFG).summary, CFG)
    assert d.outcome == "retrain" and set(d.drivers) == {"blur_mean", "brightness_mean"}
    d = decide(compare(reference, frame(40, 4, logit=2.0, emb_shift=0.8), CFG).summary, CFG)
    assert d.outcome == "retrain" and {"p_pd", "embedding"} <= set(d.drivers)


def test_retrain_columns_threshold_is_a_knob(reference):
    summary = compare(reference, frame(40, 3, blur=60.0, bright=70.0), CFG).summary
    assert decide(summary, MonitorConfig(min_window=5, retrain_columns=3)).outcome == "warn"


def test_a_rising_uncertain_share_is_prediction_drift(reference):
    cur = frame(60, 5)
    cur["label"] = np.where(np.arange(60) % 2 == 0, "uncertain", cur["label"])
    d = decide(compare(reference, cur, CFG).summary, CFG)
    assert "label" in d.drivers and "uncertain" in " ".join(d.reasons)


def test_quality_only_tables_and_small_windows():
    ref = frame(100, 6).drop(columns=["p_pd", "label"] + [f"emb_{i}" for i in range(8)])
    out = compare(ref, ref.iloc[:30].copy(), CFG)
    assert out.summary["prediction"] == {} and out.summary["embedding"] is None
    assert too_small(3, CFG).outcome == "too_small"


def test_too_few_scored_subjects_skip_the_embedding_test_with_the_reason(reference):
    """The demo's monitor crashed inside Evidently's MMD bootstrap (a division by zero) with a model
    reference of 3 held-out subjects against a window of 5: now the test is skipped and says why."""
    ref = frame(3, 7).assign(subject_ref=["a", "b", "c"])
    cur = frame(10, 8).assign(subject_ref=[f"w{i // 2}" for i in range(10)])
    out = compare(ref, cur, CFG)
    emb = out.summary["embedding"]
    assert emb["tested"] is False and emb["score"] is None and not emb["drifted"]
    assert "3 reference and 5 window subjects are too few" in emb["reason"]
    assert "embedding" not in decide(out.summary, CFG).drivers
    assert compare(reference, frame(40, 1), CFG).summary["embedding"]["tested"] is True
