"""Drift of a current window against the reference, with Evidently 0.7 (docs/monitoring.md).

Tests, each at the same per-test level ``alpha / m`` (Bonferroni over the ``m`` tests of the
window, so a same-distribution window raises any alarm with probability <= alpha):

* one two-sample K-S test per quality feature (face size, blur, brightness, pose ranges, tube
  frames, fps, resolution, duration, face-found ratio); columns constant and equal in both tables
  are shown but not tested;
* population drift: K-S on the model-free hypomimia index of the tubes (who is filmed, not how);
* prediction drift: K-S on the calibrated ``p_pd``; chi-square on the label shares (pd, control,
  uncertain), which is where a rising ``uncertain`` share shows;
* embedding drift: MMD between the model's descriptors, its null from Evidently's bootstrap
  (``quantile_probability = 1 - alpha / m``), or a domain classifier (``embedding_method: model``).

The embedding test calls Evidently's drift method directly: its ``EmbeddingsDrift`` metric also
runs a t-SNE for the report's plot (10 s for 230 rows on 2 cores, and the Report keeps only the
score, not the flag). Its result is in ``drift.json`` and the terminal summary.

K-S is forced for every numeric column: Evidently switches to a Wasserstein distance above 1000
rows, whose fixed threshold is not a false-alarm rate.
"""

from __future__ import annotations

import json
import logging
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from hypomimia.config.monitor import MonitorConfig
from hypomimia.monitoring.window import POPULATION_COLUMNS, QUALITY_COLUMNS, embedding_columns

log = logging.getLogger(__name__)
LABELS = ("control", "pd", "uncertain")


@dataclass
class DriftOutcome:
    summary: dict[str, Any]
    snapshot: Any  # evidently Snapshot: save_html / save_json


def _testable(reference: pd.DataFrame, current: pd.DataFrame) -> tuple[list[str], list[str]]:
    """(quality columns to test, columns shown only): present in both; constant-and-equal ones are not tested."""
    tested, shown = [], []
    for col in QUALITY_COLUMNS + POPULATION_COLUMNS:
        if col not in reference or col not in current:
            continue
        r, c = reference[col].dropna(), current[col].dropna()
        if r.empty or c.empty:
            continue
        both = pd.concat([r, c])
        (shown if both.nunique() == 1 else tested).append(col)
    return tested, shown


def _has_scores(df: pd.DataFrame) -> bool:
    return "p_pd" in df and df["p_pd"].notna().any()


