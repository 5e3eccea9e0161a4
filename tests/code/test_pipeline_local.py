"""The whole DAG on this machine with kfp.local: end to end, cached re-run, the gate, parity with dvc repro.

One smoke-size run (6 phantom subjects, 1 epoch) is shared by the tests of this module.
"""

import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml

from hypomimia.config import load_params
from hypomimia.data.video import iter_frames, write_mp4
from hypomimia.errors import GateFailed
from hypomimia.pipeline_runner import SMOKE_OVERRIDES, apply_overrides, run_local

pytestmark = pytest.mark.slow

STAGE_TASKS = [
    "phantom",
    "ingest",
    "facetubes-shard",
    "facetubes-shard",
    "facetubes",
    "voice-shard",
    "voice-shard",
    "voice",
    "validate",
    "train",
    "explain",
    "evaluate-fit",
    "evaluate",
]  # fmt: skip  (smoke: not blessed, so no promote)


@pytest.fixture(scope="module")
def smoke(repo_root):
    return apply_overrides(load_params(repo_root / "params.yaml"), SMOKE_OVERRIDES)


@pytest.fixture(scope="module")
def first_run(smoke, tmp_path_factory, repo_root):
    root = tmp_path_factory.mktemp("kfp")
    result = run_local(smoke, root, tracking_uri="off", log_file=root / "first.log", repo=repo_root)
    return root, result


def executed_and_cached(log: Path) -> tuple[list[str], list[str]]:
    """Task names that ran and that were served from the cache, from kfp.local's log."""
    text = log.read_text(encoding="utf-8", errors="replace")
    plain = text.replace("\x1b[96m", "").replace("\x1b[0m", "")
    executed = sorted(
        line.split("Executing task '")[1].split("'")[0]
        for line in plain.splitlines()
        if "Executing task '" in line
    )
    cached = sorted(
        line.split("Task ")[1].split(" cache hit")[0] for line in plain.splitlines() if " cache hit " in line
    )
    return executed, cached


def test_local_dag_runs_end_to_end(first_run):
    root, run = first_run
    executed, cached = executed_and_cached(root / "first.log")
    assert executed == sorted(STAGE_TASKS) and cached == []
    tubes = pd.read_parquet(run.tubes / "tubes.parquet")
    assert (tubes["status"] == "accepted").sum() == 6
    summary = json.loads((run.validation / "summary.json").read_text())
    assert summary["success"] is True and summary["checkpoints"]["voice"]["evaluated"] > 0
    assert (run.model / "model.pt").is_file() and (run.model / "metadata.json").is_file()
    voice = pd.read_parquet(run.voice / "voice.parquet")
    assert sorted(voice["video_id"]) == sorted(tubes["video_id"])  # every accepted video, audio or not


def test_second_run_with_nothing_changed_is_served_from_the_cache(first_run, smoke, repo_root):
    root, run = first_run
    again = run_local(smoke, root, tracking_uri="off", log_file=root / "second.log", repo=repo_root)
    executed, cached = executed_and_cached(root / "second.log")
    assert executed == [] and cached == sorted(STAGE_TASKS)
    assert (again.tubes, again.validation, again.voice) == (run.tubes, run.validation, run.voice)


def _slow_camera(video: Path) -> None:
    """Re-record a clip at 6 fps (a misconfigured webcam): ingest accepts it, the gate's fps range does not."""
    frames = [f.rgb for f in iter_frames(video)][::4]
    write_mp4(video, frames, fps=6, crf=20)


def test_broken_input_stops_the_dag_at_the_gate(first_run, smoke, tmp_path, repo_root):
    root, _ = first_run
    broken = tmp_path / "study"
    shutil.copytree(next(root.glob("*/phantom/videos")), broken)
    _slow_camera(broken / "videos" / "ph_s000_v00.mp4")
    params = apply_overrides(smoke, [f"pipeline.data_uri={broken}"])

    with pytest.raises(GateFailed, match="ingest.fps_in_range"):
        run_local(params, root, tracking_uri="off", log_file=root / "broken.log", repo=repo_root)

    executed, cached = executed_and_cached(root / "broken.log")
    assert "validate" in executed and "gate-failed" in executed
    assert "train" not in executed + cached  # nothing downstream of the gate ran


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _canonical_sha(data: dict) -> str:
    return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()


