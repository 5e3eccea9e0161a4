"""One video -> one face tube: decode, resample, track, smooth the crop box, warp (docs/data-format.md §3).

The domain function the ``facetubes`` stage, the serving endpoint and tests all call:

    segments (processes) : decode (thread) -> resample to cfg.fps -> track face (faces.track)
                           -> smooth crop box -> warp to S×S ;  join

* FaceMesh runs on the keyframes, every ``mesh_every``-th tube frame; the landmarks in between are
  interpolated linearly between the two keyframes (default) or follow the last keyframe by optical
  flow (``between_keyframes: flow``). The error of each against meshing every frame is measured in
  docs/benchmarks.md (``make bench``), which is where the default spacing comes from.
* A long video is cut into up to ``segments`` time segments (:func:`plan_segments`, a function of
  the file and the params only). Each starts tracking ``segment_context_s`` early and runs on past
  its end as far as smoothing needs; trackers fall into step at the first detection check (see
  faces.track), so the joined tube equals the unsplit one (tested on real clips). The segments run
  in ``workers`` processes, the caller's and helpers' (faces.parallel; threads overlapped by only
  ~5 %: the GIL), so one video uses both cores, and the tube is the same whatever ``workers`` is.
* The decoder runs in a thread a few frames ahead, so decoding overlaps FaceMesh.
* Resampling picks, for each tube time k/fps, the nearest decoded frame: variable-frame-rate video
  repeats a frame across gaps, 30 fps video skips every sixth frame (and FaceMesh never sees it).
* The crop box is smoothed with a centred Gaussian, so a frame is warped once the frames
  ``3 sigma`` after it are tracked; only those few full-resolution frames are held in memory.

Tubes are written byte-reproducibly (``save_tube``) and keyed by ``cache_key`` (video content,
tube params, tube code and mediapipe versions).
"""

from __future__ import annotations

import hashlib
import importlib.metadata as md
import io
import json
import math
import os
import queue
import threading
import time
import zipfile
from collections import deque
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from hypomimia.config.facetubes import FacetubesConfig
from hypomimia.data.video import Frame, iter_frames
from hypomimia.faces.parallel import Helpers, run_tasks, shared_helpers
from hypomimia.faces.quality import region_visibility, tube_quality
from hypomimia.faces.track import (
    FaceTracker,
    TrackStats,
    align_params,
    apply_affine,
    fallback_params,
    tube_matrix,
    warp_face,
)

TUBE_CODE_VERSION = 4  # bump when the same params would give different tubes: invalidates every cache entry
ZIP_TIME = (1980, 1, 1, 0, 0, 0)  # fixed entry timestamps: the same tube gives the same npz bytes


def tube_params(cfg: FacetubesConfig) -> dict[str, Any]:
    """Every param that changes a tube's bytes (not ``workers``), with the tube code version: what a
    model records so that the endpoint extracts its tubes exactly as training did."""
    return {**cfg.model_dump(mode="json", exclude={"workers"}), "tube_code_version": TUBE_CODE_VERSION}


def cache_key(video_sha256: str, cfg: FacetubesConfig) -> str:
    """sha256 of (video content, every tube-affecting param, tube code and mediapipe versions)."""
    blob = {
        "video_sha256": video_sha256,
        "params": cfg.model_dump(mode="json", exclude={"workers"}),
        "code": TUBE_CODE_VERSION,
        "mediapipe": md.version("mediapipe"),
    }
    return hashlib.sha256(json.dumps(blob, sort_keys=True).encode()).hexdigest()


# -- one video ------------------------------------------------------------------------------------
@dataclass
class Tube:
    frames: np.ndarray  # T×S×S×3 uint8
    landmarks: np.ndarray  # T×478×2 float32, tube pixels
    valid: np.ndarray  # T bool
    fps: float
    metrics: dict[str, Any]
    decoded_frames: int
    work: dict[str, Any] = field(default_factory=dict)  # what it cost: segments, mesh calls, flow frames
    crop: np.ndarray | None = None  # T×2×3 affine full frame -> tube of each frame (not saved)


