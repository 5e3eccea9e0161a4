"""A patient's course: the score per session with its CI, a trend, and change alerts.

Statistics run on an unbounded scale (the logit of a probability; a log for a positive index),
where a session's clips scatter about evenly whatever the level:

* test-retest spread ``sd_retest``: the pooled within-session SD of the clip scores, from every
  session with at least ``monitor.course_min_clips`` clips (all patients pooled: the measurement's
  own noise, not a patient's disease);
* a session's score: the mean of its clips, CI = mean +- 1.96 sd_retest / sqrt(n);
* change alerts, each at ``course_z`` standard errors (z = 3: 0.3 % two-sided per comparison under
  normal noise) and at least ``course_min_change`` on the reported scale:
  - **step**: two consecutive sessions differ by more than z x sd_retest x sqrt(1/n1 + 1/n2)
    (beyond what repeated clips of one session differ by): an abrupt change;
  - **baseline**: a later session differs from the first session by as much: a change that has
    accumulated over several visits;
  - **trend**: the slope of the session means over session order (weighted least squares, clip
    counts as weights) exceeds z x its standard error, sd_retest / sqrt(sum n_k (k - k_bar)^2),
    and the fitted change from first to last session is at least ``course_min_change``. A steady
    progression (0 -> 1 -> 2 -> 3) whose single steps each stay inside the step limit still
    alerts here: the slope pools every session, so its standard error shrinks with the course's
    length, where a pairwise comparison only ever uses two sessions;
* trend: ``rising`` / ``falling`` when that slope is significant at 5 % (|t| > 1.96), else
  ``flat``; without a retest spread (no repeated clips), the sign of the slope when the Spearman
  correlation of score with session order exceeds 0.5 in size.

Without any session of ``course_min_clips`` clips the spread is unknown: courses are reported,
alerts are not (the summary says so).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from hypomimia.config.monitor import MonitorConfig


@dataclass(frozen=True)
class Scale:
    """How a score is analysed: ``forward`` onto the unbounded scale, ``back`` to the reported one."""

    name: str
    forward: Callable[[np.ndarray], np.ndarray]
    back: Callable[[np.ndarray], np.ndarray]


def _logit(p):
    p = np.clip(np.asarray(p, float), 1e-4, 1 - 1e-4)
    return np.log(p / (1 - p))


def _sigmoid(x):
    return 1.0 / (1.0 + np.exp(-np.asarray(x, float)))


PROBABILITY = Scale("probability", _logit, _sigmoid)
IDENTITY = Scale("identity", lambda x: np.asarray(x, float), lambda x: np.asarray(x, float))


def session_order(sessions: pd.Series) -> pd.Series:
    """Natural order of session names (s2 before s10; dates sort as text)."""
    key = sessions.astype(str).str.extract(r"(\d+)\D*$")[0]
    return pd.to_numeric(key, errors="coerce").fillna(-1)


def retest_sd(clips: pd.DataFrame, scale: Scale, min_clips: int) -> tuple[float | None, int]:
    """Pooled within-session SD on the analysis scale, and the number of sessions it pools."""
    x = clips.assign(z=scale.forward(clips["score"]))
    groups = [g["z"].to_numpy() for _, g in x.groupby(["subject_ref", "session"]) if len(g) >= min_clips]
    dof = sum(len(g) - 1 for g in groups)
    if dof == 0:
        return None, 0
    ss = sum(float(((g - g.mean()) ** 2).sum()) for g in groups)
    return math.sqrt(ss / dof), len(groups)


def courses(clips: pd.DataFrame, cfg: MonitorConfig, scale: Scale = PROBABILITY) -> dict[str, Any]:
    """``clips``: one row per clip/video with ``subject_ref, session, score`` (and optionally ``time``)."""
    clips = clips.dropna(subset=["subject_ref", "score"]).copy()
    clips["session"] = clips["session"].fillna("").astype(str)
    sd, pooled = retest_sd(clips, scale, cfg.course_min_clips)
    patients = {}
    for ref, part in clips.groupby("subject_ref", sort=True):
        patients[str(ref)] = _one_patient(part, sd, scale, cfg)
    alerts = [p for p in patients.values() if p["alerts"]]
    return {
        "scale": scale.name,
        "retest_sd": sd,
        "retest_sessions": pooled,
        "alerts_possible": sd is not None,
        "note": ""
        if sd is not None
        else f"no session has {cfg.course_min_clips}+ clips: the test-retest spread is unknown, so no change alerts",
        "patients": patients,
        "patients_with_alerts": len(alerts),
    }


def _one_patient(part: pd.DataFrame, sd: float | None, scale: Scale, cfg: MonitorConfig) -> dict[str, Any]:
    part = part.assign(z=scale.forward(part["score"]), order=session_order(part["session"]))
    sessions = []
    for (_order, name), g in part.groupby(["order", "session"], sort=True):
        n, mean = len(g), float(g["z"].mean())
        half = 1.96 * sd / math.sqrt(n) if sd is not None else float("nan")
        sessions.append({
            "session": name, "n": n, "z": mean, "score": float(scale.back(mean)),
            "ci": [float(scale.back(mean - half)), float(scale.back(mean + half))] if sd is not None else None,
        })  # fmt: skip
    alerts = [] if sd is None else _pair_alerts(sessions, sd, cfg)
    zs = np.array([s["z"] for s in sessions])
    n = np.array([s["n"] for s in sessions], dtype=float)
    k = np.arange(len(zs), dtype=float)
    slope, se = _weighted_slope(k, zs, n, sd)
    rho = float(pd.Series(zs).corr(pd.Series(k), method="spearman")) if len(zs) >= 3 else float("nan")
    t = slope / se if se and se > 0 else float("nan")
    if len(zs) < 2:
        trend = "n/a"
    elif sd is not None and se > 0:  # a slope beyond the measurement's own noise, at 5 %
        trend = "rising" if t > 1.96 else "falling" if t < -1.96 else "flat"
    elif len(zs) == 2:  # no spread, no rank correlation of two points: the sign of the change
        trend = "rising" if slope > 0 else "falling"
    else:
        trend = "rising" if slope > 0 and rho > 0.5 else "falling" if slope < 0 and rho < -0.5 else "flat"
    if sd is not None and len(zs) >= 3 and abs(t) > cfg.course_z:
        fitted = np.average(zs, weights=n) + slope * (k[[0, -1]] - np.average(k, weights=n))
        change = float(scale.back(fitted[1]) - scale.back(fitted[0]))
        if abs(change) >= cfg.course_min_change:
            alerts.append({
                "kind": "trend", "from": sessions[0]["session"], "to": sessions[-1]["session"],
                "direction": "up" if slope > 0 else "down", "change": change, "z": abs(t),
            })  # fmt: skip
    for s in sessions:
        s.pop("z")
    return {
        "sessions": sessions,
        "slope_per_session": slope,
        "slope_z": t,
        "spearman": rho,
        "trend": trend,
        "alerts": alerts,
    }


def _pair_alerts(sessions: list[dict], sd: float, cfg: MonitorConfig) -> list[dict]:
    """Step alerts (consecutive sessions) and baseline alerts (first session vs each later one)."""
    pairs = [("step", a, b) for a, b in zip(sessions, sessions[1:], strict=False)]
    pairs += [("baseline", sessions[0], b) for b in sessions[2:]]  # s1 vs s2 is already a step
    alerts = []
    for kind, a, b in pairs:
        se = sd * math.sqrt(1 / a["n"] + 1 / b["n"])
        delta = b["z"] - a["z"]
        change = b["score"] - a["score"]
        if abs(delta) > cfg.course_z * se and abs(change) >= cfg.course_min_change:
            alerts.append({
                "kind": kind, "from": a["session"], "to": b["session"], "direction": "up" if delta > 0 else "down",
                "change": change, "z": abs(delta) / se,
            })  # fmt: skip
    return alerts


def _weighted_slope(k: np.ndarray, z: np.ndarray, n: np.ndarray, sd: float | None) -> tuple[float, float]:
    """Least-squares slope of session means on session order, weighted by clips per session, and its
    standard error from the retest spread (nan without one)."""
    if len(z) < 2:
        return float("nan"), float("nan")
    kbar = np.average(k, weights=n)
    sxx = float((n * (k - kbar) ** 2).sum())
    slope = float((n * (k - kbar) * (z - np.average(z, weights=n))).sum() / sxx)
    return slope, (sd / math.sqrt(sxx) if sd is not None else float("nan"))


def plot(patient: str, course: dict[str, Any], path: Path, score_name: str) -> Path:
    """One patient's sessions with CIs; alerts marked."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    s = course["sessions"]
    x = np.arange(len(s))
    y = np.array([r["score"] for r in s])
    fig, ax = plt.subplots(figsize=(5, 3), dpi=100)
    if s and s[0]["ci"] is not None:
        lo = y - np.array([r["ci"][0] for r in s])
        hi = np.array([r["ci"][1] for r in s]) - y
        ax.errorbar(x, y, yerr=[lo, hi], fmt="o-", capsize=3, color="#1f77b4")
    else:
        ax.plot(x, y, "o-", color="#1f77b4")
    names = [r["session"] for r in s]
    for a in course["alerts"]:
        i = names.index(a["to"])
        ax.annotate(
            "change", (x[i], y[i]), xytext=(0, 12), textcoords="offset points", ha="center", color="#d62728"
        )
        ax.plot(x[i], y[i], "o", color="#d62728")
    ax.set_xticks(x, names)
    ax.set_xlabel("session")
    ax.set_ylabel(score_name)
    ax.set_title(f"{patient}: {course['trend']}")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)
    return path
