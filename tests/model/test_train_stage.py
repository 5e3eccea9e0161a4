"""Training stage: learns a motion-only known answer, finds no leak without a cue, resumes exactly,
logs a complete MLflow run, and names bad input clearly."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from hypomimia.errors import UserError
from hypomimia.models import load_model
from hypomimia.models.metadata import verify_model
from hypomimia.stages.train import SimulatedCrash, run
from tests.helpers_train import make_tubes, tiny_train_config

KNOWN_ANSWER = {"subjects": 32, "videos_per_subject": 1, "frames": 24, "size": 32, "folds": 4}


@pytest.mark.slow
def test_learns_the_motion_only_cue_and_logs_to_mlflow(tmp_path):
    import mlflow
    from mlflow import MlflowClient

    tubes, ingest = make_tubes(tmp_path, cue="dynamic", **KNOWN_ANSWER)
    cfg = tiny_train_config(epochs=4, clips_per_video=8, bootstrap=500)
    uri = f"sqlite:///{tmp_path / 'mlflow' / 'mlflow.db'}"
    r = run(cfg, tubes, ingest, tmp_path / "train", tracking_uri=uri)

    subject = r.metrics["overall"]["subject"]
    assert subject["n"] == 8  # held-out subjects of fold 0
    assert subject["auroc"] >= 0.9 and subject["auroc_ci95"][0] > 0.5
    assert set(r.metrics["overall"]) == {"clip", "video", "subject"}
    assert json.loads(r.metrics_path.read_text())["overall"]["subject"]["auroc"] == subject["auroc"]

    loaded = load_model(r.model_path)
    meta = json.loads(r.metadata_path.read_text())
    verify_model(loaded.model, meta)
    assert "face_tubes" in meta  # the face-tube params the endpoint must extract with
    assert loaded.extra["temperature"] == pytest.approx(r.temperature)

    client = MlflowClient(uri)
    mrun = client.get_run(r.run_id)
    assert mrun.data.params["model.width"] == "0.125"
    assert {"data.tubes_digest", "git.commit"} <= set(mrun.data.tags)
    assert len(client.get_metric_history(r.run_id, "val_subject_auroc")) == 4
    assert mrun.data.metrics["test.overall.subject.auroc"] == pytest.approx(subject["auroc"])
    assert mrun.inputs.dataset_inputs[0].dataset.digest == mrun.data.tags["data.tubes_digest"]
    assert r.registered_version == "1"
    mlflow.set_tracking_uri(uri)
    logged = mlflow.pytorch.load_model(f"models:/{cfg.registered_model}/1")
    x = torch.rand(2, 3, 8, 32, 32)
    with torch.no_grad():
        assert torch.allclose(logged(x), loaded.model(x), atol=1e-5)


@pytest.mark.slow
def test_without_a_cue_it_stays_near_chance(tmp_path):
    tubes, ingest = make_tubes(tmp_path, cue="none", **KNOWN_ANSWER)
    r = run(
        tiny_train_config(epochs=3, clips_per_video=8, bootstrap=500),
        tubes,
        ingest,
        tmp_path / "train",
        tracking_uri="off",
    )
    subject = r.metrics["overall"]["subject"]
    assert subject["auroc_ci95"][0] < 0.5 < subject["auroc_ci95"][1]  # not distinguishable from chance


def _comparable(history: list[dict]) -> list[dict]:
    return [
        {k: v for k, v in row.items() if not k.startswith("train_s") and "per_s" not in k} for row in history
    ]


@pytest.mark.slow
def test_killed_mid_epoch_then_resumed_matches_an_uninterrupted_run(tmp_path):
    tubes, ingest = make_tubes(tmp_path, subjects=12, videos_per_subject=1, frames=20, size=32, folds=3)
    cfg = tiny_train_config(epochs=2, clips_per_video=4)  # 4 train subjects x 4 clips / 8 = 2 steps per epoch
    whole = run(cfg, tubes, ingest, tmp_path / "whole", tracking_uri="off")

    crashed = cfg.model_copy(update={"workers": 1})  # a different worker count must not change results
    with pytest.raises(SimulatedCrash):
        run(
            crashed, tubes, ingest, tmp_path / "killed", tracking_uri="off", crash_after_steps=3
        )  # mid epoch 2
    assert (tmp_path / "killed" / "checkpoints" / "last.pt").is_file()
    assert not (tmp_path / "killed" / "model.pt").exists()
    resumed = run(cfg, tubes, ingest, tmp_path / "killed", tracking_uri="off", resume=True)

    assert _comparable(resumed.history) == _comparable(whole.history)
    assert resumed.metrics["overall"] == whole.metrics["overall"]
    a, b = load_model(whole.model_path).model.state_dict(), load_model(resumed.model_path).model.state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)

    # resuming with other params is refused, --no-resume starts over
    with pytest.raises(UserError, match="different train params"):
        run(cfg.model_copy(update={"lr": 1e-2}), tubes, ingest, tmp_path / "killed", tracking_uri="off")
    # ... and so is resuming on other data: same video ids and params, other tube content
    other, _ = make_tubes(
        tmp_path / "other", subjects=12, videos_per_subject=1, frames=20, size=32, folds=3, seed=1
    )
    with pytest.raises(UserError, match="trained on other data"):
        run(cfg, other, ingest, tmp_path / "killed", tracking_uri="off")


def test_bad_inputs_are_named(tmp_path):
    tubes, ingest = make_tubes(tmp_path, subjects=6, videos_per_subject=1, frames=8, size=32, folds=3)
    with pytest.raises(UserError, match="no folds.parquet in"):
        run(tiny_train_config(), tubes, tmp_path / "nowhere", tmp_path / "out", tracking_uri="off")
    with pytest.raises(UserError, match="train.fold=5"):
        run(tiny_train_config(fold=5), tubes, ingest, tmp_path / "out", tracking_uri="off")
    (tubes / "tubes" / "S000_v0.npz").write_bytes(b"broken")
    with pytest.raises(UserError, match="S000_v0 is unreadable"):
        run(tiny_train_config(), tubes, ingest, tmp_path / "out", tracking_uri="off")


@pytest.mark.parametrize("head", ["regression", "ordinal"])
def test_severity_head_trains_on_the_shared_trunk(tmp_path, head):
    tubes, ingest = make_tubes(tmp_path, subjects=12, videos_per_subject=1, frames=16, size=32, folds=3)
    r = run(
        tiny_train_config(epochs=1, model={"severity_head": head}),
        tubes,
        ingest,
        tmp_path / "t",
        tracking_uri="off",
    )
    loaded = load_model(r.model_path)
    assert loaded.config.severity_head == head
    out = loaded.model.forward_all(torch.rand(1, 3, 8, 32, 32))
    assert out["severity"].shape == (1, {"regression": 1, "ordinal": 4}[head])
    assert np.isfinite(r.history[0]["train_loss"])


@pytest.mark.parametrize(
    ("select", "kept", "epochs_run"),
    [("best", 1, 2), ("last", 3, 3)],  # best: epoch 1's AUROC, early stop after patience 1; last: the end
)
def test_select_keeps_the_best_validation_epoch_or_the_last(tmp_path, monkeypatch, select, kept, epochs_run):
    """Validation AUROC that only falls (as 8 noisy subjects can): ``best`` keeps the first epoch and stops
    early; ``last`` keeps the schedule's end and trains every epoch. The kept weights are the model's."""
    from hypomimia.stages import train as train_stage

    falling = iter([(1.0, 0.5), (0.6, 0.6), (0.4, 0.7)])
    monkeypatch.setattr(train_stage, "subject_auroc_and_nll", lambda clips: next(falling))
    tubes, ingest = make_tubes(tmp_path, subjects=8, videos_per_subject=1, frames=16, size=32, folds=4)
    cfg = tiny_train_config(epochs=3, patience=1, select=select, log_model=False, registered_model="")
    r = run(cfg, tubes, ingest, tmp_path / "train", tracking_uri="off")
    assert (r.best_epoch, r.epochs_run, len(r.history)) == (kept, epochs_run, epochs_run)
    kept_state = torch.load(tmp_path / "train" / "checkpoints" / "best.pt", weights_only=True)
    assert kept_state["epoch"] == kept
