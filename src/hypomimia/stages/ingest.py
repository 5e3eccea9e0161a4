"""Ingest: a hospital's folder of videos + manifest -> an audited table of accepted and quarantined videos.

Every manifest row ends up in ``ingested.parquet`` as either ``accepted`` or ``quarantined``
with a machine-readable reason; nothing is dropped silently (``accepted + quarantined ==
listed``). Files on disk that the manifest does not list are reported in ``unlisted.csv``.
Accepted pd/control videos get subject-grouped, label-stratified folds when they form a training
cohort (both labels, at least ``ingest.folds`` subjects each); other batches (a monitoring window,
follow-up visits of a few patients, unlabelled videos) are ingested all the same, without folds. Output formats:
``docs/data-format.md`` section 2.
"""

from __future__ import annotations

import csv
import io
import json
import logging
import math
import multiprocessing
import os
import sys
import time
import unicodedata
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor, as_completed
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from hypomimia.config.ingest import IngestConfig
from hypomimia.data.folds import check_feasible, fold_counts, make_folds
from hypomimia.data.manifest import COLUMNS, label_score_problem, read_manifest
from hypomimia.data.probe import Probe, audio_problem, probe, probe_many_worker, quality_problem
from hypomimia.errors import UserError
from hypomimia.lineage.provenance import stamp

log = logging.getLogger(__name__)

# What counts as "a video on disk" when looking for files the manifest forgot.
VIDEO_SUFFIXES = frozenset(
    {".mp4", ".m4v", ".mov", ".avi", ".mkv", ".webm", ".3gp", ".3g2", ".mts", ".m2ts", ".ts", ".mpg", ".mpeg"}
    | {".wmv", ".flv", ".mxf", ".ogv"}
)

PROBE_FIELDS = [
    "container",
    "codec",
    "width",
    "height",
    "rotation",
    "display_width",
    "display_height",
    "nominal_fps",
    "real_fps",
    "vfr",
    "declared_frames",
    "decoded_frames",
    "decode_errors",
    "decode_ratio",
    "duration_s",
    "has_audio",
    "audio_codec",
    "audio_sample_rate",
    "audio_channels",
    "audio_duration_s",
    "audio_loudness_lufs",
    "audio_peak_dbfs",
    "audio_clipped_share",
    "size_bytes",
]
AUDIO_FIELDS = [f for f in PROBE_FIELDS if f.startswith("audio_")]
VIDEO_FIELDS = [f for f in PROBE_FIELDS if f not in ("container", "has_audio", "size_bytes", *AUDIO_FIELDS)]
_STR, _I64, _F64, _BOOL = pa.string(), pa.int64(), pa.float64(), pa.bool_()
INGESTED_SCHEMA = pa.schema(
    [("manifest_row", _I64), ("video_id", _STR), ("path", _STR), ("subject_id", _STR), ("session", _STR)]
    + [("task", _STR), ("label", _STR), ("updrs_3_2", _I64), ("hoehn_yahr", _F64), ("age", _I64)]
    + [("sex", _STR), ("site", _STR), ("camera", _STR), ("split_group", _STR), ("sha256", _STR)]
    + [("status", _STR)]
    + [("reason", _STR), ("detail", _STR), ("container", _STR), ("codec", _STR), ("width", _I64)]
    + [("height", _I64), ("rotation", _I64), ("display_width", _I64), ("display_height", _I64)]
    + [("nominal_fps", _F64), ("real_fps", _F64), ("vfr", _BOOL), ("declared_frames", _I64)]
    + [("decoded_frames", _I64), ("decode_errors", _I64), ("decode_ratio", _F64), ("duration_s", _F64)]
    + [("has_audio", _BOOL), ("audio_codec", _STR), ("audio_sample_rate", _I64), ("audio_channels", _I64)]
    + [("audio_duration_s", _F64), ("audio_loudness_lufs", _F64), ("audio_peak_dbfs", _F64)]
    + [("audio_clipped_share", _F64), ("size_bytes", _I64), ("abs_path", _STR)]
)
QUARANTINE_COLUMNS = ["manifest_row", "video_id", "reason", "detail"]
FOLDS_SCHEMA = pa.schema(
    [("video_id", _STR), ("subject_id", _STR), ("label", _STR), ("repeat", _I64), ("fold", _I64)]
)


