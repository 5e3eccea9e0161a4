"""What the recording chain did to a clip's sound, as opposed to the voice in it (docs/monitoring.md,
"Audio drift"): a microphone, a room or a gain setting moves these, a speaker hardly does.

- ``snr_db``: speech vs non-speech energy from the voice activity. Speech = the mean power of the
  frames inside voiced segments (speech plus noise); noise = the median power of the frames whose
  window touches no voiced segment (pauses: the room and the microphone, robust to a stray click or
  a consonant); SNR = 10 log10((speech - noise) / noise). None without ``MIN_NOISE_S`` of pause to
  hear the room in; ``MAX_SNR_DB`` when the pauses are digital silence (a noise gate).
- ``hf_share_db``: the share of the voiced speech's power above ``HF_EDGE_HZ`` (4 kHz), in dB (Welch
  spectrum of the voiced samples). A band-limited microphone or a telephone line (3.4 kHz) takes it
  down by 20 dB and more, added broadband noise raises it; the loudness and the SNR barely see a
  low-pass (phantom, docs/monitoring.md).

Both numbers are snapped to the measures' grid, like every number of the voice table.
"""

from __future__ import annotations

import math

import numpy as np

from hypomimia.config.voice import VoiceConfig
from hypomimia.voice.activity import PERIODS_PER_WINDOW, Activity
from hypomimia.voice.features import MEASURE_GRID, in_segments, snapped

HF_EDGE_HZ = 4000.0  # the top of telephone and 8 kHz-sampled audio: wideband speech has power above it
MIN_NOISE_S = 0.2  # of pause frames (10 ms each), to estimate the room's level
MAX_SNR_DB = 100.0
FLOOR_DB = -100.0  # hf_share_db of a signal with nothing above the edge (8 kHz audio resampled)
_TINY = 1e-20


def snr_db(found: Activity, cfg: VoiceConfig) -> float | None:
    """Speech-to-noise ratio of a clip from its voice activity (see the module docstring)."""
    if not found.segments or not len(found.level_db):
        return None
    times, power = found.frame_times, 10.0 ** (np.asarray(found.level_db) / 10.0)
    speech = power[in_segments(times, found.segments)]
    half_window = PERIODS_PER_WINDOW / cfg.f0_min_hz / 2.0
    near = np.zeros(len(times), bool)
    for start, end in found.segments:
        near |= (times > start - half_window) & (times < end + half_window)
    pauses = power[~near]
    if len(speech) == 0 or len(pauses) * 0.01 < MIN_NOISE_S:
        return None
    noise = float(np.median(pauses))
    if noise <= _TINY * 10:
        return MAX_SNR_DB
    signal = max(float(np.mean(speech)) - noise, _TINY)
    return snapped(min(10.0 * math.log10(signal / noise), MAX_SNR_DB), MEASURE_GRID)


def hf_share_db(samples: np.ndarray, sample_rate: int, found: Activity) -> float | None:
    """Power above ``HF_EDGE_HZ`` over all power of the voiced samples, dB (``FLOOR_DB`` at most down)."""
    from scipy.signal import welch

    t = np.arange(len(samples)) / sample_rate
    voiced = np.asarray(samples, np.float64)[in_segments(t, found.segments)]
    if len(voiced) < 512:
        return None
    freqs, psd = welch(voiced, sample_rate, nperseg=512)
    total = float(psd.sum())
    if total <= _TINY:
        return None
    share = float(psd[freqs >= HF_EDGE_HZ].sum()) / total
    return snapped(max(10.0 * math.log10(max(share, _TINY)), FLOOR_DB), MEASURE_GRID)


def recording_facts(samples: np.ndarray, sample_rate: int, found: Activity, cfg: VoiceConfig) -> dict:
    """``{"snr_db", "hf_share_db"}`` of one clip (None where undefined)."""
    return {"snr_db": snr_db(found, cfg), "hf_share_db": hf_share_db(samples, sample_rate, found)}
