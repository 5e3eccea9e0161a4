"""Stage `voice`: accepted videos -> one row of voice measures each (docs/data-format.md §4, docs/voice.md).

Runs beside ``facetubes`` (both read only ingest's accepted videos). The measures of one clip come
from :func:`hypomimia.voice.clip.measure_video`; this stage fans the clips out over ``cfg.workers``
processes, caches each clip's row by content (``cache_dir/<key>.json``, the key hashing the video's
sha256, the feature version and every param but ``workers``), and writes ``voice.parquet`` and
``voice_report.json``. Every accepted video gets a row: a clip without audio is ``no_audio``, not an
error; an audio track that does not decode is ``failed`` with its reason; nothing stops the others.
Shards split the videos (sorted by id) round-robin for the KFP fan-out; :func:`gather` merges them.
"""

from __future__ import annotations

import hashlib
import json
import logging
import multiprocessing
import os
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from hypomimia.config.voice import VoiceConfig
from hypomimia.data.artifacts import read_stage_table
from hypomimia.errors import UserError
from hypomimia.lineage.provenance import stamp
from hypomimia.voice.audio import has_audio_stream
from hypomimia.voice.clip import blank_row, measure_video
from hypomimia.voice.schema import EGEMAPS_PREFIX, FEATURE_VERSION, MEASURES, RECORDING

log = logging.getLogger(__name__)

TABLE = "voice.parquet"
REPORT = "voice_report.json"
INGEST_COLUMNS = ("video_id", "subject_id", "label", "task", "sha256", "status", "abs_path")
KEY_COLUMNS = ("video_id", "subject_id", "label", "task", "sha256")
_TIMING_KEYS = ("seconds", "praat_s", "egemaps_s")  # in the cache entry and the report, not the table
_DTYPES = {"audio_rate": "Int64", "audio_channels": "Int64", "has_audio": "bool"}


@dataclass(frozen=True)
class VoiceResult:
    out_dir: Path
    table: pd.DataFrame  # the rows of voice.parquet
    report: dict[str, Any] = field(default_factory=dict)