@dataclass(frozen=True)
class IngestResult:
    out_dir: Path
    listed: int
    accepted: int
    quarantined: int
    unlisted: int
    reasons: dict[str, int]  # quarantine reason -> number of videos
    fold_videos: int  # accepted pd/control videos that got folds
    folds_note: str  # why no folds were made ('' when they were): not a training cohort
    probed_files: int
    probe_seconds: float
    seconds: float
    files: dict[str, Path] = field(default_factory=dict)  # output name -> path

    @property
    def files_per_s(self) -> float:
        return self.probed_files / self.probe_seconds if self.probe_seconds > 0 else math.nan


def run(cfg: IngestConfig, manifest: Path, out_dir: Path, video_root: Path | None = None) -> IngestResult:
    """Validate the manifest, probe every listed file, decide accept/quarantine, write outputs."""
    t0 = time.perf_counter()
    manifest, out_dir = Path(manifest), Path(out_dir)
    root = Path(video_root) if video_root is not None else manifest.parent
    if not root.is_dir():
        raise UserError(f"video root is not a folder: {root}", "pass --video-root DIR holding the videos")
    table = read_manifest(manifest)
    rows = [_resolve(row, root) for row in table.rows]

    to_probe = sorted({p for p in rows if p is not None and os.path.exists(p)})
    t_probe = time.perf_counter()
    probes = _probe_all(to_probe, cfg)
    probe_seconds = time.perf_counter() - t_probe

    records = _decide(table.rows, table.problems, rows, probes, cfg)
    unlisted = _unlisted(root, {os.path.realpath(p) for p in rows if p is not None}, manifest, out_dir)
    files = _write_tables(out_dir, records, unlisted)
    accepted = pd.DataFrame([r for r in records if r["status"] == "accepted"], columns=list(COLUMNS))
    # Folds are a training concern: a monitoring window or a clinic's follow-up visits (one label,
    # few subjects, unlabelled) ingest fine and get no folds; training refuses such a table itself.
    folds_note = ""
    try:
        check_feasible(accepted, cfg.folds)
        folds = make_folds(accepted, cfg.folds, cfg.repeats, cfg.seed)
    except UserError as e:
        folds_note = f"no folds: {e.problem}. Fine for scoring or monitoring; to train, {e.fix}"
        folds = make_folds(accepted.iloc[0:0], cfg.folds, cfg.repeats, cfg.seed)
        log.warning("ingest: not a training cohort (%s); folds.parquet is empty", e.problem)
    report = _report(records, unlisted, folds, cfg, table.ignored_columns, len(to_probe), probe_seconds)
    report["provenance"] = stamp("ingest", cfg, {"manifest": manifest})  # video hashes: ingested.parquet
    report["folds_note"] = folds_note
    files |= _write_folds_and_report(out_dir, folds, report)
    seconds = time.perf_counter() - t0
    log.info(
        "ingest: %d listed -> %d accepted, %d quarantined, %d unlisted on disk (%.1f s, %.1f files/s probed)",
        report["listed"],
        report["accepted"],
        report["quarantined"],
        report["unlisted"],
        seconds,
        report["timing"]["files_per_s"] or 0.0,
    )
    return IngestResult(
        out_dir=out_dir,
        listed=report["listed"],
        accepted=report["accepted"],
        quarantined=report["quarantined"],
        unlisted=report["unlisted"],
        reasons=report["reasons"],
        fold_videos=report["fold_videos"],
        folds_note=folds_note,
        probed_files=len(to_probe),
        probe_seconds=probe_seconds,
        seconds=seconds,
        files=files,
    )


