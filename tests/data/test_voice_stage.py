"""The voice stage on tiny mp4 files with, without and with a broken AAC track: every accepted video
gets a row, the cache answers a re-run, shards gather into the unsharded table, the CLI reports."""

import hashlib
import json

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from hypomimia.cli import _app
from hypomimia.config.voice import VoiceConfig
from hypomimia.errors import UserError
from hypomimia.stages import voice
from hypomimia.voice import audio
from hypomimia.voice.audio import decode_audio
from hypomimia.voice.schema import FEATURE_VERSION, MEASURES
from tests.helpers_voice import make_ingested, vowel, write_clip

CFG = VoiceConfig(workers=1)


def digest(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    """Six clips (one quarantined by ingest), their ingest table, and one stage run."""
    d = tmp_path_factory.mktemp("voice")
    speech = vowel(48000, seconds=2.0, f0_hz=120.0, rms_db=74.0, syllables_per_s=3.0)  # peaks at 0.7
    hum = 0.002 * np.random.default_rng(2).standard_normal(2 * 44100)  # a room, nobody speaking
    videos = {
        "speaker": write_clip(d / "speaker.mp4", audio=speech),
        # 44.1 kHz stereo, the voice on the left only: mixed to mono, resampled to 16 kHz
        "stereo": write_clip(
            d / "stereo.mp4",
            audio=np.vstack([vowel(44100, 2.0, f0_hz=210.0, rms_db=80.0), hum]),
            sample_rate=44100,
        ),
        "silent": write_clip(d / "silent.mp4"),
        "broken": write_clip(d / "broken.mp4", broken_audio=True),
        "room": write_clip(d / "room.mp4", audio=hum, sample_rate=44100),
        "dropped": write_clip(d / "dropped.mp4"),
    }
    ingest = make_ingested(d / "ingest", videos, quarantined=("dropped",))
    result = voice.run(CFG, ingest, d / "out", d / "cache")
    return d, ingest, result


def test_every_accepted_video_gets_one_row(study):
    _, _, result = study
    table = result.table.set_index("video_id")
    assert sorted(table.index) == ["broken", "room", "silent", "speaker", "stereo"]  # not 'dropped'
    assert table["has_audio"].to_dict() == {
        "broken": True, "room": True, "silent": False, "speaker": True, "stereo": True,
    }  # fmt: skip
    assert table["status"].to_dict() == {
        "broken": "failed", "room": "no_voice", "silent": "no_audio", "speaker": "measured", "stereo": "measured",
    }  # fmt: skip
    assert (table["feature_version"] == FEATURE_VERSION).all()
    assert table.loc[["silent", "room", "broken"], list(MEASURES)].isna().all().all()


def test_a_broken_audio_track_is_reported_with_its_reason(study):
    _, _, result = study
    row = result.table.set_index("video_id").loc["broken"]
    assert row["reason"] == "unreadable_audio" and "packets failed to decode" in row["detail"]
    assert result.report["reasons"] == {"unreadable_audio": 1} and result.report["failed"] == 1


def test_the_voices_are_measured_through_aac(study):
    table = study[2].table.set_index("video_id")
    assert table.loc["speaker", "f0_mean_hz"] == pytest.approx(120.0, rel=0.03)
    assert table.loc["stereo", "f0_mean_hz"] == pytest.approx(210.0, rel=0.03)
    assert table.loc["speaker", "speech_rate_syl_s"] == pytest.approx(3.0, rel=0.2)
    # the stereo voice is on one channel: the mono mix is 6 dB below the 80 dB it was written at
    assert abs(table.loc["stereo", "intensity_db"] - 74.0) <= 1.0
    assert abs(table.loc["speaker", "intensity_db"] - 74.0) <= 1.0
    assert table.loc["speaker", "audio_rate"] == 48000 and table.loc["stereo", "audio_channels"] == 2


def test_decoded_audio_is_on_the_16_bit_grid_at_the_analysis_rate(study):
    d, _, _ = study
    audio = decode_audio(d / "stereo.mp4", 16000, 120.0)
    assert audio.sample_rate == 16000 and audio.source_rate == 44100
    assert audio.duration_s == pytest.approx(2.0, abs=0.05)
    assert np.array_equal(audio.samples * 32768, np.round(audio.samples * 32768))
    assert decode_audio(d / "silent.mp4", 16000, 120.0) is None
    assert len(decode_audio(d / "speaker.mp4", 16000, 0.5).samples) <= 0.5 * 16000 + 1024


def test_the_decode_is_the_same_on_any_cpu(study):
    """FFmpeg's AAC decoder rounds differently on its AVX2/AVX-512 kernels than on its C code (on this
    machine the raw decodes of 54 of 54 clips differed); decode_audio pins the C code, the same on every
    x86-64 CPU, so its samples are those of a decode on the portable kernels."""
    d = study[0]
    for name in ("speaker", "stereo"):
        with audio.ffmpeg_portable_kernels():
            portable = audio._decode(d / f"{name}.mp4", 16000, 120.0)
        assert np.array_equal(decode_audio(d / f"{name}.mp4", 16000, 120.0).samples, portable.samples)


def test_report_counts_everything(study):
    report = study[2].report
    assert report["listed"] == report["videos"] == 5
    assert (report["with_audio"], report["without_audio"]) == (4, 1)
    assert (report["measured"], report["no_voice"], report["no_audio"], report["failed"]) == (2, 1, 1, 1)
    assert report["processed"] == 5 and report["cache_hits"] == 0
    assert report["seconds_per_clip"]["praat"] > 0
    assert json.loads((study[2].out_dir / "voice_report.json").read_text())["measured"] == 2


def test_a_rerun_is_served_from_the_cache_byte_for_byte(study, tmp_path):
    d, ingest, first = study
    again = voice.run(CFG, ingest, tmp_path / "out", d / "cache")
    assert again.report["cache_hits"] == 5 and again.report["processed"] == 0
    assert digest(tmp_path / "out" / "voice.parquet") == digest(first.out_dir / "voice.parquet")
    changed = voice.run(CFG.model_copy(update={"f0_min_hz": 60.0}), ingest, tmp_path / "other", d / "cache")
    assert changed.report["cache_hits"] == 0  # a param that shapes the measures is in the key


def test_workers_and_shards_give_the_same_table(study, tmp_path):
    d, ingest, first = study
    parallel = voice.run(VoiceConfig(workers=2), ingest, tmp_path / "parallel", tmp_path / "cache")
    assert parallel.report["processed"] == 5
    assert digest(parallel.out_dir / "voice.parquet") == digest(first.out_dir / "voice.parquet")
    shards = [voice.run(CFG, ingest, tmp_path / f"shard{i}", d / "cache", i, 2) for i in range(2)]
    assert [len(s.table) for s in shards] == [3, 2]
    gathered = voice.gather([s.out_dir for s in shards], tmp_path / "gathered")
    assert digest(gathered.out_dir / "voice.parquet") == digest(first.out_dir / "voice.parquet")
    assert gathered.report["videos"] == 5 and gathered.report["cache_hits"] == 5
    with pytest.raises(UserError, match="more than one shard"):
        voice.gather([shards[0].out_dir, shards[0].out_dir], tmp_path / "twice")
    with pytest.raises(UserError, match="shard 2 of 2"):
        voice.run(CFG, ingest, tmp_path / "nope", None, 2, 2)


def test_egemaps_adds_its_88_functionals(study, tmp_path):
    d, ingest, first = study
    result = voice.run(CFG.model_copy(update={"egemaps": True}), ingest, tmp_path / "eg", d / "cache")
    table = result.table.set_index("video_id")
    egemaps = [c for c in table.columns if c.startswith("egemaps_")]
    assert len(egemaps) == 88 and list(table.columns[: -len(egemaps)]) == list(first.table.columns[1:])
    assert table.loc[["speaker", "stereo"], egemaps].notna().all().all()
    assert table.loc[["silent", "room", "broken"], egemaps].isna().all().all()
    # eGeMAPS' own pitch (semitones above 27.5 Hz) agrees with the 210 Hz voice written
    assert table.loc["stereo", "egemaps_F0semitoneFrom27.5Hz_sma3nz_amean"] == pytest.approx(
        12 * np.log2(210.0 / 27.5), abs=0.5
    )
    assert result.report["seconds_per_clip"]["egemaps"] > 0 and result.report["cache_hits"] == 0


def test_cli_prints_the_counts(study, tmp_path, repo_root):
    d, ingest, _ = study
    res = CliRunner().invoke(
        _app,
        ["voice", "--ingest", str(ingest), "--out", str(tmp_path / "v"), "--cache", str(d / "cache"),
         "--params", str(repo_root / "params.yaml")],
    )  # fmt: skip
    assert res.exit_code == 0, res.output
    text = " ".join(res.output.split())
    assert "2 measured, 1 without audio, 1 without voiced speech, 1 failed (unreadable_audio 1)" in text
    assert pd.read_parquet(tmp_path / "v" / "voice.parquet")["video_id"].tolist() == [
        "broken", "room", "silent", "speaker", "stereo",
    ]  # fmt: skip


def test_a_missing_ingest_table_is_a_user_error(tmp_path):
    with pytest.raises(UserError, match="hypomimia ingest"):
        voice.run(CFG, tmp_path / "nowhere", tmp_path / "out")
