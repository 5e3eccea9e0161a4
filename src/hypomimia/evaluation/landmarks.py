"""Landmark baselines: hand-made facial features from a face tube's ``landmarks``, one classifier.

No second face extraction: the tubes already hold FaceMesh landmarks ``T x 478 x 2`` in tube pixels
(docs/data-format.md). Each frame is normalised (centred on the eye midpoint, scaled by the
inter-ocular distance), so features compare across faces and crops.

* static: the normalised landmarks averaged over the tube -- the face's configuration, no time;
* dynamic (facial-motion literature, e.g. Bandini 2017, Novotny 2022): landmark speeds per region,
  expression range (5th-95th percentile spread of mouth width, mouth opening, eye aspect ratio,
  brow height), blink rate from eye-aspect-ratio dips, and the motion's jerkiness;
* trajectory: dynamic plus the *timing* of the movements, which hypomimia slows (bradykinesia of the
  face): speed relative to amplitude per region, the spectral centroid and direction reversals of each
  expression signal, median speeds and blink duration. The I3D recipe's landmark stream uses these
  (hypomimia.models.fusion); the baseline row shows them alone.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from hypomimia.errors import UserError
from hypomimia.faces import landmarks as geo

KINDS = ("landmark_static", "landmark_dynamic", "landmark_trajectory")


def normalised(lm: np.ndarray, valid: np.ndarray | None = None) -> np.ndarray:
    """Landmarks of valid frames, centred on the eye midpoint and in units of the inter-ocular distance."""
    lm = np.asarray(lm, np.float64)[..., :2]
    if valid is not None and np.asarray(valid).any():
        lm = lm[np.asarray(valid, bool)]
    right, left = geo.eye_centres(lm)
    centre = (right + left) / 2
    scale = np.maximum(np.linalg.norm(left - right, axis=-1), 1e-6)
    return (lm - centre[:, None, :]) / scale[:, None, None]


def static_features(lm: np.ndarray) -> np.ndarray:
    """The mean normalised configuration (478 x 2 numbers)."""
    return lm.mean(axis=0).ravel()


def _spread(x: np.ndarray) -> float:
    lo, hi = np.percentile(x, [5, 95])
    return float(hi - lo)


def blink_rate(ear: np.ndarray, fps: float, threshold: float) -> float:
    """Blinks per minute: entries into 'EAR below ``threshold`` x the tube's median'."""
    closed = ear < threshold * np.median(ear)
    onsets = int(np.sum(closed[1:] & ~closed[:-1]) + int(closed[0]))
    minutes = len(ear) / fps / 60.0
    return onsets / minutes if minutes > 0 else 0.0


def dynamic_features(lm: np.ndarray, fps: float, blink_threshold: float = 0.7) -> dict[str, float]:
    """Named motion features of one tube (normalised landmarks ``T x 478 x 2``)."""
    out: dict[str, float] = {}
    step = np.linalg.norm(np.diff(lm, axis=0), axis=-1) * fps if len(lm) > 1 else np.zeros((1, lm.shape[1]))
    for name, idx in geo.REGIONS.items():
        speed = step[:, list(idx)].mean(axis=1)
        out[f"speed_mean_{name}"] = float(speed.mean())
        out[f"speed_p95_{name}"] = float(np.percentile(speed, 95))
        accel = np.abs(np.diff(speed)) * fps if len(speed) > 1 else np.zeros(1)
        out[f"jerk_{name}"] = float(accel.mean())
    ear = geo.eye_aspect_ratio(lm)
    brow = lm[:, list(geo.LEFT_BROW + geo.RIGHT_BROW), 1].mean(axis=1)
    for name, series in {
        "mouth_width": geo.mouth_width(lm),
        "mouth_opening": geo.mouth_opening(lm),
        "eye_aspect_ratio": ear,
        "brow_height": brow,
    }.items():
        out[f"range_{name}"] = _spread(series)
        out[f"std_{name}"] = float(np.std(series))
    out["blink_rate_per_min"] = blink_rate(ear, fps, blink_threshold)
    return out


def _timing(x: np.ndarray, fps: float) -> tuple[float, float, float]:
    """(mean speed / range, spectral centroid in Hz, direction reversals per second) of one signal."""
    speed = np.abs(np.diff(x)) * fps if len(x) > 1 else np.zeros(1)
    centred = x - x.mean()
    power = np.abs(np.fft.rfft(centred * np.hanning(len(x)))) ** 2
    freq = np.fft.rfftfreq(len(x), 1.0 / fps)
    centroid = float((freq[1:] * power[1:]).sum() / (power[1:].sum() + 1e-12))
    velocity = np.convolve(np.diff(x), np.ones(3) / 3, mode="same") if len(x) > 3 else np.zeros(2)
    reversals = float(np.sum(np.sign(velocity[1:]) != np.sign(velocity[:-1])) / (len(x) / fps))
    return float(speed.mean() / (_spread(x) + 1e-9)), centroid, reversals


