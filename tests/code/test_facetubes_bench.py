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
            "stage_vs_decode",
            "naive_vs_stage",
        ):
            assert got[(name, metric)] > 0
        assert got[(name, "frames")] > 0
    notes = {r["note"] for r in rows if r["metric"] == "rerun_s"}
    assert all(", 0 processed" in n for n in notes)  # the re-run was all cache hits
