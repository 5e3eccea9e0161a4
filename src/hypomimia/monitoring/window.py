"""The tables monitoring compares: one row per video with quality features and, when a model
scored it, ``p_pd``, ``label`` (pd | control | uncertain) and the embedding as ``emb_<i>`` columns.

Reference = the training cohort (videos in ingest's folds) for quality features; the model's
held-out folds for its outputs (scores of videos it trained on would be over-confident, and every
fresh window would then look drifted). Current = a new batch (ingest + facetubes) or the serving
prediction log over a time window.
"""

from __future__ import annotations

import logging
from datetime import datetime
from pathlib import Path

import numpy as np
import pandas as pd

from hypomimia.data.artifacts import read_stage_table
from hypomimia.errors import UserError
from hypomimia.validation.reference import FEATURES

log = logging.getLogger(__name__)
QUALITY_COLUMNS = tuple(
    FEATURES
)  # face size, blur, brightness, pose ranges, frames, fps, resolution, duration
ID_COLUMNS = ("video_id", "subject_ref", "session", "time")
# Who is in front of the camera, not how it records: the model-free hypomimia index of each tube
# (monitoring.expressivity). A window of more severe patients moves it with the camera unchanged.
POPULATION_COLUMNS = ("hypomimia_index",)


def embedding_columns(df: pd.DataFrame) -> list[str]:
    return sorted((c for c in df.columns if c.startswith("emb_")), key=lambda c: int(c[4:]))


def subject_keys(df: pd.DataFrame) -> np.ndarray:
    """Each row's subject: its ``subject_ref``, or the row itself where any row lacks one."""
    if "subject_ref" in df and df["subject_ref"].notna().all():
        return df["subject_ref"].astype(str).to_numpy()
    return np.array([f"row{i}" for i in range(len(df))])


# A clip's sound (monitoring.audio): ingest's stream facts, and what the voice stage measured.
INGEST_AUDIO = ("has_audio", "audio_sample_rate", "audio_loudness_lufs", "audio_clipped_share")
VOICE_AUDIO = {"snr_db": "audio_snr_db", "hf_share_db": "audio_hf_share_db",
               "intensity_db": "audio_intensity_db", "f0_sd_st": "audio_f0_sd_st"}  # fmt: skip
AUDIO_COLUMNS = (*INGEST_AUDIO, *VOICE_AUDIO.values())


def audio_table(ingest_dir: Path, voice_dir: Path | None = None) -> pd.DataFrame:
    """``video_id``, ``subject_ref`` and the audio columns of ingest's accepted videos: ``has_audio``
    and the stream facts from ingested.parquet, SNR, bandwidth, intensity and F0 SD from the voice
    table (``voice_dir``; NaN without it). An ingest table from before issue 25 has no audio facts:
    ``has_audio`` is then unknown (NaN), not false."""
    ingested = read_stage_table(ingest_dir, "ingested.parquet", "ingest")
    ing = ingested[ingested["status"] == "accepted"]
    out = pd.DataFrame(
        {"video_id": ing["video_id"].astype(str), "subject_ref": ing["subject_id"].astype(str)}
    )
    known = ing["has_audio"].notna() if "has_audio" in ing else pd.Series(False, index=ing.index)
    out["has_audio"] = ing["has_audio"].astype(object).where(known, None) if "has_audio" in ing else None
    for col in INGEST_AUDIO[1:]:
        out[col] = pd.to_numeric(ing[col], errors="coerce") if col in ing else np.nan
    for col in VOICE_AUDIO.values():
        out[col] = np.nan
    out = out.reset_index(drop=True)
    if voice_dir is not None:
        voice = read_stage_table(voice_dir, "voice.parquet", "voice")
        missing = [c for c in VOICE_AUDIO if c not in voice]
        if missing:
            log.warning("%s/voice.parquet has no %s (made before voice-3): re-run hypomimia voice",
                        Path(voice_dir).name, ", ".join(missing))  # fmt: skip
        by_id = voice.set_index(voice["video_id"].astype(str))
        for src, col in VOICE_AUDIO.items():
            if src in by_id:
                out[col] = pd.to_numeric(out["video_id"].map(by_id[src]), errors="coerce")
    return out


