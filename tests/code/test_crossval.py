"""Pooling held-out folds: every subject once, each run's calibration kept, overlaps refused."""

import json

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from hypomimia.cli import _app as app
from hypomimia.errors import UserError
from hypomimia.learning.crossval import pool_folds
from hypomimia.learning.metrics import _sigmoid


def fake_run(folder, fold, subjects, temperature, flip=False):
    """A train output folder: 2 videos x 2 clips per subject; PD subjects get positive margins."""
    rows = []
    for s_i, (subject, label) in enumerate(subjects):
        for v in range(2):
            for c in range(2):
                margin = (2.0 if label else -2.0) * (-1 if flip else 1) + 0.1 * s_i
                rows.append((c, f"{subject}_v{v}", subject, label, margin, "test"))
    rows.append((0, "val_v0", "val_subject", 1, 5.0, "val"))  # validation rows are not pooled
    preds = pd.DataFrame(rows, columns=["clip", "video_id", "subject_id", "label", "margin", "split"])
    preds["p"] = _sigmoid(preds["margin"].to_numpy() / temperature)
    folder.mkdir()
    preds.to_parquet(folder / "predictions.parquet")
    n = len(subjects)
    subject = {"n": n, "auroc": 1.0, "auroc_ci95": [1.0, 1.0], "balanced_accuracy": 1.0}
    (folder / "metrics.json").write_text(
        json.dumps(
            {
                "overall": {"subject": subject},
                "temperature": temperature,
                "split": {"test_fold": fold},
                "best_epoch": 3,
            }
        )  # fmt: skip
    )
    return folder


def test_pooled_folds_evaluate_every_subject_once_with_the_runs_calibration(tmp_path):
    a = fake_run(tmp_path / "f0", 0, [("s1", 1), ("s2", 0)], temperature=2.0)
    b = fake_run(tmp_path / "f1", 1, [("s3", 1), ("s4", 0)], temperature=0.5)
    report = pool_folds([a, b], n_bootstrap=200)
    s = report["pooled"]["overall"]["subject"]
    assert s["n"] == 4 and s["n_pd"] == 2 and s["auroc"] == 1.0
    assert [f["test_fold"] for f in report["folds"]] == [0, 1]
    assert report["pooled"]["overall"]["video"]["n"] == 8
    # clip probabilities are each run's own calibrated ones: sigmoid(margin / T of that run)
    p = _sigmoid(np.array([2.0 / 2.0, -1.9 / 2.0, 2.0 / 0.5, -1.9 / 0.5]))
    expected_brier = np.mean((p - np.array([1, 0, 1, 0])) ** 2)
    assert report["pooled"]["overall"]["clip"]["brier"] == pytest.approx(expected_brier)


def test_a_subject_held_out_twice_is_refused(tmp_path):
    a = fake_run(tmp_path / "f0", 0, [("s1", 1), ("s2", 0)], temperature=1.0)
    b = fake_run(tmp_path / "again", 0, [("s1", 1), ("s2", 0)], temperature=1.0)
    with pytest.raises(UserError, match="held out by both"):
        pool_folds([a, b])
    with pytest.raises(UserError, match="no predictions.parquet"):
        pool_folds([tmp_path])
    (a / "metrics.json").write_text("{not json")
    with pytest.raises(UserError, match="not a train metrics file"):
        pool_folds([a])
    (a / "metrics.json").write_text("{}")
    with pytest.raises(UserError, match="not a train metrics file"):
        pool_folds([a])


def test_cli_prints_folds_and_pooled_result(tmp_path):
    a = fake_run(tmp_path / "f0", 0, [("s1", 1), ("s2", 0)], temperature=1.0)
    b = fake_run(tmp_path / "f1", 1, [("s3", 1), ("s4", 0)], temperature=1.0, flip=True)
    res = CliRunner().invoke(
        app, ["crossval", str(a), str(b), "--out", str(tmp_path / "cv.json"), "--bootstrap", "100"]
    )
    assert res.exit_code == 0, res.output
    assert "fold 0" in res.output and "pooled: subject AUROC" in res.output
    report = json.loads((tmp_path / "cv.json").read_text())
    # fold 1 is inverted: of the 4 (PD, control) pairs only (s1, s2) is ranked right
    assert report["pooled"]["overall"]["subject"]["auroc"] == pytest.approx(0.25)
