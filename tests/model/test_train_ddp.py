"""DDP: `torchrun --nproc_per_node 2 -m hypomimia train` on CPU (gloo) completes, ranks agree, rank 0 writes."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.helpers_train import make_tubes, tiny_train_config


@pytest.mark.slow
def test_torchrun_two_cpu_processes(tmp_path):
    tubes, ingest = make_tubes(tmp_path, subjects=12, videos_per_subject=1, frames=20, size=32, folds=3)
    cfg = tiny_train_config(epochs=1, bootstrap=0)
    params = tmp_path / "params.yaml"
    params.write_text(yaml.safe_dump({"train": cfg.model_dump(mode="json")}))
    out = tmp_path / "train"
    torchrun = Path(sys.executable).with_name("torchrun")
    proc = subprocess.run(
        [
            str(torchrun),
            "--standalone",
            "--nproc_per_node",
            "2",
            "-m",
            "hypomimia",
            "--log-json",
            "train",
            "--tubes",
            str(tubes),
            "--ingest",
            str(ingest),
            "--out",
            str(out),
            "--params",
            str(params),
            "--tracking-uri",
            "off",
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    log = proc.stdout + proc.stderr
    assert proc.returncode == 0, log[-3000:]
    ranks = dict(re.findall(r"rank (\d)/2: test subject AUROC ([0-9.]+|nan)", log))
    assert set(ranks) == {"0", "1"}, log[-3000:]
    assert ranks["0"] == ranks["1"]  # both ranks gathered the same predictions
    assert (out / "model.pt").is_file() and (out / "metrics.json").is_file()
    assert sorted(p.name for p in (out / "checkpoints").iterdir()) == ["best.pt", "last.pt"]
    assert not list(out.rglob("*.tmp"))
