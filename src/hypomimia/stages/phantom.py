"""Phantom: generate the synthetic study (face videos with a known answer) that the demo runs on.

Output folder (``docs/phantom.md``): ``videos/<video_id>.mp4``, ``manifest.csv`` in the
manifest format of ``docs/data-format.md`` section 1 (paths relative to the folder),
``truth/<video_id>.json`` per video (event timeline, per-frame AU intensities, head pose,
blink frames, the subject's disease profile, and for clips with a sound track every audio parameter)
and ``phantom.json`` (generator config and seed, disease effect tables).
Same config and seed -> byte-identical files, whatever the number of workers.
"""

from __future__ import annotations

import csv
import io
import json
import logging
import multiprocessing
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path

from tqdm import tqdm

from hypomimia import __version__
from hypomimia.config.phantom import PhantomConfig
from hypomimia.data.manifest import COLUMNS
from hypomimia.phantom.cohort import VideoPlan, plan_videos
from hypomimia.phantom.disease import severity_effects
from hypomimia.phantom.synth import make_video
from hypomimia.phantom.voice import VOICE_EFFECTS

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class PhantomResult:
    out_dir: Path
    manifest: Path
    videos: int
    subjects: int
    pd_subjects: int
    control_subjects: int
    seconds: float


def _work(args: tuple[PhantomConfig, VideoPlan, Path]) -> dict:
    return make_video(*args)


def _render_all(cfg: PhantomConfig, plans: list[VideoPlan], out_dir: Path, progress: bool) -> list[dict]:
    jobs = [(cfg, p, out_dir) for p in plans]
    bar = tqdm(total=len(jobs), desc="phantom videos", unit="video", disable=not progress)
    rows: list[dict] = []
    try:
        if cfg.workers <= 1 or len(jobs) <= 1:
            for job in jobs:
                rows.append(_work(job))
                bar.update()
            return rows
        # spawn, not fork: MediaPipe and OpenCV threads do not survive a fork reliably.
        ctx = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(min(cfg.workers, len(jobs)), mp_context=ctx) as pool:
            for fut in as_completed([pool.submit(_work, job) for job in jobs]):
                rows.append(fut.result())
                bar.update()
    finally:
        bar.close()
    order = {p.video_id: i for i, p in enumerate(plans)}
    return sorted(rows, key=lambda r: order[r["video_id"]])


def _manifest_csv(rows: list[dict]) -> str:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=list(COLUMNS), extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    for r in rows:
        writer.writerow({k: ("" if r.get(k) is None else r[k]) for k in COLUMNS})
    return buf.getvalue()


def _remove_stale(out_dir: Path, plans: list[VideoPlan]) -> None:
    """A smaller re-run into the same folder must not leave the old run's extra videos behind."""
    keep = {p.video_id for p in plans}
    for sub, suffix in (("videos", ".mp4"), ("truth", ".json")):
        for f in (out_dir / sub).glob(f"*{suffix}"):
            if f.stem not in keep:
                f.unlink()


def run(cfg: PhantomConfig, out_dir: Path, progress: bool = True) -> PhantomResult:
    """Generate the phantom study into ``out_dir`` and return where its manifest is."""
    t0 = time.perf_counter()
    out_dir = Path(out_dir)
    (out_dir / "videos").mkdir(parents=True, exist_ok=True)
    (out_dir / "truth").mkdir(parents=True, exist_ok=True)
    plans = plan_videos(cfg)
    _remove_stale(out_dir, plans)
    log.info("phantom: %d subjects x %d videos, seed %d", cfg.subjects, cfg.videos_per_subject, cfg.seed)
    rows = _render_all(cfg, plans, out_dir, progress)
    manifest = out_dir / "manifest.csv"
    manifest.write_text(_manifest_csv(rows), encoding="utf-8")
    subjects = {p.subject.subject_id: p.subject.label for p in plans}
    n_pd = sum(1 for label in subjects.values() if label == "pd")
    meta = {
        "generator": f"hypomimia {__version__} phantom",
        "config": cfg.model_dump(mode="json", exclude={"workers"}),  # workers never change the files
        "videos": len(rows),
        "subjects": len(subjects),
        "pd_subjects": n_pd,
        "control_subjects": len(subjects) - n_pd,
        "severity_effects": {str(u): severity_effects(u) for u in range(5)},
        "voice": {
            "effects": {str(u): effects for u, effects in VOICE_EFFECTS.items()},
            "codec": "aac",
            "videos_with_audio": [r["video_id"] for r in rows if r["audio"]],
        },
        "sha256": {r["video_id"]: r["sha256"] for r in rows},
    }
    (out_dir / "phantom.json").write_text(json.dumps(meta, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    seconds = time.perf_counter() - t0
    log.info("phantom: wrote %d videos in %.1f s", len(rows), seconds)
    return PhantomResult(out_dir, manifest, len(rows), len(subjects), n_pd, len(subjects) - n_pd, seconds)
