"""Stage `facetubes`: accepted videos -> aligned face tubes + quality metrics (docs/data-format.md §3).

The tube of one video is made by ``hypomimia.faces.tube`` (the endpoint calls its
``extract_tube``, which is built from the same pieces); this stage orchestrates: it reads the accepted videos, fans them out, judges each tube,
and writes the tube table and the report.

The unit of work is a time segment of a video (faces.tube: one per video unless it is long);
this process and ``cfg.workers - 1`` helper processes (faces.parallel) share the segments of all
videos, so one long video uses every core as many short ones do. Results are
content-addressed in a cache (``cache_dir/<key>.npz`` + ``<key>.json``) keyed by the video's sha256,
the tube parameters and the tube code version, so re-runs and unchanged videos cost nothing. The
JSON is written (atomically) only after the tube, so it is the "done" marker: a run killed half-way
leaves at most a temp file, never a tube that counts as done.
"""

from __future__ import annotations

import json
import logging
import math
import os
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from hypomimia.config.facetubes import FacetubesConfig
from hypomimia.data.artifacts import read_stage_table
from hypomimia.errors import UserError
from hypomimia.faces.parallel import run_tasks, shared_helpers
from hypomimia.faces.quality import VISIBILITY_METRICS, region_visibility
from hypomimia.faces.tube import (
    SegmentFailure,
    cache_key,
    join_segments,
    judge,
    save_tube,
    segment_tasks,
    track_segment_or_failure,
    tube_params,
    warm_helper,
)
from hypomimia.lineage.provenance import stamp

log = logging.getLogger(__name__)

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
    "roll_range", "tracking_losses", "target_switches", "multi_face", "mean_frame_phash", *VISIBILITY_METRICS,
)  # fmt: skip
TUBE_COLUMNS = (
    *INGEST_COLUMNS[:7], "status", "reason", "detail", "tube", "n_frames", "fps", *METRIC_COLUMNS,
)  # fmt: skip


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
    done.update(_process_all(todo, cfg, cfg.workers))
    wall = time.perf_counter() - t0

    keys = {j["video_id"]: j["key"] for j in jobs}
    table = _tube_table(rows, done, keys, cache_dir, out_dir)
    report = _report(table, done, hits, wall, listed=listed, shard=(shard_index, num_shards))
    report["params"] = tube_params(cfg)
    report["provenance"] = stamp("facetubes", cfg, {"ingested": Path(ingest_dir) / "ingested.parquet"})
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
    report = {
        k: sum(r.get(k, 0) for r in reports)
        for k in ("processed", "cache_hits", "decoded_frames", "mesh_calls")
    }
    report.update(_counts(table))
    report["wall_s"] = max((r.get("wall_s", 0.0) for r in reports), default=0.0)
    report["listed"] = reports[0].get("listed", len(table)) if reports else 0
    report["shards"] = len(reports)
    params = {json.dumps(r.get("params"), sort_keys=True) for r in reports}
    if len(params) > 1:
        raise UserError(
            "the shards were made with different face-tube params", "re-run every shard with one params.yaml"
        )
    report["params"] = reports[0].get("params") if reports else None
    report["provenance"] = stamp("facetubes", report["params"], {f"shard{i}": Path(d) / "tubes.parquet" for i, d in enumerate(shard_dirs)})  # fmt: skip
    _write_outputs(out_dir, table, report)
    return FacetubesResult(out_dir, table, report)


