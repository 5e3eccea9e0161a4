"""Audio facts of the probe on tiny mp4 files made here: H.264 video with an AAC track, or without one."""

import math

import numpy as np
import pytest

from hypomimia.data.probe import CLIP_LEVEL, audio_problem, probe
from tests.helpers_ingest import encode, encode_audio, tone

VIDEO_S = 1.2  # 12 frames at 10 fps
AAC_FRAME_S = 1024 / 16000  # the encoder pads the last AAC frame


def voiced(tmp_path, audio: np.ndarray, name: str = "v.mp4", rate: int = 16000):
    return probe(encode(tmp_path / name, 12, fps=10, audio=audio, audio_rate=rate))


def test_tone_facts(tmp_path):
    p = voiced(tmp_path, tone(VIDEO_S, dbfs=-20))
    assert (p.problem, p.audio_error, p.has_audio) == ("", "", True)
    assert (p.audio_codec, p.audio_sample_rate, p.audio_channels) == ("aac", 16000, 1)
    assert VIDEO_S <= p.audio_duration_s <= VIDEO_S + AAC_FRAME_S
    # A -20 dBFS 997 Hz sine reads -23.01 LUFS; AAC at 16 kHz keeps it within 0.1 (measured -22.97).
    assert p.audio_loudness_lufs == pytest.approx(-23.0, abs=0.1)
    assert -20.5 < p.audio_peak_dbfs < -18.5  # AAC rings a little over the sine's peak (measured -18.9)
    assert p.audio_clipped_share == 0.0
    assert (p.decoded_frames, p.duration_s) == (12, pytest.approx(VIDEO_S)), "the video facts are unchanged"


def test_stereo_48k_sums_both_channels(tmp_path):
    p = voiced(tmp_path, tone(VIDEO_S, 48000, dbfs=-20, channels=2), rate=48000)
    assert (p.audio_sample_rate, p.audio_channels) == (48000, 2)
    assert p.audio_loudness_lufs == pytest.approx(-23.01 + 3.01, abs=0.1)  # two equal channels: +3 dB


def test_interleaved_16_bit_pcm_reads_exact_levels(tmp_path):
    # Lossless and packed (L R L R ...), integer samples: no codec ringing, so the meter's own accuracy shows.
    audio = tone(VIDEO_S, 48000, dbfs=-20, channels=2)
    path = encode(
        tmp_path / "pcm.mov", 12, audio=audio, audio_rate=48000, audio_codec="pcm_s16le", container="mov"
    )
    p = probe(path)
    assert (p.audio_codec, p.audio_channels, p.audio_duration_s) == ("pcm_s16le", 2, VIDEO_S)
    assert p.audio_loudness_lufs == pytest.approx(-20.0, abs=0.01)  # -23.01 per channel, +3.01 for two
    assert p.audio_peak_dbfs == pytest.approx(-20.0, abs=0.01)


def test_video_without_audio_has_no_audio_facts(tmp_path):
    p = probe(encode(tmp_path / "silent_film.mp4", 12))
    assert not p.has_audio and p.problem == ""
    assert (p.audio_codec, p.audio_sample_rate, p.audio_channels, p.audio_error) == ("", 0, 0, "")
    assert all(math.isnan(v) for v in (p.audio_duration_s, p.audio_loudness_lufs, p.audio_peak_dbfs))


def test_clipped_track(tmp_path):
    # A sine driven 10 dB past full scale and clipped, as an overloaded microphone input records it.
    # AAC turns the flat tops into ripple (measured: 78 % of samples above 0.9, 2.6 % at 0.999 or more).
    p = voiced(tmp_path, np.clip(tone(VIDEO_S, dbfs=10), -1, 1))
    assert p.audio_clipped_share > 0.01
    assert p.audio_peak_dbfs > 20 * math.log10(CLIP_LEVEL)
    assert p.audio_loudness_lufs > -3


def test_silent_track(tmp_path):
    p = voiced(tmp_path, np.zeros((1, 16000 * 2), np.float32))
    assert p.has_audio and p.audio_error == ""
    assert p.audio_loudness_lufs == -math.inf and p.audio_peak_dbfs == -math.inf
    assert p.audio_clipped_share == 0.0


def test_audio_shorter_than_the_video(tmp_path):
    p = voiced(tmp_path, tone(0.4))
    assert 0.4 <= p.audio_duration_s <= 0.4 + AAC_FRAME_S
    assert p.duration_s == pytest.approx(VIDEO_S)


def test_unknown_audio_codec_is_a_fact_not_a_problem(tmp_path):
    good = encode(tmp_path / "good.mp4", 12, fps=10, audio=tone(VIDEO_S))
    data = bytearray(good.read_bytes())
    # Rename the sample entry and hide its decoder config: FFmpeg no longer knows the codec.
    for old, new in ((b"mp4a", b"xq7z"), (b"esds", b"free")):
        at = data.index(old)
        data[at : at + 4] = new
    odd = tmp_path / "odd_audio.mp4"
    odd.write_bytes(bytes(data))
    p = probe(odd)
    assert p.problem == "" and p.decoded_frames == 12, "the video is still fine"
    assert p.has_audio and p.audio_error == "the audio codec is unknown to FFmpeg"
    assert math.isnan(p.audio_loudness_lufs)


def test_audio_only_file_keeps_its_reason_and_header_facts(tmp_path):
    p = probe(encode_audio(tmp_path / "memo.m4a"))
    assert p.problem == "audio_only"
    assert (p.audio_codec, p.audio_sample_rate, p.audio_channels) == ("aac", 16000, 1)


LIMITS = {"section": "ingest", "min_audio_ratio": 0.8, "min_loudness_lufs": -60.0, "max_clipped_share": 0.01}


def test_audio_problem_names_each_reason_with_the_finding_and_the_knob(tmp_path):
    cases = {
        "": tone(VIDEO_S),
        "audio_silent": np.zeros((1, 19200), np.float32),
        "audio_clipped": np.clip(tone(VIDEO_S, dbfs=10), -1, 1),
        "audio_too_short": tone(0.4),
    }
    for expected, audio in cases.items():
        reason, detail = audio_problem(voiced(tmp_path, audio, f"{expected}.mp4"), **LIMITS)
        assert reason == expected, detail
    reason, detail = audio_problem(probe(encode(tmp_path / "mute.mp4", 12)), **LIMITS)
    assert reason == "no_audio" and "ingest.require_audio" in detail
    _, detail = audio_problem(voiced(tmp_path, tone(0.4), "short.mp4"), **LIMITS)
    assert "ingest.min_audio_ratio" in detail and "0.45 s of audio in 1.20 s of video" in detail
    quiet = voiced(tmp_path, tone(VIDEO_S, dbfs=-50), "quiet.mp4")  # -53 LUFS
    reason, detail = audio_problem(quiet, **{**LIMITS, "min_loudness_lufs": -40.0})
    assert (
        reason == "audio_silent"
        and "-53.0 LUFS" in detail
        and "ingest.min_loudness_lufs (-40 LUFS)" in detail
    )
