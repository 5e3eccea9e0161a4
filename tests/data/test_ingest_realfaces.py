"""Ingest on real third-party clips (read in place): real cameras' quirks must not cause quarantine."""

import av
import numpy as np
import pandas as pd
import pytest

from hypomimia.config.ingest import IngestConfig
from hypomimia.data.probe import probe
from hypomimia.stages.ingest import run
from tests.helpers_ingest import ffmpeg_ebur128, write_manifest

pytestmark = pytest.mark.realfaces


def test_real_clips_are_accepted_and_photos_are_not(realfaces_dir, tmp_path):
    videos = sorted(p.name for p in realfaces_dir.glob("*.mp4"))
    photos = sorted(p.name for p in realfaces_dir.glob("*.jpg"))
    assert len(videos) >= 4
    rows = [
        # Absolute paths: the manifest lives in tmp_path, the media stays read-only where it is.
        {"video_id": name.removesuffix(".mp4"), "path": str(realfaces_dir / name), "subject_id": f"S{i}"}
        | {"label": ("pd", "control")[i % 2]}
        for i, name in enumerate(videos)
    ] + [
        {"video_id": name.removesuffix(".jpg"), "path": str(realfaces_dir / name), "subject_id": f"P{i}"}
        | {"label": "unknown"}
        for i, name in enumerate(photos)
    ]
    manifest = write_manifest(tmp_path / "manifest.csv", rows)
    result = run(IngestConfig(folds=2), manifest, tmp_path / "out", video_root=realfaces_dir)
    table = pd.read_parquet(tmp_path / "out" / "ingested.parquet").set_index("video_id")

    assert result.unlisted == 0
    accepted = table[table["status"] == "accepted"]
    assert sorted(accepted.index) == [v.removesuffix(".mp4") for v in videos], table["detail"].to_dict()
    assert set(table.loc[[p.removesuffix(".jpg") for p in photos], "reason"]) == {"image_not_video"}

    # The quirks the folder's README lists, seen by the probe:
    vfr = table.loc["vr_face_1"]  # VFR with gaps: 30 fps declared, about 22 measured
    assert vfr["vfr"] and vfr["nominal_fps"] == 30 and 21 < vfr["real_fps"] < 23
    assert "variable frame rate" in vfr["detail"]
    assert table.loc["st_WDA_AlexandriaOcasioCortez_000", "codec"] == "mpeg4"  # MPEG-4 Part 2
    no_face = table.loc["feat_no_face"]  # declares 98 frames, 95 decode; face presence is not ingest's job
    assert (no_face["declared_frames"], no_face["decoded_frames"]) == (98, 95)
    assert table.loc["fr_short_hamilton_clip", "decoded_frames"] == 275  # non-zero start pts
    assert accepted["has_audio"].all()
    assert set(accepted["audio_codec"]) == {"aac", "mp3float"}
    assert accepted["audio_loudness_lufs"].between(-60, -15).all()


def test_real_clips_loudness_matches_ffmpegs_meter(realfaces_dir):
    # Real talking heads, AAC and MP3, 16 and 44.1 kHz stereo: the probe's BS.1770 meter against FFmpeg's.
    for path in sorted(realfaces_dir.glob("*.mp4")):
        p = probe(path)
        with av.open(str(path)) as container:
            samples = np.concatenate(
                [f.to_ndarray() for f in container.decode(container.streams.audio[0])], 1
            )
        assert p.audio_loudness_lufs == pytest.approx(ffmpeg_ebur128(samples, p.audio_sample_rate), abs=0.02)
        assert p.audio_duration_s == pytest.approx(samples.shape[1] / p.audio_sample_rate, abs=1e-6)
        assert p.audio_clipped_share < 0.01 and p.audio_peak_dbfs < 0, path.name
