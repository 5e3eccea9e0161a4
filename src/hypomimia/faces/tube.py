"""One video -> one face tube: decode, resample, track, smooth the crop box, warp (docs/data-format.md §3).

The domain function the ``facetubes`` stage, the serving endpoint and tests all call:

    decode (thread) -> resample to cfg.fps -> track face (faces.track) -> smooth crop box -> warp to S×S

* FaceMesh runs on every ``mesh_every``-th tube frame; landmarks in between are interpolated
  linearly (measured against meshing every frame: median 0.1-0.3 px, 95th percentile <= 1 px in a
  112-px tube on real clips at ``mesh_every: 2``, blink counts unchanged on the phantom).
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
import zipfile
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from hypomimia.config.facetubes import FacetubesConfig
from hypomimia.data.video import Frame, iter_frames
from hypomimia.faces.quality import tube_quality
from hypomimia.faces.track import (
    FaceTracker,
    align_params,
    apply_affine,
    fallback_params,
    tube_matrix,
    warp_face,
)

TUBE_CODE_VERSION = 2  # bump when the same params would give different tubes: invalidates every cache entry
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


def extract_tube(path: str | Path, cfg: FacetubesConfig) -> Tube:
    """Decode, track, smooth and warp one video into a tube (no quarantine decision, no I/O besides reading)."""
    tmax = max(1, int(round(cfg.fps * cfg.max_seconds)))
    sigma = cfg.smooth_seconds * cfg.fps
    reach = math.ceil(3 * sigma)  # look-ahead frames needed before a frame can be warped
    counter = {"decoded": 0}
    frames, tube_lm, raw_lm, params, valid = [], [], [], [], []
    pending: deque[tuple[int, np.ndarray]] = deque()
    held: list[np.ndarray | None] = [None]  # last smoothed box, reused when a face disappears
    shape = (0, 0)

    def finish(i: int, rgb: np.ndarray) -> None:
        lo, hi = max(0, i - reach), min(len(params), i + reach + 1)
        p = _smooth_at(np.array(params[lo:hi]), np.array(valid[lo:hi]), i - lo, sigma)
        if p is None:
            p = held[0] if held[0] is not None else fallback_params(rgb.shape[:2], cfg.inter_ocular)
        held[0] = p
        m = tube_matrix(p, cfg.size, cfg.inter_ocular)
        frames.append(warp_face(rgb, m, cfg.size))
        tube_lm.append(apply_affine(m, raw_lm[i]) if valid[i] else None)

    def settle(i: int, lm: np.ndarray | None) -> None:
        valid[i] = lm is not None
        raw_lm[i] = lm if lm is not None else np.zeros((478, 3))
        params[i] = align_params(lm[None])[0] if lm is not None else np.zeros(4)

    # Landmarks of frames between two meshed frames are interpolated, so a frame is settled (and
    # can be smoothed and warped) only once the next meshed frame is known.
    every = cfg.mesh_every
    with FaceTracker(cfg, video_fps=cfg.fps / every) as tracker:
        last_src, last_lm, settled = -1, None, -1
        decoded = _Prefetch(_resample(_counted(iter_frames(path), counter), cfg.fps, tmax))
        try:
            for i, frame in enumerate(decoded):
                shape = frame.rgb.shape[:2]
                valid.append(False)
                raw_lm.append(None)
                params.append(None)
                pending.append((i, frame.rgb))
                if frame.index == last_src:  # a repeated source frame (resampling): same landmarks
                    if settled == i - 1:
                        settle(i, last_lm)
                        settled = i
                    continue
                last_src = frame.index
                if i % every and i - settled < every:
                    continue  # in a gap: settled by interpolation at the next meshed frame
                lm = tracker.track(frame.rgb)
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
        stats = tracker.stats

    ok = np.array(valid, bool)
    frames_arr = np.stack(frames) if frames else np.zeros((0, cfg.size, cfg.size, 3), np.uint8)
    metrics = tube_quality(frames_arr, ok, np.array(raw_lm).reshape(-1, 478, 3), shape)
    metrics.update(
        tracking_losses=stats.tracking_losses,
        target_switches=stats.target_switches,
        multi_face=stats.multi_face,
    )
    return Tube(frames_arr, _fill_untracked(tube_lm), ok, float(cfg.fps), metrics, counter["decoded"])


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
                # Deflate shrinks video frames by only ~10% at ~10-50 MB/s: store them, compress the rest.
                info.compress_type = zipfile.ZIP_STORED if name == "frames" else zipfile.ZIP_DEFLATED
                zf.writestr(info, buf.getvalue())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def load_tube(path: Path) -> dict[str, np.ndarray]:
    with np.load(path, allow_pickle=False) as z:
        return {k: z[k] for k in z.files}


# -- helpers: streaming ---------------------------------------------------------------------------
def _counted(frames: Iterator[Frame], counter: dict[str, int]) -> Iterator[Frame]:
    for f in frames:
        counter["decoded"] += 1
        yield f


def _resample(frames: Iterator[Frame], fps: float, tmax: int) -> Iterator[Frame]:
    """For each tube time k/fps (k < tmax) the nearest decoded frame (ties: the earlier one).

    The video lasts until the last frame's time plus one frame interval, so a 72-frame 30 fps clip
    becomes a 60-frame 25 fps tube. Decoding stops once tmax frames are out.
    """
    k, prev, interval = 0, None, 1.0 / fps
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
