"""Face tubes end to end on tiny synthetic clips: alignment, multi-face, VFR, rotation, quarantine,
determinism, cache, atomic writes, shards, CLI. One stage run is shared by most tests (module fixture)."""

import hashlib
import json
import math
import shutil

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from hypomimia.config.facetubes import FacetubesConfig
from hypomimia.errors import UserError
from hypomimia.faces.landmarks import eye_centres
from hypomimia.faces.tube import load_tube, tube_params
from hypomimia.stages import facetubes
from tests.helpers_facetubes import (
    BACKGROUND,
    make_ingested,
    moving_face,
    set_display_rotation,
    write_clip,
    write_vfr,
)

CFG = FacetubesConfig(workers=1, max_seconds=4.0)
VFR_TIMES = [
    round(i * 0.04 + (0.12 if i >= 15 else 0.0), 3) for i in range(30)
]  # a 0.16 s gap after frame 14


def digest(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    """Seven tiny clips, their ingest table, and one stage run over them."""
    d = tmp_path_factory.mktemp("facetubes")
    half_face = list(moving_face(12)) + [np.full((256, 256, 3), BACKGROUND, np.uint8)] * 18
    upright_rotated_ccw = [np.ascontiguousarray(np.rot90(f, 1)) for f in moving_face(30)]
    videos = {
        "upright": write_clip(d / "upright.mp4", moving_face(30)),
        "rolled": write_clip(d / "rolled.mp4", moving_face(30, roll_deg=25)),
        "two_faces": write_clip(d / "two_faces.mp4", moving_face(30, size=(384, 256), second_face=True)),
        "vfr": write_vfr(d / "vfr.mp4", list(moving_face(30)), VFR_TIMES),
        # pixels stored sideways + a display matrix that turns them upright, as phones do
        "rotated": set_display_rotation(write_clip(d / "rotated.mp4", upright_rotated_ccw), 90),
        "empty": write_clip(d / "empty.mp4", [np.full((256, 256, 3), BACKGROUND, np.uint8)] * 20),
        "half_face": write_clip(d / "half_face.mp4", half_face),
    }
    ingest = make_ingested(d / "ingest", videos)
    result = facetubes.run(CFG, ingest, d / "out", d / "cache")
    return {"dir": d, "ingest": ingest, "result": result, "rows": result.tubes.set_index("video_id")}


def tube_of(study, video_id):
    return load_tube(study["dir"] / "out" / study["rows"].loc[video_id, "tube"])


def test_every_listed_video_is_accounted_for(study):
    r = study["result"]
    assert sorted(r.tubes["video_id"]) == sorted(
        ["upright", "rolled", "two_faces", "vfr", "rotated", "empty", "half_face"]
    )
    assert list(r.tubes.columns) == list(facetubes.TUBE_COLUMNS)
    assert r.report["accepted"] + r.report["quarantined"] == r.report["listed"] == 7
    for row in r.tubes[r.tubes["status"] == "accepted"].itertuples():
        z = load_tube(study["dir"] / "out" / row.tube)
        t = row.n_frames
        assert z["frames"].shape == (t, 112, 112, 3) and z["frames"].dtype == np.uint8
        assert z["landmarks"].shape == (t, 478, 2) and z["valid"].shape == (t,)
        assert str(z["video_sha256"]) == row.sha256
    on_disk = json.loads((study["dir"] / "out" / "report.json").read_text())
    assert on_disk["cache_hits"] == 0 and on_disk["processed"] == 7
    assert on_disk["params"] == tube_params(CFG)  # what a model records, so serving tubes alike


def test_faceless_clips_are_quarantined_with_a_reason(study):
    rows = study["rows"]
    assert rows.loc["empty", ["status", "reason", "tube"]].tolist() == ["quarantined", "no_face", ""]
    assert rows.loc["half_face", "reason"] == "too_few_face_frames"
    assert 0.3 < rows.loc["half_face", "face_found_ratio"] < 0.6
    assert study["result"].report["reasons"] == {"no_face": 1, "too_few_face_frames": 1}
    assert not (study["dir"] / "out" / "tubes" / "empty.npz").exists()


def test_quality_metrics_are_filled_for_accepted_tubes(study):
    acc = study["result"].tubes.query("status == 'accepted'")
    assert len(acc) == 5
    assert (acc["face_found_ratio"] >= 0.9).all()
    assert (
        acc[["face_size_mean", "blur_mean", "brightness_mean", "yaw_range", "roll_range"]].notna().all().all()
    )
    assert acc["brightness_mean"].between(30, 230).all()
    assert acc["mean_frame_phash"].str.fullmatch(r"[0-9a-f]{16}").all()


def test_rolled_face_is_levelled_and_scaled(study):
    z = tube_of(study, "rolled")
    right, left = eye_centres(z["landmarks"][z["valid"]])
    d = left - right
    angles = np.degrees(np.arctan2(d[:, 1], d[:, 0]))
    assert np.abs(angles).max() <= 3.0
    iod = np.hypot(d[:, 0], d[:, 1])
    assert np.allclose(iod, CFG.inter_ocular * CFG.size, rtol=0.1)
    assert study["rows"].loc["rolled", "roll_range"] < 5  # the input roll is constant


def test_two_faces_flagged_and_the_larger_one_followed(study):
    rows = study["rows"]
    assert bool(rows.loc["two_faces", "multi_face"]) and not bool(rows.loc["upright", "multi_face"])
    # the big face is 0.8 of the frame height, the small one 0.45: the followed face's size tells them apart
    expected_big = rows.loc["upright", "face_size_mean"] * (0.8 / 0.9) * math.sqrt(256 / 384)
    assert rows.loc["two_faces", "face_size_mean"] == pytest.approx(expected_big, rel=0.15)


def test_vfr_clip_is_resampled_to_the_tube_rate(study):
    row = study["rows"].loc["vfr"]
    duration = VFR_TIMES[-1] + 0.04
    assert row["fps"] == CFG.fps
    assert row["n_frames"] == round(duration * CFG.fps)  # 1.4 s -> 35 frames, not the 30 decoded


def test_rotated_video_gives_the_upright_tube(study):
    a, b = tube_of(study, "rotated"), tube_of(study, "upright")
    assert b["valid"].all() and a["valid"].all()
    diff = np.abs(a["frames"].astype(int) - b["frames"].astype(int)).mean()
    assert diff < 12  # same face, same alignment; only codec noise differs


def test_rerun_with_unchanged_params_does_no_work(study, monkeypatch):
    def no_work(*a, **k):
        raise AssertionError("a cached video was processed again")

    monkeypatch.setattr(facetubes, "track_segment_or_failure", no_work)
    again = facetubes.run(CFG, study["ingest"], study["dir"] / "out", study["dir"] / "cache")
    assert again.report["cache_hits"] == 7 and again.report["processed"] == 0
    pd.testing.assert_frame_equal(again.tubes, study["result"].tubes)


def test_tubes_are_identical_across_runs(study, tmp_path):
    ids = ["rolled", "two_faces"]
    rows = pd.read_parquet(study["ingest"] / "ingested.parquet")
    (tmp_path / "ingest").mkdir()
    rows[rows["video_id"].isin(ids)].to_parquet(tmp_path / "ingest" / "ingested.parquet")
    fresh = facetubes.run(CFG, tmp_path / "ingest", tmp_path / "out")  # own, empty cache
    assert fresh.report["processed"] == 2
    for v in ids:
        assert digest(tmp_path / "out" / "tubes" / f"{v}.npz") == digest(
            study["dir"] / "out" / "tubes" / f"{v}.npz"
        )


def test_two_workers_give_the_same_table_and_tube_bytes(study, tmp_path):
    """This process and a helper process share the videos; who tracked what must not show."""
    from hypomimia.faces.parallel import _ready, shared_helpers
    from hypomimia.faces.tube import warm_helper

    # the stage's own helper, warm: it takes videos at once
    assert shared_helpers(1, warm_helper).pool().submit(_ready).result(timeout=120)
    two = facetubes.run(CFG.model_copy(update={"workers": 2}), study["ingest"], tmp_path / "out")
    assert two.report["processed"] == 7
    pd.testing.assert_frame_equal(two.tubes, study["result"].tubes)
    for rel in two.tubes.loc[two.tubes["tube"] != "", "tube"]:
        assert digest(tmp_path / "out" / rel) == digest(study["dir"] / "out" / rel)


def test_killed_write_leaves_nothing_that_counts_as_done(study, tmp_path, monkeypatch):
    rows = pd.read_parquet(study["ingest"] / "ingested.parquet")
    (tmp_path / "ingest").mkdir()
    rows[rows["video_id"] == "upright"].to_parquet(tmp_path / "ingest" / "ingested.parquet")
    cache = tmp_path / "cache"
    real_write = np.lib.format.write_array

    def dies_mid_tube(fp, array, *a, **k):
        if array.dtype == np.float32:  # frames written, landmarks not: the process "is killed"
            raise KeyboardInterrupt
        return real_write(fp, array, *a, **k)

    monkeypatch.setattr(np.lib.format, "write_array", dies_mid_tube)
    with pytest.raises(KeyboardInterrupt):
        facetubes.run(CFG, tmp_path / "ingest", tmp_path / "out", cache)
    assert list(cache.iterdir()) == [] and list((tmp_path / "out" / "tubes").iterdir()) == []
    (cache / ".stray.npz.123.tmp").write_bytes(b"half a tube")  # what a SIGKILL could leave behind

    monkeypatch.setattr(np.lib.format, "write_array", real_write)
    done = facetubes.run(CFG, tmp_path / "ingest", tmp_path / "out", cache)
    assert done.report["processed"] == 1 and done.report["cache_hits"] == 0 and done.accepted == 1


def test_shards_gather_to_the_same_table(study, tmp_path):
    cache = study["dir"] / "cache"  # warm: shards only link tubes
    parts = [facetubes.run(CFG, study["ingest"], tmp_path / f"shard{i}", cache, i, 3) for i in range(3)]
    assert sum(len(p.tubes) for p in parts) == 7
    merged = facetubes.gather([tmp_path / f"shard{i}" for i in range(3)], tmp_path / "all")
    pd.testing.assert_frame_equal(merged.tubes, study["result"].tubes)
    assert digest(tmp_path / "all" / "tubes" / "upright.npz") == digest(
        study["dir"] / "out" / "tubes" / "upright.npz"
    )
    assert merged.report["accepted"] == 5 and merged.report["cache_hits"] == 7


def test_bad_inputs_are_user_errors(tmp_path):
    with pytest.raises(UserError, match="no ingested.parquet"):
        facetubes.run(CFG, tmp_path, tmp_path / "out")
    pd.DataFrame({"video_id": ["a"]}).to_parquet(tmp_path / "ingested.parquet")
    with pytest.raises(UserError, match="lacks columns"):
        facetubes.run(CFG, tmp_path, tmp_path / "out")
    with pytest.raises(UserError, match="shard"):
        facetubes.run(CFG, tmp_path, tmp_path / "out", shard_index=2, num_shards=2)


def test_cli_prints_cache_hits(study, tmp_path, repo_root):
    from hypomimia.cli import _app

    params = tmp_path / "params.yaml"
    params.write_text(f"facetubes: {json.dumps(CFG.model_dump(mode='json'))}\n")
    out = tmp_path / "out"
    args = [
        "facetubes",
        "--ingest",
        str(study["ingest"]),
        "--out",
        str(out),
        "--cache",
        str(study["dir"] / "cache"),
    ]
    res = CliRunner().invoke(_app, [*args, "--params", str(params)])
    assert res.exit_code == 0, res.output
    said = " ".join(res.output.split())  # rich wraps long lines
    assert "cache hits 7, processed 0" in said and "5 tubes, 2 quarantined" in said
    assert (out / "tubes.parquet").is_file()
    shutil.rmtree(out)
