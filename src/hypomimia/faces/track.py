"""Find, track and align one face per video: MediaPipe face detection + FaceMesh in tracking mode.

How a video is tracked (``FaceTracker.track`` is called once per tube frame, in time order):

1. **Detect.** MediaPipe face detection (full-range model) runs on the whole frame, downscaled to
   ``detect_max_side``, when no face is tracked (first frame, after a loss) and every
   ``detect_every_s`` seconds. It counts faces (``multi_face``) and picks the *target face*.
2. **Window.** FaceMesh runs on a square *window* around the target (2x its box), cut from the
   full-resolution frame and downscaled to ``mesh_max_side``. This gives the mesh a large face even in
   720p video (better landmarks than meshing a whole downscaled frame), keeps the other faces of a
   multi-face video out of its view, and keeps the mesh's input small (FaceMesh is the slowest step).
3. **Track.** FaceMesh in video (tracking) mode follows the face from keyframe to keyframe without
   running its detector. It runs on every ``mesh_every``-th tube frame only (``track``): FaceMesh is
   the slowest step. Between keyframes ``follow`` moves the last keyframe's landmarks by pyramidal
   Lucas-Kanade optical flow (or the caller interpolates, ``between_keyframes: linear``). When the
   face drifts towards the window edge or changes size, the window is re-cut
   around the latest landmarks and the mesh restarts (its tracking state is in window coordinates).
   When the mesh loses the face, the next frame re-detects on the whole frame (a *tracking loss*);
   after two frames without a face, detection backs off to every ``LOST_RETRY``-th frame.
4. **Flow.** ``follow`` tracks every landmark from the keyframe to the current frame in a grey
   window around the face (``FLOW_SIDE`` pixels, about the tube's scale) and back again. A landmark
   whose forward-backward error exceeds ``flow_fb_max_px`` is lost and takes the median motion of
   the others; when more than ``FLOW_MAX_LOST`` of them are lost (a blink the flow cannot follow, a
   fast turn, an occlusion) ``follow`` returns None and the caller meshes that frame instead.

Every schedule is on the tube-frame grid (keyframes at ``k % mesh_every == 0``, detections at the
first keyframe of each ``detect_every_s``), and with ``segments`` > 1 each detection check re-cuts
the window (snapped to a grid) and restarts the mesh, so a tracker started at any frame of a video
falls into step with one that ran from its start at the first check: that is what lets a video be
tracked in segments (``faces.tube``) and give the same tube. Unsegmented (``segments: 1``), a check
restarts the mesh only when the snapped window moves: a restart costs a FaceMesh detector run.

Target face when several are present: the **largest** detected box (default), or the one nearest the
frame centre (``target_face: central``). A periodic detection switches the target only when another
face is clearly larger (``SWITCH_MARGIN``), so two similar faces do not make the tube flicker.

Alignment: each frame gets a similarity transform (rotation that makes the eye line horizontal, scale
that makes the inter-ocular distance ``inter_ocular * size``, centre between the eyes and the mouth).
Its parameters are smoothed over time with a centred Gaussian, so the crop box does not jitter and
does not lag behind the head.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field

import cv2
import numpy as np

from hypomimia.config.facetubes import FacetubesConfig
from hypomimia.faces.landmarks import MOUTH_LEFT, MOUTH_RIGHT, N_LANDMARKS, eye_centres

WINDOW_SCALE = 2.0  # window side / face box side: room for the head to move between re-cuts
RECUT_SHIFT = 0.15  # re-cut when the face centre is this far (fraction of window side) from the window centre
RECUT_SIZE = (0.35, 0.65)  # ... or when face box side / window side leaves this range
LOST_RETRY = (
    5  # with no face for 2+ frames, detection runs on every 5th frame only (faceless stretches are cheap)
)
SWITCH_MARGIN = 1.3  # another face must be this much larger (box side) to take over as target
CENTRE_Y = 0.5  # the point between eyes and mouth sits at the tube centre
FLOW_SIDE = 160  # side of the grey window the flow runs in: the face spans ~110 px, about the tube's scale
FLOW_MARGIN = 1.4  # flow window side / landmark box side
FLOW_WIN = 11  # Lucas-Kanade window (pixels of the flow window)
FLOW_LEVELS = 2  # pyramid levels above the base: motions up to ~4 * FLOW_WIN px between keyframe and frame
FLOW_MAX_LOST = 0.1  # more landmarks than this lost -> the frame is meshed instead
_LK_CRITERIA = (cv2.TERM_CRITERIA_COUNT | cv2.TERM_CRITERIA_EPS, 20, 0.03)


@dataclass(frozen=True)
class Box:
    """Axis-aligned face box in full-frame pixels."""

    x0: float
    y0: float
    x1: float
    y1: float

    @property
    def centre(self) -> tuple[float, float]:
        return (self.x0 + self.x1) / 2, (self.y0 + self.y1) / 2

    @property
    def side(self) -> float:
        return max(self.x1 - self.x0, self.y1 - self.y0)

    def iou(self, other: Box) -> float:
        w = max(0.0, min(self.x1, other.x1) - max(self.x0, other.x0))
        h = max(0.0, min(self.y1, other.y1) - max(self.y0, other.y0))
        inter = w * h
        union = (
            (self.x1 - self.x0) * (self.y1 - self.y0) + (other.x1 - other.x0) * (other.y1 - other.y0) - inter
        )
        return inter / union if union > 0 else 0.0


def landmark_box(lm: np.ndarray) -> Box:
    return Box(float(lm[:, 0].min()), float(lm[:, 1].min()), float(lm[:, 0].max()), float(lm[:, 1].max()))


@dataclass
class TrackStats:
    """What happened while tracking one video (feeds the quality metrics)."""

    detections_run: int = 0
    checks_with_faces: int = 0  # detection checks that saw at least one face
    checks_multi_face: int = 0  # ... that saw two or more
    tracking_losses: int = 0  # the mesh lost a face it was tracking
    target_switches: int = 0  # a periodic check moved the target to another face
    mesh_restarts: int = 0
    max_faces: int = 0
    mesh_calls: int = 0  # FaceMesh runs (keyframes, and frames where the flow failed)
    mesh_seconds: float = 0.0  # wall time inside FaceMesh (the landmark model's own cost)
    flow_frames: int = 0  # frames whose landmarks came from optical flow
    flow_fallbacks: int = 0  # frames where the flow lost the face and FaceMesh ran instead

    def minus(self, before: TrackStats) -> TrackStats:
        """The counts accumulated since ``before`` (a copy taken earlier); ``max_faces`` stays a maximum."""
        out = TrackStats(**{k: getattr(self, k) - getattr(before, k) for k in _COUNTS})
        out.max_faces = self.max_faces
        return out

    def plus(self, other: TrackStats) -> TrackStats:
        out = TrackStats(**{k: getattr(self, k) + getattr(other, k) for k in _COUNTS})
        out.max_faces = max(self.max_faces, other.max_faces)
        return out

    @property
    def multi_face(self) -> bool:
        # A second face in at least 10% of the checks (and at least one): a passer-by in one check counts.
        return self.checks_multi_face >= max(1, math.ceil(0.1 * self.checks_with_faces))


_COUNTS = (
    "detections_run", "checks_with_faces", "checks_multi_face", "tracking_losses", "target_switches",
    "mesh_restarts", "mesh_calls", "mesh_seconds", "flow_frames", "flow_fallbacks",
)  # fmt: skip


@dataclass
class FaceTracker:
    """Stateful tracker for ONE video. Not thread-safe; make one per video (cheap: ~10 ms)."""

    cfg: FacetubesConfig
    stats: TrackStats = field(default_factory=TrackStats)

    def __post_init__(self) -> None:
        from hypomimia.logs import import_mediapipe  # heavy import, only where tracking happens

        self._mp = mp = import_mediapipe()
        self._detector = mp.solutions.face_detection.FaceDetection(
            model_selection=1, min_detection_confidence=self.cfg.min_detection_confidence
        )
        self._mesh = None
        self._window: Box | None = None
        self._target: Box | None = None  # landmark box of the last tracked frame
        self._every = max(1, round(self.cfg.detect_every_s * self.cfg.fps))  # tube frames between checks
        self._next_check = 0  # tube frame from which the next periodic detection is due
        self._key: _Keyframe | None = None  # the last meshed frame, the flow's reference
        self._tracking = False  # the previous frame had landmarks
        self._misses = 0  # frames in a row without a face

    def close(self) -> None:
        if self._mesh is not None:
            self._mesh.close()
        self._detector.close()

    def __enter__(self) -> FaceTracker:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- detection -------------------------------------------------------------------------------
    def detect(self, rgb: np.ndarray) -> list[tuple[Box, float]]:
        """All faces in a frame as (box in full-frame pixels, score), best first."""
        h, w = rgb.shape[:2]
        small = _downscale(rgb, self.cfg.detect_max_side)
        result = self._detector.process(small)
        self.stats.detections_run += 1
        faces = []
        for det in result.detections or []:
            b = det.location_data.relative_bounding_box
            box = Box(b.xmin * w, b.ymin * h, (b.xmin + b.width) * w, (b.ymin + b.height) * h)
            faces.append((box, float(det.score[0])))
        self.stats.max_faces = max(self.stats.max_faces, len(faces))
        if faces:
            self.stats.checks_with_faces += 1
        if len(faces) >= 2:
            self.stats.checks_multi_face += 1
        return faces

    def choose_target(self, faces: list[tuple[Box, float]], shape: tuple[int, int]) -> Box:
        """The documented target rule: the largest face, or the one nearest the frame centre."""
        if self.cfg.target_face == "central":
            cy, cx = shape[0] / 2, shape[1] / 2
            return min(faces, key=lambda f: math.hypot(f[0].centre[0] - cx, f[0].centre[1] - cy))[0]
        return max(faces, key=lambda f: f[0].side)[0]

    # -- tracking --------------------------------------------------------------------------------
    def track(self, rgb: np.ndarray, k: int) -> np.ndarray | None:
        """Mesh tube frame ``k``: landmarks ``478×3`` (x, y in full-frame pixels, z in the same pixel
        scale) or None. The frame becomes the keyframe that :meth:`follow` tracks from."""
        self._key = None
        check_due = k >= self._next_check
        if self._target is None and self._misses >= 2 and self._misses % LOST_RETRY:
            self._misses += 1  # no face for a while: search only every LOST_RETRY-th frame
            return None
        if self._target is None or check_due:
            self._next_check = (k // self._every + 1) * self._every
            faces = self.detect(rgb)
            if self._target is None:
                if not faces:
                    self._misses += 1
                    return None
                self._start(self.choose_target(faces, rgb.shape[:2]))
            elif not (faces and self._maybe_switch(faces, rgb.shape[:2])):
                # re-cut on the grid and restart the mesh: where a segment's tracker falls into step.
                # Unsegmented, the mesh goes on tracking while the window stays: a restart re-runs
                # FaceMesh's own detector (~10 ms), and no other tracker has to fall into step.
                self._start(self._target, keep_mesh=self.cfg.segments == 1)
        lm = self._mesh_window(rgb)
        if lm is None:
            if self._tracking:
                self.stats.tracking_losses += 1
            self._tracking = False
            self._misses += 1
            self._target = None
            self._close_mesh()
            return None
        self._tracking, self._misses = True, 0
        self._target = landmark_box(lm)
        if self.cfg.between_keyframes == "flow":
            self._key = _Keyframe.of(rgb, lm)
        if self._needs_recut(self._target):
            self._start(self._target)
        return lm

    @property
    def has_keyframe(self) -> bool:
        """The last meshed frame found the face (and the flow is on): :meth:`follow` can track from it."""
        return self._key is not None

    def follow(self, rgb: np.ndarray) -> np.ndarray | None:
        """Landmarks of a frame between keyframes by optical flow from the last keyframe, or None
        when there is no keyframe to follow or the flow lost the face (then mesh it with :meth:`track`)."""
        key = self._key
        if key is None:
            return None
        grey = flow_window(rgb, key.box)
        # (OpenCV's Python binding takes images, not prebuilt pyramids: each call builds its own)
        lk = {"winSize": (FLOW_WIN, FLOW_WIN), "maxLevel": FLOW_LEVELS, "criteria": _LK_CRITERIA}
        fwd, ok_f, _ = cv2.calcOpticalFlowPyrLK(key.grey, grey, key.points, None, **lk)
        back, ok_b, _ = cv2.calcOpticalFlowPyrLK(grey, key.grey, fwd, None, **lk)
        fb = np.linalg.norm(back - key.points, axis=-1)
        good = (ok_f[:, 0] == 1) & (ok_b[:, 0] == 1) & (fb <= self.cfg.flow_fb_max_px)
        if good.mean() < 1 - FLOW_MAX_LOST:
            self.stats.flow_fallbacks += 1
            self._key = None
            return None
        motion = (fwd - key.points).astype(np.float64)
        if not good.all():  # the few lost points move with the face (median motion of the others)
            motion[~good] = np.median(motion[good], axis=0)
        self.stats.flow_frames += 1
        lm = key.landmarks.copy()
        lm[:, :2] += motion / key.scale  # flow-window pixels -> full-frame pixels; z stays the keyframe's
        return lm

    def _maybe_switch(self, faces: list[tuple[Box, float]], shape: tuple[int, int]) -> bool:
        """Move to another face if the target rule says so (True when it did)."""
        best = self.choose_target(faces, shape)
        assert self._target is not None
        if best.iou(self._target) > 0.2:
            return False  # the rule still points at the face we track
        if self.cfg.target_face == "largest" and best.side < SWITCH_MARGIN * self._target.side:
            return False
        self.stats.target_switches += 1
        self._start(best)
        return True

    def _start(self, face: Box, keep_mesh: bool = False) -> None:
        """Cut a new window around ``face`` and restart the mesh there (``keep_mesh``: only if the
        window moved).

        The window's centre and side snap to a grid of ~1/16 of the face side, so two trackers whose
        landmarks differ by a pixel (one started a second earlier) cut the same window and feed
        FaceMesh the same pixels.
        """
        q = 2.0 ** math.floor(math.log2(max(face.side, 16.0) / 8))
        cx, cy = (round(c / q) * q for c in face.centre)
        half = max(1, round(WINDOW_SCALE * face.side / (2 * q))) * q
        window = Box(cx - half, cy - half, cx + half, cy + half)
        self._target = face
        if keep_mesh and self._mesh is not None and window == self._window:
            return
        self._window = window
        if self._mesh is not None:
            self._mesh.reset()  # a new run of the same graph: no tracking state, 4x cheaper than a new graph
        else:
            self._mesh = self._mp.solutions.face_mesh.FaceMesh(
                static_image_mode=False,
                max_num_faces=1,
                refine_landmarks=True,  # the 10 iris points: 478 landmarks, as the data format promises
                min_detection_confidence=self.cfg.min_detection_confidence,
                min_tracking_confidence=self.cfg.min_tracking_confidence,
            )
        self.stats.mesh_restarts += 1

    def _close_mesh(self) -> None:
        if self._mesh is not None:
            self._mesh.close()
            self._mesh = None

    def _needs_recut(self, face: Box) -> bool:
        assert self._window is not None
        side = self._window.side
        (fx, fy), (wx, wy) = face.centre, self._window.centre
        off = max(abs(fx - wx), abs(fy - wy)) / side
        return off > RECUT_SHIFT or not (RECUT_SIZE[0] <= face.side / side <= RECUT_SIZE[1])

    def _mesh_window(self, rgb: np.ndarray) -> np.ndarray | None:
        assert self._window is not None and self._mesh is not None
        crop, x0, y0, scale = cut_window(rgb, self._window, self.cfg.mesh_max_side)
        self.stats.mesh_calls += 1
        t0 = time.perf_counter()
        result = self._mesh.process(crop)
        self.stats.mesh_seconds += time.perf_counter() - t0
        if not result.multi_face_landmarks:
            return None
        side = crop.shape[0]
        pts = result.multi_face_landmarks[0].landmark
        lm = np.array([(p.x, p.y, p.z) for p in pts], dtype=np.float64)[:N_LANDMARKS] * side
        # window pixels -> full-frame pixels (z shares the x scale in MediaPipe)
        lm /= scale
        lm[:, 0] += x0
        lm[:, 1] += y0
        return lm


@dataclass(frozen=True)
class _Keyframe:
    """What the flow tracks from: a meshed frame's landmarks and its grey flow window."""

    landmarks: np.ndarray  # 478×3, full-frame pixels
    box: Box  # the flow window in full-frame pixels
    scale: float  # flow-window pixels per full-frame pixel
    points: np.ndarray  # 478×2 float32, the landmarks in flow-window pixels
    grey: np.ndarray

    @staticmethod
    def of(rgb: np.ndarray, lm: np.ndarray) -> _Keyframe:
        face = landmark_box(lm)
        (cx, cy), half = face.centre, FLOW_MARGIN * face.side / 2
        box = Box(cx - half, cy - half, cx + half, cy + half)
        crop, x0, y0, scale = cut_window(rgb, box, FLOW_SIDE)
        grey = cv2.cvtColor(crop, cv2.COLOR_RGB2GRAY)
        pts = ((lm[:, :2] - (x0, y0)) * scale).astype(np.float32)
        return _Keyframe(lm, box, scale, pts, grey)


