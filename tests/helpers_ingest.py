"""Tiny media files for the ingest tests: one good or broken file per real-world failure.

Everything is generated in a few seconds (small noise frames, ultrafast x264), never downloaded.
"""

from __future__ import annotations

import csv
import fractions
import os
import shutil
from pathlib import Path

import av
import av.filter
import numpy as np
from PIL import Image

from hypomimia.config.ingest import IngestConfig

# Ingest settings for the bad-input folder: the default pixel limit (the 4K policy is under test),
# shorter minimums so that the test videos stay tiny.
TEST_CFG = IngestConfig(folds=2, min_frames=4, min_duration_s=0.5, workers=2)


def encode(
    path: Path,
    n: int,
    fps: int = 10,
    size: tuple[int, int] = (160, 128),
    *,
    rotation: int | None = None,
    pts_ms: list[int] | None = None,
    faststart: bool = False,
    seed: int = 0,
    flat: bool = False,
    audio: np.ndarray | None = None,
    audio_rate: int = 16000,
    audio_codec: str = "aac",
    container: str = "mp4",
) -> Path:
    """H.264 mp4 of ``n`` frames (noise, or flat grey for big frames). ``pts_ms`` gives uneven timestamps.

    ``audio`` (``(channels, samples)`` floats, full scale 1.0) adds an ``audio_codec`` track at ``audio_rate``
    (PCM needs ``container="mov"``).
    """
    w, h = size
    rng = np.random.default_rng(seed)
    options = {"movflags": "+faststart"} if faststart else {}
    with av.open(str(path), "w", format=container, options=options) as out:
        sound = _audio_stream(out, len(audio), audio_rate, audio_codec) if audio is not None else None
        stream = out.add_stream("libx264", rate=fps, options={"preset": "ultrafast", "threads": "1"})
        stream.width, stream.height, stream.pix_fmt = w, h, "yuv420p"
        if rotation is not None:
            stream.set_display_rotation(rotation)  # the display matrix phones write (PyAV >= 15)
        if pts_ms is not None:
            stream.codec_context.time_base = fractions.Fraction(1, 1000)
        for i in range(n):
            rgb = (
                np.full((h, w, 3), 40 + 20 * i % 200, np.uint8)
                if flat
                else rng.integers(0, 255, (h, w, 3), np.uint8)
            )
            frame = av.VideoFrame.from_ndarray(rgb, format="rgb24")
            if pts_ms is not None:
                frame.pts, frame.time_base = pts_ms[i], fractions.Fraction(1, 1000)
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
        if sound is not None:
            _encode_audio(out, sound, audio)
    return path


def tone(seconds: float, rate: int = 16000, dbfs: float = -20.0, hz: float = 997.0, channels: int = 1):
    """A sine of peak level ``dbfs`` (0 = full scale), ``(channels, samples)`` float32."""
    t = np.arange(round(seconds * rate)) / rate
    wave = 10 ** (dbfs / 20) * np.sin(2 * np.pi * hz * t)
    return np.repeat(wave[None], channels, axis=0).astype(np.float32)


def encode_audio(path: Path, seconds: float = 1.0, rate: int = 16000) -> Path:
    """An AAC sine tone in an mp4/m4a container: a voice memo, no video."""
    with av.open(str(path), "w", format="mp4") as out:
        _encode_audio(out, _audio_stream(out, 1, rate), tone(seconds, rate, dbfs=20 * np.log10(0.3), hz=440))
    return path


def _audio_stream(out, channels: int, rate: int, codec: str = "aac"):
    stream = out.add_stream(codec, rate=rate)
    stream.layout = {1: "mono", 2: "stereo"}[channels]
    return stream


def _encode_audio(out, stream, signal: np.ndarray) -> None:
    """Encode ``signal`` (channels x samples, full scale 1.0) into the audio ``stream``."""
    rate, layout = stream.rate, stream.layout.name
    for start in range(0, signal.shape[1], 1024):  # AAC codes 1024 samples a frame
        chunk = np.ascontiguousarray(signal[:, start : start + 1024], np.float32)
        frame = av.AudioFrame.from_ndarray(chunk, format="fltp", layout=layout)
        frame.sample_rate, frame.pts = rate, start
        for packet in stream.encode(frame):
            out.mux(packet)
    for packet in stream.encode():
        out.mux(packet)


