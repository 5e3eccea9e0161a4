"""Patient-course statistics on synthetic scores: retest spread, CIs, alerts, trend."""

import numpy as np
import pandas as pd
import pytest

from hypomimia.config.monitor import MonitorConfig
from hypomimia.monitoring.course import IDENTITY, PROBABILITY, courses, retest_sd, session_order


def _clips(patient, means, clips, sd, seed):
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        [
            {"subject_ref": patient, "session": f"s{k + 1}", "score": m + rng.normal(0, sd)}
            for k, m in enumerate(means)
            for _ in range(clips)
        ]
    )


def test_rising_patient_alerts_and_stable_patient_does_not():
    clips = pd.concat([_clips("up", [0.0, 0.5, 1.0, 1.5], 4, 0.1, 0), _clips("flat", [0.5] * 4, 4, 0.1, 1)])
    result = courses(clips, MonitorConfig(), IDENTITY)
    assert 0.05 < result["retest_sd"] < 0.15 and result["retest_sessions"] == 8
    up, flat = result["patients"]["up"], result["patients"]["flat"]
    assert up["trend"] == "rising" and up["alerts"] and all(a["direction"] == "up" for a in up["alerts"])
    assert flat["alerts"] == [] and flat["trend"] == "flat"
    lo, hi = up["sessions"][0]["ci"]
    assert lo < up["sessions"][0]["score"] < hi


def test_a_steady_progression_alerts_as_a_trend_when_no_single_step_does():
    # steps of 0.8 retest SDs (3 clips a session): inside every step limit (3 x sd x sqrt(2/3) = 2.45 sd)
    clips = pd.concat(
        [_clips("slow", [0.0, 0.08, 0.16, 0.24, 0.32], 3, 0.1, 3), _clips("still", [0.3] * 5, 3, 0.1, 4)]
    )
    result = courses(clips, MonitorConfig(course_min_change=0.05), IDENTITY)
    slow, still = result["patients"]["slow"], result["patients"]["still"]
    assert not [a for a in slow["alerts"] if a["kind"] == "step"], slow["alerts"]
    trend = [a for a in slow["alerts"] if a["kind"] == "trend"]
    assert (
        len(trend) == 1
        and trend[0]["direction"] == "up"
        and trend[0]["change"] == pytest.approx(0.32, abs=0.1)
    )
    assert slow["trend"] == "rising" and slow["slope_z"] > 3
    assert still["alerts"] == [] and still["trend"] == "flat"


def test_probability_scale_and_no_spread_without_repeats():
    one_clip = pd.DataFrame({"subject_ref": "p", "session": ["s1", "s2"], "score": [0.2, 0.9]})
    result = courses(one_clip, MonitorConfig(), PROBABILITY)
    assert (
        result["retest_sd"] is None and not result["alerts_possible"] and "no change alerts" in result["note"]
    )
    assert result["patients"]["p"]["alerts"] == []
    assert retest_sd(one_clip, PROBABILITY, 2) == (None, 0)


def test_sessions_sort_naturally():
    assert list(session_order(pd.Series(["s10", "s2", "s1"]))) == [10, 2, 1]