def cache_key(sha256: str, cfg: VoiceConfig) -> str:
    """Content address of one clip's row: its bytes, the feature code and the params that shape it."""
    params = cfg.model_dump(mode="json", exclude={"workers"})
    text = json.dumps({"video": sha256, "version": FEATURE_VERSION, "params": params}, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()


def run(
    cfg: VoiceConfig,
    ingest_dir: Path,
    out_dir: Path,
    cache_dir: Path | None = None,
    shard_index: int = 0,
    num_shards: int = 1,
) -> VoiceResult:
    """Measure the voice of every accepted video of ``ingest_dir/ingested.parquet`` (this shard's share).

    ``cache_dir`` defaults to ``out_dir/.cache``.
    """
    if not 0 <= shard_index < num_shards:
        raise UserError(
            f"shard {shard_index} of {num_shards} does not exist", "use 0 <= shard_index < num_shards"
        )
    out_dir, cache_dir = Path(out_dir), Path(cache_dir) if cache_dir else Path(out_dir) / ".cache"
    ingested = read_stage_table(Path(ingest_dir), "ingested.parquet", "ingest", INGEST_COLUMNS)
    rows = ingested[ingested["status"] == "accepted"].sort_values("video_id", ignore_index=True)
    listed = len(rows)
    rows = rows.iloc[shard_index::num_shards].reset_index(drop=True)
    out_dir.mkdir(parents=True, exist_ok=True)
    cache_dir.mkdir(parents=True, exist_ok=True)

    t0 = time.perf_counter()
    keys = {r["video_id"]: cache_key(r["sha256"], cfg) for r in rows.to_dict("records")}
    hits = {v: o for v, k in keys.items() if (o := _cached(cache_dir / f"{k}.json")) is not None}
    todo = [(r["video_id"], str(r["abs_path"])) for r in rows.to_dict("records") if r["video_id"] not in hits]
    fresh = _measure_all(todo, cfg, keys, cache_dir)
    wall = time.perf_counter() - t0

    table = _table(rows, hits | fresh, cfg)
    report = _report(table, fresh, hits, wall, listed, (shard_index, num_shards))
    report["params"] = cfg.model_dump(mode="json")
    report["provenance"] = stamp("voice", cfg, {"ingested": Path(ingest_dir) / "ingested.parquet"})
    _write_outputs(out_dir, table, report)
    return VoiceResult(out_dir, table, report)


def gather(shard_dirs: list[Path], out_dir: Path) -> VoiceResult:
    """Merge the output folders of :func:`run` shards into one folder, identical to an unsharded run's table."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    tables, reports = [], []
    for d in map(Path, shard_dirs):
        tables.append(read_stage_table(d, TABLE, "voice"))
        try:
            reports.append(json.loads((d / REPORT).read_text()))
        except (FileNotFoundError, json.JSONDecodeError):
            raise UserError(f"shard folder {d} has no readable {REPORT}", "re-run 'hypomimia voice' for that shard") from None  # fmt: skip
    table = pd.concat(tables, ignore_index=True).sort_values("video_id", ignore_index=True)
    dupes = table["video_id"][table["video_id"].duplicated()].tolist()
    if dupes:
        raise UserError(f"videos in more than one shard: {dupes[:5]}", "pass each shard folder once")
    if len({json.dumps(r.get("params"), sort_keys=True) for r in reports}) > 1:
        raise UserError("the shards were made with different voice params", "re-run every shard with one params.yaml")  # fmt: skip
    report = {"listed": reports[0].get("listed", len(table)) if reports else 0, "shards": len(reports)}
    report |= _counts(table)
    report |= {k: sum(r.get(k, 0) for r in reports) for k in ("processed", "cache_hits")}
    report["wall_s"] = max((r.get("wall_s", 0.0) for r in reports), default=0.0)
    report["seconds"] = {
        k: round(sum(r.get("seconds", {}).get(k, 0.0) for r in reports), 3)
        for k in ("total", "praat", "egemaps")
    }
    report["seconds_per_clip"] = _per_clip(report["seconds"], report["processed"])
    report["params"] = reports[0].get("params") if reports else None
    report["feature_version"] = FEATURE_VERSION
    report["provenance"] = stamp("voice", report["params"], {f"shard{i}": Path(d) / TABLE for i, d in enumerate(shard_dirs)})  # fmt: skip
    _write_outputs(out_dir, table, report)
    return VoiceResult(out_dir, table, report)


# -- one clip, in whichever process measures it ---------------------------------------------------
def measure_job(video_id: str, path: str, cfg_json: str) -> tuple[str, dict[str, Any]]:
    """One clip's row; an unexpected error is the clip's ``voice_failed``, never the stage's end."""
    cfg = VoiceConfig.model_validate_json(cfg_json)
    t0 = time.perf_counter()
    try:
        return video_id, measure_video(path, cfg)
    except Exception as e:  # a broken clip must not stop the other clips
        first = (str(e).splitlines() or [""])[0][:200]
        log.warning("video %s: voice measures failed: %s", video_id, type(e).__name__)
        row = blank_row(cfg) | {
            "has_audio": has_audio_stream(path),
            "status": "failed",
            "reason": "voice_failed",
        }
        return video_id, row | {"detail": f"{type(e).__name__}: {first}", "seconds": time.perf_counter() - t0}


def _measure_all(
    todo: list[tuple[str, str]], cfg: VoiceConfig, keys: dict[str, str], cache_dir: Path
) -> dict[str, dict[str, Any]]:
    """Measure the clips (in ``workers`` spawned processes when there is more than one clip) and
    cache each row as it arrives."""
    from tqdm import tqdm

    cfg_json = cfg.model_dump_json()
    done: dict[str, dict[str, Any]] = {}
    workers = min(cfg.workers, len(todo))
    bar = tqdm(total=len(todo), unit="clip", desc="voice", disable=None)
    try:
        if workers <= 1:
            results = (measure_job(v, p, cfg_json) for v, p in todo)
            for video_id, row in results:
                done[video_id] = _cache(cache_dir / f"{keys[video_id]}.json", row)
                bar.update()
        else:
            # spawn, not fork: the parent may hold threads (tqdm, torch in tests) that a fork would copy mid-lock
            context = multiprocessing.get_context("spawn")
            with ProcessPoolExecutor(workers, mp_context=context) as pool:
                ids, paths = zip(*todo, strict=True)
                for video_id, row in pool.map(measure_job, ids, paths, [cfg_json] * len(todo)):
                    done[video_id] = _cache(cache_dir / f"{keys[video_id]}.json", row)
                    bar.update()
    finally:
        bar.close()
    return done


# -- bookkeeping ----------------------------------------------------------------------------------
def _cached(path: Path) -> dict[str, Any] | None:
    try:
        return json.loads(path.read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return None  # absent or torn: measure again


def _cache(path: Path, row: dict[str, Any]) -> dict[str, Any]:
    _write_json(path, row)
    return row


def _table(rows: pd.DataFrame, outcomes: dict[str, dict[str, Any]], cfg: VoiceConfig) -> pd.DataFrame:
    """One row per accepted video (docs/data-format.md §4): ingest's keys, then the clip's row."""
    clip_columns = [c for c in blank_row(cfg) if c not in _TIMING_KEYS]
    records = [
        {**{c: r[c] for c in KEY_COLUMNS}, **{c: outcomes[r["video_id"]].get(c) for c in clip_columns}}
        for r in rows.to_dict("records")
    ]
    table = pd.DataFrame.from_records(records, columns=[*KEY_COLUMNS, *clip_columns])
    numbers = ("duration_s", "voiced_s", "voiced_share", *MEASURES, *RECORDING)
    floats = [c for c in clip_columns if c in numbers or c.startswith(EGEMAPS_PREFIX)]
    table[floats] = table[floats].astype("float64")
    for c in ("reason", "detail", "audio_codec", "status", "feature_version"):
        table[c] = table[c].fillna("").astype(str)
    return table.astype(_DTYPES)


def _counts(table: pd.DataFrame) -> dict[str, Any]:
    failed = table[table["status"] == "failed"]
    return {
        "videos": len(table),
        "with_audio": int(table["has_audio"].sum()),
        "without_audio": int((~table["has_audio"]).sum()),
        **{s: int((table["status"] == s).sum()) for s in ("measured", "no_audio", "no_voice", "failed")},
        "reasons": {str(k): int(v) for k, v in failed["reason"].value_counts().sort_index().items()},
        "voiced_s": round(float(table["voiced_s"].fillna(0).sum()), 3),
    }


def _per_clip(seconds: dict[str, float], processed: int) -> dict[str, float]:
    return {k: round(v / processed, 4) if processed else 0.0 for k, v in seconds.items()}


def _report(
    table: pd.DataFrame,
    fresh: dict[str, dict[str, Any]],
    hits: dict[str, dict[str, Any]],
    wall: float,
    listed: int,
    shard: tuple[int, int],
) -> dict[str, Any]:
    seconds = {
        "total": round(sum(o.get("seconds", 0.0) for o in fresh.values()), 3),
        "praat": round(sum(o.get("praat_s", 0.0) for o in fresh.values()), 3),
        "egemaps": round(sum(o.get("egemaps_s", 0.0) for o in fresh.values()), 3),
    }
    report = {"listed": listed, "shard_index": shard[0], "num_shards": shard[1], **_counts(table)}
    report.update(
        processed=len(fresh),
        cache_hits=len(hits),
        wall_s=round(wall, 3),
        seconds=seconds,  # summed over clips (CPU time of the workers, roughly), this run's clips only
        seconds_per_clip=_per_clip(seconds, len(fresh)),
        feature_version=FEATURE_VERSION,
    )
    return report


def _write_outputs(out_dir: Path, table: pd.DataFrame, report: dict[str, Any]) -> None:
    tmp = out_dir / f".{TABLE}.{os.getpid()}.tmp"
    table.to_parquet(tmp, index=False)
    os.replace(tmp, out_dir / TABLE)
    _write_json(out_dir / REPORT, report)


def _write_json(path: Path, data: dict[str, Any]) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(data, indent=2, sort_keys=True))
    os.replace(tmp, path)
