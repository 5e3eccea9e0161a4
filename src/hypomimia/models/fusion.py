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

The voice (issue 25) joins the same way, one level up: :class:`VoiceStream` is a standardised L2
logistic regression on the voice stage's Praat measures of a video's speech, and :class:`VoiceFusion`
weighs its margin against the visual margin (the video stream, or its fusion with the landmarks) by
non-negative stacking on the validation videos that have voice (:func:`nonnegative_stacking`, shared
with :class:`LateFusion`). A video without voice keeps the visual margin unchanged. Both travel in
``model.pt`` (``extra["voice_stream"]``, ``extra["voice_fusion"]``) as plain numbers.
"""

from __future__ import annotations

import warnings
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
        v, lm = np.asarray(video_margin, np.float64), np.asarray(landmark_margin, np.float64)
        centres = (float(v.mean()), _sd(v), float(lm.mean()), _sd(lm))
        z = np.c_[(v - centres[0]) / centres[1], (lm - centres[2]) / centres[3]]
        y = np.asarray(y, int)
        if len(set(y.tolist())) < 2:  # one class on validation: nothing to weigh with; equal weights
            coef, bias = (1.0, 1.0), 0.0
        else:
            full, bias = nonnegative_stacking(z, y, c)
            coef = (float(full[0]), float(full[1]))
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


VOICE_FORMAT = "voice-stream/1"


def voice_features(rows: Any, measures: tuple[str, ...] | list[str]) -> np.ndarray:
    """``N x M`` float64 measures of voice rows (a voice.parquet frame, or dicts as
    :func:`hypomimia.voice.clip.measure_video` returns them); NaN where a measure is undefined."""
    if hasattr(rows, "columns"):
        return rows[list(measures)].to_numpy(np.float64, na_value=np.nan).reshape(len(rows), len(measures))
    return np.array(
        [[np.nan if r.get(m) is None else float(r[m]) for m in measures] for r in rows], np.float64
    ).reshape(-1, len(measures))


@dataclass(frozen=True)
class VoiceStream:
    """Standardised voice measures -> L2 logistic regression: the PD margin of one video's speech.

    Only videos whose voice row is ``measured`` have a margin; a measure undefined in one clip (e.g. no
    vowel space) counts as the training mean (a standardised 0), so one missing number does not cost
    the clip its voice.
    """

    measures: tuple[str, ...]
    mean: tuple[float, ...]
    scale: tuple[float, ...]
    coef: tuple[float, ...]
    intercept: float
    c: float
    feature_version: str

    @classmethod
    def fit(
        cls, x: np.ndarray, y: np.ndarray, *, measures: tuple[str, ...], c: float, feature_version: str
    ) -> VoiceStream:
        """Fit on the measures of the training videos with voice (``x``, NaN allowed) and labels (1 = PD)."""
        from sklearn.linear_model import LogisticRegression

        x = np.asarray(x, np.float64)
        with np.errstate(invalid="ignore"), warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # a measure no training video has: mean NaN
            mean, scale = np.nanmean(x, axis=0), np.nanstd(x, axis=0)
        mean = np.where(np.isfinite(mean), mean, 0.0)
        scale = np.where(np.isfinite(scale) & (scale > 0), scale, 1.0)
        stream = cls(tuple(measures), _floats(mean), _floats(scale), (0.0,) * len(measures), 0.0, float(c),
                     str(feature_version))  # fmt: skip
        head = LogisticRegression(C=c, max_iter=5000).fit(stream.standardised(x), np.asarray(y, int))
        return cls(tuple(measures), stream.mean, stream.scale, _floats(head.coef_[0]),
                   float(head.intercept_[0]), float(c), str(feature_version))  # fmt: skip

    def standardised(self, x: np.ndarray) -> np.ndarray:
        z = (np.asarray(x, np.float64) - np.asarray(self.mean)) / np.asarray(self.scale)
        return np.where(np.isfinite(z), z, 0.0)

    def contributions(self, x: np.ndarray) -> np.ndarray:
        """Each measure's term of the margin (``N x M``): which measures speak for PD, which against."""
        return self.standardised(x) * np.asarray(self.coef)

    def margin(self, x: np.ndarray) -> np.ndarray:
        """PD margin (log-odds) of each row of measures. Row by row, so a row's margin does not depend
        on what else is in the batch (training's table and the endpoint's one clip give the same bits)."""
        return self.contributions(x).sum(axis=1) + self.intercept

    def row_margin(self, row: Any) -> float | None:
        """The margin of one voice row (a dict); None when it has no measures (no audio, no voice, failed)."""
        if row is None or row.get("status") != "measured":
            return None
        return float(self.margin(voice_features([row], self.measures))[0])

    def to_dict(self) -> dict[str, Any]:
        return {"format": VOICE_FORMAT, **asdict(self)}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> VoiceStream:
        d = {k: v for k, v in d.items() if k != "format"}
        return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in d.items()})


