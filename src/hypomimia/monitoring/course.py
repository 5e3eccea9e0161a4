"""A patient's course: the score per session with its CI, a trend, and change alerts.

Statistics run on an unbounded scale (the logit of a probability; a log for a positive index),
where a session's clips scatter about evenly whatever the level:

* test-retest spread ``sd_retest``: the pooled within-session SD of the clip scores, from every
  session with at least ``monitor.course_min_clips`` clips (all patients pooled: the measurement's
  own noise, not a patient's disease);
* a session's score: the mean of its clips, CI = mean +- 1.96 sd_retest / sqrt(n);
* change alert between consecutive sessions, and between the first session (baseline) and each
  later one: |difference| > ``course_z`` x sd_retest x
  sqrt(1/n1 + 1/n2) (beyond what repeated clips of one session differ by), and at least
  ``course_min_change`` on the reported scale;
* trend: least-squares slope per session and the Spearman correlation of score with session order.

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
    alerts = []
    # consecutive sessions, and each later session against the first (a slow decline shows there)
    pairs = list(zip(sessions, sessions[1:], strict=False)) + [(sessions[0], b) for b in sessions[2:]]
    for a, b in pairs:
        if sd is None:
            break
        limit = cfg.course_z * sd * math.sqrt(1 / a["n"] + 1 / b["n"])
        delta = b["z"] - a["z"]
        if abs(delta) > limit and abs(b["score"] - a["score"]) >= cfg.course_min_change:
            alerts.append({
                "from": a["session"], "to": b["session"], "direction": "up" if delta > 0 else "down",
                "change": b["score"] - a["score"], "z": abs(delta) / (sd * math.sqrt(1 / a["n"] + 1 / b["n"])),
            })  # fmt: skip
    zs = np.array([s["z"] for s in sessions])
    k = np.arange(len(zs), dtype=float)
    slope = float(np.polyfit(k, zs, 1)[0]) if len(zs) >= 2 else float("nan")
    rho = float(pd.Series(zs).corr(pd.Series(k), method="spearman")) if len(zs) >= 3 else float("nan")
    for s in sessions:
        s.pop("z")
    if len(zs) < 2:
        trend = "n/a"
    elif len(zs) == 2:  # no rank correlation of two points: the sign of the change
        trend = "rising" if slope > 0 else "falling"
    else:
        trend = "rising" if slope > 0 and rho > 0.5 else "falling" if slope < 0 and rho < -0.5 else "flat"
    return {
        "sessions": sessions,
        "slope_per_session": slope,
        "spearman": rho,
        "trend": trend,
        "alerts": alerts,
    }


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
