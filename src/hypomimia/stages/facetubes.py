"""Stage `facetubes`: accepted videos -> aligned face tubes + quality metrics (docs/data-format.md §3).

Per video, in one streaming pass (decode once, bounded memory):

    decode (thread) -> resample to cfg.fps -> track face (facetrack) -> smooth crop box -> warp to S×S

* FaceMesh runs on every ``mesh_every``-th tube frame; landmarks in between are interpolated
  linearly (measured against meshing every frame: median 0.1-0.3 px, 95th percentile <= 1 px in a
  112-px tube on real clips at ``mesh_every: 2``, blink counts unchanged on the phantom).

* The decoder runs in a thread a few frames ahead, so decoding overlaps FaceMesh.
* Resampling picks, for each tube time k/fps, the nearest decoded frame: variable-frame-rate video
  repeats a frame across gaps, 30 fps video skips every sixth frame (and FaceMesh never sees it).
* The crop box is smoothed with a centred Gaussian, so a frame is warped once the frames
  ``3 sigma`` after it are tracked; only those few full-resolution frames are held in memory.

Across videos, a process pool (``cfg.workers``) runs one video per process. Results are
content-addressed in a cache (``cache_dir/<key>.npz`` + ``<key>.json``) keyed by the video's sha256,
the tube parameters and the tube code version, so re-runs and unchanged videos cost nothing. The
JSON is written (atomically) only after the tube, so it is the "done" marker: a run killed half-way
leaves at most a temp file, never a tube that counts as done.
"""

from __future__ import annotations

import hashlib
import importlib.metadata as md
import io
import json
import logging
import math
import os
import queue
import shutil
import threading
import time
import zipfile
from collections import deque
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field
from multiprocessing import get_context
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from hypomimia.artifacts import read_stage_table
from hypomimia.config.facetubes import FacetubesConfig
from hypomimia.errors import UserError
from hypomimia.facetrack import (
    FaceTracker,
    align_params,
    apply_affine,
    fallback_params,
    tube_matrix,
    warp_face,
)
from hypomimia.quality import tube_quality
from hypomimia.video import Frame, iter_frames

log = logging.getLogger(__name__)

TUBE_CODE_VERSION = 2  # bump when the same params would give different tubes: invalidates every cache entry
INGEST_COLUMNS = (
    "video_id",
    "subject_id",
    "label",
    "updrs_3_2",
    "hoehn_yahr",
    "task",
    "sha256",
    "status",
    "abs_path",
)
METRIC_COLUMNS = (
    "face_found_ratio", "face_size_mean", "blur_mean", "brightness_mean", "yaw_range", "pitch_range",
    "roll_range", "tracking_losses", "target_switches", "multi_face", "mean_frame_phash",
)  # fmt: skip
TUBE_COLUMNS = (
    *INGEST_COLUMNS[:7], "status", "reason", "detail", "tube", "n_frames", "fps", *METRIC_COLUMNS,
)  # fmt: skip
ZIP_TIME = (1980, 1, 1, 0, 0, 0)  # fixed entry timestamps: the same tube gives the same npz bytes


@dataclass(frozen=True)
class FacetubesResult:
    out_dir: Path
    tubes: pd.DataFrame  # the rows of tubes.parquet
    report: dict[str, Any] = field(default_factory=dict)

    @property
    def accepted(self) -> int:
        return int((self.tubes["status"] == "accepted").sum())

    @property
    def quarantined(self) -> int:
        return int((self.tubes["status"] == "quarantined").sum())

    @property
    def cache_hits(self) -> int:
        return int(self.report.get("cache_hits", 0))


# -- public entry points ---------------------------------------------------------------------------
def run(
    cfg: FacetubesConfig,
    ingest_dir: Path,
    out_dir: Path,
    cache_dir: Path | None = None,
    shard_index: int = 0,
    num_shards: int = 1,
) -> FacetubesResult:
    """Extract a face tube for every accepted video of ``ingest_dir/ingested.parquet`` (this shard's share).

    ``cache_dir`` defaults to ``out_dir/.cache``. Shards split the videos sorted by id round-robin;
    merge shard outputs with :func:`gather`.
    """
    if not 0 <= shard_index < num_shards:
        raise UserError(
            f"shard {shard_index} of {num_shards} does not exist", "use 0 <= shard_index < num_shards"
        )
    out_dir, cache_dir = Path(out_dir), Path(cache_dir) if cache_dir else Path(out_dir) / ".cache"
    rows = _accepted_rows(Path(ingest_dir))
    listed = len(rows)
    rows = rows.iloc[shard_index::num_shards].reset_index(drop=True)
    (out_dir / "tubes").mkdir(parents=True, exist_ok=True)
    cache_dir.mkdir(parents=True, exist_ok=True)

    t0 = time.perf_counter()
    jobs = [_job(r, cfg, cache_dir) for r in rows.to_dict("records")]
    hits = {j["video_id"]: o for j in jobs if (o := _cached_outcome(cache_dir, j["key"])) is not None}
    todo = [j for j in jobs if j["video_id"] not in hits]
    done = dict(hits)
    done.update(_process_all(todo, cfg.workers))
    wall = time.perf_counter() - t0

    keys = {j["video_id"]: j["key"] for j in jobs}
    table = _tube_table(rows, done, keys, cache_dir, out_dir)
    report = _report(table, done, hits, wall, listed=listed, shard=(shard_index, num_shards))
    _write_outputs(out_dir, table, report)
    return FacetubesResult(out_dir, table, report)


