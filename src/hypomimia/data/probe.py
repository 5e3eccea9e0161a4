"""Probe one media file: what it is, whether it decodes, and its content hash.

Real-world folders hold more than clean videos: empty files, interrupted recordings,
photos and voice memos under video names, camera RAW codecs nobody can decode. The
probe names each of these with a stable ``problem`` string instead of raising, so that
ingest can quarantine the file with a reason and carry on with the rest.

Speed: frames are decoded (that is the only honest frame count) but never converted to
RGB, and the hash is streamed, so a 10 s 720p phone clip probes in well under a second.

The first audio stream is decoded in the same pass over the file, for the facts a voice analysis
needs to trust a recording: its level (integrated loudness, BS.1770), peak and clipping. An audio
track that cannot be read is a fact (``audio_error``), not a ``problem``: most batches need no voice.
"""

from __future__ import annotations

import hashlib
import logging
import math
import statistics
from dataclasses import asdict, dataclass
from pathlib import Path

import av
import numpy as np

from hypomimia.data.loudness import LoudnessMeter, channel_weights

log = logging.getLogger(__name__)

# First bytes of still-image files. HEIC/AVIF photos are ISO-BMFF like mp4; their ftyp brand tells.
_IMAGE_MAGIC = {
    b"\x89PNG\r\n\x1a\n": "PNG",
    b"\xff\xd8\xff": "JPEG",
    b"GIF87a": "GIF",
    b"GIF89a": "GIF",
    b"BM": "BMP",
    b"II*\x00": "TIFF",
    b"MM\x00*": "TIFF",
}
_IMAGE_BRANDS = {b"heic": "HEIC", b"heix": "HEIC", b"mif1": "HEIF", b"msf1": "HEIF", b"avif": "AVIF"}
# FFmpeg demuxers that read single still images (``image2`` and the ``*_pipe`` family).
_IMAGE_FORMATS = ("image2", "_pipe", "gif", "webp")
# FFmpeg demuxers that turn text into frames (ANSI art, subtitles rendered as video).
_TEXT_FORMATS = frozenset({"tty"})

_HASH_CHUNK = 1 << 20
# A sample this close to full scale is taken as clipped: codecs leave a clipped waveform's flat tops
# a hair under (or, for AAC's ringing, over) 1.0.
CLIP_LEVEL = 0.999


@dataclass(frozen=True)
class Probe:
    """What one file is. ``problem`` is a quarantine reason found while probing ('' when none)."""

    size_bytes: int = 0
    sha256: str = ""
    container: str = ""
    codec: str = ""
    width: int = 0
    height: int = 0
    rotation: int = 0  # display-matrix angle in degrees, counter-clockwise (90, -90, 180)
    display_width: int = 0  # after rotation: what a viewer shows
    display_height: int = 0
    nominal_fps: float = math.nan  # the container's declared rate
    real_fps: float = math.nan  # measured from the timestamps of the frames that decoded
    vfr: bool = False
    declared_frames: int = 0  # from the container index (or duration x rate when it has none)
    decoded_frames: int = 0
    decode_errors: int = 0
    decode_ratio: float = math.nan  # decoded / declared
    duration_s: float = math.nan
    has_audio: bool = False
    # The first audio stream (empty/0/nan without one). Loudness and peak are -inf for digital silence.
    audio_codec: str = ""
    audio_sample_rate: int = 0
    audio_channels: int = 0
    audio_duration_s: float = math.nan  # decoded samples / sample rate
    audio_loudness_lufs: float = math.nan  # ITU-R BS.1770-4 integrated (gated) loudness
    audio_peak_dbfs: float = math.nan  # sample peak
    audio_clipped_share: float = math.nan  # share of samples with |x| >= CLIP_LEVEL
    audio_error: str = ""  # why the audio stream cannot be decoded ('' when it can, or there is none)
    problem: str = ""
    detail: str = ""


