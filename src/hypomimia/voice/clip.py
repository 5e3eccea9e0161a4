"""One video file into one row of voice measures: the function the ``voice`` stage (and, later, the
endpoint) calls per clip.

Every file gets an answer, never an exception for a bad audio track:

| status | when | measures |
|---|---|---|
| ``measured`` | audio with at least ``min_voiced_s`` of voiced speech | the measures (None where undefined) and the recording's ``snr_db``, ``hf_share_db`` |
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
from hypomimia.voice.features import MEASURE_GRID, egemaps_names, measure, pitch_and_intensity, snapped
from hypomimia.voice.recording import recording_facts
from hypomimia.voice.schema import FEATURE_VERSION, MEASURES, RECORDING


def measure_video(path: str | Path, cfg: VoiceConfig) -> dict[str, Any]:
    """The voice row of one video: ``has_audio, status, reason, detail, audio_codec, audio_rate,
    audio_channels, duration_s, voiced_s, voiced_share``, the measures, ``snr_db, hf_share_db``, ``feature_version`` and
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
    row.update(recording_facts(audio.samples, audio.sample_rate, found, cfg))
    return row | {"seconds": time.perf_counter() - t0}


# What listen() measures; a voice row holds the same keys with the same numbers.
HEARD = ("status", "voiced_s", *RECORDING, "intensity_db", "f0_mean_hz", "f0_sd_st")


def heard(row: dict[str, Any]) -> dict[str, Any]:
    """listen()'s answer taken from a voice row :func:`measure_video` already made with the same params."""
    return {k: row.get(k) for k in HEARD}


def listen(path: str | Path, cfg: VoiceConfig) -> dict[str, Any]:
    """What the endpoint logs of an upload's voice for drift monitoring (docs/monitoring.md, "Audio
    drift"): ``status`` (measured | no_audio | no_voice | failed), ``voiced_s``, the recording's
    ``snr_db`` and ``hf_share_db``, and the measures that cost little, ``intensity_db``, ``f0_mean_hz``,
    ``f0_sd_st``. The voice stage's own functions on the same decode and voice activity, so a clip
    logs the numbers its ``voice.parquet`` row holds; formants, jitter, shimmer and HNR are left out
    (nine tenths of :func:`measure_video`'s time)."""
    out: dict[str, Any] = dict.fromkeys(HEARD)
    try:
        audio = decode_audio(path, cfg.sample_rate, cfg.max_seconds)
    except AudioUnreadable:
        return out | {"status": "failed"}
    if audio is None:
        return out | {"status": "no_audio"}
    found = vad.detect(audio.samples, audio.sample_rate, cfg)
    out["voiced_s"] = snapped(found.voiced_s, MEASURE_GRID)
    if found.voiced_s < cfg.min_voiced_s:
        return out | {"status": "no_voice"}
    import parselmouth

    sound = parselmouth.Sound(audio.samples, sampling_frequency=audio.sample_rate)
    cheap = pitch_and_intensity(sound, found.segments, cfg)[2]
    out |= {k: snapped(v, MEASURE_GRID) for k, v in cheap.items()}
    return out | recording_facts(audio.samples, audio.sample_rate, found, cfg) | {"status": "measured"}


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
        **dict.fromkeys(RECORDING),
        "feature_version": FEATURE_VERSION,
    }
    if cfg.egemaps:
        row |= dict.fromkeys(egemaps_names())
    return row