def compare(reference: pd.DataFrame, current: pd.DataFrame, cfg: MonitorConfig) -> DriftOutcome:
    """Run every drift test of the window; ``summary`` is plain JSON (what the decision reads)."""
    from evidently import DataDefinition, Dataset, Report
    from evidently.metrics import ValueDrift
    from evidently.metrics.embeddings import MMDDriftMethod, ModelDriftMethod
    from evidently.presets import DataDriftPreset

    tested, shown = _testable(reference, current)
    scores = _has_scores(reference) and _has_scores(current)
    emb = [c for c in embedding_columns(reference) if c in set(embedding_columns(current))] if scores else []
    m = len(tested) + (2 if scores else 0) + (1 if emb else 0)
    if m == 0:
        raise ValueError("nothing to compare: no quality feature or score in both tables")
    level = cfg.alpha / m

    ref, cur = _frame(reference, tested + shown, scores, emb), _frame(current, tested + shown, scores, emb)
    definition = DataDefinition(
        numerical_columns=tested + shown + (["p_pd"] if scores else []),
        categorical_columns=["label"] if scores else [],
    )
    metrics: list[Any] = []
    if tested + shown:
        metrics.append(DataDriftPreset(columns=tested + shown, method="ks", threshold=level, drift_share=1.0))
    if scores:
        metrics += [
            ValueDrift(column="p_pd", method="ks", threshold=level),
            ValueDrift(column="label", threshold=level),
        ]
    method = None
    if emb:
        method = (
            MMDDriftMethod(bootstrap=True, quantile_probability=1.0 - level)
            if cfg.embedding_method == "mmd"
            else ModelDriftMethod(bootstrap=True, quantile_probability=1.0 - level)
        )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # scipy/evidently warn about ties in K-S on discrete columns
        tabular = [c for c in cur.columns if c not in emb]
        snapshot = Report(metrics, include_tests=True).run(
            Dataset.from_pandas(cur[tabular], data_definition=definition),
            Dataset.from_pandas(ref[tabular], data_definition=definition),
        )
    values = _value_drifts(snapshot.dict())
    summary: dict[str, Any] = {
        "n_reference": len(reference),
        "n_current": len(current),
        "alpha": cfg.alpha,
        "tests": m,
        "per_test_alpha": level,
        "quality": {},
        "population": {},
        "prediction": {},
        "embedding": None,
    }
    for col in tested + shown:
        v = values.get(col, {})
        summary["population" if col in POPULATION_COLUMNS else "quality"][col] = {
            "tested": col in tested,
            "p_value": v.get("score"),
            "drifted": bool(col in tested and v.get("drifted")),
            "reference_median": float(ref[col].median()),
            "current_median": float(cur[col].median()),
        }
    if scores:
        p = values.get("p_pd", {})
        lab = values.get("label", {})
        summary["prediction"] = {
            "p_pd": {
                "p_value": p.get("score"),
                "drifted": bool(p.get("drifted")),
                "reference_mean": float(ref["p_pd"].mean()),
                "current_mean": float(cur["p_pd"].mean()),
            },
            "label": {
                "p_value": lab.get("score"),
                "drifted": bool(lab.get("drifted")),
                "reference_shares": _shares(ref["label"]),
                "current_shares": _shares(cur["label"]),
            },
        }
    if emb:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            score, drifted, name = method(
                cur[emb].copy(), ref[emb].copy()
            )  # the flag; the Report keeps only the score
        summary["embedding"] = {
            "method": name,
            "score": float(score),
            "drifted": bool(drifted),
            "dim": len(emb),
        }
    return DriftOutcome(summary, snapshot)


def _frame(df: pd.DataFrame, quality: list[str], scores: bool, emb: list[str]) -> pd.DataFrame:
    cols = quality + (["p_pd", "label"] if scores else []) + emb
    out = df[cols].copy()
    for c in quality + emb + (["p_pd"] if scores else []):
        out[c] = pd.to_numeric(out[c], errors="coerce").astype(float)
    if scores:
        out["label"] = out["label"].astype(str)
    return out.reset_index(drop=True)


def _shares(labels: pd.Series) -> dict[str, float]:
    n = max(len(labels), 1)
    return {k: round(float((labels == k).sum()) / n, 4) for k in LABELS}


def _value_drifts(d: dict) -> dict[str, dict]:
    """Per column: Evidently's score (a p-value for K-S / chi-square) and whether its test failed."""
    cols: dict[str, dict] = {}
    for metric in d["metrics"]:
        config = metric["config"]
        if config.get("type") == "evidently:metric_v2:ValueDrift":
            cols[config["column"]] = {"score": _num(metric["value"]), "method": config.get("method")}
    for test in d.get("tests", []):
        params = test.get("metric_config", {}).get("params", {})
        if params.get("type") == "evidently:metric_v2:ValueDrift" and params.get("column") in cols:
            cols[params["column"]]["drifted"] = test["status"] == "FAIL"
    return cols


def _num(value: Any) -> float | None:
    try:
        x = float(value)
    except (TypeError, ValueError):
        return None
    return None if np.isnan(x) else x


def save(outcome: DriftOutcome, out_dir: Path) -> dict[str, Path]:
    """drift.html (Evidently, self-contained), evidently.json (its snapshot), drift.json (our summary)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    files = {
        "html": out_dir / "drift.html",
        "evidently": out_dir / "evidently.json",
        "summary": out_dir / "drift.json",
    }
    outcome.snapshot.save_html(str(files["html"]))
    outcome.snapshot.save_json(str(files["evidently"]))
    files["summary"].write_text(json.dumps(outcome.summary, indent=2, default=float) + "\n", encoding="utf-8")
    return files
