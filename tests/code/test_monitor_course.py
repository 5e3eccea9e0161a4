"""Patient-course statistics on synthetic scores: retest spread, CIs, alerts, trend."""

import numpy as np
import pandas as pd

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