def ffmpeg_ebur128(x: np.ndarray, rate: int) -> float:
    """FFmpeg's own BS.1770 meter (the ebur128 filter, bundled with PyAV): an independent implementation."""
    layout = {1: "mono", 2: "stereo"}[len(x)]
    graph = av.filter.Graph()
    source = graph.add_abuffer(
        sample_rate=rate, format="fltp", layout=layout, time_base=fractions.Fraction(1, rate)
    )
    meter, sink = graph.add("ebur128", "metadata=1"), graph.add("abuffersink")
    source.link_to(meter)
    meter.link_to(sink)
    graph.configure()
    readings = []

    def drain():
        while True:
            try:
                frame = graph.pull()
            except (av.error.BlockingIOError, av.error.EOFError):
                return
            if value := frame.metadata.get("lavfi.r128.I"):
                readings.append(float(value))

    for start in range(0, x.shape[1], 1024):
        chunk = np.ascontiguousarray(x[:, start : start + 1024], np.float32)
        frame = av.AudioFrame.from_ndarray(chunk, format="fltp", layout=layout)
        frame.sample_rate, frame.pts, frame.time_base = rate, start, fractions.Fraction(1, rate)
        graph.push(frame)
        drain()
    graph.push(None)
    drain()
    return readings[-1]


def _patch_codec_tag(src: Path, dst: Path, tag: bytes) -> Path:
    """Copy an mp4, replacing the sample-entry fourcc: FFmpeg then meets a codec it has no decoder for."""
    data = src.read_bytes()
    at = data.index(b"avc1", data.index(b"stsd"))
    dst.write_bytes(data[:at] + tag + data[at + 4 :])
    return dst


def _garble_mdat(src: Path, dst: Path) -> Path:
    """Copy an mp4 with its media data replaced by random bytes: the index is fine, no frame decodes."""
    data = src.read_bytes()
    at = data.index(b"mdat") - 4
    size = int.from_bytes(data[at : at + 4], "big")
    noise = np.random.default_rng(1).integers(0, 256, size - 8, np.uint8).tobytes()
    dst.write_bytes(data[: at + 8] + noise + data[at + size :])
    return dst


MANIFEST_COLUMNS = ["video_id", "path", "subject_id", "session", "task", "label", "updrs_3_2", "hoehn_yahr"]


def write_manifest(path: Path, rows: list[dict], encoding: str = "utf-8") -> Path:
    with open(path, "w", newline="", encoding=encoding) as f:
        writer = csv.DictWriter(f, fieldnames=MANIFEST_COLUMNS, extrasaction="ignore")
        writer.writeheader()
        for row in rows:
            writer.writerow({"session": "s1", "task": "rest", **row})
    return path