def _report(
    records: list[dict],
    unlisted: list[dict],
    folds: pd.DataFrame,
    cfg: IngestConfig,
    ignored_columns: list[str],
    probed: int,
    probe_seconds: float,
) -> dict[str, Any]:
    reasons = Counter(r["reason"] for r in records if r["status"] == "quarantined")
    report = {
        "listed": len(records),
        "accepted": sum(r["status"] == "accepted" for r in records),
        "quarantined": sum(reasons.values()),
        "unlisted": len(unlisted),
        "reasons": dict(sorted(reasons.items())),
        "folds": cfg.folds,
        "repeats": cfg.repeats,
        "seed": cfg.seed,
        "fold_videos": int(folds["video_id"].nunique()) if len(folds) else 0,
        "fold_counts": fold_counts(folds),
        "ignored_columns": ignored_columns,
        "timing": {
            "probed_files": probed,
            "probe_seconds": round(probe_seconds, 3),
            "files_per_s": round(probed / probe_seconds, 2) if probe_seconds > 0 else None,
        },
    }
    if report["accepted"] + report["quarantined"] != report["listed"]:  # the audit invariant
        raise AssertionError(f"accounting broke: {report}")
    return report


# --- paths ---------------------------------------------------------------------------------------------


def _resolve(row: dict[str, Any], root: Path) -> str | None:
    """Absolute path of a manifest row's file (None when the row has no path)."""
    if not row.get("path"):
        return None
    path = Path(row["path"])
    path = path if path.is_absolute() else root / path
    if not path.exists():
        # macOS writes decomposed (NFD) Unicode names; spreadsheets usually hold composed (NFC) text.
        for form in ("NFC", "NFD"):
            other = Path(unicodedata.normalize(form, str(path)))
            if other.exists():
                return os.path.abspath(other)
    return os.path.abspath(path)


def _unlisted(root: Path, listed: set[str], manifest: Path, out_dir: Path) -> list[dict[str, Any]]:
    """Video files under ``root`` that no manifest row points to (reported, never ingested)."""
    skip = {os.path.realpath(out_dir)}
    found = []
    for folder, dirs, names in os.walk(root):
        dirs[:] = sorted(
            d for d in dirs if not d.startswith(".") and os.path.realpath(Path(folder, d)) not in skip
        )
        for name in sorted(names):
            path = os.path.join(folder, name)
            if name.startswith(".") or Path(name).suffix.lower() not in VIDEO_SUFFIXES:
                continue
            if os.path.realpath(path) in listed or os.path.realpath(path) == os.path.realpath(manifest):
                continue
            raw = os.fsencode(os.path.relpath(path, root))
            shown = raw.decode("utf-8", "backslashreplace")  # non-UTF-8 bytes become \xff, never a crash
            utf8 = shown == raw.decode("utf-8", "surrogateescape")
            note = (
                "not listed in the manifest"
                if utf8
                else "file name is not valid UTF-8, so no manifest can list it: rename it in UTF-8 and list it"
            )
            found.append({"path": shown, "size_bytes": os.path.getsize(path), "note": note})
    return sorted(found, key=lambda r: r["path"])


# --- probing -------------------------------------------------------------------------------------------


def _probe_all(paths: list[str], cfg: IngestConfig) -> dict[str, Probe]:
    """Probe files in ``cfg.workers`` processes, with a progress bar on a terminal."""
    if cfg.workers == 1 or len(paths) <= 1:
        with _progress(len(paths)) as advance:
            return {path: advance(probe(path, cfg.max_pixels)) for path in paths}
    # fork: "spawn" would re-import the caller's __main__, which breaks scripts without a main guard.
    # The pool forks all its workers at the first submit, before any progress thread starts.
    methods = multiprocessing.get_all_start_methods()
    context = multiprocessing.get_context("fork" if "fork" in methods else "spawn")
    results: dict[str, Probe] = {}
    with ProcessPoolExecutor(max_workers=min(cfg.workers, len(paths)), mp_context=context) as pool:
        futures = [pool.submit(probe_many_worker, (p, cfg.max_pixels)) for p in paths]
        with _progress(len(paths)) as advance:
            for future in as_completed(futures):
                path, result = future.result()
                results[path] = advance(result)
    return results


