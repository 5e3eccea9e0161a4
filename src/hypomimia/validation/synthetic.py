"""Contract-shaped ingest + facetubes outputs without any video, for gate tests and benchmarks.

Builds ``ingested.parquet``, ``folds.parquet`` (subject-grouped, label-stratified),
``tubes.parquet`` and tiny npz tubes exactly as docs/data-format.md sections 2-3 describe,
with values that pass the default gate. Not a replacement for the phantom: there are no
faces here, only the tables and files the gate reads.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pandas as pd

from hypomimia.data.manifest import DIAGNOSES


def _folds(subjects: pd.DataFrame, folds: int, repeats: int, seed: int) -> pd.DataFrame:
    """Deal each label's subjects round-robin into folds, after a per-repeat shuffle."""
    rows = []
    for repeat in range(repeats):
        rng = np.random.default_rng(seed + repeat)
        for _, group in subjects.groupby("label"):
            order = rng.permutation(len(group))
            for i, k in enumerate(order):
                rows.append({"subject_id": group["subject_id"].iloc[k], "repeat": repeat, "fold": i % folds})
    return pd.DataFrame(rows)


def make_dataset(
    root: Path,
    n_subjects: int = 8,
    videos_per_subject: int = 2,
    folds: int = 2,
    repeats: int = 1,
    tube_frames: int = 20,
    tube_size: int = 8,
    seed: int = 0,
) -> tuple[Path, Path]:
    """Write a valid ingest folder and facetubes folder under ``root``; return (ingest_dir, tubes_dir).

    Besides the training videos it adds one quarantined row and one accepted ``unknown``-label
    video (not in the folds), as a real ingest would.
    """
    rng = np.random.default_rng(seed)
    ingest_dir, tubes_dir = root / "ingest", root / "facetubes"
    (tubes_dir / "tubes").mkdir(parents=True, exist_ok=True)
    ingest_dir.mkdir(parents=True, exist_ok=True)

    subjects = pd.DataFrame(
        {
            "subject_id": [f"sub{i:03d}" for i in range(n_subjects)],
            "label": ["pd" if i % 2 == 0 else "control" for i in range(n_subjects)],
            "phash": [int(rng.integers(0, 2**63)) * 2 + int(rng.integers(0, 2)) for _ in range(n_subjects)],
        }
    )
    rows = []
    for s in subjects.itertuples():
        for v in range(videos_per_subject):
            is_pd = s.label == "pd"
            rows.append(
                {
                    "video_id": f"{s.subject_id}_v{v}",
                    "path": f"videos/{s.subject_id}_v{v}.mp4",
                    "subject_id": s.subject_id,
                    "session": "s1",
                    "task": ["rest", "smile", "speech", "mimic"][v % 4],
                    "label": s.label,
                    "updrs_3_2": int(rng.integers(1, 4)) if is_pd else int(rng.integers(0, 2)),
                    "hoehn_yahr": float(rng.choice([1.5, 2.0, 2.5])) if is_pd else np.nan,
                    "age": int(rng.integers(50, 80)),
                    "sex": "F" if s.Index % 3 else "M",
                }
            )
    rows.append({**rows[0], "video_id": "extra_unknown", "subject_id": "sub_unknown", "label": "unknown"})
    rows[-1].update(updrs_3_2=None, hoehn_yahr=np.nan)
    rows.append(
        {**rows[0], "video_id": "extra_missing", "subject_id": "sub_missing", "path": "videos/gone.mp4"}
    )
    df = pd.DataFrame(rows)
    n = len(df)
    df["updrs_3_2"] = df["updrs_3_2"].astype("Int64")
    df["age"] = df["age"].astype("Int64")
    df["site"], df["camera"] = "synthetic", "none"
    df["sha256"] = [hashlib.sha256(f"{seed}:{vid}".encode()).hexdigest() for vid in df["video_id"]]
    df["status"] = ["accepted"] * (n - 1) + ["quarantined"]
    df["reason"] = [""] * (n - 1) + ["missing_file"]
    df["detail"] = [""] * (n - 1) + ["file not found"]
    probe = {
        "container": "mp4",
        "codec": "h264",
        "width": 320,
        "height": 320,
        "rotation": 0,
        "display_width": 320,
        "display_height": 320,
        "nominal_fps": 25.0,
        "real_fps": 25.0,
        "vfr": False,
        "declared_frames": 100,
        "decoded_frames": 100,
        "decode_ratio": 1.0,
        "duration_s": 4.0,
        "has_audio": False,
        "size_bytes": 50_000,
    }
    for key, value in probe.items():
        df[key] = value
    df["abs_path"] = [f"/data/{p}" for p in df["path"]]
    missing = df["status"] == "quarantined"
    df.loc[missing, ["codec", "container"]] = None
    df.to_parquet(ingest_dir / "ingested.parquet", index=False)

    fold_of = _folds(subjects, folds, repeats, seed)
    training = df[(df["status"] == "accepted") & df["label"].isin(DIAGNOSES)]
    fold_table = training[["video_id", "subject_id", "label"]].merge(fold_of, on="subject_id")
    fold_table = fold_table.sort_values(["repeat", "fold", "video_id"]).reset_index(drop=True)
    fold_table.to_parquet(ingest_dir / "folds.parquet", index=False)

    accepted = df[df["status"] == "accepted"].reset_index(drop=True)
    phash_of = dict(zip(subjects["subject_id"], subjects["phash"], strict=True))
    tube_rows = []
    for i, r in enumerate(accepted.itertuples()):
        tube = f"tubes/{r.video_id}.npz"
        frames = rng.integers(0, 255, (tube_frames, tube_size, tube_size, 3), dtype=np.uint8)
        np.savez_compressed(
            tubes_dir / tube,
            frames=frames,
            landmarks=np.zeros((tube_frames, 478, 2), np.float32),
            valid=np.ones(tube_frames, bool),
            fps=np.float64(25.0),
            video_sha256=np.str_(r.sha256),
        )
        # Videos of one subject look alike (a flipped bit); different subjects are ~32 bits apart.
        phash = phash_of.get(r.subject_id, int(rng.integers(0, 2**63))) ^ (1 << (i % 64))
        tube_rows.append(
            {
                "video_id": r.video_id,
                "subject_id": r.subject_id,
                "label": r.label,
                "updrs_3_2": r.updrs_3_2,
                "hoehn_yahr": r.hoehn_yahr,
                "task": r.task,
                "sha256": r.sha256,
                "status": "accepted",
                "reason": "",
                "tube": tube,
                "n_frames": tube_frames,
                "fps": 25.0,
                "face_found_ratio": float(rng.uniform(0.9, 1.0)),
                "face_size_mean": float(rng.uniform(0.3, 0.5)),
                "blur_mean": float(rng.uniform(50, 300)),
                "brightness_mean": float(rng.uniform(90, 160)),
                "yaw_range": float(rng.uniform(2, 20)),
                "pitch_range": float(rng.uniform(2, 15)),
                "roll_range": float(rng.uniform(1, 10)),
                "tracking_losses": 0,
                "multi_face": False,
                "mean_frame_phash": f"{phash:016x}",
            }
        )
    tubes = pd.DataFrame(tube_rows)
    tubes["updrs_3_2"] = tubes["updrs_3_2"].astype("Int64")
    tubes.to_parquet(tubes_dir / "tubes.parquet", index=False)
    return ingest_dir, tubes_dir
