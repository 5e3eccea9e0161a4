"""One video file into one row of voice measures: the function the ``voice`` stage (and, later, the
endpoint) calls per clip.

Every file gets an answer, never an exception for a bad audio track:

| status | when | measures |
|---|---|---|
| ``measured`` | audio with at least ``min_voiced_s`` of voiced speech | the measures (None where undefined) |
| ``no_audio`` | the file has no audio stream (a silent clip is not an error) | None |
| ``no_voice`` | audio, but less voiced speech than ``min_voiced_s`` | None |
| ``failed`` | an audio stream that does not decode; ``reason`` says why | None |
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from hypomimia.config.voice import VoiceConfig
from hypomimia.voice import activity as vad
from hypomimia.voice.audio import AudioUnreadable, decode_audio
from hypomimia.voice.features import MEASURE_GRID, egemaps_names, measure, snapped
from hypomimia.voice.schema import FEATURE_VERSION, MEASURES


def measure_video(path: str | Path, cfg: VoiceConfig) -> dict[str, Any]:
    """The voice row of one video: ``has_audio, status, reason, detail, audio_codec, audio_rate,
    audio_channels, duration_s, voiced_s, voiced_share``, the measures, ``feature_version`` and
    ``seconds`` (plus ``praat_s``/``egemaps_s`` when measured)."""
    t0 = time.perf_counter()
    row = blank_row(cfg)
    try:
        audio = decode_audio(path, cfg.sample_rate, cfg.max_seconds)
    except AudioUnreadable as e:
        row.update(has_audio=e.reason != "unreadable_file", status="failed", reason=e.reason, detail=e.detail)
        return row | {"seconds": time.perf_counter() - t0}
    if audio is None:
        return row | {"has_audio": False, "status": "no_audio", "seconds": time.perf_counter() - t0}
    found = vad.detect(audio.samples, audio.sample_rate, cfg)
    row.update(
        has_audio=True,
        audio_codec=audio.codec,
        audio_rate=audio.source_rate,
        audio_channels=audio.source_channels,
        duration_s=snapped(audio.duration_s, MEASURE_GRID),
        voiced_s=snapped(found.voiced_s, MEASURE_GRID),
        voiced_share=snapped(found.voiced_share, MEASURE_GRID),
    )
    if found.voiced_s < cfg.min_voiced_s:
        row.update(
            status="no_voice", detail=f"{found.voiced_s:.2f} s of voiced speech < {cfg.min_voiced_s} s"
        )
        return row | {"seconds": time.perf_counter() - t0}
    row.update(measure(audio.samples, audio.sample_rate, found, cfg), status="measured")
    return row | {"seconds": time.perf_counter() - t0}


def blank_row(cfg: VoiceConfig) -> dict[str, Any]:
    """A row with every column and no values: what a clip without measures holds."""
    row: dict[str, Any] = {
        "has_audio": None,
        "status": None,
        "reason": "",
        "detail": "",
        "audio_codec": "",
        "audio_rate": None,
        "audio_channels": None,
        "duration_s": None,
        "voiced_s": None,
        "voiced_share": None,
        **dict.fromkeys(MEASURES),
        "feature_version": FEATURE_VERSION,
    }
    if cfg.egemaps:
        row |= dict.fromkeys(egemaps_names())
    return row
