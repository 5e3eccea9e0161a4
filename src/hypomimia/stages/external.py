"""Stage `external`: trained models scored on a labelled cohort they never saw (external validation).

The cohort goes through the same stages as any data set (phantom or manifest -> ingest -> facetubes ->
voice); each model scores every accepted, labelled face tube as ``/predict`` would
(:class:`hypomimia.monitoring.scoring.Scorer`), and :mod:`hypomimia.evaluation.external` measures the
subject AUROC and the subject ECE before and after the deployment map of the model's seed (read from an
``evaluation.json``). Writes ``scores.parquet`` (one row per model and video), ``external.json`` and
``external.md``. Every video of the cohort is accounted for: scored, or counted with the reason it was not.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from hypomimia import jsonio
from hypomimia.data.artifacts import read_stage_table
from hypomimia.errors import UserError
from hypomimia.evaluation import external
from hypomimia.learning.clips import LABEL_INDEX
from hypomimia.lineage.provenance import stamp

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ExternalResult:
    out_dir: Path
    report: dict[str, Any]
    seconds: float


def cohort(ingest_dir: Path, tubes_dir: Path) -> tuple[pd.DataFrame, dict[str, int]]:
    """The cohort's scorable videos (video_id, subject_id, label 0/1, tube) and the count of every video
    by what became of it (scored, quarantined at ingest, no face tube, unlabelled)."""
    ingested = read_stage_table(ingest_dir, "ingested.parquet", "ingest", ("video_id", "status"))
    tubes = read_stage_table(
        tubes_dir, "tubes.parquet", "facetubes", ("video_id", "subject_id", "label", "status", "tube")
    )
    accepted = tubes[tubes["status"] == "accepted"]
    labelled = accepted[accepted["label"].isin(list(LABEL_INDEX))]
    table = pd.DataFrame(
        {
            "video_id": labelled["video_id"].astype(str),
            "subject_id": labelled["subject_id"].astype(str),
            "label": labelled["label"].map(LABEL_INDEX).astype(int),
            "tube": [str(Path(tubes_dir) / t) for t in labelled["tube"]],
        }
    ).sort_values("video_id", ignore_index=True)
    counts = {
        "videos": len(ingested),
        "quarantined_at_ingest": int((ingested["status"] != "accepted").sum()),
        "no_face_tube": int((tubes["status"] != "accepted").sum()),
        "unlabelled": len(accepted) - len(labelled),
        "scored": len(table),
    }
    if table["label"].nunique() < 2:
        raise UserError(
            f"the cohort in {ingest_dir} has {len(table)} labelled videos with a face tube, not both classes",
            "external validation needs PD patients and controls with a 'label' in the manifest",
        )
    return table, counts


def run(
    models: list[Path],
    ingest_dir: Path,
    tubes_dir: Path,
    out_dir: Path,
    *,
    evaluation: Path | None = None,
    voice_dir: Path | None = None,
    calibration_cohort: Path | None = None,
    method: str = "platt",
    bootstrap: int = 1000,
    seed: int = 0,
    threads: int = 2,
) -> ExternalResult:
    """``calibration_cohort``: another cohort's report folder (its ``scores.parquet``, scored by the same
    models): each model's subject map (``method``) is fitted there and applied here (``after_cohort_map``)."""
    from hypomimia.monitoring.scoring import Scorer

    t0 = time.perf_counter()
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    table, counts = cohort(ingest_dir, tubes_dir)
    voice = read_stage_table(voice_dir, "voice.parquet", "voice") if voice_dir is not None else None
    ev = _evaluation(evaluation)
    other = _calibration_scores(calibration_cohort)
    rows, scores = [], []
    for path in models:
        scorer = Scorer.load(path, threads)
        train = scorer.metadata.get("train_params", {})
        model_seed, fold = train.get("seed"), train.get("fold")
        if scorer.model.voice_stream is not None and voice is None:
            log.warning(
                "%s has a voice stream but no voice table was given (--voice): scored from the face alone",
                path,
            )
        t = time.perf_counter()
        scored = scorer.score(table[["video_id", "tube"]], voice)[0]
        videos = (
            table.drop(columns="tube")
            .merge(scored[["video_id", "p_pd"]], on="video_id")
            .rename(columns={"p_pd": "p"})
        )
        log.info("%s: %d videos scored in %.0f s", path, len(videos), time.perf_counter() - t)
        cal_map = external.deployment_map(ev, model_seed) if ev is not None and model_seed is not None else {}
        cohort_cal = {}
        if other is not None:
            mine = other[other["model_path"] == Path(path).resolve()]
            if mine.empty:
                raise UserError(
                    f"the calibration cohort {calibration_cohort} was not scored by {path}",
                    "run 'hypomimia external' on the calibration cohort with the same models first",
                )
            cohort_cal = external.cohort_map(mine, method)
        rows.append({"model": str(path), "seed": model_seed, "fold": fold,
                     **external.measure(videos, cal_map, bootstrap, seed, cohort_cal)})  # fmt: skip
        scores.append(videos.assign(model=str(path)))
    report = {
        "cohort": {
            **counts,
            "subjects": int(table["subject_id"].nunique()),
            "pd_subjects": int(table.loc[table["label"] == 1, "subject_id"].nunique()),
        },
        "models": rows,
        "summary": external.summarize(rows),
        "level": "subject = the mean of its videos' served P(PD); 'after' = the seed's deployment map from evaluate",
        "provenance": stamp(
            "external",
            {"bootstrap": bootstrap, "seed": seed, "method": method},
            {
                "ingest": ingest_dir,
                "tubes": tubes_dir,
                "voice": voice_dir,
                "evaluation": evaluation,
                "calibration_cohort": calibration_cohort,
            },
        ),
    }
    pd.concat(scores, ignore_index=True).to_parquet(out_dir / "scores.parquet", index=False)
    jsonio.write(out_dir / "external.json", report)
    (out_dir / "external.md").write_text(markdown(report), encoding="utf-8")
    return ExternalResult(out_dir, report, time.perf_counter() - t0)


