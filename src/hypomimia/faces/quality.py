"""Quality metrics of one face tube, used by validation (gates) and drift monitoring.

| metric | definition |
|---|---|
| face_found_ratio | tube frames with a tracked face / tube frames |
| face_size_mean | mean over tracked frames of sqrt(landmark-box area / frame area): 0.5 = the face box is a quarter of the frame |
| blur_mean | mean variance of the Laplacian of the grey tube frames (tracked frames); low = blurred |
| brightness_mean | mean grey level (0-255) of the tube frames (tracked frames) |
| yaw/pitch/roll_range | robust range (95th - 5th percentile, degrees) of the head pose over tracked frames |
| mean_frame_phash | 64-bit DCT perceptual hash (16 hex digits) of the tube's mean frame, for near-duplicate search |
| visibility_eyes/nose/mouth | median over tracked frames of the region's texture relative to the face's: mean gradient magnitude inside the region's landmark hull / mean inside the face oval. Eyes, nostrils and lips are the most textured parts of a face (> 1); a hand, a mask or sunglasses over the region leaves a flat patch (towards 0) |

Head pose is a geometric estimate from the mesh's own 3D landmarks (MediaPipe's z is in the x pixel
scale): the face's x-axis is the line between the outer eye corners, its vertical axis runs from chin to
forehead. Yaw is the x-axis' tilt out of the image plane, pitch the vertical axis' tilt, roll the eye
line's angle in the image. Only ranges are reported, so the constant offset of a neutral face cancels.
"""

from __future__ import annotations

import cv2
import numpy as np

from hypomimia.faces.landmarks import CHIN, FOREHEAD, LEFT_EYE_OUTER, RIGHT_EYE_OUTER, region_masks

VISIBILITY_REGIONS = ("eyes", "nose", "mouth")
VISIBILITY_METRICS = tuple(f"visibility_{r}" for r in VISIBILITY_REGIONS)
VISIBILITY_STRIDE = 2  # every 2nd tracked frame: the median barely moves, the cost halves


def head_pose_deg(lm3d: np.ndarray) -> np.ndarray:
    """(yaw, pitch, roll) in degrees per frame from landmarks ``(T, 478, 3)``."""
    x_axis = lm3d[:, LEFT_EYE_OUTER] - lm3d[:, RIGHT_EYE_OUTER]
    up = lm3d[:, FOREHEAD] - lm3d[:, CHIN]
    x_axis = x_axis / np.linalg.norm(x_axis, axis=-1, keepdims=True)
    # make the vertical axis orthogonal to the eye line (Gram-Schmidt)
    up = up - (up * x_axis).sum(-1, keepdims=True) * x_axis
    up = up / np.maximum(np.linalg.norm(up, axis=-1, keepdims=True), 1e-9)
    yaw = np.degrees(np.arcsin(np.clip(x_axis[:, 2], -1, 1)))
    pitch = np.degrees(np.arcsin(np.clip(up[:, 2], -1, 1)))
    roll = np.degrees(np.arctan2(x_axis[:, 1], x_axis[:, 0]))
    return np.stack([yaw, pitch, roll], axis=-1)


def robust_range(x: np.ndarray) -> float:
    if len(x) == 0:
        return float("nan")
    lo, hi = np.percentile(x, [5, 95])
    return float(hi - lo)


def blur(gray: np.ndarray) -> float:
    return float(cv2.Laplacian(gray, cv2.CV_64F).var())


def phash(gray: np.ndarray) -> str:
    """64-bit DCT perceptual hash as 16 hex digits (Zauner 2010): 32x32 DCT, 8x8 low band vs its median."""
    small = cv2.resize(gray.astype(np.float32), (32, 32), interpolation=cv2.INTER_AREA)
    low = cv2.dct(small)[:8, :8].flatten()
    bits = low > np.median(low[1:])  # the DC term would dominate the median
    return f"{int(''.join('1' if b else '0' for b in bits), 2):016x}"


def hamming(a: str, b: str) -> int:
    """Bits that differ between two hashes from :func:`phash`."""
    return (int(a, 16) ^ int(b, 16)).bit_count()


def tube_quality(
    frames: np.ndarray, valid: np.ndarray, lm3d: np.ndarray, frame_shape: tuple[int, int]
) -> dict[str, float | str]:
    """All metrics of the table above for one tube.

    ``frames`` is the tube ``T×S×S×3``, ``valid`` marks tracked frames, ``lm3d`` holds the raw
    full-frame landmarks ``T×478×3`` (rows of untracked frames are ignored), ``frame_shape`` is the
    source (height, width) after rotation.
    """
    n = len(frames)
    ok = np.asarray(valid, bool)
    grey = [cv2.cvtColor(f, cv2.COLOR_RGB2GRAY) for f in frames[ok]]
    mean_frame = frames.mean(0) if n else np.zeros((8, 8, 3))
    out: dict[str, float | str] = {
        "face_found_ratio": float(ok.mean()) if n else 0.0,
        "blur_mean": float(np.mean([blur(g) for g in grey])) if grey else float("nan"),
        "brightness_mean": float(np.mean([g.mean() for g in grey])) if grey else float("nan"),
        "mean_frame_phash": phash(cv2.cvtColor(mean_frame.astype(np.uint8), cv2.COLOR_RGB2GRAY)),
    }
    tracked = lm3d[ok]
    if len(tracked):
        h, w = frame_shape
        span = tracked[..., :2].max(1) - tracked[..., :2].min(1)
        out["face_size_mean"] = float(np.sqrt(span[:, 0] * span[:, 1] / (h * w)).mean())
        pose = head_pose_deg(tracked)
    else:
        out["face_size_mean"] = float("nan")
        pose = np.zeros((0, 3))
    for i, name in enumerate(("yaw_range", "pitch_range", "roll_range")):
        out[name] = robust_range(pose[:, i])
    return out


def region_visibility(frames: np.ndarray, landmarks: np.ndarray, valid: np.ndarray) -> dict[str, float]:
    """``visibility_<region>`` for eyes, nose and mouth (table above) from the tube's own frames and
    landmarks (tube pixels), so a cached tube yields the same numbers as a fresh one.

    A region hidden behind something flat (a patch, a hand, a mask) loses its edges while the rest
    of the face keeps them: the ratio drops. Frames without a tracked face are skipped; NaN when no
    frame has one."""
    ok = np.flatnonzero(np.asarray(valid, bool))[::VISIBILITY_STRIDE]
    ratios: dict[str, list[float]] = {r: [] for r in VISIBILITY_REGIONS}
    for i in ok:
        grey = cv2.cvtColor(frames[i], cv2.COLOR_RGB2GRAY).astype(np.float32)
        mag = cv2.magnitude(cv2.Sobel(grey, cv2.CV_32F, 1, 0), cv2.Sobel(grey, cv2.CV_32F, 0, 1))
        masks = region_masks(np.asarray(landmarks[i], float), grey.shape)
        face = np.zeros(grey.shape, bool)
        for m in masks.values():
            face |= m
        face_energy = float(mag[face].mean()) if face.any() else 0.0
        for r in VISIBILITY_REGIONS:
            m = masks[r]
            if m.any() and face_energy > 0:
                ratios[r].append(float(mag[m].mean()) / face_energy)
    return {f"visibility_{r}": float(np.median(v)) if v else float("nan") for r, v in ratios.items()}
