"""Voice measures of real talking-head clips (../shared/realfaces, read in place; skipped where absent)."""

import pytest

from hypomimia.config.validate import ValidateConfig
from hypomimia.config.voice import VoiceConfig
from hypomimia.voice.clip import measure_video

TALKING_HEADS = ("lp_d20.mp4", "st_WDA_AlexandriaOcasioCortez_000.mp4", "vr_face_1.mp4")


@pytest.mark.parametrize("name", TALKING_HEADS)
def test_a_talking_head_reads_as_speech_inside_the_gate(realfaces_dir, name):
    row = measure_video(realfaces_dir / name, VoiceConfig())
    gate = ValidateConfig()
    assert row["has_audio"] and row["status"] == "measured" and row["audio_codec"] == "aac"
    assert 0.3 < row["voiced_share"] < 0.95  # speech, with pauses and voiceless sounds between
    assert gate.voice_f0_range_hz[0] <= row["f0_mean_hz"] <= gate.voice_f0_range_hz[1]
    assert 1.0 < row["f0_sd_st"] < 8.0  # intonation, neither a monotone nor octave errors
    assert gate.voice_intensity_range_db[0] <= row["intensity_db"] <= gate.voice_intensity_range_db[1]
    assert gate.voice_hnr_range_db[0] <= row["hnr_db"] <= gate.voice_hnr_range_db[1]
    assert 2.0 < row["speech_rate_syl_s"] < 6.0  # conversational speech: 3-5 syllables a second
    assert row["vowel_space_hz2"] > 5000


def test_the_same_clip_gives_the_same_row(realfaces_dir):
    first, again = (measure_video(realfaces_dir / "lp_d20.mp4", VoiceConfig()) for _ in range(2))
    timing = ("seconds", "praat_s")
    assert {k: v for k, v in first.items() if k not in timing} == {
        k: v for k, v in again.items() if k not in timing
    }