def batch_table(
    ingest_dir: Path, tubes_dir: Path, video_ids: set[str] | None = None, voice_dir: Path | None = None
) -> pd.DataFrame:
    """Accepted videos with a face tube: ids, session, ground truth when known, quality features, tube
    path, and the audio columns (:func:`audio_table`; the voice table's with ``voice_dir``)."""
    ingested = read_stage_table(ingest_dir, "ingested.parquet", "ingest")
    tubes = read_stage_table(tubes_dir, "tubes.parquet", "facetubes")
    tubes = tubes[tubes["status"] == "accepted"]
    ing = ingested[ingested["status"] == "accepted"]
    if video_ids is not None:
        tubes = tubes[tubes["video_id"].isin(video_ids)]
    keep_ing = ["video_id", "session"] + [c for _, (src, c, _) in FEATURES.items() if src == "ingested"]
    table = tubes.merge(ing[[c for c in keep_ing if c in ing.columns]], on="video_id", how="inner")
    out = pd.DataFrame(
        {
            "video_id": table["video_id"].astype(str),
            "subject_ref": table["subject_id"].astype(str),
            "session": table["session"].fillna("").astype(str) if "session" in table else "",
            "time": pd.NaT,
            "truth_label": table.get("label"),
            "updrs_3_2": table.get("updrs_3_2"),
            "tube": [str(Path(tubes_dir) / t) for t in table["tube"]],
        }
    )
    for name, (_, column, _) in FEATURES.items():
        out[name] = pd.to_numeric(table[column], errors="coerce") if column in table else np.nan
    out["hypomimia_index"] = [_index(Path(t)) for t in out["tube"]]
    audio = audio_table(ingest_dir, voice_dir).drop(columns="subject_ref")
    out = out.merge(audio, on="video_id", how="left")
    return out.sort_values("video_id", ignore_index=True)


def _index(tube: Path) -> float:
    from hypomimia.monitoring.expressivity import hypomimia_index

    try:
        return hypomimia_index(tube)
    except (OSError, KeyError, ValueError):  # an unreadable tube: no index, the scorer names the file
        return float("nan")


def training_ids(ingest_dir: Path, repeat: int = 0) -> pd.DataFrame:
    """video_id -> fold of the training cohort (ingest's folds.parquet)."""
    folds = read_stage_table(ingest_dir, "folds.parquet", "ingest")
    folds = folds[folds["repeat"] == repeat]
    if folds.empty:
        raise UserError(
            f"{Path(ingest_dir).name}/folds.parquet has no folds: it is not a training cohort",
            "pass the ingest folder of the data the model was trained on (--reference-ingest)",
        )
    return folds[["video_id", "fold"]]


def heldout_folds(model_meta: dict, n_folds: int) -> set[int]:
    """The folds the model never trained on: its test fold and its validation fold (train.fold + 1)."""
    params = model_meta.get("train_params") or {}
    fold = int(params.get("fold", 0))
    return {fold % n_folds, (fold + 1) % n_folds}


