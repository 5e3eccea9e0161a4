"""Tiny synthetic face tubes with a known answer, for training tests.

Each "face" is a bright blob on a textured background that oscillates left-right. In the
``dynamic`` setting, PD subjects move slowly and controls fast; every single frame has the same
distribution in both classes (random phase, position, colour, size per subject), so only motion
tells the classes apart -- a model that learns it has learned motion. In the ``none`` setting both
classes move alike: any skill there is a leak.

Writes the facetubes contract (docs/data-format.md section 3) and ingest's folds.parquet.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd


def blob_video(
    rng: np.random.Generator, *, frames: int, size: int, cycles_per_s: float, fps: float
) -> np.ndarray:
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)
    background = rng.uniform(40, 90) + rng.normal(0, 6, (size, size)).astype(np.float32)
    colour = rng.uniform(150, 240, 3).astype(np.float32)
    radius = rng.uniform(0.12, 0.18) * size
    cx0, cy = rng.uniform(0.4, 0.6) * size, rng.uniform(0.35, 0.65) * size
    amplitude, phase = 0.25 * size, rng.uniform(0, 2 * np.pi)
    t = np.arange(frames) / fps
    out = np.empty((frames, size, size, 3), np.uint8)
    for i, ti in enumerate(t):
        cx = cx0 + amplitude * np.sin(2 * np.pi * cycles_per_s * ti + phase)
        blob = np.exp(-((xx - cx) ** 2 + (yy - cy) ** 2) / (2 * radius**2))[..., None]
        img = background[..., None] * (1 - blob) + colour * blob
        out[i] = np.clip(img + rng.normal(0, 3, img.shape), 0, 255).astype(np.uint8)
    return out


def make_tubes(
    root: Path,
    *,
    subjects: int = 16,
    videos_per_subject: int = 2,
    frames: int = 24,
    size: int = 48,
    fps: float = 25.0,
    cue: str = "dynamic",
    folds: int = 4,
    seed: int = 0,
) -> tuple[Path, Path]:
    """Write ``root/facetubes`` and ``root/ingest``; return (tubes_dir, ingest_dir)."""
    rng = np.random.default_rng(seed)
    tubes_dir, ingest_dir = root / "facetubes", root / "ingest"
    (tubes_dir / "tubes").mkdir(parents=True, exist_ok=True)
    ingest_dir.mkdir(parents=True, exist_ok=True)
    rows, fold_rows = [], []
    labels = ["pd" if s % 2 else "control" for s in range(subjects)]
    # fold = subject-grouped, label-stratified: alternate subjects of each class over the folds
    fold_of = {s: (s // 2) % folds for s in range(subjects)}
    for s in range(subjects):
        sid, label = f"S{s:03d}", labels[s]
        for v in range(videos_per_subject):
            vid = f"{sid}_v{v}"
            slow = label == "pd" and cue == "dynamic"
            speed = rng.uniform(0.3, 0.5) if slow else rng.uniform(1.5, 2.0)
            video = blob_video(rng, frames=frames, size=size, cycles_per_s=speed, fps=fps)
            np.savez(
                tubes_dir / "tubes" / f"{vid}.npz",
                frames=video,
                landmarks=np.zeros((frames, 478, 2), np.float32),
                valid=np.ones(frames, bool),
                fps=np.float32(fps),
                video_sha256=f"{s:032d}{v:032d}",
            )
            updrs = (2 if s % 4 == 1 else 1) if label == "pd" else 0
            rows.append(
                {
                    "video_id": vid,
                    "subject_id": sid,
                    "label": label,
                    "updrs_3_2": updrs,
                    "hoehn_yahr": None,
                    "task": ["rest", "smile"][v % 2],
                    "sha256": f"{s:032d}{v:032d}",
                    "status": "accepted",
                    "reason": "",
                    "tube": f"tubes/{vid}.npz",
                    "n_frames": frames,
                    "fps": fps,
                }
            )
            fold_rows.append(
                {"video_id": vid, "subject_id": sid, "label": label, "repeat": 0, "fold": fold_of[s]}
            )
    pd.DataFrame(rows).to_parquet(tubes_dir / "tubes.parquet", index=False)
    pd.DataFrame(fold_rows).to_parquet(ingest_dir / "folds.parquet", index=False)
    return tubes_dir, ingest_dir


def tiny_train_config(**overrides):
    """A TrainConfig small enough for tests on 2 shared cores (width 0.125, 8 frames of 32 px)."""
    from hypomimia.config.train import ModelConfig, TrainConfig

    model = {"width": 0.125, "frames": 8, "size": 32, "dropout": 0.2, **overrides.pop("model", {})}
    base = {
        "stride": 2,
        "epochs": 2,
        "batch_size": 8,
        "clips_per_video": 2,
        "eval_clips_per_video": 2,
        "lr": 2e-3,
        "warmup_epochs": 0.5,
        "workers": 0,
        "threads": 1,
        "bootstrap": 50,
        "patience": 50,
    }
    return TrainConfig(model=ModelConfig(**model), **{**base, **overrides})
