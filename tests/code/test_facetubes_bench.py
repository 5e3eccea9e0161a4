"""`make bench` facetubes module, quick mode: runs end to end and reports the issue's ratios."""

import pytest

from hypomimia.bench import facetubes as bench


@pytest.mark.slow
def test_quick_bench_reports_ratios_for_both_inputs(tmp_path):
    rows = bench.run(tmp_path, quick=True)
    got = {(r["name"], r["metric"]): r["value"] for r in rows}
    for name in ("facetubes/phantom", "facetubes/720p"):
        for metric in (
            "decode_fps",
            "naive_fps",
            "stage_w1_fps",
            "stage_w2_fps",
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
