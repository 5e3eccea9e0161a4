"""Voice-activity detection: where in a clip someone is voicing.

A frame is voiced when it is loud enough and periodic in the pitch range:

- **energy**: its level (dB re a full-scale RMS of 1) is within ``vad_range_db`` of the clip's
  loudest frame and above ``vad_floor_dbfs`` -- relative, so a quiet speaker (hypophonia) is still
  found, and floored, so a silent clip's hiss never is;
- **voicing**: its normalised autocorrelation peaks at or above ``vad_voicing`` at a lag inside
  [1/f0_max, 1/f0_min] (Boersma 1993: the windowed signal's autocorrelation divided by the window's,
  so a perfectly periodic frame scores 1 and noise scores low).

Frames are 3 periods of the pitch floor long (40 ms at 75 Hz: the shortest window whose
autocorrelation sees a full period at the floor), every 10 ms. Voiced frames closer than
``vad_max_gap_s`` are joined into one segment and segments shorter than ``vad_min_segment_s`` are
dropped. Voiceless consonants and pauses fall outside the segments by design: the measures are
measures of the voice.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from hypomimia.config.voice import VoiceConfig

HOP_S = 0.01
PERIODS_PER_WINDOW = 3.0
_TINY = 1e-20  # energy of digital silence, so its level is finite (-200 dB)
_FRAMES_PER_BLOCK = 1000


@dataclass(frozen=True)
class Activity:
    segments: tuple[tuple[float, float], ...]  # voiced (start, end) in seconds, sorted, disjoint
    duration_s: float
    frame_times: np.ndarray  # frame centres (s)
    level_db: np.ndarray  # per frame, dB re full-scale RMS 1
    voicing: np.ndarray  # per frame, normalised autocorrelation peak in the pitch range (0..1)

    @property
    def voiced_s(self) -> float:
        return float(sum(b - a for a, b in self.segments))

    @property
    def voiced_share(self) -> float:
        return self.voiced_s / self.duration_s if self.duration_s > 0 else 0.0

    @property
    def span(self) -> tuple[float, float] | None:
        """From the first voiced onset to the last offset (the speaking time, pauses included)."""
        return (self.segments[0][0], self.segments[-1][1]) if self.segments else None


def detect(samples: np.ndarray, sample_rate: int, cfg: VoiceConfig) -> Activity:
    """The voiced segments of a mono signal (see the module docstring for the rule and thresholds)."""
    x = np.asarray(samples, np.float64)
    duration = len(x) / sample_rate
    window = int(round(PERIODS_PER_WINDOW * sample_rate / cfg.f0_min_hz))
    hop = int(round(HOP_S * sample_rate))
    if len(x) < window:
        empty = np.zeros(0)
        return Activity((), duration, empty, empty, empty)
    frames = np.lib.stride_tricks.sliding_window_view(x, window)[::hop]
    times = (np.arange(len(frames)) * hop + window / 2) / sample_rate
    level = 10.0 * np.log10(np.mean(frames**2, axis=1) + _TINY)
    voicing = _voicing(frames, sample_rate, cfg.f0_min_hz, cfg.f0_max_hz)
    voiced = (level >= level.max() - cfg.vad_range_db) & (level >= cfg.vad_floor_dbfs)
    voiced &= voicing >= cfg.vad_voicing
    segments = _segments(voiced, times, cfg.vad_max_gap_s, cfg.vad_min_segment_s, duration)
    return Activity(segments, duration, times, level, voicing)


def _voicing(frames: np.ndarray, sample_rate: int, f0_min: float, f0_max: float) -> np.ndarray:
    n = frames.shape[1]
    hann = np.hanning(n)
    nfft = 1 << int(np.ceil(np.log2(2 * n)))
    window_ac = np.fft.irfft(np.abs(np.fft.rfft(hann, nfft)) ** 2, nfft)[:n]
    lo = max(1, int(np.floor(sample_rate / f0_max)))
    hi = min(n - 1, int(np.ceil(sample_rate / f0_min)))
    window_r = window_ac[lo : hi + 1] / window_ac[0]
    out = np.zeros(len(frames))
    for start in range(0, len(frames), _FRAMES_PER_BLOCK):  # in blocks: a 2-minute clip stays ~20 MB
        block = frames[start : start + _FRAMES_PER_BLOCK]
        centred = (block - block.mean(axis=1, keepdims=True)) * hann
        ac = np.fft.irfft(np.abs(np.fft.rfft(centred, nfft, axis=1)) ** 2, nfft, axis=1)[:, : hi + 1]
        power = ac[:, :1]
        with np.errstate(divide="ignore", invalid="ignore"):
            r = ac[:, lo:] / np.where(power > _TINY, power, np.inf) / window_r
        out[start : start + len(block)] = np.nan_to_num(r.max(axis=1), nan=0.0)
    return np.clip(out, 0.0, 1.0)


def _segments(
    voiced: np.ndarray, times: np.ndarray, max_gap_s: float, min_segment_s: float, duration: float
) -> tuple[tuple[float, float], ...]:
    """Runs of voiced frames as (start, end), each frame covering its hop around its centre."""
    edges = np.flatnonzero(np.diff(np.concatenate([[0], voiced.astype(np.int8), [0]])))
    runs = [
        (times[a] - HOP_S / 2, times[b - 1] + HOP_S / 2) for a, b in zip(edges[::2], edges[1::2], strict=True)
    ]
    joined: list[list[float]] = []
    for start, end in runs:
        if joined and start - joined[-1][1] < max_gap_s:
            joined[-1][1] = end
        else:
            joined.append([start, end])
    # times come from integer sample counts; rounding to 0.1 ms keeps them tidy, not just close
    return tuple(
        (round(max(a, 0.0), 4), round(min(b, duration), 4)) for a, b in joined if b - a >= min_segment_s
    )
