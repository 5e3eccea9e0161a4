"""Training's side of the two-stream recipe, and of the voice: fit each stream and its late fusion after
the network.

Order matters for honesty: the landmark and voice regressions see only the training subjects; the
fusions' standardisation and weights see only the validation subjects (held out from the network's
weights and from the regressions); the test fold is scored once with everything frozen. The voice is
fused last, with the visual model (the video stream, or its fusion with the landmarks), so a video
without voice keeps the visual model's answer.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from hypomimia.config.train import LandmarkStreamConfig, VoiceStreamConfig
from hypomimia.errors import UserError
from hypomimia.evaluation.landmarks import load_landmarks
from hypomimia.learning.clips import TubeItem
from hypomimia.models.fusion import (
    LandmarkStream,
    LateFusion,
    VoiceFusion,
    VoiceStream,
    landmark_features,
    voice_features,
)
from hypomimia.voice.table import VoiceTable


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


def fit_voice_stream(
    cfg: VoiceStreamConfig,
    table: VoiceTable,
    train: list[TubeItem],
    val_clips: pd.DataFrame,
    test_clips: pd.DataFrame,
    visual_temperature: float,
) -> tuple[VoiceStream, VoiceFusion, pd.DataFrame, pd.DataFrame] | str:
    """The voice stream (fit on the ``train`` videos whose voice was measured), its fusion with the visual
    margin (``margin`` of the clip tables, calibrated by ``visual_temperature``; fit on the validation
    videos with voice) and both clip tables with ``margin`` final: ``margin_visual`` keeps the visual model's
    calibrated margin, ``margin_voice`` the video's voice margin (NaN without voice), ``margin_video`` the
    network's. A string instead says why there is no voice stream (too few training subjects with voice)."""
    rows = table.by_video()
    voiced = [
        (it, rows[it.video_id]) for it in train if rows.get(it.video_id, {}).get("status") == "measured"
    ]
    per_class = {k: len({it.subject_id for it, _ in voiced if it.label == k}) for k in (0, 1)}
    if min(per_class.values()) < cfg.min_subjects:
        return (
            f"too few training subjects with voice (control {per_class[0]}, PD {per_class[1]}; "
            f"train.voice_stream.min_subjects = {cfg.min_subjects}): the model is visual only"
        )
    x = voice_features([r for _, r in voiced], cfg.measures)
    y = np.array([it.label for it, _ in voiced])
    stream = VoiceStream.fit(
        x, y, measures=tuple(cfg.measures), c=cfg.c, feature_version=table.feature_version
    )
    wanted = set(val_clips["video_id"]) | set(test_clips["video_id"])
    # One row at a time, as the endpoint measures one upload: the same margin to the bit.
    by_video = {v: m for v in wanted if (m := stream.row_margin(rows.get(v))) is not None}

    def split(clips: pd.DataFrame) -> pd.DataFrame:
        voice = clips["video_id"].map(by_video).astype(np.float64)
        video = clips["margin_video"] if "margin_video" in clips else clips["margin"]
        return clips.assign(margin_video=video, margin_visual=clips["margin"] / visual_temperature,
                            margin_voice=voice)  # fmt: skip

    val_clips, test_clips = split(val_clips), split(test_clips)
    fusion = VoiceFusion.fit(
        val_clips["margin"].to_numpy(),
        val_clips["margin_voice"].to_numpy(),
        val_clips["label"].to_numpy(),
        val_clips["subject_id"].astype(str).to_numpy(),
        c=cfg.fusion_c,
        visual_temperature=visual_temperature,
        min_subjects=cfg.min_subjects,
        fallback_voice=stream.margin(x),
    )

    def fused(clips: pd.DataFrame) -> pd.DataFrame:
        return clips.assign(margin=fusion.fuse(clips["margin"].to_numpy(), clips["margin_voice"].to_numpy()))

    return stream, fusion, fused(val_clips), fused(test_clips)
