"""Classification metrics at clip, video and subject level.

The unit that matters clinically is the subject: clip probabilities are averaged per video and
per subject, and confidence intervals resample subjects (never clips of one subject apart).
Probabilities near 0.5 can be set aside as "uncertain" (an abstain band, as UFNet does); the
metrics on the rest are reported together with the coverage.

Input everywhere is a clip table: one row per clip with ``video_id, subject_id, label`` (0/1)
and ``margin`` (logit of PD minus logit of control; ``p = sigmoid(margin / T)``).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd
from scipy.optimize import minimize_scalar
from sklearn.metrics import roc_auc_score

LEVELS = ("clip", "video", "subject")


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-np.clip(x, -60, 60)))


def auroc(y: np.ndarray, p: np.ndarray) -> float:
    """AUROC; NaN when only one class is present (undefined, not 0.5)."""
    y = np.asarray(y)
    return float(roc_auc_score(y, p)) if 0 < y.sum() < len(y) else float("nan")


def expected_calibration_error(y: np.ndarray, p: np.ndarray, bins: int = 10) -> float:
    """ECE of the PD probability: bin-weighted |mean predicted - observed frequency|, equal-width bins."""
    y, p = np.asarray(y, float), np.asarray(p, float)
    if len(y) == 0:
        return float("nan")
    which = np.minimum((p * bins).astype(int), bins - 1)
    ece = 0.0
    for b in range(bins):
        m = which == b
        if m.any():
            ece += m.mean() * abs(p[m].mean() - y[m].mean())
    return float(ece)


def binary_metrics(y: np.ndarray, p: np.ndarray, threshold: float = 0.5) -> dict[str, float]:
    """AUROC, accuracy, balanced accuracy, sensitivity (PD recall), specificity, F1, Brier, ECE, n."""
    y, p = np.asarray(y, int), np.asarray(p, float)
    pred = (p >= threshold).astype(int)
    tp, tn = int(((pred == 1) & (y == 1)).sum()), int(((pred == 0) & (y == 0)).sum())
    fp, fn = int(((pred == 1) & (y == 0)).sum()), int(((pred == 0) & (y == 1)).sum())
    sens = tp / (tp + fn) if tp + fn else float("nan")
    spec = tn / (tn + fp) if tn + fp else float("nan")
    f1 = 2 * tp / (2 * tp + fp + fn) if tp + fp + fn else float("nan")
    return {
        "auroc": auroc(y, p),
        "accuracy": (tp + tn) / len(y) if len(y) else float("nan"),
        "balanced_accuracy": float(np.nanmean([sens, spec])) if len(y) else float("nan"),
        "sensitivity": sens,
        "specificity": spec,
        "f1": f1,
        "brier": float(np.mean((p - y) ** 2)) if len(y) else float("nan"),
        "ece": expected_calibration_error(y, p),
        "n": len(y),
        "n_pd": int(y.sum()),
    }


def balanced_accuracy(y: np.ndarray, p: np.ndarray, threshold: float = 0.5) -> float:
    y, pred = np.asarray(y, int), np.asarray(p) >= threshold
    recalls = [float((pred[y == c] == bool(c)).mean()) for c in (0, 1) if (y == c).any()]
    return float(np.mean(recalls)) if recalls else float("nan")


def with_probability(clips: pd.DataFrame, temperature: float = 1.0) -> pd.DataFrame:
    return clips.assign(p=_sigmoid(clips["margin"].to_numpy(float) / temperature))


def aggregate(clips: pd.DataFrame, level: str) -> pd.DataFrame:
    """Mean clip probability per ``level`` (clip, video, subject); columns: key, subject_id, label, p."""
    if level == "clip":
        return clips[["subject_id", "label", "p"]].reset_index(drop=True)
    key = {"video": "video_id", "subject": "subject_id"}[level]
    cols = [key] if key == "subject_id" else [key, "subject_id"]
    return clips.groupby(cols, sort=True).agg(label=("label", "first"), p=("p", "mean")).reset_index()


def bootstrap_ci(
    table: pd.DataFrame, metric: Callable[[np.ndarray, np.ndarray], float], n: int = 1000, seed: int = 0
) -> tuple[float, float]:
    """95% percentile CI of ``metric(y, p)``, resampling *subjects* with replacement (all their rows)."""
    if n == 0 or table.empty:
        return float("nan"), float("nan")
    rng = np.random.default_rng(seed)
    groups = [g for _, g in table.groupby("subject_id", sort=True)]
    ys = [g["label"].to_numpy(int) for g in groups]
    ps = [g["p"].to_numpy(float) for g in groups]
    values = []
    for _ in range(n):
        pick = rng.integers(0, len(groups), len(groups))
        y, p = np.concatenate([ys[i] for i in pick]), np.concatenate([ps[i] for i in pick])
        v = metric(y, p)
        if not np.isnan(v):
            values.append(v)
    if not values:
        return float("nan"), float("nan")
    lo, hi = np.percentile(values, [2.5, 97.5])
    return float(lo), float(hi)


def fit_temperature(margin: np.ndarray, y: np.ndarray) -> float:
    """Temperature T > 0 minimising the NLL of ``sigmoid(margin / T)`` (Guo et al. 2017), on validation clips."""
    margin, y = np.asarray(margin, float), np.asarray(y, float)
    if len(y) == 0 or y.min() == y.max():
        return 1.0

    def nll(log_t: float) -> float:
        p = np.clip(_sigmoid(margin / np.exp(log_t)), 1e-7, 1 - 1e-7)
        return float(-np.mean(y * np.log(p) + (1 - y) * np.log(1 - p)))

    # Bounded below: a perfectly separated validation fold would otherwise drive T -> 0 (p -> 0 or 1).
    res = minimize_scalar(nll, bounds=(np.log(0.5), np.log(20.0)), method="bounded")
    return float(np.exp(res.x))


def abstain(table: pd.DataFrame, band: float) -> dict[str, float]:
    """Set aside rows with ``|p - 0.5| < band`` as uncertain; metrics on the rest and the coverage."""
    sure = (table["p"] - 0.5).abs() >= band
    kept = table[sure]
    out = binary_metrics(kept["label"], kept["p"]) if len(kept) else {}
    return {
        "band": band,
        "coverage": float(sure.mean()) if len(table) else float("nan"),
        "uncertain": int((~sure).sum()),
        **{
            k: v
            for k, v in out.items()
            if k in ("auroc", "accuracy", "balanced_accuracy", "sensitivity", "specificity")
        },
    }


# --- slices: named functions from a video-level table (with metadata columns) to a boolean mask ---


def _task_slices(videos: pd.DataFrame) -> dict[str, pd.Series]:
    if "task" not in videos:
        return {}
    return {f"task={t}": videos["task"] == t for t in sorted(videos["task"].dropna().unique())}


SLICES: list[Callable[[pd.DataFrame], dict[str, pd.Series]]] = [_task_slices]


def evaluate(
    clips: pd.DataFrame,
    *,
    temperature: float = 1.0,
    abstain_band: float = 0.1,
    n_bootstrap: int = 1000,
    seed: int = 0,
    video_info: pd.DataFrame | None = None,
) -> dict:
    """``{overall, per_class, slices, temperature}`` for a clip table (house-style evaluation).

    ``overall[level]`` has the binary metrics, 95% subject-bootstrap CIs for AUROC and balanced
    accuracy, and the abstain summary. ``per_class`` is at subject level. ``slices`` are at video
    level (e.g. per task), from ``video_info`` (video_id + metadata columns).
    """
    clips = with_probability(clips, temperature)
    overall = {}
    for level in LEVELS:
        table = aggregate(clips, level)
        m = binary_metrics(table["label"], table["p"])
        m["auroc_ci95"] = bootstrap_ci(table, auroc, n_bootstrap, seed)
        m["balanced_accuracy_ci95"] = bootstrap_ci(table, balanced_accuracy, n_bootstrap, seed)
        m["abstain"] = abstain(table, abstain_band)
        overall[level] = m
    subjects = aggregate(clips, "subject")
    per_class = {}
    for name, value in (("control", 0), ("pd", 1)):
        s = subjects[subjects["label"] == value]
        correct = (s["p"] >= 0.5) == bool(value)
        per_class[name] = {
            "subjects": len(s),
            "recall": float(correct.mean()) if len(s) else float("nan"),
            "mean_p_pd": float(s["p"].mean()) if len(s) else float("nan"),
        }
    slices = {}
    if video_info is not None:
        videos = aggregate(clips, "video").merge(
            video_info, on="video_id", how="left", suffixes=("", "_info")
        )
        for make in SLICES:
            for name, mask in make(videos).items():
                part = videos[mask.to_numpy()]
                slices[name] = binary_metrics(part["label"], part["p"])
    return {"overall": overall, "per_class": per_class, "slices": slices, "temperature": temperature}
