"""Valid ingest + facetubes folders for the gate, and one corruption per gate area.

``make_valid(root)`` writes contract-shaped tables and tiny npz tubes (no video needed);
each ``corrupt_*`` edits those files in place to break exactly one rule, and
``CORRUPTIONS`` maps it to the expectation that must then fail.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from hypomimia.validation.synthetic import make_dataset


def make_valid(root: Path) -> tuple[Path, Path]:
    """8 subjects x 2 videos, 2 folds: small enough for seconds, big enough for every rule."""
    return make_dataset(root, n_subjects=8, videos_per_subject=2, folds=2, repeats=1, seed=0)


def _edit(path: Path, fn) -> None:
    df = pd.read_parquet(path)
    fn(df)
    df.to_parquet(path, index=False)


def _fold_members(ingest_dir: Path) -> pd.DataFrame:
    return pd.read_parquet(ingest_dir / "folds.parquet")


def corrupt_label(ingest_dir: Path, tubes_dir: Path) -> None:
    """(1) manifest: an accepted video labelled 'parkinson' instead of 'pd'."""

    def edit(df: pd.DataFrame) -> None:
        df.loc[df.index[0], "label"] = "parkinson"

    _edit(ingest_dir / "ingested.parquet", edit)


def corrupt_fps(ingest_dir: Path, tubes_dir: Path) -> None:
    """(2) ingested data: a 5 fps video."""

    def edit(df: pd.DataFrame) -> None:
        df.loc[df.index[0], "nominal_fps"] = 5.0

    _edit(ingest_dir / "ingested.parquet", edit)


def corrupt_face_ratio(ingest_dir: Path, tubes_dir: Path) -> None:
    """(3) face tubes: two tubes where a face was found in only 30% of frames."""

    def edit(df: pd.DataFrame) -> None:
        df.loc[df.index[:2], "face_found_ratio"] = 0.3

    _edit(tubes_dir / "tubes.parquet", edit)


def corrupt_subject_in_two_folds(ingest_dir: Path, tubes_dir: Path) -> None:
    """(4) folds: one video of a subject moved to another fold (its other videos stay)."""

    def edit(df: pd.DataFrame) -> None:
        row = df.index[0]
        df.loc[row, "fold"] = (df.loc[row, "fold"] + 1) % df["fold"].nunique()

    _edit(ingest_dir / "folds.parquet", edit)


def corrupt_one_class_fold(ingest_dir: Path, tubes_dir: Path) -> None:
    """(4) folds: every control subject of fold 0 moved to fold 1, so fold 0 is PD only."""

    def edit(df: pd.DataFrame) -> None:
        df.loc[(df["fold"] == 0) & (df["label"] == "control"), "fold"] = 1

    _edit(ingest_dir / "folds.parquet", edit)


def _video_in_fold(ingest_dir: Path, fold: int, skip_subject: str | None = None) -> pd.Series:
    folds = _fold_members(ingest_dir)
    rows = folds[(folds["fold"] == fold) & (folds["subject_id"] != skip_subject)]
    return rows.iloc[0]


def corrupt_duplicate_across_folds(ingest_dir: Path, tubes_dir: Path) -> None:
    """(5) leakage: a fold-1 video has the same content hash as a fold-0 video."""
    a, b = _video_in_fold(ingest_dir, 0), _video_in_fold(ingest_dir, 1)

    def edit(df: pd.DataFrame) -> None:
        sha = df.loc[df["video_id"] == a["video_id"], "sha256"].iloc[0]
        df.loc[df["video_id"] == b["video_id"], "sha256"] = sha

    _edit(ingest_dir / "ingested.parquet", edit)


def corrupt_near_duplicate_tube(ingest_dir: Path, tubes_dir: Path) -> None:
    """(5) leakage: a fold-1 tube is a re-encoded copy of a fold-0 tube (pixels +-1, pHash 1 bit off)."""
    a, b = _video_in_fold(ingest_dir, 0), _video_in_fold(ingest_dir, 1)
    tubes = pd.read_parquet(tubes_dir / "tubes.parquet").set_index("video_id")
    with np.load(tubes_dir / tubes.loc[a["video_id"], "tube"]) as z:
        copy = {k: z[k] for k in z.files}
    noise = np.random.default_rng(0).integers(-1, 2, copy["frames"].shape)
    copy["frames"] = np.clip(copy["frames"].astype(int) + noise, 0, 255).astype(np.uint8)
    np.savez_compressed(tubes_dir / tubes.loc[b["video_id"], "tube"], **copy)

    def edit(df: pd.DataFrame) -> None:
        phash = int(df.loc[df["video_id"] == a["video_id"], "mean_frame_phash"].iloc[0], 16)
        df.loc[df["video_id"] == b["video_id"], "mean_frame_phash"] = f"{phash ^ 1:016x}"

    _edit(tubes_dir / "tubes.parquet", edit)


def corrupt_similar_face_other_video(ingest_dir: Path, tubes_dir: Path) -> None:
    """Not a corruption: two different videos whose mean-frame pHashes collide (aligned faces look
    alike at 8x8). The pixel check must clear them, or the gate would cry wolf on real data."""

    def edit(df: pd.DataFrame) -> None:
        a, b = _video_in_fold(ingest_dir, 0), _video_in_fold(ingest_dir, 1)
        phash = df.loc[df["video_id"] == a["video_id"], "mean_frame_phash"].iloc[0]
        df.loc[df["video_id"] == b["video_id"], "mean_frame_phash"] = phash

    _edit(tubes_dir / "tubes.parquet", edit)


def corrupt_missing_tube_file(ingest_dir: Path, tubes_dir: Path) -> None:
    """(3) face tubes: a tube listed in tubes.parquet whose npz is gone."""
    tube = pd.read_parquet(tubes_dir / "tubes.parquet")["tube"].iloc[0]
    (tubes_dir / tube).unlink()


# corruption -> the expectation that must fail (by its stable name)
CORRUPTIONS = {
    corrupt_label: "manifest.label_allowed",
    corrupt_fps: "ingest.fps_in_range",
    corrupt_face_ratio: "facetubes.face_found_ratio",
    corrupt_missing_tube_file: "facetubes.tube_file_consistent",
    corrupt_subject_in_two_folds: "folds.no_subject_in_two_folds",
    corrupt_one_class_fold: "folds.every_fold_has_both_classes",
    corrupt_duplicate_across_folds: "leakage.no_identical_content_across_folds",
    corrupt_near_duplicate_tube: "leakage.no_near_duplicate_across_folds",
}