def extract_tube(
    path: str | Path, cfg: FacetubesConfig, workers: int | None = None, helpers: Helpers | None = None
) -> Tube:
    """Decode, track, smooth and warp one video into a tube (no quarantine decision, no I/O besides reading).

    The video's time segments (:func:`plan_segments`) are tracked by this process and, with
    ``workers`` > 1 (default ``cfg.workers``), by ``helpers`` processes (default: this process's
    long-lived ones, :func:`faces.parallel.shared_helpers`, so a server's second request finds
    them warm). The tube is the same whatever ``workers`` is.
    """
    workers = cfg.workers if workers is None else workers
    tasks = segment_tasks(path, cfg)
    if workers > 1 and len(tasks) > 1:
        helpers = helpers or shared_helpers(min(workers, len(tasks)) - 1, warm_helper)
    else:
        helpers = None
    return join_segments(run_tasks(track_segment, tasks, helpers), cfg)


def warm_helper() -> None:
    """A tube helper process's start-up (the ``warm`` of :class:`faces.parallel.Helpers`): telemetry
    off, one OpenCV thread (the process is one of the cores), MediaPipe's detection and mesh models
    loaded once, and this module imported (unpickling this function by name does that: ~0.3 s), so
    that a helper that says it is ready starts its first task at once."""
    import cv2

    from hypomimia.logs import import_mediapipe, telemetry_off

    telemetry_off()
    cv2.setNumThreads(1)
    mp = import_mediapipe()
    blank = np.zeros((64, 64, 3), np.uint8)
    with mp.solutions.face_detection.FaceDetection(model_selection=1) as det:
        det.process(blank)
    with mp.solutions.face_mesh.FaceMesh(static_image_mode=False, refine_landmarks=True) as mesh:
        mesh.process(blank)


@dataclass(frozen=True)
class SegmentTask:
    """Tube frames ``[a, b)`` of one video (``b`` None: to the end): one unit of parallel work."""

    path: str
    cfg: FacetubesConfig
    a: int
    b: int | None
    frames: int  # expected tube frames (for scheduling the longest first)


def segment_tasks(path: str | Path, cfg: FacetubesConfig) -> list[SegmentTask]:
    """The segments of one video (:func:`plan_segments`) as tasks for :func:`track_segment`."""
    plan, est = _plan(path, cfg)
    return [SegmentTask(str(path), cfg, a, b, (est if b is None else b) - a) for a, b in plan]


def track_segment(task: SegmentTask) -> _Segment:
    """Track one segment (runs in any process: the result depends on the task only)."""
    return _track_segment(task.path, task.cfg, task.a, task.b)


@dataclass(frozen=True)
class SegmentFailure:
    """What :func:`track_segment_or_failure` returns for a segment that could not be tracked."""

    error: str  # "ExceptionType: message"


def track_segment_or_failure(task: SegmentTask) -> tuple[_Segment | SegmentFailure, float]:
    """:func:`track_segment` and its wall seconds; a failure as a value, so that one broken video
    among many does not stop the others (the stage quarantines it)."""
    t0 = time.perf_counter()
    try:
        part: _Segment | SegmentFailure = track_segment(task)
    except Exception as e:
        part = SegmentFailure(f"{type(e).__name__}: {e}")
    return part, time.perf_counter() - t0


def plan_segments(path: str | Path, cfg: FacetubesConfig) -> list[tuple[int, int | None]]:
    """The tube-frame ranges ``[a, b)`` one video is tracked in (``b`` None: to the end).

    Up to ``cfg.segments`` equal parts of the tube length the container declares, none shorter
    than ``segment_min_s``. The plan depends on the file and the params only, never on workers.
    """
    return _plan(path, cfg)[0]