def gather(shard_dirs: list[Path], out_dir: Path) -> FacetubesResult:
    """Merge the output folders of :func:`run` shards into one folder (tubes linked, tables concatenated)."""
    out_dir = Path(out_dir)
    (out_dir / "tubes").mkdir(parents=True, exist_ok=True)
    tables, reports = [], []
    for d in map(Path, shard_dirs):
        if not (d / "tubes.parquet").is_file():
            raise UserError(
                f"shard folder {d} has no tubes.parquet", "run 'hypomimia facetubes' for that shard"
            )
        t = pd.read_parquet(d / "tubes.parquet")
        for rel in t.loc[t["tube"] != "", "tube"]:
            _link(d / rel, out_dir / rel)
        tables.append(t)
        reports.append(json.loads((d / "report.json").read_text()))
    table = pd.concat(tables, ignore_index=True).sort_values("video_id", ignore_index=True)
    dupes = table["video_id"][table["video_id"].duplicated()].tolist()
    if dupes:
        raise UserError(f"videos in more than one shard: {dupes[:5]}", "pass each shard folder once")
    report = {k: sum(r.get(k, 0) for r in reports) for k in ("processed", "cache_hits", "decoded_frames")}
    report.update(_counts(table))
    report["wall_s"] = max((r.get("wall_s", 0.0) for r in reports), default=0.0)
    report["listed"] = reports[0].get("listed", len(table)) if reports else 0
    report["shards"] = len(reports)
    _write_outputs(out_dir, table, report)
    return FacetubesResult(out_dir, table, report)


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


def process_video(job: dict[str, Any]) -> dict[str, Any]:
    """Worker: tube one video into the cache and return its outcome (the JSON written as the done marker)."""
    cfg = FacetubesConfig.model_validate(job["cfg"])
    cache_dir, key = Path(job["cache_dir"]), job["key"]
    t0 = time.perf_counter()
    try:
        tube = extract_tube(job["abs_path"], cfg)
        reason, detail = judge(tube, cfg)
    except Exception as e:  # a broken video must not stop the other videos
        log.warning("video %s: tube extraction failed: %s", job["video_id"], type(e).__name__)
        tube, reason, detail = None, "tube_failed", f"{type(e).__name__}: {e}"
    outcome: dict[str, Any] = {
        "status": "quarantined" if reason else "accepted",
        "reason": reason,
        "detail": detail,
    }
    if tube is not None:
        outcome.update(
            n_frames=len(tube.valid), fps=tube.fps, decoded_frames=tube.decoded_frames, **tube.metrics
        )
        if not reason:
            save_tube(cache_dir / f"{key}.npz", tube, job["sha256"])
    outcome["seconds"] = time.perf_counter() - t0
    outcome = {k: None if isinstance(v, float) and math.isnan(v) else v for k, v in outcome.items()}
    _write_json(cache_dir / f"{key}.json", outcome)  # last: marks the entry as complete
    return outcome


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


# -- helpers: bookkeeping -------------------------------------------------------------------------
def _accepted_rows(ingest_dir: Path) -> pd.DataFrame:
    df = read_stage_table(ingest_dir, "ingested.parquet", "ingest", INGEST_COLUMNS)
    return df[df["status"] == "accepted"].sort_values("video_id", ignore_index=True)


def _job(row: dict[str, Any], cfg: FacetubesConfig, cache_dir: Path) -> dict[str, Any]:
    return {
        "video_id": row["video_id"],
        "abs_path": str(row["abs_path"]),
        "sha256": row["sha256"],
        "key": cache_key(row["sha256"], cfg),
        "cfg": cfg.model_dump(mode="json"),
        "cache_dir": str(cache_dir),
    }


def _cached_outcome(cache_dir: Path, key: str) -> dict[str, Any] | None:
    """The finished outcome for ``key``, or None when it must be (re)computed."""
    marker = cache_dir / f"{key}.json"
    if not marker.is_file():
        return None
    outcome = json.loads(marker.read_text())
    if outcome["status"] == "accepted" and not (cache_dir / f"{key}.npz").is_file():
        return None  # tube removed behind our back: redo it
    return outcome