def flow_window(rgb: np.ndarray, box: Box) -> np.ndarray:
    """Grey window of ``box``, at most ``FLOW_SIDE`` pixels (the geometry of :func:`cut_window`)."""
    crop = cut_window(rgb, box, FLOW_SIDE)[0]
    return cv2.cvtColor(crop, cv2.COLOR_RGB2GRAY)


def _downscale(rgb: np.ndarray, max_side: int) -> np.ndarray:
    h, w = rgb.shape[:2]
    s = max_side / max(h, w)
    if s >= 1:
        return rgb
    return cv2.resize(rgb, (max(1, round(w * s)), max(1, round(h * s))), interpolation=cv2.INTER_AREA)


def cut_window(rgb: np.ndarray, window: Box, max_side: int) -> tuple[np.ndarray, int, int, float]:
    """Square crop of ``window`` (zero-padded where it leaves the frame), downscaled to ``max_side``.

    Returns (crop, x0, y0, scale): full-frame point p maps to crop point (p - (x0, y0)) * scale.
    The crop is square because FaceMesh's tracking maths assume a square input. The in-frame part
    is downscaled first and padded after, so no full-size padded copy is ever made.
    """
    h, w = rgb.shape[:2]
    side = max(2, round(window.side))
    x0, y0 = round(window.x0), round(window.y0)
    n = min(side, max_side)
    scale = n / side
    sx0, sy0, sx1, sy1 = max(0, x0), max(0, y0), min(w, x0 + side), min(h, y0 + side)
    out = np.zeros((n, n, 3), np.uint8)
    if sx1 > sx0 and sy1 > sy0:
        # where the in-frame part lands in the output (rounded to whole pixels)
        ox0, oy0 = round((sx0 - x0) * scale), round((sy0 - y0) * scale)
        ox1, oy1 = min(n, round((sx1 - x0) * scale)), min(n, round((sy1 - y0) * scale))
        if ox1 > ox0 and oy1 > oy0:
            part = rgb[sy0:sy1, sx0:sx1]
            if (ox1 - ox0, oy1 - oy0) != (part.shape[1], part.shape[0]):
                part = resize_antialiased(part, ox1 - ox0, oy1 - oy0)
            out[oy0:oy1, ox0:ox1] = part
    return out, x0, y0, scale


