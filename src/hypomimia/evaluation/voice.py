"""The voice baseline: the served recipe's voice stream alone, fit on the other folds.

The same regression as the I3D recipe's voice stream (:class:`hypomimia.models.fusion.VoiceStream`,
``train.voice_stream``: its measures and ``c``), fit on the voiced videos of every fold but the test
fold and scored on the test fold's voiced videos. A subject is the mean of its voiced videos'
probabilities; a subject with no voiced video gets p = 0.5 (the voice cannot tell), so every held-out
subject is scored, the comparison with the other models stays paired, and the report counts them.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from hypomimia.config.train import VoiceStreamConfig
from hypomimia.errors import UserError
from hypomimia.models.fusion import VoiceStream, voice_features
from hypomimia.voice.table import VoiceTable


def fit_predict(
    train: pd.DataFrame, test: pd.DataFrame, table: VoiceTable, cfg: VoiceStreamConfig
) -> pd.DataFrame:
    """``train``/``test``: videos (video_id, subject_id, label 0/1). A clip table (one row per voiced test
    video, plus one row at margin 0 for each test subject without voice) with ``voiced``."""
    rows = table.rows[table.rows["status"] == "measured"].set_index("video_id")
    fit = train[train["video_id"].isin(rows.index)]
    if fit["label"].nunique() < 2:
        raise UserError(
            "the voice baseline has training videos with voice of one class only on these folds",
            "evaluate on data with voiced clips of both classes, or drop 'voice' from evaluate.models",
        )
    stream = VoiceStream.fit(
        voice_features(rows.loc[fit["video_id"]], cfg.measures),
        fit["label"].to_numpy(int),
        measures=tuple(cfg.measures),
        c=cfg.c,
        feature_version=table.feature_version,
    )
    scored = test[test["video_id"].isin(rows.index)]
    margin = stream.margin(voice_features(rows.loc[scored["video_id"]], cfg.measures))
    silent = test[~test["subject_id"].isin(scored["subject_id"])].drop_duplicates("subject_id")
    out = pd.concat(
        [
            scored.assign(margin=margin, voiced=True),
            silent.assign(margin=0.0, voiced=False),  # p = 0.5: the voice cannot tell
        ],
        ignore_index=True,
    )
    return pd.DataFrame(
        {
            "clip": np.arange(len(out)),
            "video_id": out["video_id"].to_numpy(),
            "subject_id": out["subject_id"].astype(str).to_numpy(),
            "label": out["label"].to_numpy(int),
            "margin": out["margin"].to_numpy(float),
            "voiced": out["voiced"].to_numpy(bool),
        }
    )