def build_bad_inputs(folder: Path) -> tuple[Path, dict[str, str]]:
    """Every bad input of the issue, plus good videos. Returns (manifest, expected reason per video_id).

    The expected reason is '' for videos that must be accepted.
    """
    folder.mkdir(parents=True, exist_ok=True)
    f = folder
    encode(f / "good_a.mp4", 12, seed=1)
    encode(f / "good_b.mp4", 12, seed=2)
    encode(f / "phone_rotated.mp4", 12, rotation=90, seed=3)
    gaps = [100 if i % 3 == 0 else 33 for i in range(19)]  # a phone dropping to 10 fps in the dark
    encode(f / "phone_vfr.mp4", 20, fps=30, pts_ms=[0, *np.cumsum(gaps).tolist()], seed=4)
    encode(f / "uhd_4k.mp4", 5, fps=8, size=(3840, 2160), flat=True)
    encode(f / "control_scored.mp4", 12, seed=5)
    encode(f / "invalid_label.mp4", 12, seed=6)
    (f / "zero.mp4").touch()
    whole = encode(f / "whole.mp4", 12, seed=7).read_bytes()  # moov at the end, as Android phones write
    (f / "cut.mp4").write_bytes(whole[: len(whole) // 2])
    (f / "whole.mp4").unlink()
    whole = encode(f / "whole_fs.mp4", 20, seed=8, faststart=True).read_bytes()  # moov first (iPhone-style)
    (f / "cut_faststart.mp4").write_bytes(whole[: int(len(whole) * 0.6)])
    (f / "whole_fs.mp4").unlink()
    (f / "notes.mp4").write_text("patient consent form, scanned text saved as .mp4\n", encoding="utf-8")
    image = np.random.default_rng(9).integers(0, 255, (128, 160, 3), np.uint8)
    Image.fromarray(image).save(f / "photo_png.png")
    os.replace(f / "photo_png.png", f / "photo_renamed.mp4")
    Image.fromarray(image).save(f / "photo.jpg", quality=90)
    encode_audio(f / "voice_memo.m4a")
    _patch_codec_tag(f / "good_a.mp4", f / "camera_raw.mov", b"brxq")  # Blackmagic RAW fourcc
    _garble_mdat(f / "good_b.mp4", f / "corrupt_stream.mp4")
    encode(f / "one_frame.mp4", 1, seed=10)
    encode(f / "blink.mp4", 6, fps=25, seed=11)  # 0.24 s
    encode(f / "thumbnail.mp4", 12, size=(96, 64), seed=12)
    encode(f / "uhd_5k.mp4", 1, fps=8, size=(5120, 2880), flat=True)
    shutil.copyfile(f / "good_a.mp4", f / "good_a_copy.mp4")
    encode(f / "not_listed.mp4", 12, seed=13)
    with open(os.path.join(os.fsencode(f), b"v\xff_latin1.mp4"), "wb") as out:  # a non-UTF-8 file name
        out.write((f / "good_b.mp4").read_bytes())

    rows = [
        # video_id, file, subject, label, expected reason
        ("good_a", "good_a.mp4", "S01", "pd", ""),
        ("good_b", "good_b.mp4", "S02", "control", ""),
        ("rotated", "phone_rotated.mp4", "S03", "pd", ""),
        ("vfr", "phone_vfr.mp4", "S04", "control", ""),
        ("uhd_4k", "uhd_4k.mp4", "S05", "pd", ""),
        ("zero_bytes", "zero.mp4", "S10", "pd", "empty_file"),
        ("truncated", "cut.mp4", "S11", "pd", "truncated"),
        ("truncated_faststart", "cut_faststart.mp4", "S12", "pd", "truncated"),
        ("text_as_mp4", "notes.mp4", "S13", "pd", "not_a_video"),
        ("png_as_mp4", "photo_renamed.mp4", "S14", "pd", "image_not_video"),
        ("jpeg", "photo.jpg", "S15", "pd", "image_not_video"),
        ("audio_only", "voice_memo.m4a", "S16", "pd", "audio_only"),
        ("raw_codec", "camera_raw.mov", "S17", "pd", "unreadable_codec"),
        ("corrupt_stream", "corrupt_stream.mp4", "S18", "pd", "unreadable_codec"),
        ("one_frame", "one_frame.mp4", "S19", "pd", "too_few_frames"),
        ("too_short", "blink.mp4", "S20", "pd", "too_short"),
        ("too_small", "thumbnail.mp4", "S21", "pd", "too_small"),
        ("uhd_5k", "uhd_5k.mp4", "S22", "pd", "too_large"),
        ("missing", "gone/never_copied.mp4", "S23", "pd", "missing_file"),
        ("good_a_again", "good_a_copy.mp4", "S24", "pd", "duplicate_content"),
        ("listed_twice", "./good_b.mp4", "S25", "control", "duplicate_listing"),
        ("control_updrs3", "control_scored.mp4", "S26", "control", "label_score_inconsistent"),
        ("bad_label", "invalid_label.mp4", "S27", "PDD", "invalid_row"),
    ]
    manifest_rows = [
        {
            "video_id": v,
            "path": p,
            "subject_id": s,
            "label": lab,
            "updrs_3_2": 3 if v == "control_updrs3" else "",
        }
        for v, p, s, lab, _ in rows
    ]
    manifest = write_manifest(f / "manifest.csv", manifest_rows)
    return manifest, {v: reason for v, _, _, _, reason in rows}