# -- alignment ------------------------------------------------------------------------------------
def align_params(lm: np.ndarray) -> np.ndarray:
    """Per-frame similarity parameters ``(cx, cy, log inter-ocular, roll radians)`` from landmarks ``(T,478,2+)``."""
    right, left = eye_centres(lm)
    eye_mid = (right + left) / 2
    mouth_mid = (lm[..., MOUTH_LEFT, :2] + lm[..., MOUTH_RIGHT, :2]) / 2
    centre = (eye_mid + mouth_mid) / 2
    d = left - right  # subject's right eye is on the image left: d points right for an upright face
    iod = np.maximum(np.hypot(d[..., 0], d[..., 1]), 1e-3)
    roll = np.arctan2(d[..., 1], d[..., 0])
    return np.stack([centre[..., 0], centre[..., 1], np.log(iod), roll], axis=-1)


def fallback_params(shape: tuple[int, int], inter_ocular: float) -> np.ndarray:
    """Parameters that show the frame's central square (for frames before any face was found)."""
    h, w = shape
    return np.array([w / 2, h / 2, math.log(max(min(h, w) * inter_ocular, 1e-3)), 0.0])


def smooth_window(params: np.ndarray, valid: np.ndarray, sigma: float) -> np.ndarray | None:
    """Gaussian-weighted mean of the valid rows of ``params`` around the centre row (None if none valid).

    ``params`` holds 2K+1 rows (fewer at the ends of the video) centred on the frame being smoothed;
    ``valid`` marks rows with a tracked face.
    """
    if not valid.any():
        return None
    k = (len(params) - 1) / 2 if sigma > 0 else 0
    x = np.arange(len(params)) - k
    wts = np.exp(-0.5 * (x / sigma) ** 2) if sigma > 0 else (x == 0).astype(float)
    wts = wts * valid
    if wts.sum() <= 0:
        wts = valid.astype(float)
    return (params * wts[:, None]).sum(0) / wts.sum()