def from_prediction_log(records: list) -> pd.DataFrame:
    """Answered requests of the serving log as a window table (refusals and errors carry no score)."""
    from hypomimia.inference.prediction_log import to_frame

    answered = [r for r in records if r.outcome in ("ok", "uncertain")]
    if not answered:
        return pd.DataFrame(columns=[*ID_COLUMNS, "p_pd", "label", *QUALITY_COLUMNS])
    df = to_frame(answered)
    out = pd.DataFrame(
        {
            "video_id": df["request_id"].astype(str),
            "subject_ref": df["subject_ref"],
            "session": df["session"],
            "time": pd.to_datetime(df["time"], utc=True),
            "p_pd": pd.to_numeric(df["p_pd"], errors="coerce"),
            "label": df["label"],
        }
    )
    for name, (_, column, _) in FEATURES.items():
        # the log names metrics as the tube's quality dict does (q_blur_mean) or by the probe column (q_nominal_fps)
        source = next((f"q_{k}" for k in (name, column) if f"q_{k}" in df), None)
        out[name] = pd.to_numeric(df[source], errors="coerce") if source else np.nan
    for col in ("has_audio", *AUDIO_COLUMNS[1:], "p_pd_voice"):  # records before issue 25: unknown
        if col in df:
            out[col] = df[col] if col == "has_audio" else pd.to_numeric(df[col], errors="coerce")
    emb = df["embedding"].dropna()
    if len(emb):
        dim = max(len(e) for e in emb)
        matrix = np.full((len(df), dim), np.nan)
        for i, e in enumerate(df["embedding"]):
            if e is not None and len(e) == dim:
                matrix[i] = e
        out = pd.concat([out, pd.DataFrame(matrix, columns=[f"emb_{i}" for i in range(dim)])], axis=1)
    return out


FACE_LOST_REASONS = frozenset({"no_face", "too_few_face_frames", "tube_failed"})


def lost_counts(ingest_dir: Path, tubes_dir: Path) -> dict[str, int]:
    """Videos submitted in a batch (every row ingest listed) and those lost before measurement:
    quarantined by ingest (unreadable, too short, ...), or by facetubes (no face, too few face frames)."""
    ingested = read_stage_table(ingest_dir, "ingested.parquet", "ingest")
    tubes = read_stage_table(tubes_dir, "tubes.parquet", "facetubes")
    return {
        "submitted": len(ingested),
        "ingest_quarantined": int((ingested["status"] == "quarantined").sum()),
        "face_lost": int((tubes["status"] == "quarantined").sum()),
    }


def lost_from_log(records: list) -> dict[str, int]:
    """The same counts from prediction-log records: answered + refused requests are submitted
    (5xx errors are the server's, not the video's); refusals for the face are face_lost, the
    other refusals ingest_quarantined."""
    refused = [r for r in records if r.outcome == "refused"]
    face = sum(r.reason in FACE_LOST_REASONS for r in refused)
    return {
        "submitted": sum(r.outcome in ("ok", "uncertain", "refused") for r in records),
        "ingest_quarantined": len(refused) - face,
        "face_lost": face,
    }


def sample_subjects(table: pd.DataFrame, cap: int, seed: int) -> pd.DataFrame:
    """At most ``cap`` rows, by whole subjects in a seeded order (a subject's clips stay together)."""
    if len(table) <= cap:
        return table
    subjects = table["subject_ref"].drop_duplicates().sample(frac=1.0, random_state=seed)
    sizes = table["subject_ref"].value_counts()
    keep, n = [], 0
    for s in subjects:
        if n + sizes[s] > cap and keep:
            break
        keep.append(s)
        n += int(sizes[s])
    return table[table["subject_ref"].isin(keep)].sort_values("video_id", ignore_index=True)


def time_window(until: datetime, days: float) -> tuple[datetime, datetime]:
    return until - pd.Timedelta(days=days).to_pytimedelta(), until


def snapshot_log(store: Path, out_dir: Path, until: datetime, days: float) -> tuple[int, datetime, datetime]:
    """Copy the prediction-log records of ``[until - days, until)`` into ``out_dir`` (same daily JSONL
    layout): the window a scheduled monitor run judged, kept as its own artifact. Returns
    (records, since, until)."""
    from hypomimia.inference import prediction_log as plog

    since, until = time_window(until, days)
    records = plog.read(store, since, until)
    Path(out_dir).mkdir(parents=True, exist_ok=True)
    for record in records:
        plog.append(record, out_dir)
    return len(records), since, until
