"""Paired statistics at subject level: DeLong's test, a paired subject bootstrap, Holm's correction.

"Paired" means both models scored the same subjects (each held out by the same fold): the test
uses the correlation between the two AUROCs, which is what makes a 32-subject comparison possible
at all. :func:`paired_subjects` refuses tables whose subjects differ.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
from scipy.stats import norm

from hypomimia.errors import UserError


def paired_subjects(a: pd.DataFrame, b: pd.DataFrame, names: tuple[str, str]) -> pd.DataFrame:
    """Join two subject tables (subject_id, label, p) into subject_id, label, p_a, p_b; same subjects only."""
    sa, sb = set(a["subject_id"]), set(b["subject_id"])
    if sa != sb:
        only = sorted(sa ^ sb)[:5]
        raise UserError(
            f"{names[0]} and {names[1]} were scored on different subjects (e.g. {only}): the comparison is not paired",
            "evaluate both on the same folds (the same ingest folds.parquet and evaluate.folds)",
        )
    m = a[["subject_id", "label", "p"]].merge(
        b[["subject_id", "label", "p"]], on="subject_id", suffixes=("_a", "_b")
    )
    if not (m["label_a"] == m["label_b"]).all():
        raise UserError(
            f"{names[0]} and {names[1]} disagree on subject labels", "evaluate on one ingest output"
        )
    return m.rename(columns={"label_a": "label"}).drop(columns="label_b").sort_values("subject_id")


def _midrank(x: np.ndarray) -> np.ndarray:
    order = np.argsort(x, kind="mergesort")
    xs = x[order]
    n = len(x)
    ranks = np.zeros(n)
    i = 0
    while i < n:
        j = i
        while j < n and xs[j] == xs[i]:
            j += 1
        ranks[i:j] = 0.5 * (i + j - 1) + 1
        i = j
    out = np.empty(n)
    out[order] = ranks
    return out


def delong(y: np.ndarray, p_a: np.ndarray, p_b: np.ndarray) -> dict[str, float]:
    """DeLong et al. (1988) test of AUROC_a == AUROC_b on the same cases (fast form, Sun & Xu 2014).

    Returns auroc_a, auroc_b, difference (a - b), its standard error, z and the two-sided p-value
    (NaN when the difference has no variance, e.g. two perfect models).
    """
    y = np.asarray(y, int)
    pos, neg = y == 1, y == 0
    m, n = int(pos.sum()), int(neg.sum())
    if m == 0 or n == 0:
        return {
            "auroc_a": math.nan,
            "auroc_b": math.nan,
            "difference": math.nan,
            "se": math.nan,
            "z": math.nan,
            "p_value": math.nan,
        }
    aucs, v10, v01 = [], [], []
    for p in (np.asarray(p_a, float), np.asarray(p_b, float)):
        x, yy = p[pos], p[neg]
        tx, ty, tz = _midrank(x), _midrank(yy), _midrank(np.concatenate([x, yy]))
        auc = (tz[:m].sum() - m * (m + 1) / 2) / (m * n)
        aucs.append(auc)
        v10.append((tz[:m] - tx) / n)
        v01.append(1.0 - (tz[m:] - ty) / m)
    s10, s01 = np.cov(np.array(v10)), np.cov(np.array(v01))
    cov = s10 / m + s01 / n
    var = float(cov[0, 0] + cov[1, 1] - 2 * cov[0, 1])
    diff = float(aucs[0] - aucs[1])
    if var <= 1e-12:
        return {
            "auroc_a": float(aucs[0]),
            "auroc_b": float(aucs[1]),
            "difference": diff,
            "se": 0.0,
            "z": math.nan,
            "p_value": math.nan if diff == 0 else 0.0,
        }
    se = math.sqrt(var)
    z = diff / se
    return {
        "auroc_a": float(aucs[0]),
        "auroc_b": float(aucs[1]),
        "difference": diff,
        "se": se,
        "z": z,
        "p_value": float(2 * norm.sf(abs(z))),
    }


def paired_bootstrap(
    y: np.ndarray, p_a: np.ndarray, p_b: np.ndarray, n: int = 1000, seed: int = 0
) -> dict[str, float]:
    """Resample subjects (both models together) ``n`` times: 95% CI of AUROC_a - AUROC_b and a two-sided
    p-value (twice the smaller tail around 0, with the +1 correction; NaN when ``n`` is 0)."""
    from sklearn.metrics import roc_auc_score

    y, p_a, p_b = np.asarray(y, int), np.asarray(p_a, float), np.asarray(p_b, float)
    if n == 0 or len(y) == 0:
        return {"difference_ci95": (math.nan, math.nan), "p_value": math.nan, "resamples": 0}
    rng = np.random.default_rng(seed)
    diffs = []
    for _ in range(n):
        i = rng.integers(0, len(y), len(y))
        if 0 < y[i].sum() < len(i):
            diffs.append(roc_auc_score(y[i], p_a[i]) - roc_auc_score(y[i], p_b[i]))
    if not diffs:
        return {"difference_ci95": (math.nan, math.nan), "p_value": math.nan, "resamples": 0}
    d = np.asarray(diffs)
    lo, hi = np.percentile(d, [2.5, 97.5])
    tail = min((d <= 0).sum(), (d >= 0).sum())
    p = min(1.0, 2 * (tail + 1) / (len(d) + 1))
    return {"difference_ci95": (float(lo), float(hi)), "p_value": float(p), "resamples": len(d)}


def adjust(p_values: list[float], method: str = "holm") -> list[float]:
    """Family-wise error correction (Holm's step-down, Bonferroni, or none); NaN stays NaN."""
    p = np.asarray(p_values, float)
    out = np.full(len(p), math.nan)
    ok = np.flatnonzero(~np.isnan(p))
    k = len(ok)
    if method == "none" or k == 0:
        out[ok] = p[ok]
        return out.tolist()
    if method == "bonferroni":
        out[ok] = np.minimum(1.0, p[ok] * k)
        return out.tolist()
    order = ok[np.argsort(p[ok], kind="mergesort")]
    running = 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (k - rank) * p[i]))
        out[i] = running
    return out.tolist()