@contextmanager
def _progress(total: int) -> Iterator[Callable[[Probe], Probe]]:
    """A rich progress bar (only on a terminal); yields ``advance(result) -> result``."""
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    columns = (TextColumn("probing"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
    bar = Progress(*columns, console=Console(stderr=True), transient=True, disable=not sys.stderr.isatty())
    with bar:
        task = bar.add_task("probe", total=total)

        def advance(result: Probe) -> Probe:
            bar.advance(task)
            return result

        yield advance


# --- decisions -----------------------------------------------------------------------------------------


def _decide(
    rows: list[dict[str, Any]],
    problems: dict[int, list[str]],
    paths: list[str | None],
    probes: dict[str, Probe],
    cfg: IngestConfig,
) -> list[dict[str, Any]]:
    """One record per manifest row, in manifest order, so that the first listing of a file wins."""
    first_listing: dict[str, str] = {}  # real path -> video_id
    first_content: dict[str, str] = {}  # sha256 -> video_id
    records = []
    for i, (row, path) in enumerate(zip(rows, paths, strict=True)):
        found = probes.get(path) if path else None
        real = os.path.realpath(path) if path else None
        reason, detail = "", ""
        if i in problems:
            reason, detail = "invalid_row", "; ".join(problems[i])
        elif real in first_listing:
            reason = "duplicate_listing"
            detail = f"the same file is already listed as video_id {first_listing[real]}"
        elif found is None:
            reason = "missing_file"
            detail = "no file at this path (relative paths start at --video-root, by default the manifest's folder)"
        elif found.problem:
            reason, detail = found.problem, found.detail
        elif found.sha256 in first_content:
            reason = "duplicate_content"
            detail = f"same content (sha256 {found.sha256[:12]}) as video_id {first_content[found.sha256]}"
        else:
            reason, detail = _quality(found, cfg)
            if not reason and cfg.require_audio:
                reason, detail = _audio(found, cfg)
            if not reason:
                problem = label_score_problem(row, cfg.control_max_updrs)
                reason, detail = ("label_score_inconsistent", problem) if problem else ("", _notes(found))
        if i not in problems and real is not None:
            first_listing.setdefault(real, row["video_id"])
            if found is not None and not found.problem:
                first_content.setdefault(found.sha256, row["video_id"])
        records.append(_record(i, row, path, found, reason, detail))
        _log_decision(row, found, reason, i)
    return records


def _quality(p: Probe, cfg: IngestConfig) -> tuple[str, str]:
    """The first threshold a decodable video fails, as (reason, detail); ('', '') when it passes."""
    return quality_problem(
        p,
        section="ingest",
        max_pixels=cfg.max_pixels,
        min_side=cfg.min_side,
        min_frames=cfg.min_frames,
        min_duration_s=cfg.min_duration_s,
        max_duration_s=cfg.max_duration_s,
        min_decode_ratio=cfg.min_decode_ratio,
    )


def _audio(p: Probe, cfg: IngestConfig) -> tuple[str, str]:
    """The first audio limit a video fails, for a batch that requires its voice; ('', '') when usable."""
    return audio_problem(
        p,
        section="ingest",
        min_audio_ratio=cfg.min_audio_ratio,
        min_loudness_lufs=cfg.min_loudness_lufs,
        max_clipped_share=cfg.max_clipped_share,
    )


def _notes(p: Probe) -> str:
    """Facts about an accepted video that later stages must honour."""
    notes = []
    if p.rotation:
        notes.append(f"rotation {p.rotation} deg (shown as {p.display_width}x{p.display_height})")
    if p.vfr:
        notes.append(f"variable frame rate ({p.real_fps:.2f} fps measured, {p.nominal_fps:.2f} declared)")
    if p.declared_frames and p.decoded_frames != p.declared_frames:
        notes.append(f"{p.decoded_frames} of {p.declared_frames} declared frames decode")
    if p.audio_error:
        notes.append(f"audio not usable: {p.audio_error}")
    if p.detail:
        notes.append(p.detail)
    return "; ".join(notes)


def _record(i: int, row: dict, path: str | None, found: Probe | None, reason: str, detail: str) -> dict:
    record: dict[str, Any] = {"manifest_row": i + 1, **{c: row.get(c) for c in COLUMNS}}
    record.update(
        sha256=found.sha256 if found and found.sha256 else None,
        status="quarantined" if reason else "accepted",
        reason=reason,
        detail=detail,
    )
    for name in PROBE_FIELDS:
        value = getattr(found, name) if found else None
        # Not finite: unknown, or -inf loudness/peak of a silent track (has_audio tells the two apart).
        record[name] = None if isinstance(value, float) and not math.isfinite(value) else value
    if found and not found.codec:  # no decodable video stream: the zero-filled video fields mean "unknown"
        for name in VIDEO_FIELDS:
            record[name] = None
    for name in (
        "audio_codec",
        "audio_sample_rate",
        "audio_channels",
    ):  # '' or 0: no stream, or an unknown codec
        if not record[name]:
            record[name] = None
    record["abs_path"] = path
    return record


def _log_decision(row: dict, found: Probe | None, reason: str, i: int) -> None:
    # Privacy: name the video by id and content hash only, never by its (identifying) file name.
    who = row.get("video_id") or f"row {i + 1}"
    digest = found.sha256[:12] if found and found.sha256 else "-"
    if reason:
        log.info("quarantined %s (sha256 %s): %s", who, digest, reason)
    else:
        log.debug("accepted %s (sha256 %s)", who, digest)


# --- outputs -------------------------------------------------------------------------------------------


def _write_tables(out_dir: Path, records: list[dict], unlisted: list[dict]) -> dict[str, Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    for stale in ("folds.parquet", "report.json"):  # from an earlier run; rewritten only if folds work out
        (out_dir / stale).unlink(missing_ok=True)
    # Sorted by video_id (rows without one last): stable across runs and easy to diff.
    records = sorted(records, key=lambda r: (r["video_id"] is None, r["video_id"] or "", r["manifest_row"]))
    quarantined = [r for r in records if r["status"] == "quarantined"]
    files = {name: out_dir / name for name in ("ingested.parquet", "quarantine.csv", "unlisted.csv")}
    _atomic(files["ingested.parquet"], lambda f: _write_parquet(records, INGESTED_SCHEMA, f))
    _atomic(files["quarantine.csv"], lambda f: _write_csv(quarantined, QUARANTINE_COLUMNS, f))
    _atomic(files["unlisted.csv"], lambda f: _write_csv(unlisted, ["path", "size_bytes", "note"], f))
    return {name.split(".")[0]: path for name, path in files.items()}


def _write_folds_and_report(out_dir: Path, folds: pd.DataFrame, report: dict) -> dict[str, Path]:
    files = {"folds": out_dir / "folds.parquet", "report": out_dir / "report.json"}
    _atomic(files["folds"], lambda f: _write_parquet(folds.to_dict("records"), FOLDS_SCHEMA, f))
    _atomic(files["report"], lambda f: f.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8"))
    return files


def _atomic(path: Path, write: Callable[[Path], object]) -> None:
    """Write to a temporary sibling and rename: readers never see a half-written file."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        write(tmp)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def _write_parquet(records: list[dict], schema: pa.Schema, path: Path) -> None:
    # Built from plain Python values with a fixed schema: no pandas metadata, no timestamps, so the same
    # input gives a byte-identical file (DVC and auditors can compare hashes).
    columns = {
        name: [None if _missing(r.get(name)) else r.get(name) for r in records] for name in schema.names
    }
    table = pa.table(columns, schema=schema)
    pq.write_table(table, path, compression="zstd", write_statistics=True, store_schema=False)


def _missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value)) or value is pd.NA


def _write_csv(records: list[dict], columns: list[str], path: Path) -> None:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(columns)
    for record in records:
        writer.writerow(["" if _missing(record.get(c)) else record.get(c) for c in columns])
    path.write_text(buffer.getvalue(), encoding="utf-8")