def _plan(path: str | Path, cfg: FacetubesConfig) -> tuple[list[tuple[int, int | None]], int]:
    tmax = max(1, int(round(cfg.fps * cfg.max_seconds)))
    seconds = _declared_seconds(path)
    est = min(tmax, int(seconds * cfg.fps)) if seconds else 0
    if cfg.segments == 1:
        return [(0, None)], est
    n = min(cfg.segments, int(est // max(1.0, cfg.segment_min_s * cfg.fps)))
    if n <= 1:
        return [(0, None)], est
    length = math.ceil(est / n)
    cuts = [i * length for i in range(n)]
    return list(zip(cuts, [*cuts[1:], None], strict=True)), est


def _declared_seconds(path: str | Path) -> float | None:
    import av

    try:
        with av.open(str(path)) as c:
            s = c.streams.video[0]
            if s.duration and s.time_base:
                return float(s.duration * s.time_base)
            return c.duration / 1e6 if c.duration else None
    except (av.error.FFmpegError, IndexError):
        return None  # not decodable: the single segment's decode raises the real error


@dataclass
class _Segment:
    """The tube frames ``[a, b)`` of one segment, and what tracking them cost (context included)."""

    frames: list[np.ndarray]
    crop: list[np.ndarray]
    tube_lm: list[np.ndarray | None]
    raw_lm: list[np.ndarray]
    valid: list[bool]
    stats: TrackStats  # counts over the segment's own frames
    work: TrackStats  # everything the segment's tracker did, context included
    decoded: int
    shape: tuple[int, int]


def _track_segment(path: str | Path, cfg: FacetubesConfig, a: int, b: int | None) -> _Segment:
    """Track tube frames ``[a, b)`` of one video, starting ``segment_context_s`` earlier and running
    on past ``b`` as far as the box smoothing and the keyframes need, so the segments join seamlessly."""
    fps, every = cfg.fps, cfg.mesh_every
    tmax = max(1, int(round(fps * cfg.max_seconds)))
    sigma = cfg.smooth_seconds * fps
    reach = math.ceil(3 * sigma)  # look-ahead frames needed before a frame can be warped
    a0 = max(0, a - max(round(cfg.segment_context_s * fps), reach)) if a > 0 else 0
    stop = tmax if b is None else min(tmax, b + reach + every)
    end = stop if b is None else min(b, tmax)
    own = ((a - 0.5) / fps if a > 0 else -math.inf, (b - 0.5) / fps if b is not None else math.inf)
    counter = {"decoded": 0}
    frames: list[Future[np.ndarray]] = []
    crop: list[np.ndarray] = []
    tube_lm: list[np.ndarray | None] = []
    raw_lm: list[np.ndarray | None] = []
    params: list[np.ndarray | None] = []
    valid: list[bool] = []
    pending: deque[tuple[int, np.ndarray]] = deque()
    held: list[np.ndarray | None] = [None]  # last smoothed box, reused when a face disappears
    shape = (0, 0)
    marks: dict[str, TrackStats] = {}

    def finish(i: int, rgb: np.ndarray) -> None:
        lo, hi = max(0, i - reach), min(len(params), i + reach + 1)
        p = _smooth_at(np.array(params[lo:hi]), np.array(valid[lo:hi]), i - lo, sigma)
        if p is None:
            p = held[0] if held[0] is not None else fallback_params(rgb.shape[:2], cfg.inter_ocular)
        held[0] = p
        if a0 + i < a:
            return  # context: only the box it leaves behind matters
        m = tube_matrix(p, cfg.size, cfg.inter_ocular)
        crop.append(m)
        frames.append(warper.submit(warp_face, rgb, m, cfg.size))
        tube_lm.append(apply_affine(m, raw_lm[i]) if valid[i] else None)

    def settle(i: int, lm: np.ndarray | None) -> None:
        valid[i] = lm is not None
        raw_lm[i] = lm if lm is not None else np.zeros((478, 3))
        params[i] = align_params(lm[None])[0] if lm is not None else np.zeros(4)

    flow = cfg.between_keyframes == "flow"
    # The warps run on their own thread (OpenCV releases the GIL): they overlap FaceMesh and decoding.
    with FaceTracker(cfg) as tracker, ThreadPoolExecutor(1, thread_name_prefix="tube-warp") as warper:
        last_src, last_lm, settled = -1, None, -1
        source = _counted(iter_frames(path, start_s=a0 / fps if a0 else 0.0), counter, own)
        decoded = _Prefetch(enumerate(_resample(source, fps, stop, k0=a0), start=a0))
        try:
            for k, frame in decoded:
                i = k - a0
                if k == a:
                    marks["start"] = replace(tracker.stats)
                if k == end:
                    marks["end"] = replace(tracker.stats)
                shape = frame.rgb.shape[:2]
                valid.append(False)
                raw_lm.append(None)
                params.append(None)
                if k < end:
                    pending.append((i, frame.rgb))
                if frame.index == last_src:  # a repeated source frame (resampling): same landmarks
                    if settled == i - 1:
                        settle(i, last_lm)
                        settled = i
                    continue
                last_src = frame.index
                if flow:
                    # keyframes on the grid; between them, optical flow from the last keyframe, or
                    # FaceMesh where the flow fails; no keyframe yet (no face): wait for the grid
                    if k % every == 0:
                        lm = tracker.track(frame.rgb, k)
                    elif tracker.has_keyframe:
                        lm = tracker.follow(frame.rgb)
                        if lm is None:
                            lm = tracker.track(frame.rgb, k)
                    else:
                        lm = None
                else:
                    if k % every and i - settled < every:
                        continue  # in a gap: settled by interpolation at the next meshed frame
                    lm = tracker.track(frame.rgb, k)
                    _fill_gap(settled, i, last_lm, lm, settle)
                settle(i, lm)
                last_lm, settled = lm, i
                while pending and pending[0][0] + reach <= settled:
                    finish(*pending.popleft())
        finally:
            decoded.close()
        for j in range(settled + 1, len(valid)):  # frames after the last meshed one hold its landmarks
            settle(j, last_lm)
        while pending:
            finish(*pending.popleft())
        stats = marks.get("end", tracker.stats).minus(marks.get("start", TrackStats()))
        work = replace(tracker.stats)

    own_rows = slice(a - a0, a - a0 + len(frames))
    return _Segment(
        [f.result() for f in frames],
        crop,
        tube_lm,
        raw_lm[own_rows],
        valid[own_rows],
        stats,
        work,
        counter["decoded"],
        shape,
    )


def join_segments(parts: list[_Segment], cfg: FacetubesConfig) -> Tube:
    """One tube from its segments, in time order (quality metrics over the whole tube)."""
    frames = [f for p in parts for f in p.frames]
    ok = np.array([v for p in parts for v in p.valid], bool)
    raw = [lm for p in parts for lm in p.raw_lm]
    shape = next((p.shape for p in parts if p.shape != (0, 0)), (0, 0))
    stats, work = TrackStats(), TrackStats()
    for p in parts:
        stats, work = stats.plus(p.stats), work.plus(p.work)
    frames_arr = np.stack(frames) if frames else np.zeros((0, cfg.size, cfg.size, 3), np.uint8)
    metrics = tube_quality(frames_arr, ok, np.array(raw).reshape(-1, 478, 3), shape)
    metrics.update(
        tracking_losses=stats.tracking_losses,
        target_switches=stats.target_switches,
        multi_face=stats.multi_face,
    )
    spent = {
        "segments": len(parts),
        "mesh_calls": work.mesh_calls,
        "mesh_seconds": round(work.mesh_seconds, 4),
        "flow_frames": work.flow_frames,
        "flow_fallbacks": work.flow_fallbacks,
        "detections": work.detections_run,
    }
    tube_lm = _fill_untracked([lm for p in parts for lm in p.tube_lm])
    metrics.update(region_visibility(frames_arr, tube_lm, ok))  # from the tube itself (cache fill-in: same)
    decoded = sum(p.decoded for p in parts)
    crop = np.array([m for p in parts for m in p.crop]).reshape(-1, 2, 3)
    return Tube(frames_arr, tube_lm, ok, float(cfg.fps), metrics, decoded, spent, crop)


def judge(tube: Tube, cfg: FacetubesConfig) -> tuple[str, str]:
    """(reason, detail) for a tube that cannot be used, ('', '') for a good one."""
    n, found = len(tube.valid), int(tube.valid.sum())
    if found == 0:
        return "no_face", f"no face in any of {n} frames"
    if found < cfg.min_frames or found < cfg.min_face_ratio * n:
        return "too_few_face_frames", (
            f"face in {found} of {n} frames (needs >= {cfg.min_frames} and >= {cfg.min_face_ratio:.0%})"
        )
    return "", ""


def save_tube(path: Path, tube: Tube, video_sha256: str) -> None:
    """Write the tube npz atomically and byte-reproducibly (np.savez stamps the current time into the zip)."""
    arrays = {
        "frames": tube.frames,
        "landmarks": tube.landmarks,
        "valid": tube.valid,
        "fps": np.float64(tube.fps),
        "video_sha256": np.str_(video_sha256),
    }
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with zipfile.ZipFile(tmp, "w") as zf:
            for name, arr in arrays.items():
                buf = io.BytesIO()
                np.lib.format.write_array(buf, np.asarray(arr), allow_pickle=False)
                info = zipfile.ZipInfo(f"{name}.npy", date_time=ZIP_TIME)
                # Deflate shrinks video frames by ~10% and float landmarks by 13% at ~30 MB/s (12 ms a
                # 4-s tube, 7% of a phantom video's whole cost): store them, compress the small rest.
                stored = name in ("frames", "landmarks")
                info.compress_type = zipfile.ZIP_STORED if stored else zipfile.ZIP_DEFLATED
                zf.writestr(info, buf.getvalue())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def load_tube(path: Path) -> dict[str, np.ndarray]:
    with np.load(path, allow_pickle=False) as z:
        return {k: z[k] for k in z.files}


# -- helpers: streaming ---------------------------------------------------------------------------
def _counted(
    frames: Iterator[Frame], counter: dict[str, int], own: tuple[float, float] = (-math.inf, math.inf)
) -> Iterator[Frame]:
    """Count the decoded frames whose time falls in ``own`` (a segment's share: each frame counted once)."""
    for f in frames:
        if own[0] <= f.time < own[1]:
            counter["decoded"] += 1
        yield f


def _resample(frames: Iterator[Frame], fps: float, tmax: int, k0: int = 0) -> Iterator[Frame]:
    """For each tube time k/fps (k0 <= k < tmax) the nearest decoded frame (ties: the earlier one).

    The video lasts until the last frame's time plus one frame interval, so a 72-frame 30 fps clip
    becomes a 60-frame 25 fps tube. Decoding stops once tmax frames are out. With ``k0 > 0`` the
    first frame must be the one on screen at k0/fps (``iter_frames(start_s=k0 / fps)``).
    """
    k, prev, interval = k0, None, 1.0 / fps
    for f in frames:
        if prev is not None:
            t = max(f.time, prev.time)  # guard against non-monotonic timestamps
            interval = t - prev.time if t > prev.time else interval
            while k < tmax and k / fps <= (prev.time + t) / 2:
                yield prev
                k += 1
            if k >= tmax:
                return
            f = Frame(f.index, t, f.rgb)
        prev = f
    if prev is not None:
        while k < tmax and k / fps < prev.time + interval / 2 - 1e-9:
            yield prev
            k += 1


class _Prefetch:
    """Iterate ``items`` in a thread, up to ``depth`` ahead, so decoding overlaps FaceMesh.

    PyAV and MediaPipe both release the GIL in their native code, so the two really run in parallel.
    """

    _END = object()

    def __init__(self, items: Iterator[Any], depth: int = 8):
        self._q: queue.Queue[Any] = queue.Queue(depth)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._produce, args=(items,), daemon=True)
        self._thread.start()

    def _produce(self, items: Iterator[Any]) -> None:
        try:
            for x in items:
                if not self._put(x):
                    return
        except BaseException as e:  # handed to the consumer, re-raised there
            self._put(_Failure(e))
        finally:
            close = getattr(items, "close", None)
            if close:
                close()
            self._put(self._END)

    def _put(self, x: Any) -> bool:
        while not self._stop.is_set():
            try:
                self._q.put(x, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def __iter__(self) -> _Prefetch:
        return self

    def __next__(self) -> Any:
        x = self._q.get()
        if x is self._END:
            raise StopIteration
        if isinstance(x, _Failure):
            raise x.error
        return x

    def close(self) -> None:
        self._stop.set()
        self._thread.join()


@dataclass
class _Failure:
    error: BaseException


def _smooth_at(params: np.ndarray, valid: np.ndarray, centre: int, sigma: float) -> np.ndarray | None:
    """Gaussian-weighted mean of the tracked rows of ``params`` around row ``centre`` (None if none tracked)."""
    if not valid.any():
        return None
    x = np.arange(len(params)) - centre
    wts = np.exp(-0.5 * (x / sigma) ** 2) if sigma > 0 else (x == 0).astype(float)
    wts = wts * valid
    if wts.sum() <= 1e-12:  # only far-away tracked rows: use them unweighted
        wts = valid.astype(float)
    return (params * wts[:, None]).sum(0) / wts.sum()


def _fill_gap(a: int, b: int, lm_a: np.ndarray | None, lm_b: np.ndarray | None, settle) -> None:
    """Settle frames strictly between meshed frames ``a`` and ``b``: linear interpolation of the two
    meshes' landmarks when both found the face; no face otherwise (a loss somewhere in the gap)."""
    for j in range(a + 1, b):
        if lm_a is None or lm_b is None:
            settle(j, None)
        else:
            w = (j - a) / (b - a)
            settle(j, (1 - w) * lm_a + w * lm_b)


def _fill_untracked(tube_lm: list[np.ndarray | None]) -> np.ndarray:
    """Landmarks ``T×478×2``; untracked frames repeat the nearest tracked frame (earlier on ties)."""
    n = len(tube_lm)
    out = np.zeros((n, 478, 2), np.float32)
    have = [i for i, x in enumerate(tube_lm) if x is not None]
    if not have:
        return out
    idx = np.array(have)
    for i in range(n):
        j = tube_lm[i] if tube_lm[i] is not None else tube_lm[int(idx[np.argmin(np.abs(idx - i))])]
        out[i] = j
    return out
