"""A microphone change applied after rendering: the known answer for audio drift monitoring.

Re-records a rendered phantom clip's sound as another microphone and room would have: added noise
(a noisier room or preamp), a low-pass (a band-limited microphone or a telephone line) and a gain
change (another distance or input level), each alone or together. The video stream is copied
packet for packet, so the faces, movements and pixels are the same bytes: a drift report that fires
on the changed window has heard the microphone, not seen the people or the camera.

The chain runs in the order sound meets it: the room's noise joins the voice, the microphone's band
limits both, its gain scales both. ``noise_snr_db`` is relative to the speech: the mean power of the
clip's voiced segments (:mod:`hypomimia.voice.activity`, the same detector the SNR estimate uses),
so a clip changed at 10 dB reads about 10 dB (a little more after a low-pass: it removes part of the
white noise).
"""

from __future__ import annotations

import csv
import zlib
from dataclasses import dataclass
from pathlib import Path

import av
import numpy as np

from hypomimia.data.probe import sha256_file
from hypomimia.data.video import AudioTrack, replace_audio


@dataclass(frozen=True)
class MicrophoneChange:
    gain_db: float = 0.0  # level change of the whole track (-12: a quieter input)
    noise_snr_db: float | None = None  # white noise at this SNR re the voiced speech (None: none)
    lowpass_hz: float | None = None  # 8th-order Butterworth low-pass (3400: telephone band; None: none)
    seed: int = 0  # the noise draw (with the clip's name): the same change gives the same bytes
    recorded: bool = True  # False: the microphone is off, the clip loses its sound track

    def apply(self, samples: np.ndarray, sample_rate: int, key: str = "") -> np.ndarray:
        """Mono samples in [-1, 1] through this microphone, clipped to full scale and on the int16 grid."""
        from scipy.signal import butter, sosfilt

        x = np.asarray(samples, np.float64)
        if self.noise_snr_db is not None:
            rng = np.random.default_rng([self.seed, zlib.crc32(key.encode())])
            speech_power = voiced_power(x, sample_rate)
            x = x + rng.standard_normal(len(x)) * np.sqrt(speech_power / 10 ** (self.noise_snr_db / 10))
        if self.lowpass_hz is not None:
            x = sosfilt(butter(8, self.lowpass_hz, btype="low", fs=sample_rate, output="sos"), x)
        x = x * 10 ** (self.gain_db / 20)
        return np.clip(np.round(x * 32768.0), -32768, 32767) / 32768.0


def voiced_power(samples: np.ndarray, sample_rate: int) -> float:
    """Mean power of the samples inside the clip's voiced segments (all samples when none is voiced)."""
    from hypomimia.config.voice import VoiceConfig
    from hypomimia.voice.activity import detect

    segments = detect(samples, sample_rate, VoiceConfig()).segments
    t = np.arange(len(samples)) / sample_rate
    inside = np.zeros(len(samples), bool)
    for a, b in segments:
        inside |= (t >= a) & (t < b)
    return float(np.mean(samples[inside] ** 2 if inside.any() else samples**2))


# The known answers of docs/monitoring.md ("Audio drift"): each change alone, and all together.
CHANGES: dict[str, MicrophoneChange] = {
    "gain": MicrophoneChange(gain_db=-12.0),
    "noise": MicrophoneChange(noise_snr_db=10.0),
    "lowpass": MicrophoneChange(lowpass_hz=3400.0),
    "microphone": MicrophoneChange(gain_db=-12.0, noise_snr_db=10.0, lowpass_hz=3400.0),
    "off": MicrophoneChange(recorded=False),  # video-only uploads
}


def read_track(path: Path) -> tuple[np.ndarray, int, int]:
    """(mono samples at the stream's own rate, rate, bit rate) of ``path``'s first audio stream, cut to the
    stream's duration (the decoder also returns the last AAC frame's padding: a re-encoded track would grow)."""
    from hypomimia.voice.audio import decode_audio

    with av.open(str(path)) as container:
        stream = container.streams.audio[0]
        rate, bitrate = stream.codec_context.sample_rate, stream.codec_context.bit_rate or 48000
        seconds = float(stream.duration * stream.time_base) if stream.duration is not None else None
    samples = decode_audio(path, rate, max_seconds=3600.0).samples
    return (samples if seconds is None else samples[: int(round(seconds * rate))]), rate, bitrate


def apply_to_video(src: Path, dst: Path, change: MicrophoneChange) -> Path:
    """Write ``dst``: ``src`` with its sound through ``change`` (the video packets copied), or without
    sound when ``change.recorded`` is False; a clip without audio is copied as it is (a microphone
    cannot change a recording it did not make)."""
    Path(dst).parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(src)) as container:
        silent = not container.streams.audio
    if not change.recorded:
        return replace_audio(src, dst, None)
    if silent:
        Path(dst).write_bytes(Path(src).read_bytes())
        return Path(dst)
    samples, rate, bitrate = read_track(Path(src))
    pcm = np.round(change.apply(samples, rate, Path(src).stem) * 32768.0).astype(np.int16)
    return replace_audio(src, dst, AudioTrack(pcm, rate, bitrate))


def apply_to_folder(src_dir: Path, dst_dir: Path, change: MicrophoneChange) -> Path:
    """A phantom folder (manifest.csv + videos/) heard through another microphone; the manifest is
    copied with the new files' hashes. Returns the new manifest."""
    src_dir, dst_dir = Path(src_dir), Path(dst_dir)
    rows = list(csv.DictReader((src_dir / "manifest.csv").open(encoding="utf-8")))
    for row in rows:
        out = apply_to_video(src_dir / row["path"], dst_dir / row["path"], change)
        if "sha256" in row:
            row["sha256"] = sha256_file(out)
    with (dst_dir / "manifest.csv").open("w", encoding="utf-8", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]) if rows else ["video_id"], lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
    return dst_dir / "manifest.csv"
