"""A model-free facial expressivity index of a face tube: the known-answer score of patient courses.

Hypomimia is reduced facial movement. The index measures it directly from the tube's landmarks:
mouth width and opening and the eye aspect ratio, each in units of the inter-ocular distance (so
head size and distance to the camera cancel), and their robust range (95th - 5th percentile) over
the tracked frames, summed. ``hypomimia_index = -log(expressivity)`` rises as the face moves less.

It is what ``hypomimia monitor patients --score expressivity`` follows when no trained model is at
hand (tests, the known-answer benchmark); with ``--model`` the course follows the model's
calibrated P(PD) instead.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from hypomimia.faces.landmarks import eye_aspect_ratio, inter_ocular, mouth_opening, mouth_width


def expressivity(landmarks: np.ndarray, valid: np.ndarray) -> float:
    """Sum of robust ranges of mouth width, mouth opening and eye aspect ratio (IOD units)."""
    lm = np.asarray(landmarks, float)[np.asarray(valid, bool)]
    if len(lm) < 4:
        return float("nan")
    iod = inter_ocular(lm)
    signals = [mouth_width(lm) / iod, mouth_opening(lm) / iod, eye_aspect_ratio(lm)]
    return float(sum(np.subtract(*np.percentile(s, [95, 5])) for s in signals))


def hypomimia_index(tube: Path) -> float:
    with np.load(tube) as z:
        e = expressivity(z["landmarks"], z["valid"])
    return float(-np.log(max(e, 1e-6))) if np.isfinite(e) else float("nan")
