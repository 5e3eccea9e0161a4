"""A model-free facial expressivity index of a face tube: the known-answer score of patient courses.

Hypomimia is reduced facial movement. The index measures it directly from the tube's landmarks:
the mouth width in units of the inter-ocular distance (so head size and distance to the camera
cancel), and its robust range (95th - 5th percentile) over the tracked frames: how far the smile
spreads. ``hypomimia_index = -log(expressivity)`` rises as the face moves less. Mouth opening and
the eye aspect ratio were tried too: on the phantom their clip-to-clip spread within one session
was 3-10x larger relative to the 0 -> 3 change, so they would only add noise.

It is what ``hypomimia monitor patients --score expressivity`` follows when no trained model is at
hand (tests, the known-answer benchmark); with ``--model`` the course follows the model's
calibrated P(PD) instead.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from hypomimia.faces.landmarks import inter_ocular, mouth_width


def expressivity(landmarks: np.ndarray, valid: np.ndarray) -> float:
    """Robust range of the mouth width (IOD units) over the tracked frames."""
    lm = np.asarray(landmarks, float)[np.asarray(valid, bool)]
    if len(lm) < 4:
        return float("nan")
    iod = inter_ocular(lm)
    seen = iod > 0  # frames without landmark geometry (all zeros) carry no expression
    if seen.sum() < 4:
        return float("nan")
    return float(np.subtract(*np.percentile(mouth_width(lm[seen]) / iod[seen], [95, 5])))


def hypomimia_index(tube: Path) -> float:
    with np.load(tube) as z:
        e = expressivity(z["landmarks"], z["valid"])
    return float(-np.log(max(e, 1e-6))) if np.isfinite(e) else float("nan")