def _process_all(jobs: list[dict[str, Any]], workers: int) -> dict[str, dict[str, Any]]:
    """Run :func:`process_video` on every job with a progress bar (videos/s, frames/s)."""
    from tqdm import tqdm

    out: dict[str, dict[str, Any]] = {}
    if not jobs:
        return out
    t0, frames = time.perf_counter(), 0
    bar = tqdm(total=len(jobs), unit="video", desc="facetubes", disable=None)

    def record(video_id: str, outcome: dict[str, Any]) -> None:
        nonlocal frames
        out[video_id] = outcome
        frames += outcome.get("decoded_frames", 0)
        if outcome["status"] != "accepted":
            log.info("video %s quarantined: %s", video_id, outcome["reason"])
        bar.set_postfix(frames_per_s=f"{frames / max(time.perf_counter() - t0, 1e-9):.0f}")
        bar.update()

    try:
        if workers <= 1 or len(jobs) == 1:
            for j in jobs:
                record(j["video_id"], process_video(j))
        else:
            ctx = get_context("spawn")  # no fork: MediaPipe/TFLite threads do not survive fork
            with ProcessPoolExecutor(
                min(workers, len(jobs)), mp_context=ctx, initializer=_worker_init
            ) as pool:
                futures = {pool.submit(process_video, j): j["video_id"] for j in jobs}
                for fut in as_completed(futures):
                    record(futures[fut], fut.result())
    finally:
        bar.close()
    return out


def _worker_init() -> None:
    import cv2

    from hypomimia.logs import telemetry_off

    telemetry_off()
    cv2.setNumThreads(1)  # one video per process: OpenCV's own threads would only oversubscribe the cores


def _tube_table(
    rows: pd.DataFrame, done: dict[str, dict[str, Any]], keys: dict[str, str], cache_dir: Path, out_dir: Path
) -> pd.DataFrame:
    """One row per video (docs/data-format.md §3); links each accepted tube from the cache into ``out_dir``."""
    records, keep = [], set()
    for r in rows.to_dict("records"):
        o = done[r["video_id"]]
        rec = {c: r[c] for c in INGEST_COLUMNS[:7]}
        rec.update({c: o.get(c) for c in ("status", "reason", "detail", "n_frames", "fps", *METRIC_COLUMNS)})
        rec["tube"] = ""
        if o["status"] == "accepted":
            rel = f"tubes/{r['video_id']}.npz"
            _link(cache_dir / f"{keys[r['video_id']]}.npz", out_dir / rel)
            rec["tube"] = rel
            keep.add(rel)
        records.append(rec)
    for stale in (out_dir / "tubes").glob("*.npz"):  # tubes of videos no longer listed
        if f"tubes/{stale.name}" not in keep:
            stale.unlink()
    table = pd.DataFrame.from_records(records, columns=list(TUBE_COLUMNS))
    return table.astype({"n_frames": "Int64", "tracking_losses": "Int64", "target_switches": "Int64"})


def _link(src: Path, dst: Path) -> None:
    """Hard-link (or copy, across file systems) ``src`` to ``dst`` atomically."""
    if dst.exists() and src.exists() and os.path.samefile(src, dst):
        return
    tmp = dst.with_name(f".{dst.name}.{os.getpid()}.tmp")
    tmp.unlink(missing_ok=True)
    try:
        os.link(src, tmp)
    except OSError:
        shutil.copyfile(src, tmp)
    os.replace(tmp, dst)


def _counts(table: pd.DataFrame) -> dict[str, Any]:
    quarantined = table[table["status"] == "quarantined"]
    return {
        "videos": len(table),
        "accepted": int((table["status"] == "accepted").sum()),
        "quarantined": len(quarantined),
        "reasons": {str(k): int(v) for k, v in quarantined["reason"].value_counts().sort_index().items()},
        "multi_face": int(table["multi_face"].fillna(False).astype(bool).sum()),
        "tube_frames": int(table["n_frames"].fillna(0).sum()),
    }


def _report(
    table: pd.DataFrame,
    done: dict[str, dict[str, Any]],
    hits: dict[str, dict[str, Any]],
    wall: float,
    listed: int,
    shard: tuple[int, int],
) -> dict[str, Any]:
    fresh = [o for v, o in done.items() if v not in hits]
    decoded = sum(o.get("decoded_frames", 0) for o in fresh)
    report = {"listed": listed, "shard_index": shard[0], "num_shards": shard[1], **_counts(table)}
    report.update(
        processed=len(fresh),
        cache_hits=len(hits),
        decoded_frames=decoded,
        wall_s=round(wall, 3),
        videos_per_s=round(len(fresh) / wall, 3) if fresh and wall > 0 else 0.0,
        frames_per_s=round(decoded / wall, 1) if fresh and wall > 0 else 0.0,
    )
    return report


def _write_outputs(out_dir: Path, table: pd.DataFrame, report: dict[str, Any]) -> None:
    tmp = out_dir / f".tubes.parquet.{os.getpid()}.tmp"
    table.to_parquet(tmp, index=False)
    os.replace(tmp, out_dir / "tubes.parquet")
    _write_json(out_dir / "report.json", report)


def _write_json(path: Path, data: dict[str, Any]) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(data, indent=2, sort_keys=True, default=_json_default))
    os.replace(tmp, path)


def _json_default(x: Any) -> Any:
    if isinstance(x, np.generic):
        return x.item()
    raise TypeError(f"not JSON-serialisable: {type(x).__name__}")
