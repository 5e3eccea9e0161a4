"""External validation: how a trained model's probabilities hold on a labelled cohort it never saw.

Cross-validation (``hypomimia evaluate``) pools 8-subject test folds into one 32-subject table. That is enough
to rank models, but not to measure calibration finely: on 32 subjects a perfectly calibrated model shows a
10-bin subject ECE of ~0.15 (docs/evaluation.md, "Calibration on 32 subjects"). An external cohort measures
what a hospital receives, at the size it asks for: the served model's video probabilities (the endpoint's
arithmetic, its own temperature), a subject's probability as the mean of its videos', and the deployment map
evaluate fitted on every held-out subject of the model's training seed (``calibration_map``), applied on top.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from hypomimia.evaluation import calibration
from hypomimia.learning.metrics import aggregate, auroc, balanced_accuracy, bootstrap_ci


def cohort_map(videos: pd.DataFrame, method: str) -> dict[str, float]:
    """A subject-level map fitted on another labelled cohort's videos scored by the same model (its
    ``scores.parquet`` rows): a calibration cohort, larger than the study's 32 held-out subjects."""
    table = aggregate(videos, "subject")  # a subject's p: the mean of its videos'
    return calibration.fit(table["p"].to_numpy(float), table["label"].to_numpy(int), method)


def measure(
    videos: pd.DataFrame,
    cal_map: dict[str, float] | None,
    bootstrap: int,
    seed: int = 0,
    cohort_cal: dict[str, float] | None = None,
) -> dict:
    """One model on the cohort. ``videos``: video_id, subject_id, label (0/1), p (the served P(PD)).
    ``cal_map``: evaluate's subject-level map for this model's seed (None or {}: not available).
    ``cohort_cal``: a map fitted on a calibration cohort (:func:`cohort_map`); its result is ``after_cohort_map``."""
    table = aggregate(videos, "subject")  # a subject's p: the mean of its videos'
    y, p = table["label"].to_numpy(int), table["p"].to_numpy(float)
    out = {
        "subjects": len(table),
        "videos": len(videos),
        "subject_auroc": auroc(y, p),
        "auroc_ci95": list(bootstrap_ci(table, auroc, bootstrap, seed)),
        "balanced_accuracy": balanced_accuracy(y, p),
        "brier_before": float(np.mean((p - y) ** 2)),
        "before": calibration.consistency(p, y),
        "video": calibration.consistency(videos["p"].to_numpy(float), videos["label"].to_numpy(int)),
        "calibration_map": cal_map or {},
        "cohort_map": cohort_cal or {},
        "after_cohort_map": calibration.consistency(calibration.apply(p, cohort_cal), y)
        if cohort_cal
        else None,
    }
    if not cal_map:
        return {**out, "after": None, "brier_after": math.nan,
                "note": "no calibration map for this model's seed in the evaluation given: 'after' is undefined"}  # fmt: skip
    after = calibration.apply(p, cal_map)
    return {**out, "after": calibration.consistency(after, y), "brier_after": float(np.mean((after - y) ** 2)),
            "balanced_accuracy_after": balanced_accuracy(y, after)}  # fmt: skip


def summarize(rows: list[dict]) -> dict:
    """Mean and SD over models of the AUROC and the subject ECE before / after the map."""

    def stats(values: list[float]) -> dict[str, float]:
        v = np.array([x for x in values if x is not None and np.isfinite(x)], float)
        return {"mean": float(v.mean()) if len(v) else math.nan,
                "sd": float(v.std(ddof=1)) if len(v) > 1 else math.nan,
                "min": float(v.min()) if len(v) else math.nan, "max": float(v.max()) if len(v) else math.nan}  # fmt: skip

    return {
        "models": len(rows),
        "subject_auroc": stats([r["subject_auroc"] for r in rows]),
        "ece_before": stats([r["before"]["ece"] for r in rows]),
        "ece_after": stats([r["after"]["ece"] if r["after"] else math.nan for r in rows]),
        "ece_if_calibrated": stats(
            [r["after"]["expected_if_calibrated"] if r["after"] else math.nan for r in rows]
        ),
        "ece_after_cohort_map": stats(
            [r["after_cohort_map"]["ece"] if r.get("after_cohort_map") else math.nan for r in rows]
        ),
        "video_ece": stats([r["video"]["ece"] for r in rows]),
    }


def deployment_map(evaluation: dict, seed: int, setting: str | None = None) -> dict[str, float]:
    """The subject-level map evaluate fitted on every held-out subject of ``seed``'s runs of ``setting``
    (default: the reference); {} when the evaluation has none (an older report, or a seed it did not train)."""
    name = setting or evaluation.get("reference", "i3d")
    per_seed = ((evaluation.get("settings", {}).get(name) or {}).get("seeds") or {}).get("per_seed", [])
    return next((dict(r.get("calibration_map") or {}) for r in per_seed if r.get("seed") == seed), {})


__all__ = ["cohort_map", "deployment_map", "measure", "summarize"]
