"""Pooled results per setting, slices, paired comparisons, and the human-readable report + figures.

Every setting's held-out clips of every evaluated fold are pooled (each subject scored once, by a
model that never saw it) and evaluated at subject level with 95% subject-bootstrap CIs.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd

from hypomimia.evaluation import stats
from hypomimia.learning.metrics import aggregate, auroc, bootstrap_ci, evaluate, with_probability

SLICE_COLUMNS = ("sex", "age_band", "site", "camera", "task")


def subject_table(clips: pd.DataFrame) -> pd.DataFrame:
    return aggregate(with_probability(clips), "subject")


def video_table(clips: pd.DataFrame) -> pd.DataFrame:
    """One row per video (the level ``/predict`` answers at): video_id, subject_id, label, p."""
    return aggregate(with_probability(clips), "video")


def roc_points(y: np.ndarray, p: np.ndarray) -> dict[str, list[float]]:
    from sklearn.metrics import roc_curve

    if not 0 < int(np.sum(y)) < len(y):
        return {"fpr": [], "tpr": []}
    fpr, tpr, _ = roc_curve(y, p)
    return {"fpr": fpr.round(4).tolist(), "tpr": tpr.round(4).tolist()}


def reliability(y: np.ndarray, p: np.ndarray, bins: int) -> list[dict]:
    """Equal-width bins of the predicted PD probability: mean prediction vs observed PD fraction."""
    which = np.minimum((np.asarray(p) * bins).astype(int), bins - 1)
    out = []
    for b in range(bins):
        m = which == b
        if m.any():
            out.append(
                {
                    "bin": b,
                    "n": int(m.sum()),
                    "mean_p": float(np.mean(p[m])),
                    "observed": float(np.mean(y[m])),
                }
            )
    return out


def pooled(clips: pd.DataFrame, *, n_bootstrap: int, seed: int, bins: int) -> dict:
    """Subject-level metrics with CIs, per-level AUROC, ROC and reliability of one setting's pooled clips."""
    m = evaluate(clips, temperature=1.0, n_bootstrap=n_bootstrap, seed=seed)
    s = m["overall"]["subject"]
    subj = subject_table(clips)
    y, p = subj["label"].to_numpy(int), subj["p"].to_numpy(float)
    return {
        "subject": {
            k: s[k]
            for k in (
                "auroc",
                "auroc_ci95",
                "balanced_accuracy",
                "balanced_accuracy_ci95",
                "sensitivity",
                "specificity",
                "brier",
                "ece",
                "n",
                "n_pd",
                "abstain",
            )
        },  # fmt: skip
        "video_auroc": m["overall"]["video"]["auroc"],
        "clip_auroc": m["overall"]["clip"]["auroc"],
        "roc": roc_points(y, p),
        "reliability": reliability(y, p, bins),
    }


def add_age_band(info: pd.DataFrame, edges: list[int]) -> pd.DataFrame:
    if "age" not in info or info["age"].isna().all():
        return info
    cuts = [-np.inf, *sorted(edges), np.inf]
    labels = (
        [f"<{edges[0]}"]
        + [f"{a}-{b - 1}" for a, b in zip(edges[:-1], edges[1:], strict=True)]
        + [f">={edges[-1]}"]
    )
    band = pd.cut(pd.to_numeric(info["age"], errors="coerce"), cuts, right=False, labels=labels)
    return info.assign(age_band=band.astype(str).where(band.notna(), None))