def _verdicts(validation: Path) -> str:
    """summary.json without its timings (wall-clock seconds differ between any two runs) and without
    its provenance, which names where the inputs came from (a DVC-tracked checkout vs a KFP run root:
    different paths and data versions by design); the params hash must still agree."""
    summary = json.loads((validation / "summary.json").read_text())
    summary.pop("timings_s", None)
    prov = summary.pop("provenance", {})
    return _canonical_sha({**summary, "params_sha256": prov.get("params_sha256")})


def _reference_stats(validation: Path) -> str:
    """reference_stats.json without the provenance of ingested.parquet, which records absolute video
    paths (docs/data-format.md: abs_path) and so differs by design between two checkouts."""
    stats = json.loads((validation / "reference_stats.json").read_text())
    stats.pop("data_id", None)
    stats.get("inputs", {}).pop("ingested.parquet", None)
    return _canonical_sha(stats)


def test_dvc_repro_reproduces_the_local_run(first_run, smoke, tmp_path, repo_root):
    """dvc repro (one process per stage, unsharded) writes the same tubes, voice table and verdicts as the KFP run."""
    _, run = first_run
    work = tmp_path / "repo"
    dvc_yaml = yaml.safe_load((repo_root / "dvc.yaml").read_text())
    for stage in dvc_yaml["stages"].values():
        for dep in stage["deps"]:
            src = repo_root / dep
            if src.is_dir():
                shutil.copytree(
                    src, work / dep, dirs_exist_ok=True, ignore=shutil.ignore_patterns("__pycache__")
                )
            elif src.is_file():
                (work / dep).parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(src, work / dep)
    shutil.copy2(repo_root / "dvc.yaml", work / "dvc.yaml")
    (work / "params.yaml").write_text(yaml.safe_dump(smoke.to_yaml_dict(), sort_keys=False))
    env = {
        **os.environ,
        "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}",
        "DVC_NO_ANALYTICS": "1",
    }
    dvc = [sys.executable, "-m", "dvc"]
    subprocess.run([*dvc, "init", "--no-scm", "-q"], cwd=work, env=env, check=True, timeout=60)
    # The data source enters DVC as data.dvc (what `make demo` does), not as a stage.
    phantom = [
        sys.executable,
        "-m",
        "hypomimia",
        "phantom",
        "--params",
        "params.yaml",
        "--out",
        "data/phantom",
    ]
    subprocess.run(phantom, cwd=work, env=env, check=True, timeout=600, capture_output=True)
    subprocess.run([*dvc, "add", "-q", "data"], cwd=work, env=env, check=True, timeout=120)
    done = subprocess.run(
        [*dvc, "repro", "validate"], cwd=work, env=env, capture_output=True, text=True, timeout=600
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]

    kfp_videos = next(run.tubes.parents[1].glob("phantom/videos"))  # same run folder as the tubes
    clips = sorted(p.relative_to(kfp_videos) for p in kfp_videos.rglob("*.mp4"))
    assert clips and [_sha(work / "data" / "phantom" / c) for c in clips] == [
        _sha(kfp_videos / c) for c in clips
    ]
    dvc_tubes, kfp_tubes = work / "work" / "facetubes", run.tubes
    names = sorted(p.name for p in (kfp_tubes / "tubes").glob("*.npz"))
    assert names and names == sorted(p.name for p in (dvc_tubes / "tubes").glob("*.npz"))
    assert [_sha(dvc_tubes / "tubes" / n) for n in names] == [_sha(kfp_tubes / "tubes" / n) for n in names]
    assert _sha(dvc_tubes / "tubes.parquet") == _sha(kfp_tubes / "tubes.parquet")
    assert _sha(work / "work" / "voice" / "voice.parquet") == _sha(run.voice / "voice.parquet")
    dvc_val, kfp_val = work / "work" / "validate", run.validation
    assert _verdicts(dvc_val) == _verdicts(kfp_val)
    assert _reference_stats(dvc_val) == _reference_stats(kfp_val)
