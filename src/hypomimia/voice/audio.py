"""A video file's first audio stream as mono samples at a fixed analysis rate.

Decoded with PyAV on FFmpeg's portable C kernels, without FFmpeg's resampler: the decoder's samples
are converted and mixed to mono here, snapped to a 16-bit grid, resampled with scipy's polyphase
filter and snapped again. FFmpeg picks SIMD kernels for the CPU when a decoder opens, and AAC's
AVX2/AVX-512 inverse MDCT rounds differently from its C code: measured on 54 clips, every raw decode
differed (by up to 1.5e-7), the snapped 16-bit samples still differed in 49 and the voice rows in
47. On the C kernels the decode is the same on any x86-64 CPU, AMD or Intel; the snaps keep numpy's
own CPU-dependent kernels (log, exp) from reaching the written numbers.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import av
import numpy as np

# one switch for the package's FFmpeg kernels: the phantom's AAC encoder pins them the same way
from hypomimia.data.video import ffmpeg_portable_kernels

# 2^15 levels per unit: the resolution of 16-bit audio, far finer than any measure needs and far
# coarser than the last-bit differences between CPUs
SAMPLE_GRID = 32768.0
# more failed packets than this share: the stream is unreadable, not a clip with a glitch
MAX_PACKET_ERROR_SHARE = 0.1
_INT_SCALE = {"u8": 128.0, "s16": 32768.0, "s32": 2.0**31, "s64": 2.0**63}


class AudioUnreadable(Exception):
    """The file has an audio stream that cannot be decoded; ``reason`` is a stable machine-readable string."""

    def __init__(self, reason: str, detail: str):
        self.reason, self.detail = reason, detail
        super().__init__(f"{reason}: {detail}")


@dataclass(frozen=True)
class Audio:
    samples: np.ndarray  # float64, mono, in [-1, 1], on the SAMPLE_GRID
    sample_rate: int  # the analysis rate
    source_rate: int  # the stream's own rate
    source_channels: int
    codec: str
    packet_errors: int

    @property
    def duration_s(self) -> float:
        return len(self.samples) / self.sample_rate


def snap(x, grid: float) -> np.ndarray:
    """``x`` rounded to multiples of 1/grid: exactly representable, so later float math is CPU-independent."""
    return np.round(np.asarray(x, np.float64) * grid) / grid


def has_audio_stream(path: str | Path) -> bool:
    """Whether ``path`` opens and holds an audio stream (False when it does not open)."""
    try:
        with av.open(str(path)) as container:
            return bool(container.streams.audio)
    except (av.error.FFmpegError, OSError):
        return False


def _frame_samples(frame: av.AudioFrame) -> np.ndarray:
    """One decoded frame as float64 ``channels x n`` in [-1, 1], whatever its sample format."""
    fmt = frame.format
    name = fmt.name.rstrip("p")
    data = frame.to_ndarray().astype(np.float64)
    channels = len(frame.layout.channels)
    if not fmt.is_planar:  # interleaved: one row of n * channels
        data = data.reshape(-1, channels).T
    if name == "u8":
        data = data - 128.0
    return data / _INT_SCALE.get(name, 1.0)


def decode_audio(path: str | Path, sample_rate: int, max_seconds: float) -> Audio | None:
    """The first audio stream of ``path`` as mono at ``sample_rate``, cut at ``max_seconds``;
    None when the file has no audio stream. Raises :class:`AudioUnreadable` when it has one that
    does not decode."""
    with ffmpeg_portable_kernels():  # the decoder opens, and picks its kernels, inside
        return _decode(path, sample_rate, max_seconds)


def _decode(path: str | Path, sample_rate: int, max_seconds: float) -> Audio | None:
    try:
        container = av.open(str(path))
    except (av.error.FFmpegError, OSError) as e:
        raise AudioUnreadable("unreadable_file", f"the file does not open: {type(e).__name__}") from None
    with container:
        if not container.streams.audio:
            return None
        stream = container.streams.audio[0]
        codec = stream.codec_context.name
        parts: list[np.ndarray] = []
        rate = channels = 0
        packets = errors = samples = 0
        try:
            for packet in container.demux(stream):
                flush = packet.size == 0  # the demuxer's last packet drains the decoder
                packets += not flush
                try:
                    frames = packet.decode()
                except av.error.FFmpegError:
                    errors += not flush
                    continue
                for frame in frames:
                    data = _frame_samples(frame)
                    rate = rate or frame.sample_rate
                    channels = max(channels, data.shape[0])
                    parts.append(data.mean(axis=0))
                    samples += data.shape[1]
                if rate and samples >= max_seconds * rate:
                    break
        except av.error.FFmpegError as e:
            raise AudioUnreadable("unreadable_audio", f"demuxing the {codec} stream failed: {e}") from None
    if packets == 0 or (not parts and not errors):
        raise AudioUnreadable("empty_audio", f"the {codec} audio stream holds no samples")
    if not parts or errors > MAX_PACKET_ERROR_SHARE * packets:
        raise AudioUnreadable(
            "unreadable_audio", f"{errors} of {packets} {codec} audio packets failed to decode"
        )
    mono = snap(np.concatenate(parts)[: int(max_seconds * rate)], SAMPLE_GRID)
    return Audio(
        samples=resample(mono, rate, sample_rate),
        sample_rate=sample_rate,
        source_rate=rate,
        source_channels=channels,
        codec=codec,
        packet_errors=errors,
    )


def resample(x: np.ndarray, source_rate: int, rate: int) -> np.ndarray:
    """``x`` from ``source_rate`` to ``rate`` (polyphase FIR, Kaiser window), clipped and snapped."""
    from scipy.signal import resample_poly

    if source_rate != rate and len(x):
        g = math.gcd(source_rate, rate)
        x = resample_poly(x, rate // g, source_rate // g)
    return snap(np.clip(x, -1.0, 1.0), SAMPLE_GRID)