def slices(clips: pd.DataFrame, info: pd.DataFrame, *, n_bootstrap: int, seed: int,
           columns: tuple[str, ...] = SLICE_COLUMNS) -> dict:  # fmt: skip
    """AUROC with 95% subject-bootstrap CI per value of sex, age band, site, camera, task (where known).

    Subject attributes are scored on subjects, per-video ones (task, camera) on videos; the CI always
    resamples subjects. A slice with one class has AUROC null (the JSON says why)."""
    videos = aggregate(with_probability(clips), "video").merge(
        info, on="video_id", how="left", suffixes=("", "_info")
    )
    out = {}
    for col in columns:
        if col not in videos or videos[col].isna().all():
            continue
        per_subject = videos.groupby("subject_id")[col].nunique(dropna=True).max() <= 1
        for value in sorted(videos[col].dropna().astype(str).unique()):
            part = videos[videos[col].astype(str) == value]
            if per_subject:
                part = part.groupby("subject_id", as_index=False).agg(
                    label=("label", "first"), p=("p", "mean")
                )
            y, p = part["label"].to_numpy(int), part["p"].to_numpy(float)
            out[f"{col}={value}"] = {
                "level": "subject" if per_subject else "video",
                "n": len(part),
                "n_pd": int(y.sum()),
                "auroc": auroc(y, p),
                "auroc_ci95": bootstrap_ci(part, auroc, n_bootstrap, seed),
            }
    return out


def task_slices(pooled_clips: dict[str, pd.DataFrame], info: pd.DataFrame, models: list[str], *,
                n_bootstrap: int, seed: int) -> dict:  # fmt: skip
    """Per model of the table, AUROC per task on videos (subject-bootstrap CI): where each modality helps.

    The voice is heard only in the tasks the subjects speak in; elsewhere a model without voice answers
    alone, so the fused model's gain (or loss) shows per task, not only pooled."""
    if "task" not in info or info["task"].isna().all():
        return {}
    return {m: {k.removeprefix("task="): v for k, v in
                slices(pooled_clips[m], info, n_bootstrap=n_bootstrap, seed=seed, columns=("task",)).items()}
            for m in models if m in pooled_clips}  # fmt: skip


def compare(
    tables: dict[str, pd.DataFrame],
    pairs: list[tuple[str, str]],
    *,
    n_bootstrap: int,
    seed: int,
    method: str,
    alpha: float,
) -> list[dict]:
    """Paired tests of each (a, b): DeLong and the paired subject bootstrap; both corrected over the family."""
    rows = []
    for a, b in pairs:
        m = stats.paired_subjects(tables[a], tables[b], (a, b))
        y, pa, pb = m["label"].to_numpy(int), m["p_a"].to_numpy(float), m["p_b"].to_numpy(float)
        d = stats.delong(y, pa, pb)
        bs = stats.paired_bootstrap(y, pa, pb, n_bootstrap, seed)
        rows.append({"a": a, "b": b, "subjects": len(m), "auroc_a": d["auroc_a"], "auroc_b": d["auroc_b"],
                     "difference": d["difference"], "difference_ci95": bs["difference_ci95"],
                     "delong_z": d["z"], "delong_p": d["p_value"], "bootstrap_p": bs["p_value"]})  # fmt: skip
    for key in ("delong_p", "bootstrap_p"):
        adj = stats.adjust([r[key] for r in rows], method)
        for r, q in zip(rows, adj, strict=True):
            r[f"{key}_{method}"] = q
    for r in rows:
        q = r[f"delong_p_{method}"]
        r["significant"] = bool(q == q and q < alpha)
    return rows


# --- markdown ----------------------------------------------------------------------------------


def _f(x, nd: int = 3) -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "n/a"
    return f"{x:.{nd}f}"


def _ci(ci) -> str:
    lo, hi = ci if ci else (None, None)
    return f"{_f(lo, 2)}-{_f(hi, 2)}"


def _model_notes(ev: dict) -> list[str]:
    """What a row is when it is not a model of its own (derived rows), and whom the voice could not score."""
    notes = []
    for name, r in ev["settings"].items():
        if r.get("derived"):
            notes.append(f"- {name}: no training of its own; {r['derived']}")
        if r.get("voice"):
            v = r["voice"]
            notes.append(f"- {name}: {v['subjects_without_voice']} of {v['subjects']} held-out subjects have no "
                         "voiced video and are scored p = 0.5")  # fmt: skip
    return ["", *notes] if notes else []