def _calibration_scores(folder: Path | None) -> pd.DataFrame | None:
    """The calibration cohort's scores, with each row's model as a resolved path (matched to the models here)."""
    if folder is None:
        return None
    scores = read_stage_table(folder, "scores.parquet", "external", ("model", "subject_id", "label", "p"))
    return scores.assign(model_path=[Path(m).resolve() for m in scores["model"]])


def _evaluation(path: Path | None) -> dict | None:
    if path is None:
        return None
    try:
        return json.loads(Path(path).read_text())
    except (OSError, ValueError) as e:
        raise UserError(
            f"{path} is not a readable evaluation.json ({e})", "pass 'hypomimia evaluate''s evaluation.json"
        ) from None


def _f(x: Any, digits: int = 3) -> str:
    return "-" if x is None or (isinstance(x, float) and not np.isfinite(x)) else f"{x:.{digits}f}"


def _ece(c: dict | None) -> str:
    """An ECE with what a calibrated model would show and p; '-' where undefined."""
    return f"{_f(c['ece'])} ({_f(c['expected_if_calibrated'])}, p {_f(c['p'], 2)})" if c else "-"


def markdown(report: dict) -> str:
    c, s = report["cohort"], report["summary"]
    lines = [
        "# External validation",
        "",
        f"Cohort: {c['subjects']} subjects ({c['pd_subjects']} PD), {c['scored']} of {c['videos']} videos scored "
        f"({c['quarantined_at_ingest']} quarantined at ingest, {c['no_face_tube']} without a face tube, "
        f"{c['unlabelled']} unlabelled). {report['level']}. ECE (if calibrated, p).",
        "",
        "| model | seed | fold | subject AUROC (95% CI) | subject ECE before | after the seed's map "
        "| after the calibration cohort's map | video ECE |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in report["models"]:
        lo, hi = r["auroc_ci95"]
        lines.append(
            f"| {'/'.join(Path(r['model']).parts[-3:])} | {r['seed']} | {r['fold']} | {_f(r['subject_auroc'])} "
            f"({_f(lo, 2)}-{_f(hi, 2)}) | {_ece(r['before'])} | {_ece(r['after'])} | {_ece(r['after_cohort_map'])} "
            f"| {_ece(r['video'])} |"
        )
    lines += [
        "",
        f"Over {s['models']} models: subject AUROC {_f(s['subject_auroc']['mean'])} (SD {_f(s['subject_auroc']['sd'])}); "
        f"subject ECE {_f(s['ece_before']['mean'])} before, {_f(s['ece_after']['mean'])} after the seed's map, "
        f"{_f(s['ece_after_cohort_map']['mean'])} after the calibration cohort's "
        f"(a calibrated model: {_f(s['ece_if_calibrated']['mean'])}); video ECE {_f(s['video_ece']['mean'])}.",
        "",
    ]
    return "\n".join(lines)
