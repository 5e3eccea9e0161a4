"""Drift of a current window against the reference, with Evidently 0.7 (docs/monitoring.md).

**One value per subject.** Clips of one person are not independent (the same face, skin, habits
and disease), so every distribution test compares subjects, not clips: each table is reduced to
one row per ``subject_ref`` first (``subject_table``: the median of each quality feature and of
the hypomimia index, the mean ``p_pd``, the majority label, ties -> uncertain, the mean embedding)
and Evidently tests those rows. A window of 5 people x 4 clips is 5 observations, which is what
it is. A table without ``subject_ref`` counts each row as its own subject.

Tests, each at the same per-test level ``alpha / m`` (Bonferroni over the ``m`` tests of the
window, so a same-distribution window raises any alarm with probability <= alpha):

* one two-sample K-S test per quality feature (face size, blur, brightness, pose ranges, tube
  frames, fps, resolution, duration, face-found ratio, the visibility of eyes, nose and mouth);
  columns constant and equal in both tables are shown but not tested;
* population drift: K-S on the model-free hypomimia index of the tubes (who is filmed, not how);
* prediction drift: K-S on the subjects' mean ``p_pd``; a two-sample permutation chi-square test
  (``label_permutation_p``) on the subjects' labels (pd, control, uncertain), which is where a
  rising ``uncertain`` share shows;
* audio drift (:mod:`hypomimia.monitoring.audio`, issue 25): loudness, SNR, the high band and the
  clipped share (K-S), the sample rate (the label test), over the subjects' clips with audio, and
  each subject's share of clips with audio; skipped with the reason when too few subjects have audio;
  the voice model's outputs (``p_pd_voice``, K-S on the subjects' means) as model-output drift;
* embedding drift: MMD between the subjects' mean descriptors, its null from Evidently's bootstrap
  (``quantile_probability = 1 - alpha / m``), or a domain classifier (``embedding_method: model``);
* lost videos (``lost_tests``, when the submitted and lost counts are known): one-sided Fisher
  exact tests of the window's share of videos quarantined at ingest and of videos whose face was
  lost (facetubes quarantine) against the reference's shares. A window that loses more than
  ``monitor.max_lost_share`` of its submitted videos is flagged whatever the test says (a small
  window cannot make 3 of 20 significant against a clean reference, and it must not pass).

The model's outputs are compared with the rows of ``reference`` that carry a ``p_pd`` (the
model's held-out subjects); quality features and the index with every reference subject.

The embedding test calls Evidently's drift method directly: its ``EmbeddingsDrift`` metric also
runs a t-SNE for the report's plot (10 s for 230 rows on 2 cores, and the Report keeps only the
score, not the flag). Its result is in ``drift.json`` and the terminal summary.

K-S is forced for every numeric column: Evidently switches to a Wasserstein distance above 1000
rows, whose fixed threshold is not a false-alarm rate. Each column is its own ``ValueDrift``
metric (no ``DataDriftPreset``): the preset's dataset-level "Dataset Drift is (NOT) detected"
headline counts drifted columns against a share, which is not our decision; ``save`` puts the
decision itself at the top of ``drift.html``.
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
from hypomimia.monitoring import audio
from hypomimia.monitoring.window import POPULATION_COLUMNS, QUALITY_COLUMNS, embedding_columns, subject_keys

log = logging.getLogger(__name__)
LABELS = ("control", "pd", "uncertain")
# videos a window lost before they were measured: quarantined at ingest, or their face lost (facetubes)
LOST_KINDS = ("ingest_quarantined", "face_lost")


PERMUTATIONS = 4999  # the label test's resolution: p >= 1/5000, well below any per-test alpha in use
LABEL_TEST = "hypomimia_label_permutation"


def label_permutation_p(reference: pd.Series, current: pd.Series, permutations: int = PERMUTATIONS) -> float:
    """Two-sample test of label shares: the chi-square statistic of the 2 x k table (reference vs
    current by label), its null from ``permutations`` seeded relabellings of the pooled rows.

    Evidently's ``chisquare`` is a goodness-of-fit test against the reference's shares taken as
    exact: a 20-video reference's 0.25/0.15/0.60 counts as the truth, and a label absent from the
    reference gives p = 0. Both tables are samples; this test treats them so."""
    ref, cur = reference.dropna().astype(str).to_numpy(), current.dropna().astype(str).to_numpy()
    if len(ref) == 0 or len(cur) == 0:
        return 1.0
    _, codes = np.unique(np.concatenate([ref, cur]), return_inverse=True)
    k = int(codes.max()) + 1
    if k < 2:
        return 1.0
    n_ref, n = len(ref), len(codes)
    totals = np.bincount(codes, minlength=k).astype(float)

    def stat(cur_counts: np.ndarray) -> np.ndarray:  # chi-square of the 2 x k table from the current row
        ref_counts = totals - cur_counts
        e_cur, e_ref = totals * (n - n_ref) / n, totals * n_ref / n
        return (((cur_counts - e_cur) ** 2) / e_cur).sum(-1) + (((ref_counts - e_ref) ** 2) / e_ref).sum(-1)

    observed = stat(np.bincount(codes[n_ref:], minlength=k).astype(float))
    rng = np.random.default_rng(0)
    perms = np.argsort(rng.random((permutations, n)), axis=1)[:, n_ref:]
    null = stat((codes[perms][..., None] == np.arange(k)).sum(1).astype(float))
    return float((1 + (null >= observed - 1e-12).sum()) / (1 + permutations))


def _register_label_test() -> None:
    from evidently.legacy.calculations.stattests import registry
    from evidently.legacy.core import ColumnType

    if LABEL_TEST in registry._registered_stat_tests:  # once per process
        return

    def impl(reference_data, current_data, feature_type, threshold):
        p = label_permutation_p(reference_data, current_data)
        return p, p < threshold

    registry.register_stattest(
        registry.StatTest(name=LABEL_TEST, display_name="two-sample permutation chi-square p_value",
                          allowed_feature_types=[ColumnType.Categorical], default_threshold=0.05),
        default_impl=impl,
    )  # fmt: skip


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


def subject_table(df: pd.DataFrame, numeric: list[str], scores: bool, emb: list[str]) -> pd.DataFrame:
    """One row per subject (``subject_ref``; each row its own subject without it): the median of
    each quality feature / index, the mean ``p_pd`` and embedding of its scored videos, its majority
    label (a tie -> uncertain). Subjects without a scored video keep ``p_pd`` NaN (the K-S test
    skips them)."""
    key = subject_keys(df)
    frame = _frame(df, numeric, scores, emb).assign(_subject=key)
    groups = frame.groupby("_subject", sort=True)
    out = groups[numeric].median() if numeric else pd.DataFrame(index=sorted(set(key)))
    if scores:
        out["p_pd"] = groups["p_pd"].mean()
        out["label"] = groups["label"].agg(_majority)
    if emb:
        out[emb] = groups[emb].mean()
    return out.reset_index(drop=True)


def _with_sound(subjects: pd.DataFrame, df: pd.DataFrame, sound: audio.AudioPlan) -> pd.DataFrame:
    """``subjects`` (one row per subject, sorted) with the audio columns of ``sound`` beside them."""
    if not sound.columns:
        return subjects
    return pd.concat([subjects, audio.subject_columns(df, sound, subject_keys(df))], axis=1)


def _majority(labels: pd.Series) -> str | None:
    counts = labels[labels.isin(LABELS)].value_counts()
    if counts.empty:
        return None
    top = counts[counts == counts.max()]
    return str(top.index[0]) if len(top) == 1 else "uncertain"


def _n_subjects(df: pd.DataFrame) -> int:
    return len(set(subject_keys(df)))


def lost_tests(lost: dict[str, Any], cfg: MonitorConfig, level: float) -> dict[str, Any]:
    """Videos the window lost before they could be measured, against the reference's losses.

    ``lost``: ``{"submitted", "ingest_quarantined", "face_lost", "reference": {the same three}}``.
    Per kind a one-sided Fisher exact test (the window loses more) at ``level``; ``over_limit``
    when the window lost more than ``cfg.max_lost_share`` of its submitted videos in all."""
    from scipy.stats import fisher_exact

    n, ref = int(lost["submitted"]), lost["reference"]
    n_ref = int(ref["submitted"])
    out: dict[str, Any] = {"submitted": n, "reference_submitted": n_ref, "tests": {}}
    for kind in LOST_KINDS:
        k, k_ref = int(lost.get(kind, 0)), int(ref.get(kind, 0))
        p = None
        if n > 0 and n_ref > 0:
            p = float(fisher_exact([[k, n - k], [k_ref, n_ref - k_ref]], alternative="greater")[1])
        out["tests"][kind] = {
            "current": k, "current_share": k / n if n else None,
            "reference": k_ref, "reference_share": k_ref / n_ref if n_ref else None,
            "p_value": p, "drifted": bool(p is not None and p < level),
        }  # fmt: skip
    total = sum(int(lost.get(kind, 0)) for kind in LOST_KINDS)
    out["lost"] = total
    out["share"] = total / n if n else None
    out["over_limit"] = bool(n and total / n > cfg.max_lost_share)
    out["max_lost_share"] = cfg.max_lost_share
    return out


def compare(
    reference: pd.DataFrame, current: pd.DataFrame, cfg: MonitorConfig, lost: dict[str, Any] | None = None
) -> DriftOutcome:
    """Run every drift test of the window; ``summary`` is plain JSON (what the decision reads).

    ``lost``: the window's and the reference's submitted / lost counts (``lost_tests``), or None
    when they are unknown. A window with no measured video runs only those tests."""
    from evidently import DataDefinition, Dataset, Report
    from evidently.metrics import ValueDrift
    from evidently.metrics.embeddings import MMDDriftMethod, ModelDriftMethod

    tested, shown = _testable(reference, current) if len(current) else ([], [])
    scores = _has_scores(reference) and _has_scores(current)
    emb = [c for c in embedding_columns(reference) if c in set(embedding_columns(current))] if scores else []
    sound = audio.plan(reference, current, cfg) if len(current) else audio.AudioPlan()
    m = (
        len(tested)
        + (2 if scores else 0)
        + (1 if emb else 0)
        + (len(LOST_KINDS) if lost else 0)
        + sound.tests
    )
    if m == 0:
        raise ValueError("nothing to compare: no quality feature or score in both tables")
    level = cfg.alpha / m
    summary: dict[str, Any] = {
        "n_reference": len(reference),
        "n_current": len(current),
        "unit": "subject",
        "n_reference_subjects": _n_subjects(reference),
        "n_current_subjects": _n_subjects(current),
        "alpha": cfg.alpha,
        "tests": m,
        "per_test_alpha": level,
        "quality": {},
        "population": {},
        "prediction": {},
        "embedding": None,
        "lost": lost_tests(lost, cfg, level) if lost else None,
        "audio": None,
    }
    if not len(current):
        return DriftOutcome(summary, None)

    numeric = tested + shown
    ref, cur = _frame(reference, numeric, scores, emb), _frame(current, numeric, scores, emb)
    ref_s, cur_s = (
        _with_sound(subject_table(reference, numeric, scores, emb), reference, sound),
        _with_sound(subject_table(current, numeric, scores, emb), current, sound),
    )
    # the audio facts Evidently shows: the tested ones, and those constant and equal on both sides
    heard = [c for c in sound.columns if c not in audio.SHOWN]
    heard_numeric = [c for c in heard if c not in audio.CATEGORICAL]
    heard_categorical = [c for c in heard if c in audio.CATEGORICAL]
    definition = DataDefinition(
        numerical_columns=numeric + (["p_pd"] if scores else []) + heard_numeric,
        categorical_columns=(["label"] if scores else []) + heard_categorical,
    )
    metrics: list[Any] = [ValueDrift(column=c, method="ks", threshold=level) for c in numeric]
    if scores:
        metrics += [
            ValueDrift(column="p_pd", method="ks", threshold=level),
            ValueDrift(column="label", method=LABEL_TEST, threshold=level),
        ]
    metrics += [ValueDrift(column=c, method="ks", threshold=level) for c in heard_numeric]
    metrics += [ValueDrift(column=c, method=LABEL_TEST, threshold=level) for c in heard_categorical]
    if scores or heard_categorical:
        _register_label_test()
    method = None
    if emb:
        method = (
            MMDDriftMethod(bootstrap=True, quantile_probability=1.0 - level)
            if cfg.embedding_method == "mmd"
            else ModelDriftMethod(bootstrap=True, quantile_probability=1.0 - level)
        )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # scipy/evidently warn about ties in K-S on discrete columns
        tabular = [c for c in cur_s.columns if c not in emb and c not in audio.SHOWN]
        snapshot = Report(metrics, include_tests=True).run(
            Dataset.from_pandas(cur_s[tabular], data_definition=definition),
            Dataset.from_pandas(ref_s[tabular], data_definition=definition),
        )
    values = _value_drifts(snapshot.dict())
    for col in numeric:
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
                "reference_subjects": int(ref_s["p_pd"].notna().sum()),
            },
            "label": {
                "p_value": lab.get("score"),
                "drifted": bool(lab.get("drifted")),
                "reference_shares": _shares(ref["label"][ref["p_pd"].notna()]),
                "current_shares": _shares(cur["label"]),
                "reference_subject_shares": _shares(ref_s["label"].dropna()),
                "current_subject_shares": _shares(cur_s["label"].dropna()),
            },
        }
    summary["audio"] = audio.summarize(sound, values, reference, current, ref_s, cur_s)
    if emb:
        r_emb, c_emb = ref_s[emb].dropna(), cur_s[emb].dropna()
        too_few = embedding_too_few(len(r_emb), len(c_emb))
        if too_few:
            summary["embedding"] = {"method": cfg.embedding_method, "tested": False, "score": None,
                                    "drifted": False, "dim": len(emb), "reason": too_few}  # fmt: skip
        else:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                score, drifted, name = method(
                    c_emb.copy(), r_emb.copy()
                )  # the flag; the Report keeps only the score
            summary["embedding"] = {
                "method": name,
                "tested": True,
                "score": float(score),
                "drifted": bool(drifted),
                "dim": len(emb),
            }
    return DriftOutcome(summary, snapshot)


def embedding_too_few(n_reference: int, n_current: int) -> str:
    """Why the embedding test cannot run on so few subjects ("" when it can).

    Evidently's bootstrap null draws ``m*m/(m+n)`` and ``m*n/(m+n)`` of the ``m`` reference subjects and
    its unbiased MMD divides by ``k*(k-1)``: below 2 a side it divides by zero (the demo's model reference
    of 3 held-out subjects against a window of 5 did)."""
    m, n = n_reference, n_current
    sizes = (m * m // (m + n), m * n // (m + n)) if m and n else (0, 0)
    if min(sizes) >= 2:
        return ""
    return (
        f"{m} reference and {n} window subjects are too few for the embedding test (its bootstrap draws "
        f"{sizes[0]} and {sizes[1]} subjects, it needs 2 each): score more held-out subjects "
        "(monitor.max_scored_reference)"
    )


def _frame(df: pd.DataFrame, quality: list[str], scores: bool, emb: list[str]) -> pd.DataFrame:
    cols = quality + (["p_pd", "label"] if scores else []) + emb
    out = df[cols].copy()
    for c in quality + emb + (["p_pd"] if scores else []):
        out[c] = pd.to_numeric(out[c], errors="coerce").astype(float)
    if scores:
        out["label"] = out["label"].where(out["label"].isin(LABELS), None)
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


def save(outcome: DriftOutcome, out_dir: Path, decision: dict[str, Any] | None = None) -> dict[str, Path]:
    """drift.html (Evidently, self-contained, with the decision as its headline), evidently.json (its
    snapshot), drift.json (our summary). ``decision``: ``Decision.as_dict()`` of this window."""
    out_dir.mkdir(parents=True, exist_ok=True)
    files = {"html": out_dir / "drift.html", "summary": out_dir / "drift.json"}
    if outcome.snapshot is not None:
        files["evidently"] = out_dir / "evidently.json"
        outcome.snapshot.save_html(str(files["html"]))
        outcome.snapshot.save_json(str(files["evidently"]))
        page = files["html"].read_text(encoding="utf-8")
    else:  # nothing was measured (every video lost): the headline is the page
        page = (
            "<!DOCTYPE html><html><head><meta charset='UTF-8'><title>drift</title></head><body></body></html>"
        )
    if decision is not None:
        page = with_headline(page, headline_html(decision, outcome.summary))
    files["html"].write_text(page, encoding="utf-8")
    files["summary"].write_text(json.dumps(outcome.summary, indent=2, default=float) + "\n", encoding="utf-8")
    return files


HEADLINE_ID = "hypomimia-decision"
_COLOURS = {"ok": "#2e7d32", "warn": "#b26a00", "retrain": "#c62828", "too_small": "#b26a00"}


def headline_html(decision: dict[str, Any], summary: dict[str, Any]) -> str:
    """The block at the top of drift.html: the outcome (what monitor.json says), its drivers and
    reasons, and how the tests below were run (subject level, per-test alpha)."""
    from html import escape

    outcome = decision["outcome"]
    drivers = ", ".join(decision.get("drivers") or []) or "none"
    reasons = "".join(f"<li>{escape(r)}</li>" for r in decision.get("reasons") or [])
    how = (
        f"Each test below compares one value per subject ({summary.get('n_current_subjects', '?')} in the window, "
        f"{summary.get('n_reference_subjects', '?')} in the reference) at alpha/m = "
        f"{summary.get('per_test_alpha', float('nan')):.2g} ({summary.get('tests', '?')} tests, Bonferroni). "
        "Lost videos, the embedding test and the decision rule are in drift.json / monitor.json."
    )
    sound = summary.get("audio") or {}
    if sound.get("skipped"):
        how += f" Audio: {sound['skipped']}."
    elif sound.get("columns"):
        how += (
            f" Audio: {sound.get('tests', 0)} tests on the subjects with audio "
            f"({sound['counts']['current']['subjects_with_audio']} in the window)."
        )
    if (sound.get("voice_model") or {}).get("skipped"):
        how += f" Voice model: {sound['voice_model']['skipped']}."
    return (
        f'<div id="{HEADLINE_ID}" data-outcome="{escape(outcome)}" style="font-family:sans-serif;'
        f'border-left:8px solid {_COLOURS.get(outcome, "#555")};padding:12px 16px;margin:12px;background:#fafafa">'
        f'<h1 style="margin:0 0 6px 0">Monitor decision: <span class="outcome">{escape(outcome.upper())}</span></h1>'
        f"<p style='margin:4px 0'><b>Drivers:</b> {escape(drivers)}</p>"
        f"<ul style='margin:4px 0'>{reasons}</ul><p style='margin:4px 0;color:#555'>{escape(how)}</p></div>"
    )


def with_headline(page: str, block: str) -> str:
    """``page`` with ``block`` right after its ``<body>`` tag (the first thing a reader sees)."""
    i = page.find("<body")
    if i < 0:
        return block + page
    j = page.index(">", i) + 1
    return page[:j] + block + page[j:]