def markdown(ev: dict) -> str:
    lines = ["# Evaluation", "", f"Folds {ev['folds']} of repeat {ev['repeat']} (folds digest `{ev['folds_digest']}`), "
             f"{ev['subjects']} held-out subjects, pooled over folds; 95% subject-bootstrap CIs "
             f"({ev['bootstrap']} resamples). Every setting was scored on the same subjects.", "",
             _seeds_sentence(ev), "",
             "## Models", "", "| model | subject AUROC | 95% CI | balanced acc. | 95% CI | ECE | per fold | per seed: mean ± SD |", "|---|---|---|---|---|---|---|---|"]  # fmt: skip
    for name, r in ev["settings"].items():
        if r["setting"]["design"] is not None:
            continue
        s = r["pooled"]["subject"]
        folds = ", ".join(_f(f["subject_auroc"], 2) for f in r["folds"])
        lines.append(f"| {name} | {_f(s['auroc'])} | {_ci(s['auroc_ci95'])} | {_f(s['balanced_accuracy'])} | "
                     f"{_ci(s['balanced_accuracy_ci95'])} | {_f(s['ece'])} | {folds} | {_seed_cell(r.get('seeds'))} |")  # fmt: skip
    lines += _model_notes(ev) + _seed_lines(ev) + _calibration_lines(ev)
    for title, key in (("Paired comparisons (the reference against each model)", "comparisons"),
                       ("Temporal ablation against the shipped frame count", "ablation_comparisons")):  # fmt: skip
        rows = ev.get(key) or []
        if not rows:
            continue
        corr = ev["correction"]
        lines += ["", f"## {title}", "", f"DeLong's test and a paired subject bootstrap; p-values {corr}-corrected over the table. "
                  f"Networks enter as their seed ensemble (seeds {ev.get('seeds', [])}).", "",
                  f"| A | B | AUROC A | AUROC B | A - B | 95% CI | DeLong p ({corr}) | bootstrap p ({corr}) | significant |", "|---|---|---|---|---|---|---|---|---|"]  # fmt: skip
        for c in rows:
            lines.append(f"| {c['a']} | {c['b']} | {_f(c['auroc_a'])} | {_f(c['auroc_b'])} | {_f(c['difference'])} | "
                         f"{_ci(c['difference_ci95'])} | {_f(c['delong_p_' + corr], 4)} | {_f(c['bootstrap_p_' + corr], 4)} | "
                         f"{'yes' if c['significant'] else 'no'} |")  # fmt: skip
    if ev.get("ablation"):
        lines += [
            "",
            "## Temporal ablation",
            "",
            "| design | frames | stride | clip span (frames) | subject AUROC | 95% CI |",
            "|---|---|---|---|---|---|",
        ]
        for row in ev["ablation"]:
            lines.append(
                f"| {row['design']} | {row['frames']} | {row['stride']} | {row['span']} | {_f(row['auroc'])} | {_ci(row['auroc_ci95'])} |"
            )
        lines += ["", ev["ablation_verdict"]]
    if ev.get("slices"):
        lines += [
            "",
            f"## Slices ({ev['reference']})",
            "",
            "| slice | level | n | AUROC | 95% CI |",
            "|---|---|---|---|---|",
        ]
        for name, s in ev["slices"].items():
            lines.append(f"| {name} | {s['level']} | {s['n']} | {_f(s['auroc'])} | {_ci(s['auroc_ci95'])} |")
    by_task = ev.get("task_slices") or {}
    tasks = sorted({t for per in by_task.values() for t in per})
    if tasks:
        lines += [
            "",
            "## Task slices (video AUROC, 95% subject-bootstrap CI)",
            "",
            "| model | " + " | ".join(tasks) + " |",
            "|---|" + "---|" * len(tasks),
        ]
        for model, per in by_task.items():
            cells = [
                f"{_f(per[t]['auroc'])} ({_ci(per[t]['auroc_ci95'])})" if t in per else "-" for t in tasks
            ]
            lines.append(f"| {model} | " + " | ".join(cells) + " |")
    b = ev.get("blessing")
    if b:
        lines += [
            "",
            "## Blessing",
            "",
            f"**{'BLESSED' if b['blessed'] else 'NOT BLESSED'}** -- {b['reason']}",
            "",
        ]
        agree = (b.get("extra") or {}).get("seeds_passing_floor") or {}
        if agree:
            lines += [
                "Decided on the seed ensemble. Each seed's own decision on the floor: "
                + ", ".join(f"seed {k} {'passes' if v else 'fails'}" for k, v in agree.items())
                + f" (agreement {_f(b['extra'].get('seed_agreement'), 2)}).",
                "",
            ]
    lines += ["", "Figures: " + ", ".join(f"`figures/{Path(f).name}`" for f in ev.get("figures", []))]
    return "\n".join(lines) + "\n"


