"""Pool the held-out predictions of several training runs (one per test fold) into one evaluation.

Each run of ``hypomimia train`` holds out one fold of subjects. Eight test subjects per fold give
wide confidence intervals; pooling the folds evaluates every subject once, on a model that never
saw it, with 95% subject-bootstrap CIs over all of them. Each run's own temperature (fitted on its
validation fold) is kept, so the pooled probabilities are the ones each model reported.
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from hypomimia.data.artifacts import read_stage_table
from hypomimia.errors import UserError
from hypomimia.learning.metrics import evaluate


def load_run(train_dir: Path) -> tuple[pd.DataFrame, dict]:
    """(test clips with the run's calibrated margin, headline of the run) from a train output folder."""
    clips = read_stage_table(
        train_dir, "predictions.parquet", "train", ["video_id", "subject_id", "label", "margin", "split"]
    )
    try:
        m = json.loads((train_dir / "metrics.json").read_text())
        s = m["overall"]["subject"]
        headline = {
            "run": train_dir.name,
            "test_fold": m.get("split", {}).get("test_fold"),
            "subjects": s["n"],
            "subject_auroc": s["auroc"],
            "subject_auroc_ci95": s["auroc_ci95"],
            "subject_balanced_accuracy": s["balanced_accuracy"],
            "best_epoch": m.get("best_epoch"),
        }
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise UserError(
            f"{train_dir}/metrics.json is missing or not a train metrics file ({type(e).__name__}: {e})",
            "pass output folders of finished 'hypomimia train' runs",
        ) from None
    clips = clips[clips["split"] == "test"].copy()
    clips["margin"] = clips["margin"] / m.get("temperature", 1.0)  # evaluate() at T = 1 gives the run's p
    fusion = (m.get("streams") or {}).get("fusion")
    if fusion and "margin_video" in clips:  # a two-stream run: its video stream alone, on its own scale
        clips["margin_video"] = clips["margin_video"] / fusion["video_temperature"]
    else:
        clips = clips.drop(columns=["margin_video", "margin_landmarks"], errors="ignore")
    if not (m.get("streams") or {}).get("voice_fusion"):  # a voice-fused run keeps its visual model's
        clips = clips.drop(columns=["margin_visual", "margin_voice"], errors="ignore")  # margin (calibrated)
    return clips, headline


def pool_folds(train_dirs: list[Path], n_bootstrap: int = 1000, seed: int = 0) -> dict:
    """``{"folds": [headline per run], "pooled": evaluate() of all test clips}``."""
    if not train_dirs:
        raise UserError("no training runs given", "pass one train output folder per test fold")
    runs = [load_run(Path(d)) for d in train_dirs]
    seen: dict[str, str] = {}
    for clips, head in runs:
        for subject in clips["subject_id"].unique():
            if subject in seen:
                raise UserError(
                    f"subject {subject} is held out by both {seen[subject]} and {head['run']}",
                    "pass runs with different test folds (train.fold) of the same fold assignment",
                )
            seen[subject] = head["run"]
    pooled = pd.concat([c for c, _ in runs], ignore_index=True)
    metrics = evaluate(pooled, temperature=1.0, n_bootstrap=n_bootstrap, seed=seed)
    return {"folds": [h for _, h in runs], "pooled": metrics}
