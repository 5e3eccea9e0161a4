"""Video decode and encode with PyAV (bundled FFmpeg): the only place that touches codecs.

PyAV decodes about 2x faster than OpenCV here and exposes rotation and per-frame
timestamps, which variable-frame-rate phone video needs.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import platform
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import av
import numpy as np

SEEK_MARGIN_S = 2.0  # seek this far before a segment's start (to the keyframe before that)
PREROLL_FULL_S = 1.0  # decode every frame from this long before the start (reference frames only before)


@dataclass(frozen=True)
class Frame:
    index: int  # position among decoded frames
    time: float  # presentation time in seconds from the first frame
    rgb: np.ndarray  # H x W x 3 uint8, rotation already applied


def _rotate(rgb: np.ndarray, rotation: int) -> np.ndarray:
    # PyAV reports the display-matrix angle counter-clockwise; np.rot90 turns counter-clockwise too.
    k = (int(round(rotation / 90.0)) % 4) if rotation else 0
    return np.ascontiguousarray(np.rot90(rgb, k)) if k else rgb


def iter_frames(
    path: str | Path, max_side: int | None = None, threads: bool = True, start_s: float = 0.0
) -> Iterator[Frame]:
    """Stream decoded RGB frames, honouring rotation metadata.

    ``max_side`` downscales inside FFmpeg's scaler (cheaper than resizing in numpy).
    ``start_s > 0`` starts at the frame on screen at ``start_s`` (the last one shown at or before
    it), for processing a video in time segments: it seeks to the keyframe before and decodes the
    pre-roll without non-reference frames or RGB conversion. Times stay relative to the video's
    first frame, so frames and times equal a full decode's; ``index`` counts the frames yielded.
    """
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        if threads:
            stream.thread_type = "AUTO"
        t0 = None
        seeking = start_s > 0
        if seeking:
            first = next(container.decode(stream), None)
            if first is None or first.time is None:
                return
            t0 = float(first.time)
            container.seek(
                int((t0 + start_s - SEEK_MARGIN_S) / stream.time_base), backward=True, stream=stream
            )
            stream.codec_context.skip_frame = "NONREF"  # pre-roll: only frames others depend on
        i, on_screen = 0, None
        for n, frame in enumerate(container.decode(stream)):
            t = float(frame.time) if frame.time is not None else n / float(stream.average_rate or 25)
            t0 = t if t0 is None else t0
            if seeking:
                if t - t0 < start_s - PREROLL_FULL_S:
                    continue
                if stream.codec_context.skip_frame != "DEFAULT":
                    stream.codec_context.skip_frame = "DEFAULT"  # near the start: every frame from here on
                if t - t0 <= start_s + 1e-9:
                    on_screen = (frame, t)  # the latest frame at or before start_s so far
                    continue
                if on_screen is not None:
                    yield Frame(i, on_screen[1] - t0, _to_rgb(on_screen[0], max_side))
                    i += 1
                seeking = False
            yield Frame(i, t - t0, _to_rgb(frame, max_side))
            i += 1
        if seeking and on_screen is not None:  # the video ends at or before start_s
            yield Frame(i, on_screen[1] - t0, _to_rgb(on_screen[0], max_side))


def _to_rgb(frame: av.VideoFrame, max_side: int | None) -> np.ndarray:
    if max_side and max(frame.width, frame.height) > max_side:
        scale = max_side / max(frame.width, frame.height)
        w, h = max(2, round(frame.width * scale)), max(2, round(frame.height * scale))
        rgb = frame.to_ndarray(format="rgb24", width=w, height=h)
    else:
        rgb = frame.to_ndarray(format="rgb24")
    return _rotate(rgb, getattr(frame, "rotation", 0) or 0)


# x264's assembly beyond SSE2 is not bit-exact across CPUs: on AVX-512 machines the output even
# varied from run to run of the same frames (it read uninitialised memory; measured: 4 different
# files in 10 encodes of one clip). The SSE2 kernels, which every x86-64 CPU has, give exactly the
# output of x264's C code (measured), which is what other architectures run. Cost: ~10 ms a clip.
_X264_CPU = "asm=MMX2,SSE,SSE2" if platform.machine().lower() in ("x86_64", "amd64") else "asm=0"


@dataclass(frozen=True)
class AudioTrack:
    """A mono sound track for ``write_mp4``."""

    samples: np.ndarray  # int16
    sample_rate: int
    bitrate: int = 48000


@contextmanager
def ffmpeg_portable_kernels():
    """FFmpeg's C code instead of the SIMD kernels it picks for this CPU, while a codec opens.

    FFmpeg's AAC encoder runs float MDCTs whose AVX2/FMA3 kernels round differently from the SSE2/C
    ones (measured: one clip encoded to other bytes with this machine's kernels than with C), so
    the AAC bytes would depend on the CPU. Kernels are chosen when a codec opens, so forcing the
    CPU flags for that moment pins them; scaling and H.264 (x264 has its own switch) are untouched.
    """
    force = _libavutil().av_force_cpu_flags
    force(0)
    try:
        yield
    finally:
        force(-1)  # back to detecting the CPU


def _libavutil() -> ctypes.CDLL:
    # The libavutil PyAV has loaded: its wheels bundle one (Linux: av.libs/, macOS: av/.dylibs/); a PyAV
    # built against the system's FFmpeg shares the system's, which loading by soname returns.
    package = Path(av.__file__).resolve().parent
    for folder, pattern in (
        (package.parent / "av.libs", "libavutil*.so*"),
        (package / ".dylibs", "libavutil*.dylib"),
    ):
        found = sorted(folder.glob(pattern))
        if found:
            return ctypes.CDLL(str(found[0]))
    return ctypes.CDLL(ctypes.util.find_library("avutil") or "libavutil.so")


def _audio_packets(out, audio: AudioTrack) -> list:
    """Encode ``audio`` as mono AAC (FFmpeg's native encoder, bit-exact) into a new stream of ``out``."""
    stream = out.add_stream("aac", rate=audio.sample_rate)
    ctx = stream.codec_context
    ctx.layout, ctx.bit_rate = "mono", audio.bitrate
    ctx.flags |= av.codec.context.Flags.bitexact
    ctx.thread_count = 1
    with ffmpeg_portable_kernels():
        ctx.open()
    pcm = np.asarray(audio.samples, np.int16).astype(np.float32) / 32768.0  # exact in float32
    packets = []
    for i in range(0, len(pcm), ctx.frame_size):
        frame = av.AudioFrame.from_ndarray(pcm[None, i : i + ctx.frame_size], format="fltp", layout="mono")
        frame.sample_rate, frame.pts = audio.sample_rate, i
        packets += stream.encode(frame)
    return packets + list(stream.encode(None))


def write_mp4(
    path: str | Path, frames: Iterable[np.ndarray], fps: int, crf: int = 20, audio: AudioTrack | None = None
) -> Path:
    """Encode RGB frames as H.264 mp4, byte-reproducibly on any machine (single-threaded x264 on its
    portable kernels, no timestamps in metadata), with ``audio`` as a second stream (AAC) if given.
    The video stream is the same with or without audio.

    Writes to a temporary name and renames, so a killed run never leaves a half-written video.
    """
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp.mp4")
    try:
        with av.open(str(tmp), mode="w", format="mp4", options={"fflags": "+bitexact"}) as out:
            stream = None
            for rgb in frames:
                if stream is None:
                    h, w = rgb.shape[:2]
                    stream = out.add_stream(
                        "libx264",
                        rate=fps,
                        options={
                            "crf": str(crf),
                            "preset": "veryfast",
                            "threads": "1",
                            "x264-params": _X264_CPU,
                        },
                    )
                    stream.width, stream.height, stream.pix_fmt = w, h, "yuv420p"
                    stream.codec_context.flags |= av.codec.context.Flags.bitexact
                    stream.thread_count = 1
                    if audio is not None:
                        for packet in _audio_packets(out, audio):
                            out.mux(packet)
                for packet in stream.encode(av.VideoFrame.from_ndarray(rgb, format="rgb24")):
                    out.mux(packet)
            if stream is None:
                raise ValueError(f"no frames to write to {path.name}")
            for packet in stream.encode():
                out.mux(packet)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def replace_audio(src: str | Path, dst: str | Path, audio: AudioTrack | None) -> Path:
    """Write ``dst``: ``src``'s video stream copied packet for packet (its pixels untouched) with
    ``audio`` as its sound track (mono AAC, encoded as :func:`write_mp4` encodes it), or none. A
    recording heard through another microphone (or none), seen through the same camera."""
    dst = Path(dst)
    tmp = dst.with_name(f".{dst.name}.{os.getpid()}.tmp.mp4")
    try:
        with av.open(str(src)) as source, av.open(str(tmp), mode="w", format="mp4", options={"fflags": "+bitexact"}) as out:  # fmt: skip
            video_in = source.streams.video[0]
            video_out = out.add_stream_from_template(video_in)
            for packet in _audio_packets(out, audio) if audio is not None else ():
                out.mux(packet)
            for packet in source.demux(video_in):
                if packet.dts is None:  # the demuxer's flush packet
                    continue
                packet.stream = video_out
                out.mux(packet)
        os.replace(tmp, dst)
    finally:
        tmp.unlink(missing_ok=True)
    return dst
