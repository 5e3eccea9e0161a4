"""The tables the gate validates, one per area, built from the ingest and facetubes outputs.

Cross-table rules (a subject in two folds, a fold with one class, the same video in two folds)
are not column rules, so each is turned into a derived per-row column first -- e.g.
``subject_fold_count`` is, on every row, the number of folds that row's subject appears in
within its repeat. A plain GX expectation on that column then fails with a named expectation
and shows the offending rows (by ``video_id``) as observed values.

Derivations never add a contract column that is missing: a missing input column makes its
expectation fail ("column not found") instead of being papered over here.
"""

from __future__ import annotations

import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from hypomimia.data.artifacts import read_stage_table
from hypomimia.data.manifest import DIAGNOSES
from hypomimia.voice.schema import MEASURES as VOICE_MEASURES
from hypomimia.voice.schema import STATUSES as VOICE_STATUSES

HEAD_FRAMES = 25  # about a second of tube: enough to tell two clips apart, cheap to decompress


@dataclass(frozen=True)
class Inputs:
    ingested: pd.DataFrame
    folds: pd.DataFrame
    tubes: pd.DataFrame
    tubes_dir: Path
    files: tuple[Path, ...]
    voice: pd.DataFrame | None = None  # the voice stage's table, when the run validates it


def load_inputs(ingest_dir: Path, tubes_dir: Path, voice_dir: Path | None = None) -> Inputs:
    files = (ingest_dir / "ingested.parquet", ingest_dir / "folds.parquet", tubes_dir / "tubes.parquet")
    return Inputs(
        ingested=read_stage_table(ingest_dir, "ingested.parquet", "ingest"),
        folds=read_stage_table(ingest_dir, "folds.parquet", "ingest"),
        tubes=read_stage_table(tubes_dir, "tubes.parquet", "facetubes"),
        tubes_dir=tubes_dir,
        files=files,
        voice=read_stage_table(voice_dir, "voice.parquet", "voice") if voice_dir is not None else None,
    )


def accepted_rows(df: pd.DataFrame) -> pd.DataFrame:
    """Rows the stage accepted; quarantined rows are already accounted for and never reach training."""
    if "status" not in df.columns:
        return df.reset_index(drop=True)
    return df[df["status"] == "accepted"].reset_index(drop=True)


def manifest_frame(ingested: pd.DataFrame) -> pd.DataFrame:
    """Accepted manifest rows + ``label_score_consistent`` and ``subject_n_labels`` (distinct pd/control labels)."""
    df = accepted_rows(ingested).copy()
    if {"label", "updrs_3_2", "hoehn_yahr"} <= set(df.columns):
        updrs = pd.to_numeric(df["updrs_3_2"], errors="coerce")
        hy = pd.to_numeric(df["hoehn_yahr"], errors="coerce")
        control = df["label"] == "control"
        inconsistent = control & ((updrs >= 2) | (hy > 0))
        df["label_score_consistent"] = ~inconsistent.fillna(False).astype(bool)
    if {"subject_id", "label"} <= set(df.columns):
        # Diagnoses only, the same rule as the manifest reader: 'unknown' next to pd or control is
        # a video awaiting its label, not a contradiction.
        diagnosis = df["label"].where(df["label"].isin(DIAGNOSES))
        df["subject_n_labels"] = diagnosis.groupby(df["subject_id"], dropna=False).transform("nunique")
    return df


def ingest_frame(ingested: pd.DataFrame) -> pd.DataFrame:
    """Accepted rows + ``short_side`` (the displayed frame's shorter side; rotation swaps w and h)."""
    df = accepted_rows(ingested).copy()
    w_col, h_col = (
        ("display_width", "display_height") if "display_width" in df.columns else ("width", "height")
    )
    if {w_col, h_col} <= set(df.columns):
        df["short_side"] = np.minimum(pd.to_numeric(df[w_col]), pd.to_numeric(df[h_col]))
    return df


def _read_npy_header(f) -> tuple[tuple[int, ...], bool, np.dtype]:
    version = np.lib.format.read_magic(f)
    if version == (1, 0):
        return np.lib.format.read_array_header_1_0(f)
    return np.lib.format.read_array_header_2_0(f)


def _tube_file_check(tubes_dir: Path, tube: object, n_frames: object) -> str:
    """'ok', or what is wrong with one tube file. Reads array headers and ``valid`` only (cheap)."""
    if not isinstance(tube, str) or not tube:
        return "no tube path"
    path = tubes_dir / tube
    if not path.is_file():
        return "file missing"
    try:
        with zipfile.ZipFile(path) as z:
            shapes = {}
            for key in ("frames", "landmarks", "valid"):
                with z.open(f"{key}.npy") as f:
                    version = np.lib.format.read_magic(f)
                    read_header = (
                        np.lib.format.read_array_header_1_0
                        if version == (1, 0)
                        else np.lib.format.read_array_header_2_0
                    )
                    shape, _, dtype = read_header(f)
                    shapes[key] = (shape, dtype)
    except (OSError, KeyError, ValueError, zipfile.BadZipFile) as e:
        return f"unreadable: {type(e).__name__}"
    (f_shape, f_dtype), (l_shape, _), (v_shape, _) = shapes["frames"], shapes["landmarks"], shapes["valid"]
    if len(f_shape) != 4 or f_shape[3] != 3 or f_shape[1] != f_shape[2] or f_dtype != np.uint8:
        return f"frames {f_shape} {f_dtype}, want T x S x S x 3 uint8"
    t = f_shape[0]
    if l_shape[:1] != (t,) or v_shape != (t,):
        return f"landmarks {l_shape} / valid {v_shape} do not match {t} frames"
    if pd.notna(n_frames) and int(n_frames) != t:
        return f"table says {int(n_frames)} frames, file has {t}"
    return "ok"


