"""The phantom study goes through ingest untouched: every video accepted, every file accounted for."""

import json

import pandas as pd
import pytest

from hypomimia.config.ingest import IngestConfig
from hypomimia.config.phantom import PhantomConfig


@pytest.mark.slow
def test_every_phantom_video_is_ingested(tmp_path):
    phantom = pytest.importorskip("hypomimia.stages.phantom")
    from hypomimia.stages import ingest

    cfg = PhantomConfig(subjects=4, videos_per_subject=1, duration_s=3.0, size=256, workers=2)
    made = phantom.run(cfg, tmp_path / "phantom", progress=False)
    result = ingest.run(IngestConfig(folds=2), made.manifest, tmp_path / "ingest")

    assert (result.listed, result.accepted, result.quarantined, result.unlisted) == (
        made.videos,
        made.videos,
        0,
        0,
    )
    report = json.loads((tmp_path / "ingest" / "report.json").read_text())
    assert report["accepted"] + report["quarantined"] == report["listed"] == made.videos
    table = pd.read_parquet(tmp_path / "ingest" / "ingested.parquet")
    truth = json.loads((tmp_path / "phantom" / "phantom.json").read_text())["sha256"]
    assert dict(zip(table["video_id"], table["sha256"], strict=True)) == truth  # same bytes the phantom wrote
    assert (table["width"] == cfg.size).all() and (table["nominal_fps"] == cfg.fps).all()
    folds = pd.read_parquet(tmp_path / "ingest" / "folds.parquet")
    assert len(folds) == made.videos and (folds.groupby("subject_id")["fold"].nunique() == 1).all()
