"""Face tubes: the pure parts (resampling, alignment maths, smoothing, npz writing, cache key, metrics)."""

import math
import zipfile

import numpy as np
import pytest

from hypomimia.config.facetubes import FacetubesConfig
from hypomimia.data.video import Frame
from hypomimia.faces.landmarks import (
    LEFT_EYE_INNER,
    LEFT_EYE_OUTER,
    RIGHT_EYE_INNER,
    RIGHT_EYE_OUTER,
    eye_centres,
)
from hypomimia.faces.quality import hamming, head_pose_deg, phash
from hypomimia.faces.track import Box, align_params, apply_affine, tube_matrix, warp_face
from hypomimia.faces.tube import (
    Tube,
    _fill_gap,
    _fill_untracked,
    _Prefetch,
    _resample,
    _smooth_at,
    cache_key,
    judge,
    load_tube,
    save_tube,
)


def frames_at(times):
    return [Frame(i, t, np.full((2, 2, 3), i, np.uint8)) for i, t in enumerate(times)]


def test_resample_30_to_25_fps_keeps_duration():
    out = list(_resample(iter(frames_at([i / 30 for i in range(72)])), fps=25, tmax=1000))
    assert len(out) == 60  # 72 frames at 30 fps last 2.4 s = 60 frames at 25 fps
    for k, f in enumerate(out):  # each tube time gets the nearest source frame
        assert abs(f.time - k / 25) <= 1 / 60 + 1e-9


def test_resample_repeats_frames_across_a_vfr_gap():
    times = [0.0, 0.04, 0.08, 0.30, 0.34]  # a 0.22 s gap; the clip lasts 0.36 s = 9 frames at 25 fps
    out = [f.index for f in _resample(iter(frames_at(times)), fps=25, tmax=100)]
    assert out == [0, 1, 2, 2, 2, 3, 3, 3, 3]  # the gap is filled by the nearest frame on either side


def test_resample_stops_at_tmax_and_survives_backwards_timestamps():
    assert len(list(_resample(iter(frames_at([i / 25 for i in range(100)])), fps=25, tmax=10))) == 10
    out = list(_resample(iter(frames_at([0.0, 0.04, 0.02, 0.08])), fps=25, tmax=100))
    assert [f.time for f in out] == sorted(f.time for f in out)


def synthetic_landmarks(roll_deg: float, iod: float, centre=(100.0, 80.0)) -> np.ndarray:
    """478 points where only the eye corners and mouth corners matter for alignment."""
    lm = np.zeros((478, 3))
    local = {
        RIGHT_EYE_OUTER: (-0.7, 0), RIGHT_EYE_INNER: (-0.3, 0), LEFT_EYE_INNER: (0.3, 0), LEFT_EYE_OUTER: (0.7, 0),
        61: (-0.4, 1.0), 291: (0.4, 1.0),
    }  # fmt: skip
    a = math.radians(roll_deg)
    rot = np.array([[math.cos(a), -math.sin(a)], [math.sin(a), math.cos(a)]])
    for i, (x, y) in local.items():
        lm[i, :2] = np.array(centre) + rot @ (np.array([x, y]) * iod / 1.0)
    return lm


@pytest.mark.parametrize("roll", [-35.0, 0.0, 20.0])
def test_tube_matrix_levels_the_eyes_and_fixes_their_distance(roll):
    cfg = FacetubesConfig()
    lm = synthetic_landmarks(roll, iod=40.0)
    m = tube_matrix(align_params(lm[None])[0], cfg.size, cfg.inter_ocular)
    right, left = eye_centres(apply_affine(m, lm))
    assert abs(left[1] - right[1]) < 1e-6  # horizontal eye line
    assert left[0] > right[0]  # upright, not mirrored or upside down
    assert np.linalg.norm(left - right) == pytest.approx(cfg.inter_ocular * cfg.size)
    mouth = apply_affine(m, lm[[61, 291]]).mean(0)
    assert mouth[1] > left[1]  # mouth below the eyes
    assert ((right + left) / 2 + mouth)[0] / 2 == pytest.approx(cfg.size / 2)


def test_warp_face_antialiased_path_matches_plain_warp_on_smooth_images():
    y, x = np.mgrid[0:720, 0:1280]
    img = np.stack([(x / 5) % 255, (y / 3) % 255, np.full_like(x, 128)], -1).astype(np.uint8)
    m = tube_matrix(np.array([640.0, 360.0, math.log(150.0), 0.2]), 112, 0.32)  # 720p face shrunk ~4x
    import cv2

    plain = cv2.warpAffine(img, m, (112, 112), flags=cv2.INTER_LINEAR)
    smooth = warp_face(img, m, 112)
    assert smooth.shape == (112, 112, 3)
    assert np.abs(smooth.astype(int) - plain.astype(int))[8:-8, 8:-8, 2].max() <= 2  # flat channel unchanged