def facetubes_frame(tubes: pd.DataFrame, tubes_dir: Path) -> pd.DataFrame:
    """Accepted tube rows + ``tube_file_check`` ('ok' or the problem with the npz)."""
    df = accepted_rows(tubes).copy()
    if "tube" in df.columns:
        n_frames = df["n_frames"] if "n_frames" in df.columns else pd.Series(np.nan, index=df.index)
        df["tube_file_check"] = [
            _tube_file_check(tubes_dir, t, n) for t, n in zip(df["tube"], n_frames, strict=True)
        ]
    return df


def folds_frame(folds: pd.DataFrame, ingested: pd.DataFrame, tubes: pd.DataFrame) -> pd.DataFrame:
    """folds.parquet + per-row group facts, all within a repeat (each repeat is its own k-fold)."""
    df = folds.copy()
    need = {"video_id", "subject_id", "label", "repeat", "fold"}
    if not need <= set(df.columns):
        return df  # the folds suite names the missing columns
    in_repeat = df.groupby(["repeat", "video_id"])["fold"]
    df["video_rows_in_repeat"] = in_repeat.transform("size")
    df["subject_fold_count"] = df.groupby(["repeat", "subject_id"])["fold"].transform("nunique")
    df["fold_n_classes"] = df.groupby(["repeat", "fold"])["label"].transform("nunique")
    is_pd = (df["label"] == "pd").astype(float)
    overall = is_pd.groupby(df["repeat"]).transform("mean")
    per_fold = is_pd.groupby([df["repeat"], df["fold"]]).transform("mean")
    df["fold_pd_share_deviation"] = (per_fold - overall).abs().round(6)
    df["repeat_n_folds"] = df.groupby("repeat")["fold"].transform("nunique")
    accepted = set(accepted_rows(ingested).get("video_id", pd.Series(dtype=str)))
    with_tube = set(accepted_rows(tubes).get("video_id", pd.Series(dtype=str)))
    df["accepted_in_ingest"] = df["video_id"].isin(accepted)
    df["has_tube"] = df["video_id"].isin(with_tube)
    return df


def _phash_bits(hexes: pd.Series) -> np.ndarray:
    """64-bit pHash hex strings -> (n, 64) bool bit matrix."""
    raw = np.array([int(h, 16) for h in hexes], dtype=">u8").view(np.uint8).reshape(-1, 8)
    return np.unpackbits(raw, axis=1).astype(bool)


def _cross_fold_hamming(phash: pd.Series, fold: pd.Series) -> np.ndarray:
    """n x n pHash Hamming distances; inf within a fold or where a hash is missing."""
    ok = phash.map(lambda h: isinstance(h, str) and len(h) == 16).to_numpy()
    dist = np.full((len(phash), len(phash)), np.inf)
    if ok.sum() >= 2:
        bits = _phash_bits(phash[ok])
        # 200 tubes -> a 200 x 200 x 64 bool array: well under a second.
        dist[np.ix_(ok, ok)] = (bits[:, None, :] != bits[None, :, :]).sum(axis=2)
    folds = fold.to_numpy()
    dist[folds[:, None] == folds[None, :]] = np.inf
    return dist


def _head_mean_frame(path: Path) -> np.ndarray | None:
    """Grey mean of a tube's first HEAD_FRAMES frames, streamed: the rest of the npz is not decompressed."""
    try:
        with zipfile.ZipFile(path) as z, z.open("frames.npy") as f:
            shape, fortran, dtype = _read_npy_header(f)
            if len(shape) != 4 or dtype != np.uint8 or fortran:
                return None
            t = min(shape[0], HEAD_FRAMES)
            head = np.frombuffer(f.read(t * int(np.prod(shape[1:]))), np.uint8).reshape(t, *shape[1:])
    except (OSError, KeyError, ValueError, zipfile.BadZipFile):
        return None
    return head.astype(np.float32).mean(axis=(0, 3))