@dataclass(frozen=True)
class VoiceFusion:
    """The voice joined to the visual model (the video stream, or its fusion with the landmarks).

    For a video with voice, ``fused = visual_coef * (visual - visual_centre) / visual_scale + voice_coef *
    (voice - voice_centre) / voice_scale + bias``, with ``visual`` the calibrated visual margin (raw margin
    / ``visual_temperature``); for a video without voice, ``fused = visual``: the visual model's answer,
    unchanged. ``method``:

    * ``added_evidence`` (fitted since issue 25's measurements): the voice is evidence *added* to the
      visual margin, ``fused = visual + w * z_voice + b`` (``visual_coef = visual_scale``), with ``w >= 0``
      and ``b`` fitted on the validation videos with voice (:func:`added_evidence`). The visual margin
      keeps its weight: the videos with voice are the speech clips, the visual model's weakest task, so a
      free stacking weight there learned to drop the face on speech (video-only phantom, fold 1: visual
      weight 0, a chance-level voice 0.47) and would lose the face's evidence wherever a voice is heard;
    * ``stacking``: non-negative logistic stacking of both standardised margins (models trained before;
      they load and fuse by the same formula);
    * ``equal_weights`` when the validation fold has too few voiced subjects of a class to fit
      (``visual_coef = voice_coef = visual_scale``, ``bias = visual_centre``: one visual SD per voice
      SD, the visual margin unchanged for an average voice).
    """

    visual_centre: float
    visual_scale: float
    voice_centre: float
    voice_scale: float
    visual_coef: float
    voice_coef: float
    bias: float
    visual_temperature: float
    c: float
    method: str
    voiced_subjects: dict[str, int]  # validation subjects with voice, per class (what the fit saw)

    temperature = 1.0  # the fused margin is calibrated, with or without voice

    @classmethod
    def fit(
        cls,
        visual_margin: np.ndarray,
        voice_margin: np.ndarray,
        y: np.ndarray,
        subject: np.ndarray,
        *,
        c: float,
        visual_temperature: float,
        min_subjects: int,
        fallback_voice: np.ndarray,
    ) -> VoiceFusion:
        """From the validation clips: raw visual margin, the video's voice margin (NaN without voice), label,
        subject. ``fallback_voice``: voice margins to standardise by when validation has too few (training's)."""
        v = np.asarray(visual_margin, np.float64) / visual_temperature
        voice = np.asarray(voice_margin, np.float64)
        y, subject = np.asarray(y, int), np.asarray(subject)
        has = np.isfinite(voice)
        voiced = {name: len(set(subject[has & (y == k)].tolist())) for name, k in (("control", 0), ("pd", 1))}
        fit_voice = voice[has] if len(np.unique(voice[has])) > 1 else np.asarray(fallback_voice, np.float64)
        fit_voice = fit_voice if len(fit_voice) else np.zeros(1)
        vis = v[has] if has.any() else v
        centres = (float(vis.mean()), _sd(vis), float(fit_voice.mean()), _sd(fit_voice))
        if min(voiced.values()) < min_subjects:
            return cls(*centres, centres[1], centres[1], centres[0], float(visual_temperature), float(c),
                       "equal_weights", voiced)  # fmt: skip
        w, b = added_evidence(v[has], (voice[has] - centres[2]) / centres[3], y[has], c)
        # visual + w * z_voice + b, written in the standardised form of fuse(): visual_coef = visual_scale
        return cls(*centres, centres[1], w, b + centres[0], float(visual_temperature), float(c),
                   "added_evidence", voiced)  # fmt: skip

    def visual(self, visual_margin: np.ndarray | float) -> np.ndarray:
        """The calibrated visual margin (what a video without voice is answered with)."""
        return np.asarray(visual_margin, np.float64) / self.visual_temperature

    def terms(
        self, visual_margin: np.ndarray | float, voice_margin: float | None
    ) -> tuple[np.ndarray, float]:
        """(visual term, voice term) of the fused margin, in its log-odds units; the voice term is 0 without voice."""
        visual = self.visual(visual_margin)
        if voice_margin is None or not np.isfinite(voice_margin):
            return visual, 0.0
        zv = (visual - self.visual_centre) / self.visual_scale
        return self.visual_coef * zv, float(
            self.voice_coef * (voice_margin - self.voice_centre) / self.voice_scale
        )

    def fuse(self, visual_margin: np.ndarray, voice_margin: np.ndarray | float | None) -> np.ndarray:
        """The final margin of each clip (``voice_margin``: per clip or one for the video; NaN/None: no voice)."""
        visual = self.visual(visual_margin)
        voice = np.broadcast_to(np.asarray(np.nan if voice_margin is None else voice_margin, np.float64),
                                visual.shape)  # fmt: skip
        zv = (visual - self.visual_centre) / self.visual_scale
        zs = (voice - self.voice_centre) / self.voice_scale
        with_voice = self.visual_coef * zv + self.voice_coef * np.where(np.isfinite(zs), zs, 0.0) + self.bias
        return np.where(np.isfinite(voice), with_voice, visual)

    @property
    def weights(self) -> dict[str, float]:
        """Each side's share of the standardised weight (for reports and the answer)."""
        total = abs(self.visual_coef) + abs(self.voice_coef) or 1.0
        return {"visual": self.visual_coef / total, "voice": self.voice_coef / total}

    def to_dict(self) -> dict[str, Any]:  # plain numbers and strings: model.pt loads weights_only
        d = {k: float(v) for k, v in asdict(self).items() if k not in ("method", "voiced_subjects")}
        return {
            **d,
            "method": self.method,
            "voiced_subjects": {k: int(v) for k, v in self.voiced_subjects.items()},
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> VoiceFusion:
        plain = {k: float(v) for k, v in d.items() if k not in ("method", "voiced_subjects")}
        return cls(**plain, method=str(d["method"]), voiced_subjects=dict(d["voiced_subjects"]))


def nonnegative_stacking(z: np.ndarray, y: np.ndarray, c: float) -> tuple[np.ndarray, float]:
    """(weights, bias) of a logistic regression on standardised stream margins ``z`` (``N x S``) with every
    weight >= 0 (Breiman 1996): a stream that ranks the validation subjects backwards is noise on a few
    subjects, not a signal to invert; it is dropped and the others refitted."""
    from sklearn.linear_model import LogisticRegression

    keep = list(range(z.shape[1]))
    while True:
        head = LogisticRegression(C=c, max_iter=5000).fit(z[:, keep], y)
        if (head.coef_[0] >= 0).all() or len(keep) == 1:
            break
        keep = [k for k, w in zip(keep, head.coef_[0], strict=True) if w > 0] or [
            keep[int(np.argmax(head.coef_[0]))]
        ]
    full = np.zeros(z.shape[1])
    full[keep] = np.maximum(head.coef_[0], 0.0)
    return full, float(head.intercept_[0])


def added_evidence(visual: np.ndarray, z_voice: np.ndarray, y: np.ndarray, c: float) -> tuple[float, float]:
    """(w, b) of ``P(PD) = sigmoid(visual + w * z_voice + b)``: a logistic regression with the calibrated
    visual margin as a fixed offset, ``w >= 0`` (a voice that ranks the validation subjects backwards adds
    nothing, as in :func:`nonnegative_stacking`), L2 on ``w`` of strength 1/``c`` as scikit-learn's ``C``."""
    from scipy.optimize import minimize

    visual, z, y = (np.asarray(a, np.float64) for a in (visual, z_voice, y))

    def loss(wb: np.ndarray) -> tuple[float, np.ndarray]:
        m = visual + wb[0] * z + wb[1]
        g = c * (1.0 / (1.0 + np.exp(-m)) - y)
        value = c * float(np.sum(np.logaddexp(0.0, m) - y * m)) + 0.5 * wb[0] ** 2
        return value, np.array([float(np.sum(g * z)) + wb[0], float(np.sum(g))])

    res = minimize(loss, np.zeros(2), jac=True, method="L-BFGS-B", bounds=[(0.0, None), (None, None)])
    return float(res.x[0]), float(res.x[1])


def _sd(x: np.ndarray) -> float:
    sd = float(np.std(x))
    return sd if sd > 1e-9 else 1.0  # a constant stream on validation: centre it, do not blow it up


def _floats(x: np.ndarray) -> tuple[float, ...]:
    return tuple(float(v) for v in np.asarray(x).ravel())