def test_antialiased_shrinks_keep_the_geometry_of_a_plain_resample():
    """Box-averaging by a whole factor must not shift the image: on slow waves (which averaging
    barely damp) the shrunk warp and window equal the plain bilinear ones within a few levels,
    where a shift of one source pixel would cost 10-30."""
    import cv2

    from hypomimia.faces.track import resize_antialiased

    y, x = np.mgrid[0:720, 0:1280]
    wave = lambda t: 128 + 100 * np.sin(2 * np.pi * t / 64)  # noqa: E731
    img = np.stack([wave(x), wave(y), wave(x + y)], -1).round().astype(np.uint8)
    for side in (150.0, 60.0):  # shrunk ~2.5x and ~6x
        m = tube_matrix(np.array([640.0, 360.0, math.log(side), 0.2]), 112, 0.32)
        plain = cv2.warpAffine(img, m, (112, 112), flags=cv2.INTER_LINEAR).astype(int)
        assert np.abs(warp_face(img, m, 112).astype(int) - plain)[8:-8, 8:-8].max() <= 8  # old code: 33
    part = img[100:800, 200:900]
    small = resize_antialiased(part, 256, 256).astype(int)
    plain = cv2.resize(part, (256, 256), interpolation=cv2.INTER_LINEAR).astype(int)
    assert np.abs(small - plain)[4:-4, 4:-4].max() <= 4


def test_smooth_at_ignores_untracked_rows_and_keeps_constants():
    p = np.tile(np.array([1.0, 2.0, 3.0, 0.1]), (7, 1))
    p[2] = 999  # an untracked row holds garbage
    valid = np.array([1, 1, 0, 1, 1, 1, 1], bool)
    assert np.allclose(_smooth_at(p, valid, 3, sigma=2.0), [1.0, 2.0, 3.0, 0.1])
    assert _smooth_at(p, np.zeros(7, bool), 3, sigma=2.0) is None
    assert np.allclose(_smooth_at(p, valid, 3, sigma=0.0), p[3])


def test_fill_untracked_copies_nearest_tracked_frame():
    a, b = np.ones((478, 2)), np.full((478, 2), 5.0)
    out = _fill_untracked([None, a, None, None, b])
    assert out.dtype == np.float32 and out.shape == (5, 478, 2)
    assert out[0, 0, 0] == 1 and out[2, 0, 0] == 1 and out[3, 0, 0] == 5


def test_fill_gap_interpolates_between_meshed_frames_and_drops_gaps_next_to_a_loss():
    settled = {}

    def settle(i, lm):
        settled[i] = lm

    a, b = np.zeros((478, 3)), np.full((478, 3), 3.0)
    _fill_gap(2, 5, a, b, settle)
    assert sorted(settled) == [3, 4]
    assert np.allclose(settled[3], 1.0) and np.allclose(settled[4], 2.0)
    settled.clear()
    _fill_gap(5, 8, b, None, settle)  # the face was lost somewhere in the gap
    assert settled == {6: None, 7: None}
    settled.clear()
    _fill_gap(-1, 0, None, a, settle)  # first frame: no gap
    assert settled == {}


def small_tube(n=4) -> Tube:
    rng = np.random.default_rng(0)
    return Tube(
        frames=rng.integers(0, 255, (n, 112, 112, 3), dtype=np.uint8),
        landmarks=rng.random((n, 478, 2), dtype=np.float32),
        valid=np.array([True] * (n - 1) + [False]),
        fps=25.0,
        metrics={},
        decoded_frames=n,
    )


def test_save_tube_is_byte_reproducible_and_loads_back(tmp_path):
    tube = small_tube()
    a, b = tmp_path / "a.npz", tmp_path / "b.npz"
    save_tube(a, tube, "ab" * 32)
    save_tube(b, tube, "ab" * 32)
    assert a.read_bytes() == b.read_bytes()
    with zipfile.ZipFile(a) as z:
        assert {i.date_time for i in z.infolist()} == {(1980, 1, 1, 0, 0, 0)}
    got = load_tube(a)
    assert np.array_equal(got["frames"], tube.frames) and got["frames"].dtype == np.uint8
    assert got["landmarks"].dtype == np.float32 and got["valid"].dtype == bool
    assert float(got["fps"]) == 25.0 and str(got["video_sha256"]) == "ab" * 32
    assert list(tmp_path.iterdir()) == [a, b] or sorted(tmp_path.iterdir()) == [a, b]  # no temp files left


def test_cache_key_tracks_tube_params_but_not_workers():
    cfg = FacetubesConfig()
    key = cache_key("0" * 64, cfg)
    assert key == cache_key("0" * 64, cfg.model_copy(update={"workers": 7}))
    assert key != cache_key("0" * 64, cfg.model_copy(update={"size": 224}))
    assert key != cache_key("1" * 64, cfg)


def test_judge_quarantine_reasons():
    cfg = FacetubesConfig(min_frames=3, min_face_ratio=0.5)
    tube = small_tube(4)
    assert judge(tube, cfg) == ("", "")
    tube.valid[:] = False
    assert judge(tube, cfg)[0] == "no_face"
    tube.valid[:2] = True
    assert judge(tube, cfg)[0] == "too_few_face_frames"