def _near_duplicate_columns(
    part: pd.DataFrame, tubes_dir: Path, max_hamming: int, cache: dict
) -> pd.DataFrame:
    """pHash finds candidate pairs across folds; pixels confirm them.

    The pHash of an aligned face's mean frame is a weak identity signal (different people
    can be 2 bits apart), so a pair within ``max_hamming`` bits is only a candidate: it is a
    near-duplicate when the mean of their first frames also matches (``near_duplicate_pixel_diff``,
    mean absolute grey-level difference: ~0-2 for a re-encoded copy, >10 for another video).
    """
    dist = _cross_fold_hamming(part["mean_frame_phash"], part["fold"])
    nearest = dist.min(axis=1)
    pixel_diff = np.full(len(part), np.nan)
    tubes = part["tube"].tolist()
    for i, j in zip(*np.nonzero(dist <= max_hamming), strict=True):
        for k in (i, j):
            if tubes[k] not in cache:
                cache[tubes[k]] = (
                    _head_mean_frame(tubes_dir / tubes[k]) if isinstance(tubes[k], str) else None
                )
        a, b = cache[tubes[i]], cache[tubes[j]]
        if a is not None and b is not None and a.shape == b.shape:
            pixel_diff[i] = np.fmin(pixel_diff[i], float(np.abs(a - b).mean()))
    return pd.DataFrame(
        {
            "phash_distance_other_folds": np.where(np.isinf(nearest), np.nan, nearest),
            "near_duplicate_pixel_diff": pixel_diff,
        },
        index=part.index,
    )


def leakage_frame(
    folds: pd.DataFrame, ingested: pd.DataFrame, tubes: pd.DataFrame, tubes_dir: Path, max_hamming: int
) -> pd.DataFrame:
    """One row per (repeat, video): folds joined with the content hash and tube pHash, plus
    ``sha256_fold_count`` (folds holding these exact bytes) and the near-duplicate columns."""
    need = {"video_id", "repeat", "fold"}
    if not need <= set(folds.columns):
        return folds.copy()
    cols = [c for c in ("repeat", "fold", "video_id", "subject_id") if c in folds.columns]
    df = folds[cols].copy()
    acc = accepted_rows(ingested)
    if {"video_id", "sha256"} <= set(acc.columns):
        df = df.merge(acc[["video_id", "sha256"]].drop_duplicates("video_id"), on="video_id", how="left")
        df["sha256_fold_count"] = df.groupby(["repeat", "sha256"])["fold"].transform("nunique")
    tub = accepted_rows(tubes)
    if {"video_id", "mean_frame_phash", "tube"} <= set(tub.columns):
        cols = ["video_id", "mean_frame_phash", "tube"]
        df = df.merge(tub[cols].drop_duplicates("video_id"), on="video_id", how="left")
        cache: dict = {}
        near = [
            _near_duplicate_columns(df.loc[idx], tubes_dir, max_hamming, cache)
            for idx in df.groupby("repeat").groups.values()
        ]
        df = df.join(pd.concat(near))
    return df


def _voice_row_consistent(row: dict) -> bool:
    """The voice row's status agrees with its other columns (docs/validation.md, voice)."""
    has_audio, status = row.get("has_audio"), row.get("status")
    if not isinstance(has_audio, bool | np.bool_) or status not in VOICE_STATUSES:
        return False
    measured = [m for m in VOICE_MEASURES if pd.notna(row.get(m))]
    if (status == "no_audio") == bool(has_audio) or (status != "measured" and measured):
        return False
    if status == "measured" and pd.isna(row.get("voiced_s")):
        return False
    return status != "failed" or bool(row.get("reason"))


def voice_frame(voice: pd.DataFrame, ingested: pd.DataFrame) -> pd.DataFrame:
    """The voice table + ``accepted_in_ingest`` and ``status_consistent``, and one more row (only
    ``video_id``, ``listed_in_voice`` false) for each accepted video the table lacks: a missing video
    then fails one named expectation and is shown by its id."""
    df = voice.copy()
    if "video_id" not in df.columns:
        return df  # the voice suite names the missing columns
    accepted = accepted_rows(ingested).get("video_id", pd.Series(dtype=str))
    df["listed_in_voice"] = True
    df["accepted_in_ingest"] = df["video_id"].isin(set(accepted))
    if {"has_audio", "status"} <= set(df.columns):
        df["status_consistent"] = [_voice_row_consistent(r) for r in df.to_dict("records")]
    missing = sorted(set(accepted) - set(df["video_id"]))
    if missing:
        extra = pd.DataFrame({"video_id": missing, "listed_in_voice": False, "accepted_in_ingest": True})
        df = pd.concat([df, extra], ignore_index=True)
    return df


def area_frames(inputs: Inputs, max_hamming: int) -> dict[str, pd.DataFrame]:
    """The table each suite validates, keyed by area (suite name); ``voice`` only when given."""
    frames = {
        "manifest": manifest_frame(inputs.ingested),
        "ingest": ingest_frame(inputs.ingested),
        "facetubes": facetubes_frame(inputs.tubes, inputs.tubes_dir),
        "folds": folds_frame(inputs.folds, inputs.ingested, inputs.tubes),
        "leakage": leakage_frame(inputs.folds, inputs.ingested, inputs.tubes, inputs.tubes_dir, max_hamming),
    }
    if inputs.voice is not None:
        frames["voice"] = voice_frame(inputs.voice, inputs.ingested)
    return frames