def _seeds_sentence(ev: dict) -> str:
    seeds = ev.get("seeds") or []
    return (
        f"Networks were trained once per seed {seeds} on the same folds; every network row is the seed "
        "ensemble (per subject, the mean of the seeds' probabilities). Landmark baselines are deterministic "
        "and fitted once."
    )


def _seed_cell(seeds: dict | None) -> str:
    if not seeds:
        return "deterministic"
    each = ", ".join(_f(r["subject_auroc"], 2) for r in seeds["per_seed"])
    return f"{each} ({_f(seeds['auroc_mean'])} ± {_f(seeds['auroc_sd'])})"


def _seed_lines(ev: dict) -> list[str]:
    rows = [(n, r) for n, r in ev["settings"].items() if r.get("seeds") and r["setting"]["design"] is None]
    if not rows:
        return []
    out = ["", "## Training seeds", "",
           "Each seed's own pooled subject AUROC (the subject bootstrap holds the trained models fixed, so "
           "only these rows show the training variability), then the seed ensemble.", "",
           "| model | seed | subject AUROC | 95% CI | per fold | subject ECE | video ECE |",
           "|---|---|---|---|---|---|---|"]  # fmt: skip
    for name, r in rows:
        for row in r["seeds"]["per_seed"]:
            folds = ", ".join(_f(f["subject_auroc"], 2) for f in row["folds"])
            out.append(f"| {name} | {row['seed']} | {_f(row['subject_auroc'])} | {_ci(row['auroc_ci95'])} | "
                       f"{folds} | {_f(row['ece_before'])} | {_f(row.get('video_ece'))} |")  # fmt: skip
        sd = r["seeds"]
        out.append(f"| {name} | mean ± SD | {_f(sd['auroc_mean'])} ± {_f(sd['auroc_sd'])} | | | | |")
        s = r["pooled"]["subject"]
        folds = ", ".join(_f(f["subject_auroc"], 2) for f in r["folds"])
        video_ece = (r.get("calibration") or {}).get("video", {}).get("ece")
        out.append(f"| {name} | **ensemble** | {_f(s['auroc'])} | {_ci(s['auroc_ci95'])} | {folds} | "
                   f"{_f(s['ece'])} | {_f(video_ece)} |")  # fmt: skip
    return out


def _calibration_lines(ev: dict) -> list[str]:
    rows = [
        (n, r) for n, r in ev["settings"].items() if r.get("calibration") and r["setting"]["design"] is None
    ]
    if not rows or ev.get("calibration") == "none":
        return []
    out = ["", "## Calibration (subject level, pooled, cross-fitted)", "",
           f"Method `{ev.get('calibration')}`: fold k's subjects are mapped by a fit on the other folds' held-out "
           "subjects; each run's own validation-fold temperature is the 'before'.", "",
           "ECE if calibrated: the mean (95th percentile) ECE of the same probabilities with labels drawn from "
           "them (consistency resampling); p: the share of those at least the observed ECE.", "",
           "Video ECE: the same before-probabilities per video, the level the endpoint answers at (a subject's p is "
           "the mean of its videos', which averages evidence away: cautious by construction).", "",
           "| model | ECE before | if calibrated | p | ECE after | if calibrated | p | Brier before | Brier after "
           "| map fitted on every fold | video ECE | if calibrated | p |",
           "|---|---|---|---|---|---|---|---|---|---|---|---|---|"]  # fmt: skip
    for name, r in rows:
        c = r["calibration"]
        fitted = ", ".join(f"{k} {_f(v)}" for k, v in c["all_folds"].items())
        out.append(f"| {name} | {_f(c['ece_before'])} | {_consistency(c.get('consistency_before'))} | "
                   f"{_f(c['ece_after'])} | {_consistency(c.get('consistency_after'))} | {_f(c['brier_before'])} | "
                   f"{_f(c['brier_after'])} | {fitted} | {_f((c.get('video') or {}).get('ece'))} | "
                   f"{_consistency(c.get('video'))} |")  # fmt: skip
    return out


