"""Tiny synthetic inputs for the facetubes tests: moving face videos made from matplotlib's sample photo.

No media is committed: every clip is rendered into the test's tmp folder in well under a second.
"""

from __future__ import annotations

import hashlib
import math
import struct
from collections.abc import Iterator
from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np
import pandas as pd

from hypomimia.data.video import write_mp4
from hypomimia.doctor import sample_face_rgb

BACKGROUND = (40, 60, 80)
# What mediapipe/TFLite print natively (and import mediapipe prints) when nothing silences them;
# written here, not taken from hypomimia.logs.NATIVE_NOISE, so a gap in that filter fails the tests
NATIVE_NOISE = ("W0000", "inference_feedback_manager", "GetPrototype", "absl::InitializeLog", "XNNPACK")


def native_noise(output: str) -> list[str]:
    """The lines of a command's output that are mediapipe's native log noise (should be none)."""
    return [line for line in output.splitlines() if any(n in line for n in NATIVE_NOISE)]


def place_face(
    canvas_wh: tuple[int, int], face: np.ndarray, centre, height: float, roll_deg: float
) -> np.ndarray:
    """Affine that puts ``face`` (a photo) at ``centre``, ``height`` pixels tall, rolled by ``roll_deg``."""
    scale = height / face.shape[0]
    m = cv2.getRotationMatrix2D((face.shape[1] / 2, face.shape[0] / 2), roll_deg, scale)
    m[:, 2] += [centre[0] - face.shape[1] / 2, centre[1] - face.shape[0] / 2]
    return m


def moving_face(
    n: int,
    size: tuple[int, int] = (256, 256),
    roll_deg: float = 0.0,
    fps: float = 25.0,
    second_face: bool = False,
) -> Iterator[np.ndarray]:
    """Frames of the sample face drifting slowly (and a smaller second face on the left if asked)."""
    face = sample_face_rgb()
    w, h = size
    for i in range(n):
        t = i / fps
        big = np.full((h, w, 3), BACKGROUND, np.uint8)
        cx = w * (0.62 if second_face else 0.5) + 0.04 * w * math.sin(2 * math.pi * t / 3)
        m = place_face(size, face, (cx, h * 0.5), h * (0.8 if second_face else 0.9), roll_deg)
        frame = cv2.warpAffine(face, m, (w, h), borderMode=cv2.BORDER_TRANSPARENT, dst=big)
        if second_face:
            m2 = place_face(size, face, (w * 0.17, h * 0.45), h * 0.45, 0.0)
            frame = cv2.warpAffine(face, m2, (w, h), borderMode=cv2.BORDER_TRANSPARENT, dst=frame)
        yield frame


def write_clip(path: Path, frames, fps: int = 25) -> Path:
    return write_mp4(path, frames, fps=fps, crf=23)


def write_vfr(path: Path, frames: list[np.ndarray], times_s: list[float]) -> Path:
    """An H.264 mp4 whose frames sit at the given (uneven) presentation times."""
    with av.open(str(path), mode="w", format="mp4") as out:
        stream = out.add_stream("libx264", rate=30, options={"crf": "23", "preset": "veryfast"})
        stream.width, stream.height, stream.pix_fmt = frames[0].shape[1], frames[0].shape[0], "yuv420p"
        stream.codec_context.time_base = Fraction(1, 1000)
        for rgb, t in zip(frames, times_s, strict=True):
            vf = av.VideoFrame.from_ndarray(rgb, format="rgb24")
            vf.pts, vf.time_base = round(t * 1000), Fraction(1, 1000)
            for p in stream.encode(vf):
                out.mux(p)
        for p in stream.encode():
            out.mux(p)
    return path


def set_display_rotation(path: Path, clockwise_deg: int) -> Path:
    """Write a display matrix into the mp4's track header, as phones do (players rotate by it)."""
    c, s = round(math.cos(math.radians(clockwise_deg))), round(math.sin(math.radians(clockwise_deg)))
    one = 1 << 16
    matrix = (c * one, s * one, 0, -s * one, c * one, 0, 0, 0, 1 << 30)
    data = bytearray(path.read_bytes())
    i = data.find(b"tkhd")
    version = data[i + 4]
    # tkhd: version/flags, times, track id, reserved, duration, reserved(8), layer, group, volume, reserved
    off = i + 4 + 4 + (28 if version == 1 else 16) + 4 + 8 + 8
    data[off : off + 36] = struct.pack(">9i", *matrix)
    path.write_bytes(bytes(data))
    return path


def make_ingested(ingest_dir: Path, videos: dict[str, Path]) -> Path:
    """A minimal ingested.parquet (docs/data-format.md §2 columns the facetubes stage reads)."""
    ingest_dir.mkdir(parents=True, exist_ok=True)
    rows = []
    for i, (video_id, path) in enumerate(sorted(videos.items())):
        rows.append(
            {
                "video_id": video_id,
                "subject_id": f"s{i // 2}",
                "label": "pd" if i % 2 else "control",
                "updrs_3_2": 2 if i % 2 else 0,
                "hoehn_yahr": 2.0 if i % 2 else None,
                "task": "rest",
                "sha256": hashlib.sha256(Path(path).read_bytes()).hexdigest(),
                "status": "accepted",
                "reason": "",
                "abs_path": str(Path(path).resolve()),
                "rotation": 0,
                "nominal_fps": 25.0,
            }
        )
    pd.DataFrame(rows).to_parquet(ingest_dir / "ingested.parquet", index=False)
    return ingest_dir