def tube_matrix(p: np.ndarray, size: int, inter_ocular: float) -> np.ndarray:
    """2×3 affine from full-frame pixels to tube pixels for parameters ``p = (cx, cy, log iod, roll)``."""
    cx, cy, log_iod, roll = p
    s = inter_ocular * size / math.exp(log_iod)
    c, si = math.cos(roll) * s, math.sin(roll) * s
    # rotate by -roll (eye line to horizontal) and scale about the face centre, then move it to the tube centre
    return np.array(
        [[c, si, size / 2 - (c * cx + si * cy)], [-si, c, size * CENTRE_Y - (-si * cx + c * cy)]],
        dtype=np.float64,
    )


def warp_face(rgb: np.ndarray, m: np.ndarray, size: int) -> np.ndarray:
    """Apply ``m`` (full frame -> tube) with anti-aliasing: box-average the face region by a whole
    factor first (:func:`box_shrink`), so the warp itself never shrinks by more than 2x.

    warpAffine alone samples 4 pixels per output pixel, which aliases when a 720p face shrinks 3x.
    """
    scale = math.hypot(m[0, 0], m[0, 1])  # tube pixels per source pixel
    if scale >= 0.67:
        return cv2.warpAffine(rgb, m, (size, size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT)
    inv = cv2.invertAffineTransform(m)
    corners = np.array([[0, 0, 1], [size, 0, 1], [0, size, 1], [size, size, 1]], dtype=np.float64) @ inv.T
    h, w = rgb.shape[:2]
    x0, y0 = np.floor(corners.min(0)).astype(int) - 2
    x1, y1 = np.ceil(corners.max(0)).astype(int) + 2
    x0, y0, x1, y1 = max(0, x0), max(0, y0), min(w, x1), min(h, y1)
    if x1 - x0 < 2 or y1 - y0 < 2:
        return np.zeros((size, size, 3), np.uint8)  # the box left the frame entirely
    k = max(1, int(1 / scale))  # the remaining shrink, scale * k, lies in (0.5, 1]
    small, back = box_shrink(rgb[y0:y1, x0:x1], k)
    back[:, 2] += (x0, y0)  # small -> full frame
    m2 = m @ np.vstack([back, (0, 0, 1)])
    return cv2.warpAffine(small, m2, (size, size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT)


def box_shrink(img: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """``img`` averaged over ``k × k`` blocks (the last partial row/column of blocks is dropped), and
    the 2×3 affine from shrunk pixels back to ``img`` pixels (pixel centres: ``u -> k u + (k-1)/2``).

    OpenCV's area resize is ~7x faster at a whole factor than at a fractional one (0.18 against
    1.3 ms for a 700-px face window, measured): the shrink by a whole factor is followed by a mild
    bilinear step.
    """
    h, w = img.shape[:2]
    back = np.array([[k, 0.0, (k - 1) / 2], [0.0, k, (k - 1) / 2]])
    if k <= 1 or h < k or w < k:
        return img, np.array([[1.0, 0, 0], [0, 1.0, 0]])
    small = cv2.resize(img[: h // k * k, : w // k * k], (w // k, h // k), interpolation=cv2.INTER_AREA)
    return small, back


def resize_antialiased(img: np.ndarray, w: int, h: int) -> np.ndarray:
    """``img`` resized to ``w × h`` with cv2.resize's pixel-centre geometry; shrinks by more than 2x
    are box-averaged by a whole factor first (:func:`box_shrink`), then finished bilinearly."""
    sh, sw = img.shape[:2]
    k = int(min(sw / w, sh / h))
    if k < 2:
        return cv2.resize(img, (w, h), interpolation=cv2.INTER_LINEAR)
    small, back = box_shrink(img, k)
    # output pixel x sits at source (x + 0.5) sw / w - 0.5; the shrunk image's pixel u at k u + (k-1)/2
    ax, ay = sw / (w * k), sh / (h * k)
    inv = np.array([[ax, 0, 0.5 * ax - 0.5], [0, ay, 0.5 * ay - 0.5]])
    return cv2.warpAffine(
        small, inv, (w, h), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP, borderMode=cv2.BORDER_REPLICATE
    )


def apply_affine(m: np.ndarray, pts: np.ndarray) -> np.ndarray:
    # written out, not ``pts[..., :2] @ m[:, :2].T``: matmul on the strided (478, 2) view of a
    # (478, 3) array cost 0.28 ms a call, 0.14 s of a 500-frame tube (measured)
    x, y = pts[..., 0:1], pts[..., 1:2]
    return x * m[:, 0] + y * m[:, 1] + m[:, 2]