def test_phash_is_stable_and_separates_images():
    import cv2

    from hypomimia.doctor import sample_face_rgb

    rng = np.random.default_rng(1)
    img = cv2.cvtColor(sample_face_rgb(), cv2.COLOR_RGB2GRAY)
    other = cv2.GaussianBlur(rng.integers(0, 255, img.shape, dtype=np.uint8), (31, 31), 8)
    h = phash(img)
    assert len(h) == 16 and int(h, 16) >= 0
    noisy = np.clip(img + rng.normal(0, 2, img.shape), 0, 255).astype(np.uint8)
    assert hamming(h, phash(noisy)) <= 4
    assert hamming(h, phash(other)) > 10


def test_head_pose_recovers_a_known_yaw():
    lm = np.zeros((1, 478, 3))
    lm[0, RIGHT_EYE_OUTER], lm[0, LEFT_EYE_OUTER] = (-1, 0, 0), (1, 0, 0)
    lm[0, 10], lm[0, 152] = (0, -1.5, 0), (0, 1.5, 0)  # forehead, chin
    a = math.radians(20)
    yaw_rot = np.array([[math.cos(a), 0, math.sin(a)], [0, 1, 0], [-math.sin(a), 0, math.cos(a)]])
    turned = lm @ yaw_rot.T
    (y0, p0, r0), (y1, p1, r1) = head_pose_deg(lm)[0], head_pose_deg(turned)[0]
    assert abs(abs(y1 - y0) - 20) < 1e-6 and abs(p1 - p0) < 1e-6 and abs(r1 - r0) < 1e-6


def test_box_iou():
    assert Box(0, 0, 10, 10).iou(Box(0, 0, 10, 10)) == 1.0
    assert Box(0, 0, 10, 10).iou(Box(20, 20, 30, 30)) == 0.0


def test_prefetch_passes_items_and_errors_through():
    assert list(_Prefetch(iter(range(50)), depth=2)) == list(range(50))

    def broken():
        yield 1
        raise ValueError("bad frame")

    it = _Prefetch(broken())
    assert next(it) == 1
    with pytest.raises(ValueError, match="bad frame"):
        next(it)
    early = _Prefetch(iter(range(1000)), depth=2)
    next(early)
    early.close()  # stopping early must not hang the producer thread


def test_iter_frames_from_a_start_time_equals_the_tail_of_a_full_decode(tmp_path):
    from hypomimia.data.video import iter_frames
    from tests.helpers_facetubes import moving_face, write_clip

    clip = write_clip(tmp_path / "c.mp4", moving_face(60, size=(64, 64)))
    full = [(f.time, f.rgb) for f in iter_frames(clip)]
    for start in (0.5, 0.52, 1.9):
        part = [(f.time, f.rgb) for f in iter_frames(clip, start_s=start)]
        first = max(i for i, (t, _) in enumerate(full) if t <= start + 1e-9)  # the frame on screen at start
        assert [t for t, _ in part] == [t for t, _ in full[first:]]
        assert all(np.array_equal(a, b) for (_, a), (_, b) in zip(part, full[first:], strict=True))


def test_plan_segments_depends_on_the_clip_and_params_only(tmp_path):
    from hypomimia.faces.tube import plan_segments
    from tests.helpers_facetubes import write_clip

    clip = write_clip(tmp_path / "c.mp4", [np.zeros((32, 32, 3), np.uint8)] * 250)  # 10 s at 25 fps
    cfg = FacetubesConfig(segments=2, segment_min_s=4.0, max_seconds=10.0)
    assert plan_segments(clip, cfg) == [(0, 125), (125, None)]
    assert plan_segments(clip, cfg.model_copy(update={"workers": 1})) == plan_segments(clip, cfg)
    assert plan_segments(clip, cfg.model_copy(update={"segments": 1})) == [(0, None)]
    assert plan_segments(clip, cfg.model_copy(update={"max_seconds": 6.0})) == [(0, None)]  # 2 x 3 s < 4 s
    assert len(plan_segments(clip, cfg.model_copy(update={"segments": 4, "segment_min_s": 2.0}))) == 4


def test_flow_follows_a_shifted_face_and_gives_up_on_another_image():
    from hypomimia.faces.track import FaceTracker
    from tests.helpers_facetubes import moving_face

    frames = list(moving_face(4, size=(256, 256)))
    shifted = np.roll(frames[0], 3, axis=1)  # the whole picture 3 px to the right
    cfg = FacetubesConfig(between_keyframes="flow")
    with FaceTracker(cfg) as tracker:
        key = tracker.track(frames[0], 0)
        assert key is not None and tracker.has_keyframe
        moved = tracker.follow(shifted)
        assert moved is not None
        shift = moved[:, :2] - key[:, :2]
        assert np.median(shift[:, 0]) == pytest.approx(3.0, abs=0.2) and np.median(np.abs(shift[:, 1])) < 0.2
        noise = np.random.default_rng(0).integers(0, 255, frames[0].shape, dtype=np.uint8)
        assert tracker.follow(noise) is None  # forward-backward check fails: the caller meshes instead
        assert tracker.stats.flow_frames == 1 and tracker.stats.flow_fallbacks == 1
