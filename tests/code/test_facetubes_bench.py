"""`make bench` facetubes module, quick mode, through the bench's entry point: runs end to end,
reports the issue's ratios, and prints none of mediapipe's native log lines."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers_facetubes import native_noise

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_quick_bench_reports_ratios_for_both_inputs_and_is_quiet(tmp_path):
    env = {**os.environ, "PYTHONPATH": str(REPO / "src")}
    env.pop("HYPOMIMIA_NATIVE_LOGS", None)
    cmd = [sys.executable, "-m", "benchmarks", "--quick", "--only", "facetubes", "--out", str(tmp_path)]
    done = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=REPO, timeout=600, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    noise = native_noise(done.stdout + done.stderr)
    assert not noise, f"{len(noise)} native log lines, e.g. {noise[:2]}"
    rows = json.loads((tmp_path / "results.json").read_text())["rows"]
    got = {(r["name"], r["metric"]): r["value"] for r in rows}
    for name in ("facetubes/phantom", "facetubes/720p"):
        for metric in (
            "decode_fps",
            "naive_fps",
            "stage_w1_fps",
            "stage_w2_fps",
            "stage_w2warm_fps",
            "naive_vs_stage_warm",
            "mesh_calls",
            "floor_s",
            "stage_vs_floor",
            "naive_vs_stage",
            "w2_vs_w1",
        ):
            assert got[(name, metric)] > 0
        assert got[(name, "frames")] > 0
        assert got[(name, "identical_tubes")] >= 1  # 1- and 2-worker runs wrote the same bytes
    notes = {r["note"] for r in rows if r["metric"] == "rerun_s"}
    assert all(", 0 processed" in n for n in notes)  # the re-run was all cache hits
