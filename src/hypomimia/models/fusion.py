"""The landmark-trajectory stream and its late fusion with the I3D's video stream (issue 24).

The face tubes carry FaceMesh's 478 landmarks per frame. Their motion alone (the dynamic-landmark
features of :mod:`hypomimia.evaluation.landmarks`: region speeds, expression ranges, blink rate,
jerkiness) separates the natural phantom's PD patients from controls about as well as the video
network does, and the two make different mistakes. So the shipped recipe has two streams, as
Carreira & Zisserman's two-stream I3D has RGB and flow:

* the **video stream**: the I3D's PD margin per clip;
* the **landmark stream**: a standardised L2 logistic regression on the tube's dynamic-landmark
  features, one margin per video, fitted on the training subjects after the network has trained.

:class:`LateFusion` puts both on one scale and adds them: each stream's margin is standardised by the
mean and SD of its margins on the validation fold (label-free, held-out), weighted, and the sum is
calibrated with one temperature fitted on the same validation fold. The fused margin replaces the
clip margin everywhere downstream (metrics, cross-validation, evaluate, the gate), so the model that
is evaluated is the model that is served. Both stream parameters travel inside ``model.pt``
(``extra["landmark_stream"]``, ``extra["fusion"]``): plain numbers, no pickled estimator.

The same feature code runs in training and at the endpoint (:meth:`LandmarkStream.tube_margin` on the
tube the endpoint extracts with the training's face-tube params).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

FORMAT = "landmark-stream/1"


def landmark_features(
    landmarks: np.ndarray, valid: np.ndarray | None, fps: float, blink_threshold: float
) -> np.ndarray:
    """The dynamic-landmark feature vector of one tube: the same function in training and serving."""
    from hypomimia.errors import UserError
    from hypomimia.evaluation.landmarks import dynamic_features, normalised

    if valid is not None and int(np.count_nonzero(valid)) < 2:
        raise UserError("the face tube has fewer than 2 frames with a face", "film the face for longer")
    norm = normalised(landmarks, valid)
    if len(norm) < 2:
        raise UserError("the face tube has fewer than 2 frames with a face", "film the face for longer")
    return np.array(list(dynamic_features(norm, fps, blink_threshold).values()))


@dataclass(frozen=True)
class LandmarkStream:
    """Standardised dynamic-landmark features -> logistic regression: the PD margin of one video."""

    features: tuple[str, ...]
    mean: tuple[float, ...]
    scale: tuple[float, ...]
    coef: tuple[float, ...]
    intercept: float
    blink_threshold: float
    c: float

    @classmethod
    def fit(cls, x: np.ndarray, y: np.ndarray, *, c: float, blink_threshold: float) -> LandmarkStream:
        """Fit on one row of features per training video (``x``) and its label (``y``, 1 = PD)."""
        from sklearn.linear_model import LogisticRegression

        from hypomimia.evaluation.landmarks import feature_names

        x = np.asarray(x, np.float64)
        mean = x.mean(axis=0)
        scale = x.std(axis=0)
        scale = np.where(scale > 0, scale, 1.0)  # a constant feature carries nothing; do not divide by 0
        head = LogisticRegression(C=c, max_iter=5000).fit((x - mean) / scale, np.asarray(y, int))
        return cls(
            features=tuple(feature_names("landmark_dynamic")),
            mean=_floats(mean),
            scale=_floats(scale),
            coef=_floats(head.coef_[0]),
            intercept=float(head.intercept_[0]),
            blink_threshold=float(blink_threshold),
            c=float(c),
        )

    def margin(self, x: np.ndarray) -> np.ndarray:
        """PD margin (log-odds) of each feature row."""
        z = (np.asarray(x, np.float64) - np.asarray(self.mean)) / np.asarray(self.scale)
        return z @ np.asarray(self.coef) + self.intercept

    def tube_margin(self, landmarks: np.ndarray, valid: np.ndarray | None, fps: float) -> float:
        """The margin of one tube's landmarks (``T x 478 x 2`` tube pixels), as in training."""
        return float(self.margin(landmark_features(landmarks, valid, fps, self.blink_threshold)[None])[0])

    def to_dict(self) -> dict[str, Any]:
        return {"format": FORMAT, **asdict(self)}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> LandmarkStream:
        d = {k: v for k, v in d.items() if k != "format"}
        return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in d.items()})


@dataclass(frozen=True)
class LateFusion:
    """Standardise each stream on the validation fold, weight, add, calibrate with one temperature.

    ``fused = w * (video - video_centre) / video_scale + (1 - w) * (landmarks - landmark_centre) /
    landmark_scale``; ``P(PD) = sigmoid(fused / temperature)``. ``video_temperature`` calibrates the
    video stream alone (the answer when a tube has no landmarks, and the per-stream report).
    """

    video_weight: float
    video_centre: float
    video_scale: float
    landmark_centre: float
    landmark_scale: float
    temperature: float
    video_temperature: float

    @classmethod
    def fit(
        cls,
        video_margin: np.ndarray,
        landmark_margin: np.ndarray,
        y: np.ndarray,
        *,
        video_weight: float,
        video_temperature: float,
    ) -> LateFusion:
        """From the validation fold's clips: each clip's video margin, its video's landmark margin, label."""
        from hypomimia.learning.metrics import fit_temperature

        v, lm = np.asarray(video_margin, np.float64), np.asarray(landmark_margin, np.float64)
        unfit = cls(
            float(video_weight),
            float(v.mean()),
            _sd(v),
            float(lm.mean()),
            _sd(lm),
            1.0,
            float(video_temperature),
        )
        t = fit_temperature(unfit.fuse(v, lm), np.asarray(y))
        return cls(**{**asdict(unfit), "temperature": t})

    def fuse(self, video_margin: np.ndarray, landmark_margin: np.ndarray | float) -> np.ndarray:
        """The fused margin before the temperature (one per clip; the landmark margin is per video)."""
        w = self.video_weight
        zv = (np.asarray(video_margin, np.float64) - self.video_centre) / self.video_scale
        zl = (np.asarray(landmark_margin, np.float64) - self.landmark_centre) / self.landmark_scale
        return w * zv + (1.0 - w) * zl

    def to_dict(self) -> dict[str, float]:
        return {k: float(v) for k, v in asdict(self).items()}  # plain floats: model.pt loads weights_only

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> LateFusion:
        return cls(**{k: float(v) for k, v in d.items()})


def _sd(x: np.ndarray) -> float:
    sd = float(np.std(x))
    return sd if sd > 1e-9 else 1.0  # a constant stream on validation: centre it, do not blow it up


def _floats(x: np.ndarray) -> tuple[float, ...]:
    return tuple(float(v) for v in np.asarray(x).ravel())
