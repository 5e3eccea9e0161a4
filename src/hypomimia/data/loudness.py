"""Integrated loudness (ITU-R BS.1770-4, in LUFS), measured while an audio track decodes.

Hypophonia makes a PD voice quieter, so a batch of voice recordings is only comparable when its
level is measured the way broadcasters do: K-weighted (a high-frequency shelf for the head's effect
and a high-pass that discounts rumble), in 400 ms blocks overlapping by 75 %, gated absolutely at
-70 LUFS (silence) and relatively 10 LU below the ungated level (pauses between phrases), so a
recording's level does not depend on how long the speaker paused.

The meter is streaming: it keeps the filters' state and one power sum per 100 ms hop, so memory
stays small however long the video is.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from scipy.signal import sosfilt

ABSOLUTE_GATE_LUFS = -70.0
RELATIVE_GATE_LU = -10.0
BLOCK_HOPS = 4  # a 400 ms gating block is four 100 ms hops (75 % overlap)
# BS.1770's -0.691 makes a 997 Hz sine read its RMS level in dBFS (the K-filter adds +0.691 dB there).
_OFFSET_DB = -0.691

# Channel weights (BS.1770-4 table 3): surround channels count 1.41 (+1.5 dB), the LFE not at all.
# Names as FFmpeg spells its channel layouts.
_CHANNEL_WEIGHTS = {"LFE": 0.0, "LFE2": 0.0, "SL": 1.41, "SR": 1.41, "BL": 1.41, "BR": 1.41}

# The analogue prototypes of the two K-weighting stages (as in libebur128): the bilinear transform of
# these gives exactly the standard's 48 kHz coefficients, and the same filter at any other rate.
_SHELF_HZ, _SHELF_GAIN_DB, _SHELF_Q = 1681.974450955533, 3.999843853973347, 0.7071752369554196
_SHELF_VB_EXPONENT = 0.4996667741545416
_HIGHPASS_HZ, _HIGHPASS_Q = 38.13547087602444, 0.5003270373238773


def k_weighting(rate: int) -> np.ndarray:
    """The K-weighting filter at ``rate`` Hz as second-order sections (shelf, then high-pass)."""
    k = math.tan(math.pi * _SHELF_HZ / rate)
    vh = 10.0 ** (_SHELF_GAIN_DB / 20.0)
    vb = vh**_SHELF_VB_EXPONENT
    a0 = 1.0 + k / _SHELF_Q + k * k
    shelf = [
        (vh + vb * k / _SHELF_Q + k * k) / a0,
        2.0 * (k * k - vh) / a0,
        (vh - vb * k / _SHELF_Q + k * k) / a0,
        1.0,
        2.0 * (k * k - 1.0) / a0,
        (1.0 - k / _SHELF_Q + k * k) / a0,
    ]
    k = math.tan(math.pi * _HIGHPASS_HZ / rate)
    a0 = 1.0 + k / _HIGHPASS_Q + k * k
    highpass = [1.0, -2.0, 1.0, 1.0, 2.0 * (k * k - 1.0) / a0, (1.0 - k / _HIGHPASS_Q + k * k) / a0]
    return np.array([shelf, highpass])


def channel_weights(names: Sequence[str]) -> np.ndarray:
    """BS.1770 weight of each channel, from FFmpeg channel names (FL, FR, FC, LFE, BL, ...)."""
    return np.array([_CHANNEL_WEIGHTS.get(name, 1.0) for name in names])


class LoudnessMeter:
    """Feed it ``(channels, samples)`` full-scale audio (|x| <= 1) in chunks; read :meth:`integrated`."""

    def __init__(self, rate: int, weights: Sequence[float]):
        self.rate = rate
        self.weights = np.asarray(weights, np.float64)
        self.hop = max(1, round(rate / 10))  # 100 ms; rates like 11025 Hz round to the nearest sample
        self._sos = k_weighting(rate)
        self._state = np.zeros((len(self._sos), len(self.weights), 2))
        self._carry = np.zeros(0)  # weighted power of the samples after the last full hop
        self._hops: list[np.ndarray] = []  # weighted power summed over each full hop

    def add(self, samples: np.ndarray) -> None:
        samples = np.asarray(samples, np.float64)
        if samples.ndim != 2 or samples.shape[0] != len(self.weights):
            raise ValueError(f"expected ({len(self.weights)}, n) samples, got shape {samples.shape}")
        filtered, self._state = sosfilt(self._sos, samples, axis=-1, zi=self._state)
        power = np.concatenate([self._carry, self.weights @ (filtered * filtered)])
        full = len(power) // self.hop * self.hop
        if full:
            self._hops.append(power[:full].reshape(-1, self.hop).sum(axis=1))
        self._carry = power[full:]

    def block_powers(self) -> np.ndarray:
        """Weighted mean-square power of every complete 400 ms block (one block starts every 100 ms)."""
        hops = np.concatenate(self._hops) if self._hops else np.zeros(0)
        if len(hops) < BLOCK_HOPS:
            return np.zeros(0)
        sums = np.convolve(hops, np.ones(BLOCK_HOPS), mode="valid")
        return sums / (BLOCK_HOPS * self.hop)

    def integrated(self) -> float:
        """Gated integrated loudness in LUFS; -inf when no block passes the absolute gate (silence)."""
        return gated_loudness(self.block_powers())


def gated_loudness(block_powers: np.ndarray) -> float:
    """BS.1770-4 two-stage gating of block powers -> integrated loudness in LUFS (-inf: nothing passes)."""
    with np.errstate(divide="ignore"):
        levels = _OFFSET_DB + 10.0 * np.log10(block_powers)
    loud = block_powers[levels > ABSOLUTE_GATE_LUFS]
    if not len(loud):
        return -math.inf
    relative_gate = _OFFSET_DB + 10.0 * math.log10(loud.mean()) + RELATIVE_GATE_LU
    gated = block_powers[(levels > ABSOLUTE_GATE_LUFS) & (levels > relative_gate)]
    return _OFFSET_DB + 10.0 * math.log10(gated.mean())


def integrated_loudness(samples: np.ndarray, rate: int, weights: Sequence[float] | None = None) -> float:
    """Integrated loudness of a whole ``(channels, samples)`` (or mono ``(samples,)``) signal in LUFS."""
    samples = np.atleast_2d(np.asarray(samples, np.float64))
    meter = LoudnessMeter(rate, np.ones(len(samples)) if weights is None else weights)
    meter.add(samples)
    return meter.integrated()
