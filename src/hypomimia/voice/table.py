"""Reading the voice stage's output for the models: the table, the params it was measured with, checked.

Training reads the voice rows of its videos; the endpoint must measure an upload with exactly the
params the training table was made with (as it makes tubes with the training's face-tube params), so
those params travel into the model's metadata from here.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from hypomimia.data.artifacts import read_stage_table
from hypomimia.errors import UserError
from hypomimia.voice.schema import FEATURE_VERSION, MEASURES

TABLE = "voice.parquet"
REPORT = "voice_report.json"
COLUMNS = ("video_id", "sha256", "status", *MEASURES, "feature_version")


@dataclass(frozen=True)
class VoiceTable:
    rows: pd.DataFrame  # voice.parquet
    params: dict[str, Any]  # the voice section it was measured with (voice_report.json)
    feature_version: str
    sha256: str  # of voice.parquet: the lineage of a model that read it

    def by_video(self) -> dict[str, dict[str, Any]]:
        """video_id -> the row as a dict (what :func:`hypomimia.voice.clip.measure_video` returns)."""
        return {r["video_id"]: r for r in self.rows.to_dict("records")}

    def lineage(self) -> dict[str, Any]:
        counts = self.rows["status"].value_counts()
        return {
            "table_sha256": self.sha256,
            "feature_version": self.feature_version,
            "params": {k: v for k, v in self.params.items() if k != "workers"},  # speed, not the measures
            "videos": len(self.rows),
            **{s: int(counts.get(s, 0)) for s in ("measured", "no_audio", "no_voice", "failed")},
        }


def read_voice_table(voice_dir: Path) -> VoiceTable:
    """The voice folder of ``hypomimia voice`` (or its gather); a UserError names the fix when it is not one."""
    voice_dir = Path(voice_dir)
    rows = read_stage_table(voice_dir, TABLE, "voice", COLUMNS)
    try:
        report = json.loads((voice_dir / REPORT).read_text())
        params = report["params"]
    except (OSError, ValueError, KeyError, TypeError):
        raise UserError(
            f"{voice_dir} has no readable {REPORT} with the voice params",
            "re-run 'hypomimia voice' (the endpoint must measure uploads with the params of this table)",
        ) from None
    versions = sorted(set(rows["feature_version"].astype(str)))
    if versions and versions != [FEATURE_VERSION]:
        raise UserError(
            f"the voice table holds feature version(s) {versions}; this package measures {FEATURE_VERSION}",
            "re-run 'hypomimia voice' with this version, so training and the endpoint measure alike",
        )
    sha = hashlib.sha256((voice_dir / TABLE).read_bytes()).hexdigest()
    return VoiceTable(rows, params, FEATURE_VERSION, sha)


def check_videos(table: VoiceTable, videos: pd.DataFrame) -> None:
    """The voice rows must describe the same files as the tubes (``videos``: video_id, sha256):
    a table from another ingest would silently give videos someone else's voice."""
    if videos.empty:
        return
    merged = videos[["video_id", "sha256"]].merge(
        table.rows[["video_id", "sha256"]], on="video_id", how="inner", suffixes=("", "_voice")
    )
    if merged.empty:
        raise UserError(
            "the voice table holds none of the training videos",
            "pass the voice folder made from the same ingest output as the face tubes (hypomimia voice)",
        )
    differ = merged[merged["sha256"].astype(str) != merged["sha256_voice"].astype(str)]
    if len(differ):
        raise UserError(
            f"{len(differ)} videos have other content in the voice table than in the face tubes "
            f"(e.g. {differ['video_id'].iloc[0]})",
            "re-run 'hypomimia voice' on the ingest output the face tubes came from",
        )
