"""The landmark-trajectory stream and its late fusion with the I3D's video stream (issue 24).

The face tubes carry FaceMesh's 478 landmarks per frame. Their motion alone (the dynamic-landmark
features of :mod:`hypomimia.evaluation.landmarks`: region speeds, expression ranges, blink rate,
jerkiness) separates the natural phantom's PD patients from controls about as well as the video
network does, and the two make different mistakes. So the shipped recipe has two streams, as
Carreira & Zisserman's two-stream I3D has RGB and flow:

* the **video stream**: the I3D's PD margin per clip;
* the **landmark stream**: a standardised L2 logistic regression on the tube's landmark-trajectory
  features (the dynamic-landmark features plus the timing of the movements,
  :func:`hypomimia.evaluation.landmarks.trajectory_features`), one margin per video, fitted on the
  training subjects after the network has trained.

:class:`LateFusion` puts both on one scale and weighs them: each stream's margin is standardised by
the mean and SD of its margins on the validation fold, and a logistic regression on the two (fitted on
the same validation clips, held out from the network and from the landmark regression) gives their
weights, the offset and the calibration at once. The fused margin replaces the
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
    from hypomimia.evaluation.landmarks import normalised, trajectory_features

    if valid is not None and int(np.count_nonzero(valid)) < 2:
        raise UserError("the face tube has fewer than 2 frames with a face", "film the face for longer")
    norm = normalised(landmarks, valid)
    if len(norm) < 2:
        raise UserError("the face tube has fewer than 2 frames with a face", "film the face for longer")
    return np.array(list(trajectory_features(norm, fps, blink_threshold).values()))


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
            features=tuple(feature_names("landmark_trajectory")),
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
    """Stacking on the validation fold: standardise each stream, then a logistic regression on the two.

    ``fused = a * (video - video_centre) / video_scale + b * (landmarks - landmark_centre) /
    landmark_scale + bias`` and ``P(PD) = sigmoid(fused)``: the regression both weighs the streams
    (a stream that fails on the held-out validation subjects gets little weight) and calibrates the
    sum, so ``temperature`` is 1. Weights are non-negative. ``video_temperature`` calibrates the video stream alone (the answer
    when a tube has no landmarks, and the per-stream report). L2 (``c``) keeps 3 numbers fitted on a
    fold's few subjects from chasing them.
    """

    video_centre: float
    video_scale: float
    landmark_centre: float
    landmark_scale: float
    video_coef: float
    landmark_coef: float
    bias: float
    video_temperature: float
    c: float

    temperature = 1.0  # the stacking regression is the calibration

    @classmethod
    def fit(
        cls,
        video_margin: np.ndarray,
        landmark_margin: np.ndarray,
        y: np.ndarray,
        *,
        c: float,
        video_temperature: float,
    ) -> LateFusion:
        """From the validation fold's clips: each clip's video margin, its video's landmark margin, label."""
        from sklearn.linear_model import LogisticRegression

        v, lm = np.asarray(video_margin, np.float64), np.asarray(landmark_margin, np.float64)
        centres = (float(v.mean()), _sd(v), float(lm.mean()), _sd(lm))
        z = np.c_[(v - centres[0]) / centres[1], (lm - centres[2]) / centres[3]]
        y = np.asarray(y, int)
        if len(set(y.tolist())) < 2:  # one class on validation: nothing to weigh with; equal weights
            coef, bias = (1.0, 1.0), 0.0
        else:
            # Non-negative stacking (Breiman 1996): a stream that ranks the validation subjects backwards
            # is noise on a few subjects, not a signal to invert; it is dropped and the other refitted.
            keep = [0, 1]
            while True:
                head = LogisticRegression(C=c, max_iter=5000).fit(z[:, keep], y)
                if (head.coef_[0] >= 0).all() or len(keep) == 1:
                    break
                keep = [keep[int(np.argmax(head.coef_[0]))]]
            full = np.zeros(2)
            full[keep] = np.maximum(head.coef_[0], 0.0)
            coef, bias = (float(full[0]), float(full[1])), float(head.intercept_[0])
        return cls(*centres, coef[0], coef[1], bias, float(video_temperature), float(c))

    def fuse(self, video_margin: np.ndarray, landmark_margin: np.ndarray | float) -> np.ndarray:
        """The fused margin, calibrated (one per clip; the landmark margin is per video)."""
        zv = (np.asarray(video_margin, np.float64) - self.video_centre) / self.video_scale
        zl = (np.asarray(landmark_margin, np.float64) - self.landmark_centre) / self.landmark_scale
        return self.video_coef * zv + self.landmark_coef * zl + self.bias

    @property
    def weights(self) -> dict[str, float]:
        """Each stream's share of the fused margin's standardised weight (for reports and the answer)."""
        total = abs(self.video_coef) + abs(self.landmark_coef) or 1.0
        return {"video": self.video_coef / total, "landmarks": self.landmark_coef / total}

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
