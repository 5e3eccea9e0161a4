"""Kill `hypomimia train` with SIGKILL mid-epoch (no cleanup, as when a node dies), resume it, and get
exactly the numbers and weights of an uninterrupted run with the same seed."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys

import pytest
import torch
import yaml

from hypomimia.config import load_params
from hypomimia.models import load_model
from hypomimia.stages.train import run
from tests.helpers_train import make_tubes, tiny_train_config

pytestmark = pytest.mark.slow


def _train_cli(params, tubes, ingest, out, env=None) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "hypomimia", "train", "--params", str(params), "--tubes", str(tubes),
           "--ingest", str(ingest), "--out", str(out), "--tracking-uri", "off"]  # fmt: skip
    return subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, **(env or {})}, timeout=600)


def test_sigkilled_mid_epoch_then_resumed_matches_an_uninterrupted_run(tmp_path, repo_root):
    tubes, ingest = make_tubes(tmp_path, subjects=12, videos_per_subject=1, frames=20, size=32, folds=3)
    cfg = tiny_train_config(epochs=2, clips_per_video=8)  # 4 train subjects x 8 clips / 8 = 4 steps per epoch
    whole = run(cfg, tubes, ingest, tmp_path / "whole", tracking_uri="off")

    params = load_params(repo_root / "params.yaml").model_dump(mode="json", by_alias=True)
    params["train"] = cfg.model_dump(mode="json")
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    killed = _train_cli(
        tmp_path / "params.yaml", tubes, ingest, tmp_path / "killed", {"HYPOMIMIA_KILL_AT_STEP": "6"}
    )
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-2000:]  # died in epoch 2 of 2
    assert (tmp_path / "killed" / "checkpoints" / "last.pt").is_file()  # epoch 1 was saved
    assert not (tmp_path / "killed" / "model.pt").exists()

    resumed = _train_cli(tmp_path / "params.yaml", tubes, ingest, tmp_path / "killed")
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert "resuming after epoch 1" in " ".join((resumed.stdout + resumed.stderr).split())
    got = json.loads((tmp_path / "killed" / "metrics.json").read_text())
    assert got["overall"] == json.loads(whole.metrics_path.read_text())["overall"]
    a, b = (
        load_model(whole.model_path).model.state_dict(),
        load_model(tmp_path / "killed" / "model.pt").model.state_dict(),
    )
    assert all(torch.equal(a[k], b[k]) for k in a)
