"""Training's side of the two-stream recipe: fit the landmark stream and the late fusion after the network.

Order matters for honesty: the landmark regression sees only the training subjects; the fusion's
standardisation and temperature see only the validation subjects (both held out from the network's
weights and from the regression); the test fold is scored once with everything frozen.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from hypomimia.config.train import LandmarkStreamConfig
from hypomimia.errors import UserError
from hypomimia.evaluation.landmarks import load_landmarks
from hypomimia.learning.clips import TubeItem
from hypomimia.models.fusion import LandmarkStream, LateFusion, landmark_features


def tube_features(item: TubeItem, blink_threshold: float) -> np.ndarray:
    """The landmark stream's features of a training tube: the endpoint's function on the same arrays."""
    return landmark_features(*load_landmarks(item.tube), blink_threshold)


def fit_two_streams(
    cfg: LandmarkStreamConfig,
    train: list[TubeItem],
    scored: list[TubeItem],
    val_clips: pd.DataFrame,
    test_clips: pd.DataFrame,
    video_temperature: float,
) -> tuple[LandmarkStream, LateFusion, pd.DataFrame, pd.DataFrame]:
    """The landmark stream (fit on ``train``), the fusion (fit on ``val_clips``) and both clip tables
    with ``margin`` fused; ``margin_video`` and ``margin_landmarks`` keep each stream's own margin."""
    x = np.stack([tube_features(it, cfg.blink_threshold) for it in train])
    y = np.array([it.label for it in train])
    if len(set(y.tolist())) < 2:
        raise UserError("the training split holds one class only", "train on folds with both labels")
    stream = LandmarkStream.fit(x, y, c=cfg.c, blink_threshold=cfg.blink_threshold)
    by_video = {it.video_id: stream.margin(tube_features(it, cfg.blink_threshold)[None])[0] for it in scored}

    def both(clips: pd.DataFrame) -> pd.DataFrame:
        return clips.assign(margin_video=clips["margin"], margin_landmarks=clips["video_id"].map(by_video))

    val_clips, test_clips = both(val_clips), both(test_clips)
    fusion = LateFusion.fit(
        val_clips["margin_video"].to_numpy(),
        val_clips["margin_landmarks"].to_numpy(),
        val_clips["label"].to_numpy(),
        c=cfg.fusion_c,
        video_temperature=video_temperature,
    )

    def fused(clips: pd.DataFrame) -> pd.DataFrame:
        return clips.assign(margin=fusion.fuse(clips["margin_video"], clips["margin_landmarks"]))

    return stream, fusion, fused(val_clips), fused(test_clips)
