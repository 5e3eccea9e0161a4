"""Gate speed: `hypomimia validate` on contract-shaped data of demo size (~200 videos).

Inputs: synthetic ingest + facetubes folders (:mod:`hypomimia.validation.synthetic`; tables
and tiny npz tubes, no video) at two sizes, 48 and 192 training videos (16 and 48 quick).
Per size, the best of 2 runs of :func:`hypomimia.stages.validate.run`, split into deriving the
tables, opening the GX context, running the 5 checkpoints, and building Data Docs.

Targets: the demo-size gate takes seconds (total_192 < 30 s on a shared 2-core machine), and
its cost is per expectation, not per video: ``scaling`` (total at 4x the videos / total) < 2.
The first run in the process also pays the one-off GX import, reported as ``first_run``.
"""

from __future__ import annotations

import shutil
import time
from pathlib import Path

from hypomimia.config.validate import ValidateConfig
from hypomimia.stages import validate
from hypomimia.validation.synthetic import make_dataset


def _best_of(n: int, ingest: Path, tubes: Path, out: Path) -> dict[str, float]:
    best: dict[str, float] = {}
    for _ in range(n):
        result = validate.run(ValidateConfig(), ingest, tubes, out, raise_on_error=True)
        if not best or result.timings_s["total"] < best["total"]:
            best = dict(result.timings_s)
    return best


def run(out: Path, quick: bool) -> list[dict]:
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    sizes = (4, 12) if quick else (12, 48)  # subjects; 4 videos each
    rows: list[dict] = []
    totals = {}
    t0 = time.perf_counter()
    for i, subjects in enumerate(sizes):
        folds = 2 if quick else 4  # every fold needs both classes
        ingest, tubes = make_dataset(
            out / f"data{subjects}", n_subjects=subjects, videos_per_subject=4, folds=folds
        )
        if i == 0:  # includes importing GX once
            first = time.perf_counter()
            validate.run(ValidateConfig(), ingest, tubes, out / "first")
            rows.append(_row("first_run", time.perf_counter() - first, "s", "includes the GX import"))
        videos = subjects * 4
        timings = _best_of(1 if quick else 2, ingest, tubes, out / f"validate{subjects}")
        totals[videos] = timings["total"]
        for key, value in timings.items():
            rows.append(_row(f"{key}_{videos}", value, "s", f"{videos} training videos, best of runs"))
    small, large = sorted(totals)
    rows.append(_row("scaling", totals[large] / totals[small], "x", f"total at {large} / at {small} videos"))
    rows.append(_row("bench_wall", time.perf_counter() - t0, "s", "whole benchmark"))
    return rows


def _row(metric: str, value: float, unit: str, note: str) -> dict:
    return {"name": "validate", "metric": metric, "value": round(float(value), 3), "unit": unit, "note": note}
