"""Metrics: known values, subject aggregation, bootstrap by subject, calibration, abstain band."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from hypomimia.learning.metrics import (
    abstain,
    aggregate,
    auroc,
    binary_metrics,
    bootstrap_ci,
    evaluate,
    expected_calibration_error,
    fit_temperature,
    with_probability,
)


def test_binary_metrics_by_hand():
    y = np.array([1, 1, 1, 0, 0, 0, 0, 0])
    p = np.array([0.9, 0.8, 0.3, 0.6, 0.2, 0.1, 0.1, 0.4])
    m = binary_metrics(y, p)
    assert m["sensitivity"] == pytest.approx(2 / 3)
    assert m["specificity"] == pytest.approx(4 / 5)
    assert m["accuracy"] == pytest.approx(6 / 8)
    assert m["balanced_accuracy"] == pytest.approx((2 / 3 + 4 / 5) / 2)
    assert m["f1"] == pytest.approx(2 * 2 / (2 * 2 + 1 + 1))
    assert m["brier"] == pytest.approx(np.mean((p - y) ** 2))
    # AUROC: 15 pos/neg pairs, the 0.3 positive loses to 0.6 and 0.4 -> 13/15
    assert m["auroc"] == pytest.approx(13 / 15)
    assert np.isnan(auroc(np.ones(3), np.array([0.1, 0.5, 0.9])))


def test_ece_is_zero_when_calibrated_and_large_when_not():
    y = np.array([0, 1] * 50)
    assert expected_calibration_error(y, np.full(100, 0.5)) == pytest.approx(0.0)
    assert expected_calibration_error(y, np.full(100, 0.95)) == pytest.approx(0.45)


def _clips(n_subjects=20, clips=6, separation=2.0, seed=0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    rows = []
    for s in range(n_subjects):
        label = s % 2
        for v in range(2):
            for _ in range(clips // 2):
                rows.append(
                    {
                        "video_id": f"S{s}_v{v}",
                        "subject_id": f"S{s}",
                        "label": label,
                        "margin": rng.normal(separation * (2 * label - 1), 1.5),
                        "task": ["rest", "smile"][v],
                    }
                )
    return pd.DataFrame(rows)


def test_subject_level_averages_clip_probabilities():
    clips = with_probability(_clips())
    subjects = aggregate(clips, "subject")
    assert len(subjects) == 20 and len(aggregate(clips, "video")) == 40
    s0 = clips[clips.subject_id == "S0"]["p"].mean()
    assert subjects.set_index("subject_id").loc["S0", "p"] == pytest.approx(s0)


def test_bootstrap_resamples_subjects_not_clips():
    # 4 subjects with many clips each: a clip-level bootstrap would give a tight CI, a subject one cannot
    rows = [
        {"subject_id": f"S{s}", "label": s % 2, "p": 0.9 if s in (1, 2) else 0.1}
        for s in range(4)
        for _ in range(50)
    ]
    lo, hi = bootstrap_ci(pd.DataFrame(rows), auroc, n=300, seed=0)
    assert lo < 0.5 < hi  # subjects 1 (pd, high) and 2 (control, high) make AUROC uncertain


def test_temperature_scaling_fixes_overconfidence():
    rng = np.random.default_rng(1)
    y = rng.integers(0, 2, 4000)
    x = rng.normal(0, 1, 4000) + (2 * y - 1) * 1.0  # N(+-1, 1): the calibrated logit is 2x
    margin = 8.0 * x  # 4x overconfident
    t = fit_temperature(margin, y)
    assert 3.5 < t < 4.5
    p_raw, p_cal = 1 / (1 + np.exp(-margin)), 1 / (1 + np.exp(-margin / t))
    assert expected_calibration_error(y, p_cal) < expected_calibration_error(y, p_raw) / 2
    assert fit_temperature(np.zeros(3), np.ones(3)) == 1.0


def test_abstain_band_reports_coverage():
    table = pd.DataFrame({"label": [1, 0, 1, 0], "p": [0.95, 0.05, 0.55, 0.48]})
    a = abstain(table, 0.1)
    assert a["coverage"] == 0.5 and a["uncertain"] == 2 and a["accuracy"] == 1.0
    assert abstain(table, 0.0)["coverage"] == 1.0


def test_evaluate_has_house_shape_and_finds_signal():
    clips = _clips()
    out = evaluate(clips, n_bootstrap=100, video_info=clips[["video_id", "task"]].drop_duplicates())
    assert set(out) >= {"overall", "per_class", "slices"}
    assert set(out["overall"]) == {"clip", "video", "subject"}
    subject = out["overall"]["subject"]
    assert subject["n"] == 20 and subject["auroc"] > 0.9
    lo, hi = subject["auroc_ci95"]
    assert lo <= subject["auroc"] <= hi
    assert set(out["slices"]) == {"task=rest", "task=smile"}
    assert out["per_class"]["pd"]["subjects"] == 10
    # no signal -> near chance, CI covering 0.5
    null = evaluate(_clips(separation=0.0, seed=3), n_bootstrap=200)["overall"]["subject"]
    assert null["auroc_ci95"][0] < 0.5 < null["auroc_ci95"][1]
