"""Facial geometry on MediaPipe FaceMesh's 478 landmarks (468 mesh + 10 iris), shared by every stage.

Index sets come from mediapipe 0.10.21's ``face_mesh_connections`` (copied here so that this
module imports without loading mediapipe). "Left"/"right" are the subject's own sides, as in
MediaPipe. Cheeks are not a MediaPipe set: they are hand-picked mid-cheek points over the
zygomatic area that AU6 (cheek raiser) moves.
"""

from __future__ import annotations

import numpy as np

N_LANDMARKS = 478

LIPS = (0, 13, 14, 17, 37, 39, 40, 61, 78, 80, 81, 82, 84, 87, 88, 91, 95, 146, 178, 181, 185, 191, 267, 269,
        270, 291, 308, 310, 311, 312, 314, 317, 318, 321, 324, 375, 402, 405, 409, 415)  # fmt: skip
LEFT_EYE = (249, 263, 362, 373, 374, 380, 381, 382, 384, 385, 386, 387, 388, 390, 398, 466)
RIGHT_EYE = (7, 33, 133, 144, 145, 153, 154, 155, 157, 158, 159, 160, 161, 163, 173, 246)
LEFT_BROW = (276, 282, 283, 285, 293, 295, 296, 300, 334, 336)
RIGHT_BROW = (46, 52, 53, 55, 63, 65, 66, 70, 105, 107)
NOSE = (1, 2, 4, 5, 6, 19, 45, 48, 64, 94, 97, 98, 115, 168, 195, 197, 220, 275, 278, 294, 326, 327, 344, 440)
LEFT_CHEEK = (266, 280, 330, 346, 347, 352, 355, 371, 411, 425)
RIGHT_CHEEK = (36, 50, 101, 117, 118, 123, 126, 142, 187, 205)
LEFT_IRIS = (473, 474, 475, 476, 477)  # 473 is the centre
RIGHT_IRIS = (468, 469, 470, 471, 472)  # 468 is the centre
# Face outline in drawing order, starting at the forehead top (10), clockwise in the image.
FACE_OVAL = (10, 338, 297, 332, 284, 251, 389, 356, 454, 323, 361, 288, 397, 365, 379, 378, 400, 377, 152, 148,
             176, 149, 150, 136, 172, 58, 132, 93, 234, 127, 162, 21, 54, 103, 67, 109)  # fmt: skip

# Named points used for alignment and simple measurements.
RIGHT_EYE_OUTER, RIGHT_EYE_INNER, LEFT_EYE_INNER, LEFT_EYE_OUTER = 33, 133, 362, 263
MOUTH_RIGHT, MOUTH_LEFT, UPPER_LIP_INNER, LOWER_LIP_INNER = 61, 291, 13, 14
NOSE_TIP, CHIN, FOREHEAD = 1, 152, 10
# Eye-aspect-ratio points (Soukupova & Cech 2016), p1..p6 per eye.
RIGHT_EYE_EAR = (33, 160, 158, 133, 153, 144)
LEFT_EYE_EAR = (362, 385, 387, 263, 373, 380)

REGIONS: dict[str, tuple[int, ...]] = {
    "eyes": LEFT_EYE + RIGHT_EYE + LEFT_IRIS + RIGHT_IRIS,
    "brows": LEFT_BROW + RIGHT_BROW,
    "nose": NOSE,
    "mouth": LIPS,
    "cheeks": LEFT_CHEEK + RIGHT_CHEEK,
}
"""Regions for attribution; everything else inside the face oval is "rest_of_face"."""


def eye_centres(lm: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(right, left) eye centres from landmarks ``(..., 478, 2+)``, as the mean of each eye's corners."""
    right = (lm[..., RIGHT_EYE_OUTER, :2] + lm[..., RIGHT_EYE_INNER, :2]) / 2
    left = (lm[..., LEFT_EYE_OUTER, :2] + lm[..., LEFT_EYE_INNER, :2]) / 2
    return right, left


def inter_ocular(lm: np.ndarray) -> np.ndarray:
    right, left = eye_centres(lm)
    return np.linalg.norm(left - right, axis=-1)


def eye_aspect_ratio(lm: np.ndarray) -> np.ndarray:
    """Mean eye aspect ratio of both eyes; drops towards 0 when the eyes close (blink)."""

    def ear(idx: tuple[int, ...]) -> np.ndarray:
        p = [lm[..., i, :2] for i in idx]
        vertical = np.linalg.norm(p[1] - p[5], axis=-1) + np.linalg.norm(p[2] - p[4], axis=-1)
        return vertical / (2.0 * np.linalg.norm(p[0] - p[3], axis=-1) + 1e-9)

    return (ear(RIGHT_EYE_EAR) + ear(LEFT_EYE_EAR)) / 2


def mouth_width(lm: np.ndarray) -> np.ndarray:
    return np.linalg.norm(lm[..., MOUTH_LEFT, :2] - lm[..., MOUTH_RIGHT, :2], axis=-1)


def mouth_opening(lm: np.ndarray) -> np.ndarray:
    return np.linalg.norm(lm[..., UPPER_LIP_INNER, :2] - lm[..., LOWER_LIP_INNER, :2], axis=-1)


def region_masks(lm: np.ndarray, shape: tuple[int, int]) -> dict[str, np.ndarray]:
    """Boolean masks ``H×W`` per region (convex hull of its landmarks) plus ``rest_of_face``.

    ``lm`` holds one frame's landmarks in pixel coordinates. Regions are made disjoint in the order
    of REGIONS; rest_of_face is the face oval minus all regions.
    """
    import cv2

    h, w = shape
    masks: dict[str, np.ndarray] = {}
    taken = np.zeros((h, w), bool)
    for name, idx in REGIONS.items():
        m = np.zeros((h, w), np.uint8)
        for part in _split_sides(name, idx):
            hull = cv2.convexHull(np.round(lm[list(part), :2]).astype(np.int32))
            cv2.fillConvexPoly(m, hull, 1)
        mb = m.astype(bool) & ~taken
        masks[name] = mb
        taken |= mb
    oval = np.zeros((h, w), np.uint8)
    cv2.fillPoly(oval, [np.round(lm[list(FACE_OVAL), :2]).astype(np.int32)], 1)
    masks["rest_of_face"] = oval.astype(bool) & ~taken
    return masks


def _split_sides(name: str, idx: tuple[int, ...]) -> list[tuple[int, ...]]:
    # Paired regions are filled per side, so the hull does not bridge the nose.
    sides = {
        "eyes": [LEFT_EYE + LEFT_IRIS, RIGHT_EYE + RIGHT_IRIS],
        "brows": [LEFT_BROW, RIGHT_BROW],
        "cheeks": [LEFT_CHEEK, RIGHT_CHEEK],
    }
    return sides.get(name, [idx])