def sha256_file(path: str | Path) -> str:
    """Content hash, read in 1 MiB chunks (videos can be gigabytes)."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(_HASH_CHUNK):
            h.update(chunk)
    return h.hexdigest()


def quality_problem(
    p: Probe,
    *,
    section: str,
    max_pixels: int,
    min_side: int,
    min_frames: int,
    min_duration_s: float,
    max_duration_s: float,
    min_decode_ratio: float | None = None,
) -> tuple[str, str]:
    """The first size/length limit a decodable video fails, as (reason, detail); ('', '') when it passes.

    One rule for ingest and the endpoint, so a clip refused at one is refused at the other with the
    same machine-readable reason; ``section`` names the params section the limits come from.
    """
    pixels = p.width * p.height
    if pixels > max_pixels:
        return "too_large", (
            f"{p.width}x{p.height} ({pixels / 1e6:.1f} MP) is above {section}.max_pixels "
            f"({max_pixels / 1e6:.1f} MP); downscale it (e.g. to 1080p) or raise the limit"
        )
    if min(p.width, p.height) < min_side:
        return "too_small", f"{p.width}x{p.height}: the shorter side is below {section}.min_side ({min_side})"
    if min_decode_ratio is not None and p.declared_frames and p.decode_ratio < min_decode_ratio:
        return "truncated", (
            f"only {p.decoded_frames} of {p.declared_frames} declared frames decode ({p.decode_ratio:.0%}): "
            "the file is cut short or damaged"
        )
    if p.decoded_frames < min_frames:
        return "too_few_frames", f"{p.decoded_frames} frame(s) decode; {section}.min_frames is {min_frames}"
    if not p.duration_s >= min_duration_s:
        return "too_short", f"{p.duration_s:.2f} s is below {section}.min_duration_s ({min_duration_s:g} s)"
    if p.duration_s > max_duration_s:
        return "too_long", f"{p.duration_s:.0f} s is above {section}.max_duration_s ({max_duration_s:g} s)"
    return "", ""


def audio_problem(
    p: Probe,
    *,
    section: str,
    min_audio_ratio: float,
    min_loudness_lufs: float,
    max_clipped_share: float,
) -> tuple[str, str]:
    """The first audio limit a decodable video fails, as (reason, detail); ('', '') when its voice is usable.

    Only for batches that need the voice: a video-only batch never asks. ``section`` names the
    params section the limits come from.
    """
    if not p.has_audio:
        return "no_audio", (
            f"the video has no audio stream but {section}.require_audio is true: record with the microphone on, "
            f"or set {section}.require_audio: false for a video-only batch"
        )
    if p.audio_error:
        return "audio_unreadable", (
            f"the audio stream cannot be decoded ({p.audio_error}): export the video again with AAC audio"
        )
    ratio = p.audio_duration_s / p.duration_s if p.duration_s > 0 else math.nan
    if ratio < min_audio_ratio:
        return "audio_too_short", (
            f"{p.audio_duration_s:.2f} s of audio in {p.duration_s:.2f} s of video (ratio {ratio:.2f}, "
            f"{section}.min_audio_ratio {min_audio_ratio:g}): the sound stopped early; copy or record it again"
        )
    if not p.audio_loudness_lufs >= min_loudness_lufs:  # -inf (nothing above the -70 LUFS gate) included
        found = (
            f"{p.audio_loudness_lufs:.1f} LUFS"
            if math.isfinite(p.audio_loudness_lufs)
            else "silence (no 400 ms block above -70 LUFS)"
        )
        return "audio_silent", (
            f"integrated loudness is {found}, below {section}.min_loudness_lufs ({min_loudness_lufs:g} LUFS): "
            "check that the microphone is on, unmuted and near the speaker"
        )
    if p.audio_clipped_share > max_clipped_share:
        return "audio_clipped", (
            f"{p.audio_clipped_share:.2%} of the samples are at full scale (above {section}.max_clipped_share "
            f"{max_clipped_share:.2%}): the voice is distorted; record again with a lower input gain"
        )
    return "", ""


def probe(path: str | Path, max_pixels: int | None = None) -> Probe:
    """Probe ``path``. Never raises for bad content; frames larger than ``max_pixels`` are not decoded."""
    path = Path(path)
    try:
        size = path.stat().st_size
        if not path.is_file():
            return Probe(problem="not_a_video", detail="the path is a folder or a device, not a file")
        if size == 0:
            return Probe(
                sha256=hashlib.sha256(b"").hexdigest(), problem="empty_file", detail="the file is 0 bytes"
            )
        digest = sha256_file(path)
        with open(path, "rb") as f:
            head = f.read(64)
    except PermissionError:
        return Probe(problem="unreadable_file", detail="permission denied when reading the file")
    except OSError as e:
        return Probe(problem="unreadable_file", detail=f"cannot read the file ({e.strerror or e})")
    base = Probe(size_bytes=size, sha256=digest)

    image = _image_kind(head)
    if image:
        return _with(base, problem="image_not_video", detail=f"a still {image} image, not a video")
    try:
        # Old cameras write Latin-1 metadata tags; replace undecodable bytes instead of failing.
        container = av.open(str(path), metadata_errors="replace")
    except av.error.FFmpegError as e:
        return _with(base, **_unopenable(path, head, e))
    with container:
        try:
            return _probe_container(container, base, max_pixels)
        except Exception as e:  # one odd file must never stop a batch of hundreds
            # The traceback goes to DEBUG only: FFmpeg messages can contain the (identifying) file name.
            log.warning("probe: unexpected %s on the file with sha256 %s", type(e).__name__, digest[:12])
            log.debug("probe traceback", exc_info=True)
            return _with(
                base, problem="unreadable_codec", detail=f"decoding failed unexpectedly ({type(e).__name__})"
            )


def _with(p: Probe, **changes) -> Probe:
    return Probe(**{**asdict(p), **changes})


def _image_kind(head: bytes) -> str:
    for magic, kind in _IMAGE_MAGIC.items():
        if head.startswith(magic):
            return kind
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "WebP"
    if head[4:8] == b"ftyp":
        return _IMAGE_BRANDS.get(head[8:12], "")
    return ""


def _mp4_has_moov(path: Path) -> bool:
    """Walk the top-level ISO-BMFF boxes; phones write the index (moov) last, so a cut file lacks it."""
    size = path.stat().st_size
    with open(path, "rb") as f:
        offset = 0
        while offset + 8 <= size:
            f.seek(offset)
            header = f.read(16)
            box_size, kind = int.from_bytes(header[:4], "big"), header[4:8]
            if kind == b"moov":
                return True
            if box_size == 1 and len(header) == 16:  # 64-bit size follows the type
                box_size = int.from_bytes(header[8:16], "big")
            if box_size < 8:  # 0 = "to the end of file"; smaller is corrupt
                return False
            offset += box_size
    return False


def _unopenable(path: Path, head: bytes, error: Exception) -> dict:
    if head[4:8] == b"ftyp":
        if not _mp4_has_moov(path):
            return {
                "problem": "truncated",
                "detail": "an mp4/mov without its index (moov box): the recording was interrupted "
                "or the copy is incomplete; copy the original file again",
            }
        return {
            "problem": "truncated",
            "detail": f"an mp4/mov that FFmpeg cannot open ({_ffmpeg_msg(error)})",
        }
    looks = "text" if _looks_like_text(head) else "unknown binary data"
    return {"problem": "not_a_video", "detail": f"not a media file FFmpeg can read (starts with {looks})"}


def _looks_like_text(head: bytes) -> bool:
    try:
        head.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return all(b >= 32 or b in b"\t\r\n" for b in head)


def _ffmpeg_msg(error: Exception) -> str:
    # FFmpeg errors end with the file name; keep only the message (file names can identify patients).
    return getattr(error, "strerror", None) or type(error).__name__


def _probe_container(container: av.container.InputContainer, base: Probe, max_pixels: int | None) -> Probe:
    fmt = container.format.name
    has_audio = len(container.streams.audio) > 0
    base = _with(base, container=fmt, has_audio=has_audio)
    audio = _AudioTrack(container.streams.audio[0]) if has_audio else None
    if audio:
        base = _with(base, **audio.header())
    if not container.streams.video:
        if has_audio:
            return _with(base, problem="audio_only", detail="audio only: the file has no video stream")
        return _with(base, problem="not_a_video", detail="the file has no video stream")
    stream = container.streams.video[0]
    if any(part in fmt for part in _IMAGE_FORMATS):
        return _with(base, problem="image_not_video", detail=f"a still image ({fmt}), not a video")
    if fmt in _TEXT_FORMATS:  # FFmpeg renders text files as ANSI-art "video": not a recording
        return _with(base, problem="not_a_video", detail="a text file, not a video")
    ctx = stream.codec_context
    if ctx is None:
        return _with(
            base,
            problem="unreadable_codec",
            detail="the video codec is unknown to FFmpeg (e.g. camera RAW); export the video as H.264/HEVC",
        )
    nominal = _fps(stream.base_rate) or _fps(stream.guessed_rate) or _fps(stream.average_rate)
    declared = stream.frames or _estimate_frames(stream, container)
    base = _with(
        base,
        codec=ctx.name,
        width=ctx.width,
        height=ctx.height,
        display_width=ctx.width,
        display_height=ctx.height,
        nominal_fps=nominal,
        declared_frames=declared,
    )
    if max_pixels and ctx.width * ctx.height > max_pixels:
        return base  # too large: ingest quarantines it from the header alone, without decoding
    return _decode(container, stream, base, audio)


def _fps(rate) -> float:
    return float(rate) if rate else 0.0


def _estimate_frames(stream, container) -> int:
    # Matroska/WebM keep no frame count; estimate it so a truncated file still shows a low decode ratio.
    seconds = (
        float(stream.duration * stream.time_base) if stream.duration else (container.duration or 0) / 1e6
    )
    return round(seconds * _fps(stream.average_rate)) if seconds > 0 else 0


def _decode(container, stream, base: Probe, audio: _AudioTrack | None) -> Probe:
    stream.thread_type = "AUTO"
    times: list[float] = []
    rotation, errors, packets, demux_error = 0, 0, 0, ""
    # One pass over the file for both streams: the audio packets are read anyway, interleaved.
    streams = (stream, audio.stream) if audio else (stream,)
    try:
        for packet in container.demux(*streams):
            if audio and packet.stream.index == audio.stream.index:
                audio.decode(packet)
                continue
            packets += packet.size > 0
            try:
                frames = packet.decode()
            except av.error.FFmpegError:
                errors += 1  # a damaged packet; later ones may still decode
                continue
            for frame in frames:
                if not times:
                    rotation = int(round(frame.rotation or 0))
                times.append(frame.time if frame.time is not None else math.nan)
    except av.error.FFmpegError as e:  # the container itself breaks off (cut mid-packet)
        demux_error = _ffmpeg_msg(e)
    if audio:
        base = _with(base, **audio.facts())
    n = len(times)
    timing = _timing(times, base.nominal_fps)
    swap = abs(rotation) % 180 == 90
    result = _with(
        base,
        rotation=_norm_angle(rotation),
        display_width=base.height if swap else base.width,
        display_height=base.width if swap else base.height,
        decoded_frames=n,
        decode_errors=errors,
        decode_ratio=n / base.declared_frames if base.declared_frames else math.nan,
        **timing,
    )
    if n == 0:
        if packets == 0:
            return _with(result, problem="truncated", detail="the video stream holds no data")
        return _with(
            result,
            problem="unreadable_codec",
            detail=f"the {base.codec} decoder produced no frame from {packets} packets "
            "(corrupt stream or an unsupported profile)",
        )
    if demux_error:
        result = _with(result, detail=f"reading stopped early: {demux_error}")
    return result


def _norm_angle(deg: int) -> int:
    deg = deg % 360
    return deg - 360 if deg > 180 else deg


def _timing(times: list[float], nominal: float) -> dict:
    """Real frame rate, duration and variable-frame-rate flag from presentation times."""
    ts = sorted(t for t in times if not math.isnan(t))
    if len(ts) < 2 or ts[-1] <= ts[0]:
        frame = 1.0 / nominal if nominal else math.nan
        return {"real_fps": math.nan, "vfr": False, "duration_s": len(times) * frame if times else math.nan}
    gaps = [b - a for a, b in zip(ts, ts[1:], strict=False)]
    typical = statistics.median(gaps)
    real = (len(ts) - 1) / (ts[-1] - ts[0])
    # Variable: some interval is off by more than a quarter frame (timestamp rounding stays far below that),
    # or the measured rate disagrees with the declared one (dropped frames, phone VFR).
    uneven = typical > 0 and max(abs(g - typical) for g in gaps) > 0.25 * typical
    off_rate = bool(nominal) and abs(real - nominal) / nominal > 0.05
    return {"real_fps": real, "vfr": bool(uneven or off_rate), "duration_s": ts[-1] - ts[0] + typical}


class _AudioTrack:
    """Facts of one audio stream, gathered packet by packet while the video decodes."""

    def __init__(self, stream):
        self.stream = stream
        self.ctx = stream.codec_context
        self.meter: LoudnessMeter | None = None  # made at the first frame: the decoded rate and layout rule
        self.samples = self.clipped = self.packets = 0
        self.peak = 0.0
        self._pending: list[np.ndarray] = []  # decoded frames not yet measured
        self._pending_samples = 0
        self._planar = True

    def header(self) -> dict:
        if self.ctx is None:
            return {"audio_error": "the audio codec is unknown to FFmpeg"}
        return {
            "audio_codec": self.ctx.name,
            "audio_sample_rate": self.ctx.sample_rate or 0,
            "audio_channels": self.ctx.channels or 0,
        }

    def decode(self, packet) -> None:
        if self.ctx is None:
            return
        self.packets += packet.size > 0
        try:
            for frame in packet.decode():
                self._add(frame)
        except Exception:  # a damaged packet (later ones may decode); never a reason to lose the video
            log.debug("probe: an audio packet failed to decode", exc_info=True)

    def _add(self, frame) -> None:
        if self.meter is None:
            names = [channel.name for channel in frame.layout.channels]
            self.meter = LoudnessMeter(frame.sample_rate, channel_weights(names))
            self._planar = frame.format.is_planar
        elif frame.sample_rate != self.meter.rate or frame.layout.nb_channels != len(self.meter.weights):
            return  # the format changed mid-stream (rare): the first format is measured; the duration shows it
        self._pending.append(frame.to_ndarray())
        self._pending_samples += frame.samples
        if self._pending_samples >= self.meter.rate:
            self._measure()

    def _measure(self) -> None:
        """Meter the pending frames at once: a numpy or scipy call on one 1024-sample AAC frame costs about
        what it costs on a second of audio (metering frame by frame doubled a 4 s clip's probe time)."""
        if not self._pending:
            return
        x = _full_scale(np.concatenate(self._pending, axis=1), len(self.meter.weights), self._planar)
        self._pending, self._pending_samples = [], 0
        self.meter.add(x)
        self.samples += x.shape[1]
        magnitude = np.abs(x)
        self.peak = max(self.peak, float(magnitude.max(initial=0.0)))
        self.clipped += int(np.count_nonzero(magnitude >= CLIP_LEVEL))

    def facts(self) -> dict:
        if self.ctx is None:
            return {}
        self._measure()
        if self.meter is None or self.samples == 0:
            if self.packets == 0:
                return {"audio_error": "the audio stream holds no data"}
            return {
                "audio_error": f"the {self.ctx.name} decoder produced no sample from {self.packets} packets"
            }
        channels = len(self.meter.weights)
        # Rounded so that the table's bytes do not depend on the CPU's float rounding (SIMD decoders).
        return {
            "audio_sample_rate": self.meter.rate,
            "audio_channels": channels,
            "audio_duration_s": round(self.samples / self.meter.rate, 6),
            "audio_loudness_lufs": _round_db(self.meter.integrated()),
            "audio_peak_dbfs": _round_db(20 * math.log10(self.peak) if self.peak > 0 else -math.inf),
            "audio_clipped_share": round(self.clipped / (self.samples * channels), 6),
        }


def _full_scale(x: np.ndarray, channels: int, planar: bool) -> np.ndarray:
    """Decoded samples (PyAV's ``to_ndarray`` layout) as float64 ``(channels, samples)``, full scale 1.0."""
    if not planar:  # interleaved: one row of c0 c1 c0 c1 ...
        x = x.reshape(-1, channels).T
    if x.dtype.kind == "u":  # 8-bit audio is unsigned around 128
        return (x.astype(np.float64) - 128.0) / 128.0
    if x.dtype.kind == "i":
        return x.astype(np.float64) / float(2 ** (8 * x.dtype.itemsize - 1))
    return x.astype(np.float64)


def _round_db(value: float) -> float:
    return round(value, 2) if math.isfinite(value) else value


def probe_many_worker(args: tuple[str, int | None]) -> tuple[str, Probe]:
    """Process-pool entry point: ``(path, max_pixels) -> (path, Probe)``."""
    path, max_pixels = args
    return path, probe(path, max_pixels)
