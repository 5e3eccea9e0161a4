"""Helpers of the voice tests: synthetic voices with a known answer, and tiny mp4 files with (or
without, or with a broken) AAC audio track."""

from __future__ import annotations

from pathlib import Path

import av
import numpy as np
from scipy.signal import lfilter

from hypomimia.data.video import write_mp4

# /a/-like formants (F, bandwidth) in Hz
VOWEL_A = ((700.0, 80.0), (1220.0, 90.0), (2600.0, 120.0), (3300.0, 150.0))


def vowel(
    sample_rate: int = 16000,
    seconds: float = 3.0,
    f0_hz: float = 120.0,
    vibrato_st: float = 2.0,
    vibrato_hz: float = 0.5,
    rms_db: float = 70.0,
    formants=VOWEL_A,
    syllables_per_s: float = 0.0,
) -> np.ndarray:
    """A sustained vowel from a source-filter model with a known F0 contour and level.

    F0 is ``f0_hz * 2**(s(t)/12)`` with ``s(t) = vibrato_st * sin(2 pi vibrato_hz t)``, so its SD
    in semitones is ``vibrato_st / sqrt(2)``. The waveform's RMS is ``rms_db`` dB re 2e-5 (Praat's
    scale: a sample value of 1 is 1 Pa). ``syllables_per_s`` > 0 modulates the loudness into that
    many syllables a second (deep dips between them).
    """
    t = np.arange(int(round(seconds * sample_rate))) / sample_rate
    semitones = vibrato_st * np.sin(2 * np.pi * vibrato_hz * t)
    phase = np.cumsum(f0_hz * 2.0 ** (semitones / 12.0)) / sample_rate
    source = lfilter([1.0], [1.0, -0.97], np.diff(np.floor(phase), prepend=0.0))  # pulses, tilted
    x = source
    for freq, bandwidth in formants:  # Klatt's resonators (unit gain at 0 Hz), in cascade
        r = np.exp(-np.pi * bandwidth / sample_rate)
        a = [1.0, -2 * r * np.cos(2 * np.pi * freq / sample_rate), r * r]
        x = lfilter([sum(a)], a, x)
    x = np.diff(x, prepend=0.0)  # radiation at the lips: +6 dB per octave
    if syllables_per_s > 0:
        x = x * (0.55 - 0.45 * np.cos(2 * np.pi * syllables_per_s * t)) ** 2
    x = x - x.mean()
    return x * (2e-5 * 10 ** (rms_db / 20) / np.sqrt(np.mean(x**2)))


def tone_burst(sample_rate=16000, seconds=3.0, start=1.0, end=2.0, hz=220.0, amplitude=0.3, noise=0.0):
    """A sine tone from ``start`` to ``end`` in silence (or in white noise of RMS ``noise``)."""
    t = np.arange(int(round(seconds * sample_rate))) / sample_rate
    x = np.where((t >= start) & (t < end), amplitude * np.sin(2 * np.pi * hz * t), 0.0)
    return x + noise * np.random.default_rng(0).standard_normal(len(t))


def write_clip(
    path: Path,
    audio: np.ndarray | None = None,
    sample_rate: int = 48000,
    seconds: float = 2.0,
    fps: int = 25,
    broken_audio: bool = False,
) -> Path:
    """A small grey mp4 (H.264); with an AAC track of ``audio`` (float in [-1, 1]: ``n`` samples mono, or
    ``channels x n``) when given, or with an AAC track whose packets are random bytes (``broken_audio``)."""
    n_frames = int(round(seconds * fps))
    frames = [np.full((64, 64, 3), 90 + (i % 20), np.uint8) for i in range(n_frames)]
    if audio is None and not broken_audio:
        return write_mp4(path, frames, fps=fps)
    with av.open(str(path), mode="w", format="mp4") as out:
        video = out.add_stream("libx264", rate=fps)
        video.width, video.height, video.pix_fmt = 64, 64, "yuv420p"
        samples = np.atleast_2d(np.asarray(audio if audio is not None else [0.0], np.float32))
        layout = "stereo" if samples.shape[0] == 2 else "mono"
        sound = out.add_stream("aac", rate=sample_rate)
        sound.layout = layout
        for rgb in frames:
            for packet in video.encode(av.VideoFrame.from_ndarray(rgb, format="rgb24")):
                out.mux(packet)
        if broken_audio:
            rng = np.random.default_rng(1)
            for i in range(int(seconds * sample_rate / 1024)):
                packet = av.Packet(rng.integers(0, 256, 300, dtype=np.uint8).tobytes())
                packet.stream, packet.time_base = sound, sound.time_base
                packet.pts = packet.dts = i * 1024
                out.mux(packet)
        else:
            for start in range(0, samples.shape[1], 1024):
                chunk = np.ascontiguousarray(samples[:, start : start + 1024])
                frame = av.AudioFrame.from_ndarray(chunk, format="fltp", layout=layout)
                frame.sample_rate, frame.pts = sample_rate, start
                for packet in sound.encode(frame):
                    out.mux(packet)
            for packet in sound.encode(None):
                out.mux(packet)
        for packet in video.encode(None):
            out.mux(packet)
    return path


def make_ingested(ingest_dir: Path, videos: dict[str, Path], quarantined: tuple[str, ...] = ()) -> Path:
    """A minimal ingested.parquet (the docs/data-format.md §2 columns the voice stage reads); the
    ``quarantined`` ids are listed as quarantined by ingest (the voice stage must skip them)."""
    import hashlib

    import pandas as pd

    ingest_dir.mkdir(parents=True, exist_ok=True)
    rows = [
        {
            "video_id": video_id,
            "subject_id": f"s{i // 2}",
            "label": "pd" if i % 2 else "control",
            "task": "speech",
            "sha256": hashlib.sha256(Path(path).read_bytes()).hexdigest(),
            "status": "quarantined" if video_id in quarantined else "accepted",
            "reason": "too_short" if video_id in quarantined else "",
            "abs_path": str(Path(path).resolve()),
        }
        for i, (video_id, path) in enumerate(sorted(videos.items()))
    ]
    pd.DataFrame(rows).to_parquet(ingest_dir / "ingested.parquet", index=False)
    return ingest_dir
