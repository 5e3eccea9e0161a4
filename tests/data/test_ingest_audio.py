"""Ingest of a batch with voices: the audio facts are always recorded; audio reasons only under require_audio."""

import json

import numpy as np
import pandas as pd
import pytest

from hypomimia.stages.ingest import AUDIO_FIELDS, INGESTED_SCHEMA, run
from tests.helpers_ingest import TEST_CFG, encode, tone, write_manifest

VOICED = TEST_CFG.model_copy(update={"require_audio": True})
SECONDS = 1.2  # 12 frames at 10 fps

# video_id -> (audio track or None, reason under require_audio)
BATCH = {
    "voice_pd": (lambda: tone(SECONDS, dbfs=-20), ""),
    "voice_control": (lambda: tone(SECONDS, dbfs=-26), ""),
    "mute": (None, "no_audio"),
    "odd_codec": (lambda: tone(SECONDS), "audio_unreadable"),
    "cut_sound": (lambda: tone(0.3), "audio_too_short"),
    "mic_off": (lambda: np.zeros((1, 19200), np.float32), "audio_silent"),
    "overloaded": (lambda: np.clip(tone(SECONDS, dbfs=10), -1, 1), "audio_clipped"),
}


def _hide_audio_codec(path):
    data = bytearray(path.read_bytes())
    for old, new in ((b"mp4a", b"xq7z"), (b"esds", b"free")):
        at = data.index(old)
        data[at : at + 4] = new
    path.write_bytes(bytes(data))


@pytest.fixture(scope="module")
def batch(tmp_path_factory):
    folder = tmp_path_factory.mktemp("voices")
    rows = []
    for i, (video_id, (audio, _)) in enumerate(BATCH.items()):
        encode(folder / f"{video_id}.mp4", 12, fps=10, seed=i, audio=audio() if audio else None)
        rows.append(
            {"video_id": video_id, "path": f"{video_id}.mp4", "subject_id": f"S{i}", "label": "unknown"}
        )
    _hide_audio_codec(folder / "odd_codec.mp4")
    return write_manifest(folder / "manifest.csv", rows)


@pytest.fixture(scope="module")
def tables(batch, tmp_path_factory):
    out = {}
    for name, cfg in (("video", TEST_CFG), ("voice", VOICED)):
        folder = tmp_path_factory.mktemp(name)
        result = run(cfg, batch, folder)
        table = pd.read_parquet(folder / "ingested.parquet").set_index("video_id")
        out[name] = (result, table, json.loads((folder / "report.json").read_text()))
    return out


def test_a_video_only_batch_accepts_every_video_and_records_the_facts(tables):
    result, table, report = tables["video"]
    assert (result.accepted, result.quarantined) == (len(BATCH), 0)
    assert report["accepted"] + report["quarantined"] == report["listed"] == len(BATCH)
    assert table.loc["voice_pd", "audio_loudness_lufs"] == pytest.approx(-23.0, abs=0.1)
    assert table.loc["voice_control", "audio_loudness_lufs"] == pytest.approx(-29.0, abs=0.2)
    assert table.loc["overloaded", "audio_clipped_share"] > 0.01
    assert table.loc["cut_sound", "audio_duration_s"] < 0.5
    assert "audio not usable: the audio codec is unknown to FFmpeg" in table.loc["odd_codec", "detail"]


def test_missing_or_unknown_audio_facts_are_null(tables):
    _, table, _ = tables["video"]
    assert table.loc["mute", AUDIO_FIELDS].isna().all()
    assert table.loc["odd_codec", AUDIO_FIELDS].isna().all() and table.loc["odd_codec", "has_audio"]
    # Digital silence: no loudness and no peak (both -inf), but a known codec, rate and share.
    silent = table.loc["mic_off"]
    assert pd.isna(silent["audio_loudness_lufs"]) and pd.isna(silent["audio_peak_dbfs"])
    assert (silent["audio_codec"], silent["audio_sample_rate"], silent["audio_clipped_share"]) == (
        "aac",
        16000,
        0,
    )


@pytest.mark.parametrize("video_id", sorted(BATCH))
def test_require_audio_gives_each_video_its_reason(tables, video_id):
    _, table, _ = tables["voice"]
    row = table.loc[video_id]
    assert row["reason"] == BATCH[video_id][1], row["detail"]
    assert row["status"] == ("quarantined" if BATCH[video_id][1] else "accepted")
    if BATCH[video_id][1]:
        assert "ingest." in row["detail"] or "export" in row["detail"], "the detail names the knob or the fix"


def test_require_audio_still_accounts_for_every_video(tables):
    result, _, report = tables["voice"]
    assert report["accepted"] + report["quarantined"] == report["listed"] == len(BATCH)
    assert report["reasons"] == {r: 1 for _, r in BATCH.values() if r}
    assert (result.accepted, result.quarantined) == (2, len(BATCH) - 2)


def test_the_table_schema_has_the_audio_columns_after_has_audio():
    names = INGESTED_SCHEMA.names
    at = names.index("has_audio")
    assert names[at + 1 : at + 1 + len(AUDIO_FIELDS)] == AUDIO_FIELDS
    assert AUDIO_FIELDS == [
        "audio_codec",
        "audio_sample_rate",
        "audio_channels",
        "audio_duration_s",
        "audio_loudness_lufs",
        "audio_peak_dbfs",
        "audio_clipped_share",
    ]


def test_video_problems_come_first(tmp_path):
    # A thumbnail-sized clip without sound is too_small, not no_audio: the video decides first.
    encode(tmp_path / "tiny.mp4", 12, size=(96, 64))
    manifest = write_manifest(
        tmp_path / "m.csv", [{"video_id": "tiny", "path": "tiny.mp4", "subject_id": "S1", "label": "unknown"}]
    )
    result = run(VOICED, manifest, tmp_path / "out")
    assert result.reasons == {"too_small": 1}
