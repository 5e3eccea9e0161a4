"""A tiny study whose label is in the voice only, for the voice model's tests.

Face tubes from tests.helpers_train with no video cue (both classes' blobs move alike); beside each
subject's first video an mp4 with an AAC voice track (a source-filter vowel, syllables at 4/s) whose
loudness and pitch movement carry the label (PD: quieter and flatter: hypophonia and monopitch), the
second video without audio. The voice table is the voice stage's own output on those files, so the
training reads exactly what the endpoint measures.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pandas as pd

from tests.helpers_train import make_tubes
from tests.helpers_voice import vowel, write_clip


def speaker(rng: np.random.Generator, pd_subject: bool) -> dict:
    """One subject's voice: own pitch; PD 8 dB quieter with a third of the pitch movement."""
    return {
        "f0_hz": float(rng.uniform(100, 220)),
        "rms_db": float(rng.uniform(60, 64) if pd_subject else rng.uniform(68, 72)),
        "vibrato_st": float(rng.uniform(0.4, 0.8) if pd_subject else rng.uniform(2.0, 2.8)),
    }


def make_voice_world(root: Path, subjects: int = 24, seed: int = 3) -> tuple[Path, Path, Path, Path]:
    """(tubes_dir, ingest_dir, voice_dir, videos_dir): tubes, folds, ingested.parquet, voice.parquet."""
    from hypomimia.config.facetubes import FacetubesConfig
    from hypomimia.config.voice import VoiceConfig
    from hypomimia.faces.tube import TUBE_CODE_VERSION
    from hypomimia.jsonio import write
    from hypomimia.stages import voice as voice_stage

    tubes_dir, ingest_dir = make_tubes(root, subjects=subjects, videos_per_subject=2, frames=24, cue="none")
    params = FacetubesConfig().model_dump(mode="json", exclude={"workers"})
    write(tubes_dir / "report.json", {"params": {**params, "tube_code_version": TUBE_CODE_VERSION}})
    tubes = pd.read_parquet(tubes_dir / "tubes.parquet")
    videos = root / "videos"
    videos.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    voices = {
        s: speaker(rng, label == "pd") for s, label in tubes.groupby("subject_id")["label"].first().items()
    }
    paths = {}
    for r in tubes.itertuples():
        path = videos / f"{r.video_id}.mp4"
        if r.video_id.endswith("_v0"):  # the speech clip
            audio = vowel(16000, 2.0, syllables_per_s=4.0, **voices[r.subject_id])
            write_clip(path, audio, sample_rate=16000, seconds=2.0)  # Praat: a sample value of 1 = 1 Pa
        else:  # a clip without audio: answered from the face alone
            write_clip(path, seconds=2.0)
        paths[r.video_id] = path
    sha = {v: hashlib.sha256(p.read_bytes()).hexdigest() for v, p in paths.items()}
    tubes.assign(sha256=tubes["video_id"].map(sha)).to_parquet(tubes_dir / "tubes.parquet", index=False)
    ingested = tubes[["video_id", "subject_id", "label", "task"]].assign(
        sha256=tubes["video_id"].map(sha),
        status="accepted",
        reason="",
        abs_path=tubes["video_id"].map(lambda v: str(paths[v].resolve())),
    )
    ingested.to_parquet(ingest_dir / "ingested.parquet", index=False)
    voice_dir = root / "voice"
    voice_stage.run(VoiceConfig(workers=1), ingest_dir, voice_dir)
    return tubes_dir, ingest_dir, voice_dir, videos
