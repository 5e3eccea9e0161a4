"""Face tubes on real third-party clips (read in place from ../shared/realfaces; skipped where absent)."""

import numpy as np
import pytest

from hypomimia.config.facetubes import FacetubesConfig
from hypomimia.faces.landmarks import eye_centres
from hypomimia.faces.tube import extract_tube, judge, plan_segments

pytestmark = pytest.mark.realfaces
CFG = FacetubesConfig(workers=1, max_seconds=3.0)


def test_clip_without_a_face_is_quarantined_no_face(realfaces_dir):
    tube = extract_tube(realfaces_dir / "feat_no_face.mp4", CFG)
    assert judge(tube, CFG)[0] == "no_face"
    assert tube.metrics["face_found_ratio"] == 0.0


def test_crowded_clip_with_scene_cuts_is_flagged_multi_face(realfaces_dir):
    tube = extract_tube(realfaces_dir / "fr_short_hamilton_clip.mp4", CFG)
    assert tube.metrics["multi_face"] is True
    assert tube.valid.any()


def test_vfr_clip_with_gaps_is_resampled_to_the_tube_rate(realfaces_dir):
    # 135 decoded frames at an average 22 fps over ~6.1 s; the first 3 s become exactly 75 tube frames
    tube = extract_tube(realfaces_dir / "vr_face_1.mp4", CFG)
    assert tube.fps == CFG.fps and len(tube.valid) == int(CFG.fps * CFG.max_seconds)
    assert tube.decoded_frames < len(tube.valid)  # frames were repeated across the gaps
    assert judge(tube, CFG) == ("", "")


@pytest.mark.parametrize("clip", ["feat_single_face.mp4", "st_WDA_AlexandriaOcasioCortez_000.mp4"])
def test_real_talking_heads_give_aligned_tubes(realfaces_dir, clip):
    tube = extract_tube(realfaces_dir / clip, CFG)
    assert judge(tube, CFG) == ("", "")
    right, left = eye_centres(tube.landmarks[tube.valid])
    d = left - right
    assert np.abs(np.degrees(np.arctan2(d[:, 1], d[:, 0]))).max() < 8  # smoothed box: small residual roll
    assert np.median(np.hypot(d[:, 0], d[:, 1])) == pytest.approx(CFG.inter_ocular * CFG.size, rel=0.1)
    assert tube.metrics["blur_mean"] > 10 and 30 < tube.metrics["brightness_mean"] < 230


@pytest.mark.parametrize("clip", ["feat_single_face.mp4", "lp_d20.mp4"])
def test_meshing_every_second_frame_stays_within_a_pixel_of_meshing_every_frame(realfaces_dir, clip):
    every = extract_tube(realfaces_dir / clip, CFG.model_copy(update={"mesh_every": 1}))
    second = extract_tube(realfaces_dir / clip, CFG.model_copy(update={"mesh_every": 2}))
    assert second.valid.all() and every.valid.all()
    err = np.linalg.norm(second.landmarks - every.landmarks, axis=-1)  # tube pixels (112-px tube)
    assert np.median(err) < 0.5 and np.percentile(err, 95) < 1.5
    assert np.abs(second.frames.astype(int) - every.frames.astype(int)).mean() < 2.0


@pytest.mark.parametrize("clip", ["feat_single_face.mp4", "lp_d20.mp4"])
def test_optical_flow_between_keyframes_stays_close_to_meshing_every_frame(realfaces_dir, clip):
    every = extract_tube(realfaces_dir / clip, CFG.model_copy(update={"mesh_every": 1}))
    flow = extract_tube(realfaces_dir / clip, CFG.model_copy(update={"between_keyframes": "flow"}))
    assert flow.work["flow_frames"] > 0 and flow.valid.all()
    err = np.linalg.norm(flow.landmarks - every.landmarks, axis=-1)
    assert np.median(err) < 0.5 and np.percentile(err, 95) < 1.5


def crop_corners(crop: np.ndarray, size: int) -> np.ndarray:
    """The tube's corners in source-frame pixels, per frame (``T×4×2``)."""
    square = np.array([[0, 0, 1], [size, 0, 1], [0, size, 1], [size, size, 1]], float)
    inv = np.array([np.linalg.inv(np.vstack([m, [0, 0, 1]]))[:2] for m in crop])
    return np.einsum("tij,kj->tki", inv, square)


@pytest.mark.parametrize(
    "clip", ["lp_d20.mp4", "st_WDA_AlexandriaOcasioCortez_000.mp4", "vr_face_1.mp4"]
)  # talking head with film grain, MPEG-4 Part 2, VFR with gaps
def test_segments_tracked_in_parallel_join_into_the_unsplit_tube(realfaces_dir, clip):
    cfg = FacetubesConfig(max_seconds=10.0, segments=3, segment_min_s=2.0)
    assert len(plan_segments(realfaces_dir / clip, cfg)) == 3
    # the same tracking rules (segments > 1: the mesh restarts at every check), one segment
    whole = extract_tube(realfaces_dir / clip, cfg.model_copy(update={"segment_min_s": 60.0}), workers=1)
    assert whole.work["segments"] == 1
    joined = extract_tube(realfaces_dir / clip, cfg, workers=2)
    assert joined.work["segments"] == 3
    assert len(joined.valid) == len(whole.valid) and (joined.valid == whole.valid).all()
    assert joined.decoded_frames == whole.decoded_frames  # the same source frames, each counted once
    ok = whole.valid
    assert np.abs(joined.landmarks[ok] - whole.landmarks[ok]).max() <= 0.5  # tube pixels
    assert np.abs(crop_corners(joined.crop, cfg.size) - crop_corners(whole.crop, cfg.size)).max() <= 0.5
    assert np.abs(joined.frames.astype(int) - whole.frames.astype(int)).mean() < 0.5
