"""A camera change applied after rendering: the known answer for drift monitoring.

Re-encodes a rendered phantom video as a different camera or setting would have recorded it:
defocus blur, darker lighting, a lower resolution, heavier compression, or any mix. The render
itself is untouched (same faces, same movements), so a drift report that fires on the changed
window has seen the camera, not the people.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from hypomimia.data.probe import sha256_file
from hypomimia.data.video import AudioTrack, iter_frames, write_mp4


@dataclass(frozen=True)
class CameraChange:
    blur_sigma: float = 0.0  # Gaussian defocus, pixels (0 = none)
    brightness: float = 1.0  # gain on every pixel (0.55 = a much darker room)
    scale: float = 1.0  # frame side factor (0.6: 320 px -> 192 px); even sides for H.264
    crf: int | None = None  # x264 CRF of the re-encode (None: the phantom's own crf)

    def apply(self, rgb: np.ndarray) -> np.ndarray:
        out = rgb
        if self.blur_sigma > 0:
            out = cv2.GaussianBlur(out, (0, 0), self.blur_sigma)
        if self.brightness != 1.0:
            out = np.clip(out.astype(np.float32) * self.brightness, 0, 255).astype(np.uint8)
        if self.scale != 1.0:
            h, w = out.shape[:2]
            size = (max(2, round(w * self.scale / 2) * 2), max(2, round(h * self.scale / 2) * 2))
            out = cv2.resize(out, size, interpolation=cv2.INTER_AREA)
        return out


# The shift types of the drift benchmark and the demo (docs/monitoring.md).
CHANGES: dict[str, CameraChange] = {
    "blur": CameraChange(blur_sigma=2.5),
    "dark": CameraChange(brightness=0.55),
    "lowres": CameraChange(scale=0.5),
    "compression": CameraChange(crf=40),
    "camera": CameraChange(blur_sigma=1.5, brightness=0.7, scale=0.6, crf=34),  # all at once, milder
}


@dataclass(frozen=True)
class Occlusion:
    """A flat patch painted over a face region in every frame (sunglasses over the eyes, a mask or a
    hand over the mouth): the known answer for the visibility metrics. The region is found by the
    facetubes tracker on the unchanged video (its tube landmarks mapped back to the frame), and the
    patch is the region's landmark hull grown by ``grow`` about its centre."""

    region: str  # eyes | nose | mouth (faces.landmarks.REGIONS)
    colour: tuple[int, int, int] = (40, 40, 40)
    grow: float = 1.6


OCCLUSIONS: dict[str, Occlusion] = {
    "eyes": Occlusion("eyes", (30, 30, 35), 1.8),  # sunglasses
    "mouth": Occlusion("mouth", (170, 200, 225), 1.5),  # a light-blue mask patch
}


def occlude_video(
    src: Path, dst: Path, occlusion: Occlusion, fps: int, crf: int = 20, tubes_cfg=None
) -> Path:
    """Write ``dst``: ``src`` with ``occlusion`` painted over its region in every frame, re-encoded."""
    from hypomimia.config.facetubes import FacetubesConfig
    from hypomimia.faces.landmarks import REGIONS, _split_sides
    from hypomimia.faces.tube import extract_tube

    tube = extract_tube(src, tubes_cfg or FacetubesConfig(workers=1), workers=1)
    parts = _split_sides(occlusion.region, REGIONS[occlusion.region])

    def paint(i: int, rgb: np.ndarray) -> np.ndarray:
        j = min(i, len(tube.landmarks) - 1)
        a = np.vstack([tube.crop[j], [0.0, 0.0, 1.0]])  # full frame -> tube; invert to go back
        back = np.linalg.inv(a)[:2]
        lm = tube.landmarks[j] @ back[:, :2].T + back[:, 2]
        out = rgb.copy()
        for part in parts:
            pts = lm[list(part)]
            centre = pts.mean(0)
            hull = cv2.convexHull(np.round(centre + (pts - centre) * occlusion.grow).astype(np.int32))
            cv2.fillConvexPoly(out, hull, occlusion.colour)
        return out

    Path(dst).parent.mkdir(parents=True, exist_ok=True)
    frames = (paint(i, f.rgb) for i, f in enumerate(iter_frames(src, threads=False)))
    return write_mp4(dst, frames, fps, crf, same_sound(src))


def apply_to_video(src: Path, dst: Path, change: CameraChange, fps: int, crf: int = 20) -> Path:
    """Write ``dst``: ``src`` decoded, changed frame by frame, re-encoded (deterministic for the same input)."""
    Path(dst).parent.mkdir(parents=True, exist_ok=True)
    frames = (change.apply(f.rgb) for f in iter_frames(src, threads=False))
    return write_mp4(dst, frames, fps, change.crf if change.crf is not None else crf, same_sound(src))


def same_sound(src: Path) -> AudioTrack | None:
    """``src``'s sound track, to carry over when only the picture changes: another camera (or a mask)
    does not change the microphone, and a clip that lost its sound would be an audio finding of its own
    (the monitor's ``audio_share``), not the camera's. None for a silent clip."""
    import av

    from hypomimia.phantom.microphone import read_track

    with av.open(str(src)) as container:
        if not container.streams.audio:
            return None
    samples, rate, bitrate = read_track(Path(src))
    return AudioTrack(
        np.round(np.clip(samples, -1.0, 32767 / 32768) * 32768.0).astype(np.int16), rate, bitrate
    )


def apply_to_folder(
    src_dir: Path, dst_dir: Path, change: CameraChange | Occlusion, fps: int = 25, crf: int = 20
) -> Path:
    """A phantom folder (manifest.csv + videos/) seen through another camera (or with a region
    occluded); the manifest is copied with the new files' hashes. Returns the new manifest."""
    import csv

    src_dir, dst_dir = Path(src_dir), Path(dst_dir)
    rows = list(csv.DictReader((src_dir / "manifest.csv").open(encoding="utf-8")))
    for row in rows:
        if isinstance(change, Occlusion):
            out = occlude_video(src_dir / row["path"], dst_dir / row["path"], change, fps, crf)
        else:
            out = apply_to_video(src_dir / row["path"], dst_dir / row["path"], change, fps, crf)
        if "sha256" in row:
            row["sha256"] = sha256_file(out)
        if "camera" in row:
            row["camera"] = f"{row['camera']}-changed"
    with (dst_dir / "manifest.csv").open("w", encoding="utf-8", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]) if rows else ["video_id"], lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
    return dst_dir / "manifest.csv"