# -- one video ------------------------------------------------------------------------------------
def finish_video(job: dict[str, Any], parts: list, seconds: float, cfg: FacetubesConfig) -> dict[str, Any]:
    """Join a video's tracked segments, judge the tube, cache it; return its outcome (the JSON
    written last, as the done marker). A failed segment quarantines the video as ``tube_failed``."""
    cache_dir, key = Path(job["cache_dir"]), job["key"]
    failed = next((p for p in parts if isinstance(p, SegmentFailure)), None)
    tube = None
    if failed is not None:  # a broken video must not stop the other videos
        log.warning("video %s: tube extraction failed: %s", job["video_id"], failed.error.split(":")[0])
        reason, detail = "tube_failed", failed.error
    else:
        tube = join_segments(parts, cfg)
        reason, detail = judge(tube, cfg)
    outcome: dict[str, Any] = {
        "status": "quarantined" if reason else "accepted",
        "reason": reason,
        "detail": detail,
    }
    if tube is not None:
        outcome.update(
            n_frames=len(tube.valid),
            fps=tube.fps,
            decoded_frames=tube.decoded_frames,
            mesh_calls=tube.work.get("mesh_calls", 0),
            **tube.metrics,
        )
        if not reason:
            save_tube(cache_dir / f"{key}.npz", tube, job["sha256"])
    outcome["seconds"] = seconds
    outcome = {k: None if isinstance(v, float) and math.isnan(v) else v for k, v in outcome.items()}
    _write_json(cache_dir / f"{key}.json", outcome)  # last: marks the entry as complete
    return outcome


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
    if outcome["status"] == "accepted" and any(m not in outcome for m in VISIBILITY_METRICS):
        # an entry from before the visibility metrics: the same tube bytes, so the metrics come from
        # the cached tube (what a fresh run computes) and the entry is completed, not re-tracked
        with np.load(cache_dir / f"{key}.npz") as z:
            vis = region_visibility(z["frames"], z["landmarks"], z["valid"])
        outcome |= {k: None if math.isnan(v) else v for k, v in vis.items()}
        _write_json(marker, outcome)
    return outcome


def _process_all(jobs: list[dict[str, Any]], cfg: FacetubesConfig, workers: int) -> dict[str, dict[str, Any]]:
    """Tube every job, with a progress bar (videos/s, frames/s).

    The unit of work is a video's time segment (one per video unless ``segments`` > 1): all
    segments of all videos go, longest first, to this process and ``workers - 1`` helper processes
    (faces.parallel; the helpers take tasks once they are up, so a few short videos never wait for
    one). A video is joined, judged and cached here as soon as its last segment is back.
    """
    from tqdm import tqdm

    out: dict[str, dict[str, Any]] = {}
    if not jobs:
        return out
    t0, frames = time.perf_counter(), 0
    bar = tqdm(total=len(jobs), unit="video", desc="facetubes", disable=None)
    tasks = [(j, k, t) for j in jobs for k, t in enumerate(segment_tasks(j["abs_path"], cfg))]
    tasks.sort(key=lambda x: -x[2].frames)  # longest first: nobody is left with a long one at the end
    parts: dict[str, list] = {j["video_id"]: [] for j in jobs}
    for j, _k, _ in tasks:
        parts[j["video_id"]].append(None)
    seconds = dict.fromkeys(parts, 0.0)

    def arrived(i: int, result: tuple) -> None:
        nonlocal frames
        job, k, _ = tasks[i]
        vid = job["video_id"]
        parts[vid][k], seconds[vid] = result[0], seconds[vid] + result[1]
        if any(p is None for p in parts[vid]):
            return  # more segments of this video to come
        outcome = out[vid] = finish_video(job, parts.pop(vid), seconds[vid], cfg)
        frames += outcome.get("decoded_frames", 0)
        if outcome["status"] != "accepted":
            log.info("video %s quarantined: %s", vid, outcome["reason"])
        bar.set_postfix(frames_per_s=f"{frames / max(time.perf_counter() - t0, 1e-9):.0f}")
        bar.update()

    # this process's long-lived helpers: a second run in the same process (tests, the bench, a
    # notebook) finds them warm; a CLI run closes them at exit
    helpers = shared_helpers(workers - 1, warm_helper) if len(tasks) > 1 else None
    try:
        run_tasks(track_segment_or_failure, [t for _, _, t in tasks], helpers, arrived)
    finally:
        bar.close()
    return out


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
    meshed = sum(o.get("mesh_calls", 0) or 0 for o in fresh)
    report = {"listed": listed, "shard_index": shard[0], "num_shards": shard[1], **_counts(table)}
    report.update(
        processed=len(fresh),
        cache_hits=len(hits),
        decoded_frames=decoded,
        mesh_calls=meshed,
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
