"""Subject-level recalibration fitted where there are enough subjects: pooled, cross-fitted over folds.

Each training run fits its temperature on its own validation fold (8 subjects on the phantom): a noisy
fit, and the pooled subject ECE shows it. Here a map from a subject's probability ``p`` to a calibrated
one is fitted on *held-out* subjects of every evaluated fold but one, and applied to that one fold
(cross-fitting: no subject is calibrated by a map that saw it), so the pooled "after" ECE is honest.

    score s = logit(p)
    temperature: p' = sigmoid(s / T)          (one parameter; ranks unchanged)
    platt:       p' = sigmoid(a * s + b)      (slope and intercept; also fixes a shifted base rate)

Both are fitted by the subject-level negative log-likelihood, at the level where ECE is measured
(a subject's p is the mean of its clips' probabilities, so a clip-level temperature is not the
subject-level one). ``all_folds`` is the map fitted on every held-out subject: the one a deployment
would use (reported, not applied by serving; docs/evaluation.md).
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
from scipy.optimize import minimize, minimize_scalar

from hypomimia.learning.metrics import expected_calibration_error

METHODS = ("temperature", "platt", "none")
# Bounds keep a perfectly separated training part from driving the map to a step function.
_LOG_T = (math.log(0.05), math.log(20.0))
_INTERCEPT = 10.0


def _logit(p: np.ndarray) -> np.ndarray:
    p = np.clip(np.asarray(p, float), 1e-6, 1 - 1e-6)
    return np.log(p / (1 - p))


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-np.clip(x, -60, 60)))


def _nll(p: np.ndarray, y: np.ndarray) -> float:
    p = np.clip(p, 1e-7, 1 - 1e-7)
    return float(-np.mean(y * np.log(p) + (1 - y) * np.log(1 - p)))


IDENTITY = {"temperature": {"temperature": 1.0}, "platt": {"slope": 1.0, "intercept": 0.0}, "none": {}}


def fit(p: np.ndarray, y: np.ndarray, method: str) -> dict[str, float]:
    """The map's parameters fitted on subjects' probabilities ``p`` and labels ``y`` (identity with one class)."""
    s, y = _logit(p), np.asarray(y, float)
    if method == "none" or len(y) == 0 or y.min() == y.max():
        return dict(IDENTITY[method])
    if method == "temperature":
        res = minimize_scalar(lambda lt: _nll(_sigmoid(s / math.exp(lt)), y), bounds=_LOG_T, method="bounded")
        return {"temperature": float(math.exp(res.x))}
    res = minimize(
        lambda ab: _nll(_sigmoid(ab[0] * s + ab[1]), y),
        x0=np.array([1.0, 0.0]),
        method="L-BFGS-B",
        bounds=[(1 / math.exp(_LOG_T[1]), 1 / math.exp(_LOG_T[0])), (-_INTERCEPT, _INTERCEPT)],
    )
    return {"slope": float(res.x[0]), "intercept": float(res.x[1])}


def apply(p: np.ndarray, params: dict[str, float]) -> np.ndarray:
    s = _logit(p)
    if "temperature" in params:
        return _sigmoid(s / params["temperature"])
    if "slope" in params:
        return _sigmoid(params["slope"] * s + params["intercept"])
    return np.asarray(p, float)


def cross_fit(table: pd.DataFrame, fold_of: dict[str, int], method: str) -> tuple[np.ndarray, list[dict]]:
    """Calibrated p for every row of ``table`` (subject_id, label, p): fold k's rows mapped by a fit on
    the other folds' rows. Returns (p after, one {"fold", "subjects_fitted", params} per fold)."""
    folds = np.array([fold_of[str(s)] for s in table["subject_id"]])
    p, y = table["p"].to_numpy(float), table["label"].to_numpy(int)
    out, per_fold = p.copy(), []
    for k in sorted(set(folds.tolist())):
        rest = folds != k
        params = fit(p[rest], y[rest], method) if rest.any() else dict(IDENTITY[method])
        out[folds == k] = apply(p[folds == k], params)
        per_fold.append({"fold": int(k), "subjects_fitted": int(rest.sum()), **params})
    return out, per_fold


def consistency(p: np.ndarray, y: np.ndarray, resamples: int = 2000, seed: int = 0) -> dict[str, float]:
    """How large the ECE of *these* probabilities would be if they were perfectly calibrated.

    Consistency resampling (Broecker & Smith 2007): draw labels y* ~ Bernoulli(p) and measure ECE*. On 32
    subjects ECE is mostly sampling noise: a perfectly calibrated model of AUROC 0.9 has a 10-bin ECE of
    0.15 on average and reaches 0.10 in 6 % of studies (docs/evaluation.md, "Calibration"). ``p`` is the
    share of ECE* at least the observed one: small = miscalibration the noise does not explain."""
    p, y = np.asarray(p, float), np.asarray(y, int)
    if len(p) == 0:
        return {
            "ece": math.nan,
            "expected_if_calibrated": math.nan,
            "q95_if_calibrated": math.nan,
            "p": math.nan,
        }
    rng = np.random.default_rng(seed)
    observed = expected_calibration_error(y, p)
    null = np.array(
        [expected_calibration_error((rng.random(len(p)) < p).astype(int), p) for _ in range(resamples)]
    )
    return {"ece": observed, "expected_if_calibrated": float(null.mean()),
            "q95_if_calibrated": float(np.quantile(null, 0.95)),
            "p": float((1 + np.count_nonzero(null >= observed - 1e-12)) / (resamples + 1))}  # fmt: skip


def summary(
    table: pd.DataFrame, fold_of: dict[str, int], method: str, videos: pd.DataFrame | None = None
) -> dict:
    """Pooled subject ECE and Brier before and after the cross-fitted map, the per-fold fits, and the
    map fitted on every subject (``all_folds``). With one fold there is nothing to cross-fit: "after"
    is undefined (null) and ``note`` says so. ``videos`` (video_id, label, p): also the video-level ECE
    of the before-probabilities and its consistency (``video``): the level the endpoint answers at."""
    p, y = table["p"].to_numpy(float), table["label"].to_numpy(int)
    n_folds = len({fold_of[str(s)] for s in table["subject_id"]})
    out = {
        "method": method,
        "level": "subject",
        "subjects": len(table),
        "ece_before": expected_calibration_error(y, p),
        "brier_before": float(np.mean((p - y) ** 2)) if len(y) else math.nan,
        "consistency_before": consistency(p, y),
    }
    if videos is not None:
        out["video"] = {"videos": len(videos),
                        **consistency(videos["p"].to_numpy(float), videos["label"].to_numpy(int))}  # fmt: skip
    if method == "none":
        return {**out, "ece_after": out["ece_before"], "brier_after": out["brier_before"], "folds": [],
                "all_folds": {}, "note": "calibration off (evaluate.calibration: none)"}  # fmt: skip
    if n_folds < 2:
        return {**out, "ece_after": math.nan, "brier_after": math.nan, "folds": [],
                "all_folds": fit(p, y, method),
                "note": "one evaluated fold: cross-fitting needs at least two (after = undefined)"}  # fmt: skip
    after, per_fold = cross_fit(table, fold_of, method)
    return {
        **out,
        "ece_after": expected_calibration_error(y, after),
        "brier_after": float(np.mean((after - y) ** 2)),
        "consistency_after": consistency(after, y),
        "folds": per_fold,
        "all_folds": fit(p, y, method),
        "note": "cross-fitted: each fold's subjects mapped by a fit on the other folds' held-out subjects",
    }


__all__ = ["METHODS", "apply", "consistency", "cross_fit", "fit", "summary"]