def trajectory_features(lm: np.ndarray, fps: float, blink_threshold: float = 0.7) -> dict[str, float]:
    """:func:`dynamic_features` plus how the movements are timed (normalised landmarks ``T x 478 x 2``)."""
    out = dynamic_features(lm, fps, blink_threshold)
    ear = geo.eye_aspect_ratio(lm)
    brow = lm[:, list(geo.LEFT_BROW + geo.RIGHT_BROW), 1].mean(axis=1)
    signals = {"mouth_width": geo.mouth_width(lm), "mouth_opening": geo.mouth_opening(lm),
               "eye_aspect_ratio": ear, "brow_height": brow}  # fmt: skip
    for name, series in signals.items():
        ratio, centroid, reversals = _timing(series, fps)
        out[f"speed_over_range_{name}"] = ratio
        out[f"centroid_hz_{name}"] = centroid
        out[f"reversals_per_s_{name}"] = reversals
    closed = ear < blink_threshold * np.median(ear)
    blinks = int(np.sum(closed[1:] & ~closed[:-1]) + int(closed[0]))
    out["blink_duration_s"] = float(closed.sum() / max(blinks, 1) / fps)
    step = np.linalg.norm(np.diff(lm, axis=0), axis=-1) * fps if len(lm) > 1 else np.zeros((1, lm.shape[1]))
    for name, idx in geo.REGIONS.items():
        speed = step[:, list(idx)].mean(axis=1)
        region = lm[:, list(idx)]
        amplitude = float(np.linalg.norm(region - region.mean(axis=0), axis=-1).mean())
        out[f"speed_over_amplitude_{name}"] = float(speed.mean() / (amplitude + 1e-9))
        out[f"speed_p50_{name}"] = float(np.median(speed))
    return out


def load_landmarks(tube: Path) -> tuple[np.ndarray, np.ndarray | None, float]:
    """(landmarks ``T x 478 x 2``, valid ``T`` or None, fps) of a tube file."""
    try:
        with np.load(tube) as z:
            return z["landmarks"], (z["valid"] if "valid" in z.files else None), float(z["fps"])
    except (OSError, KeyError, ValueError) as e:
        raise UserError(
            f"tube {Path(tube).name} has no readable landmarks ({type(e).__name__}: {e})",
            "re-run 'hypomimia facetubes' (tubes carry a landmarks array, docs/data-format.md)",
        ) from None


def tube_features(tube: Path, kind: str, blink_threshold: float = 0.7) -> np.ndarray:
    """One feature vector from a tube file (``kind``: one of :data:`KINDS`)."""
    lm, valid, fps = load_landmarks(tube)
    norm = normalised(lm, valid)
    if len(norm) == 0:
        raise UserError(f"tube {tube.name} has no valid frame", "re-run 'hypomimia facetubes'")
    if kind == "landmark_static":
        return static_features(norm)
    if kind == "landmark_dynamic":
        return np.array(list(dynamic_features(norm, fps, blink_threshold).values()))
    if kind == "landmark_trajectory":
        return np.array(list(trajectory_features(norm, fps, blink_threshold).values()))
    raise ValueError(f"unknown landmark feature kind {kind!r}; one of {KINDS}")


def feature_names(kind: str) -> list[str]:
    if kind == "landmark_static":
        return [f"lm{i}_{ax}" for i in range(geo.N_LANDMARKS) for ax in "xy"]
    dummy = np.zeros((5, geo.N_LANDMARKS, 2))
    named = trajectory_features if kind == "landmark_trajectory" else dynamic_features
    return list(named(dummy, 25.0).keys())


def make_classifier(classifier: str, c: float, seed: int):
    """Standardised features -> L2 logistic regression or RBF SVM (with Platt probabilities)."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    from sklearn.svm import SVC

    if classifier == "svm":
        head = SVC(C=c, kernel="rbf", probability=True, random_state=seed)
    else:
        head = LogisticRegression(C=c, max_iter=5000)
    return make_pipeline(StandardScaler(), head)


def fit_predict(
    train: pd.DataFrame,
    test: pd.DataFrame,
    features: dict[str, np.ndarray],
    *,
    classifier: str,
    c: float,
    seed: int,
) -> pd.DataFrame:
    """Fit on ``train`` videos, predict ``test`` videos: a clip table (one 'clip' per video) with the margin."""
    x_train = np.stack([features[v] for v in train["video_id"]])
    x_test = np.stack([features[v] for v in test["video_id"]])
    model = make_classifier(classifier, c, seed).fit(x_train, train["label"].to_numpy(int))
    p = np.clip(model.predict_proba(x_test)[:, 1], 1e-6, 1 - 1e-6)
    return pd.DataFrame(
        {
            "clip": np.arange(len(test)),
            "video_id": test["video_id"].to_numpy(),
            "subject_id": test["subject_id"].astype(str).to_numpy(),
            "label": test["label"].to_numpy(int),
            "margin": np.log(p / (1 - p)),
        }
    )