def _consistency(c: dict | None) -> str:
    if not c:
        return "- | -"
    return f"{_f(c['expected_if_calibrated'])} ({_f(c['q95_if_calibrated'])}) | {_f(c['p'])}"


# --- figures -----------------------------------------------------------------------------------


def figures(ev: dict, fig_dir: Path) -> list[Path]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig_dir.mkdir(parents=True, exist_ok=True)
    out = []
    if ev.get("ablation"):
        fig, ax = plt.subplots(figsize=(6, 4))
        for design, marker in (("fixed_stride", "o"), ("fixed_duration", "s")):
            rows = sorted((r for r in ev["ablation"] if r["design"] == design), key=lambda r: r["frames"])
            if not rows:
                continue
            x = [r["frames"] for r in rows]
            y = [np.nan if r["auroc"] is None else r["auroc"] for r in rows]
            lo = [np.nan if r["auroc_ci95"][0] is None else r["auroc_ci95"][0] for r in rows]
            hi = [np.nan if r["auroc_ci95"][1] is None else r["auroc_ci95"][1] for r in rows]
            ax.plot(x, y, marker=marker, label=design.replace("_", " "))
            ax.fill_between(x, lo, hi, alpha=0.2)
        ax.axhline(0.5, color="grey", lw=0.8, ls=":")
        ax.set(
            xlabel="frames per clip",
            ylabel="pooled subject AUROC (95% CI)",
            ylim=(0, 1.02),
            title="Temporal ablation",
        )
        ax.legend(loc="lower right")
        out.append(_save(fig, fig_dir / "ablation_auroc_vs_frames.png"))
    fig, ax = plt.subplots(figsize=(5, 5))
    for name, r in ev["settings"].items():
        roc = r["pooled"]["roc"]
        if roc["fpr"] and r["setting"]["design"] is None:
            ax.plot(roc["fpr"], roc["tpr"], label=f"{name} ({_f(r['pooled']['subject']['auroc'], 2)})")
    ax.plot([0, 1], [0, 1], color="grey", lw=0.8, ls=":")
    ax.set(xlabel="1 - specificity", ylabel="sensitivity", title="Subject-level ROC, pooled folds")
    ax.legend(fontsize=8)
    out.append(_save(fig, fig_dir / "roc.png"))
    fig, ax = plt.subplots(figsize=(5, 5))
    for name, r in ev["settings"].items():
        rel = r["pooled"]["reliability"]
        if rel and r["setting"]["design"] is None:
            ax.plot([b["mean_p"] for b in rel], [b["observed"] for b in rel], marker="o", label=name)
    ax.plot([0, 1], [0, 1], color="grey", lw=0.8, ls=":")
    ax.set(
        xlabel="mean predicted P(PD)",
        ylabel="observed PD fraction",
        title="Reliability (subjects)",
        xlim=(0, 1),
        ylim=(0, 1),
    )
    ax.legend(fontsize=8)
    out.append(_save(fig, fig_dir / "reliability.png"))
    return out


def _save(fig, path: Path) -> Path:
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    import matplotlib.pyplot as plt

    plt.close(fig)
    return path
