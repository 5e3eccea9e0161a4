"""Voice activity and voice measures on synthetic signals with a known answer (no files, no video)."""

import numpy as np
import pytest
from pydantic import ValidationError

from hypomimia.config.voice import VoiceConfig
from hypomimia.voice import activity
from hypomimia.voice.features import MEASURE_GRID, in_segments, praat_measures
from tests.helpers_voice import tone_burst, vowel

SR = 16000
CFG = VoiceConfig()

# F1, F2 (Hz) of the corner vowels
CORNERS = {"a": (800, 1200), "i": (300, 2300), "u": (320, 800)}


def measures(x: np.ndarray, cfg: VoiceConfig = CFG) -> dict:
    return praat_measures(x, SR, activity.detect(x, SR, cfg), cfg)


def test_silence_and_noise_hold_no_voice():
    for x in (np.zeros(3 * SR), 0.05 * np.random.default_rng(0).standard_normal(3 * SR)):
        found = activity.detect(x, SR, CFG)
        assert found.segments == () and found.voiced_share == 0.0 and found.span is None


@pytest.mark.parametrize("noise", [0.0, 0.003])  # 0.003 RMS: -50 dB, a quiet room
def test_a_tone_burst_is_found_where_it_is(noise):
    found = activity.detect(tone_burst(SR, seconds=3.0, start=1.0, end=2.0, noise=noise), SR, CFG)
    assert len(found.segments) == 1
    start, end = found.segments[0]
    assert abs(start - 1.0) <= 0.03 and abs(end - 2.0) <= 0.03
    assert found.voiced_share == pytest.approx(1 / 3, abs=0.02)


def test_a_faint_burst_below_the_floor_is_not_voice():
    quiet = tone_burst(SR, amplitude=0.001)  # -63 dB re full scale, under vad_floor_dbfs -55
    assert activity.detect(quiet, SR, CFG).segments == ()
    assert activity.detect(quiet, SR, CFG.model_copy(update={"vad_floor_dbfs": -80.0})).segments != ()


def test_a_long_clip_is_read_in_blocks_without_seams():
    x = tone_burst(SR, seconds=15.0, start=2.0, end=3.0) + tone_burst(SR, seconds=15.0, start=9.9, end=10.2)
    found = activity.detect(x, SR, CFG)  # 1,500 frames: two blocks, the second burst across their seam
    assert [(round(a, 1), round(b, 1)) for a, b in found.segments] == [(2.0, 3.0), (9.9, 10.2)]


def test_short_gaps_are_joined_and_blips_dropped():
    x = (
        tone_burst(SR, start=0.5, end=1.0)
        + tone_burst(SR, start=1.03, end=1.5)
        + tone_burst(SR, start=2.0, end=2.03)
    )
    assert [(round(a, 1), round(b, 1)) for a, b in activity.detect(x, SR, CFG).segments] == [(0.5, 1.5)]


def test_f0_sd_in_semitones_and_intensity_match_the_known_voice():
    known_sd = 2.0 / np.sqrt(2)  # vibrato of +-2 semitones
    m = measures(vowel(SR, seconds=4.0, f0_hz=120.0, vibrato_st=2.0, vibrato_hz=0.5, rms_db=70.0))
    assert m["f0_sd_st"] == pytest.approx(known_sd, rel=0.10)
    assert m["f0_mean_hz"] == pytest.approx(
        120.0 * np.mean(2 ** (2 * np.sin(np.linspace(0, 4 * np.pi, 999)) / 12)), rel=0.02
    )
    assert abs(m["intensity_db"] - 70.0) <= 1.0


def test_a_quieter_monotonous_voice_reads_quieter_and_flatter():
    loud = measures(vowel(SR, seconds=4.0, vibrato_st=3.0, rms_db=75.0))
    quiet = measures(vowel(SR, seconds=4.0, vibrato_st=1.0, rms_db=62.0))
    assert abs((loud["intensity_db"] - quiet["intensity_db"]) - 13.0) <= 1.0  # hypophonia
    assert quiet["f0_sd_st"] == pytest.approx(1.0 / np.sqrt(2), rel=0.10)  # monopitch
    assert loud["f0_sd_st"] == pytest.approx(3.0 / np.sqrt(2), rel=0.10)


def test_breath_noise_lowers_hnr():
    clean = vowel(SR, seconds=3.0)
    breathy = clean + 0.3 * np.sqrt(np.mean(clean**2)) * np.random.default_rng(1).standard_normal(len(clean))
    assert measures(breathy)["hnr_db"] < measures(clean)["hnr_db"] - 5.0


def corner_vowels(pull: float) -> np.ndarray:
    """/a/ /i/ /u/, 0.6 s each, formants pulled ``pull`` of the way to schwa (500, 1500 Hz)."""
    parts = []
    for f1, f2 in CORNERS.values():
        f1, f2 = f1 + pull * (500 - f1), f2 + pull * (1500 - f2)
        formants = ((f1, 80.0), (f2, 100.0), (2600.0, 120.0), (3300.0, 150.0))
        parts.append(vowel(SR, seconds=0.6, vibrato_st=0.5, formants=formants))
    return np.concatenate(parts)


def test_a_centralised_vowel_space_is_smaller():
    spread, central = (
        measures(corner_vowels(0.0))["vowel_space_hz2"],
        measures(corner_vowels(0.5))["vowel_space_hz2"],
    )
    # halving every distance to schwa quarters the area (sqrt det of the F1/F2 covariance)
    assert central / spread == pytest.approx(0.25, abs=0.08)


def test_speech_rate_counts_syllables():
    m = measures(vowel(SR, seconds=4.0, vibrato_st=1.0, syllables_per_s=4.0))
    assert m["speech_rate_syl_s"] == pytest.approx(4.0, rel=0.10)


def test_measures_are_deterministic_and_on_the_grid():
    x = vowel(SR, seconds=2.0, syllables_per_s=3.0)
    first, again = measures(x), measures(x.copy())
    assert first == again
    assert all(v is not None and float(v * MEASURE_GRID).is_integer() for v in first.values())


def test_too_little_voice_gives_no_measures_not_nonsense():
    x = tone_burst(SR, seconds=1.0, start=0.0, end=0.0)  # silence
    m = measures(x)
    assert set(m.values()) == {None}


def test_in_segments():
    t = np.array([0.0, 0.5, 1.0, 1.5, 2.5, 3.0])
    assert in_segments(t, ((0.5, 1.0), (2.5, 2.6))).tolist() == [False, True, True, False, True, False]
    assert not in_segments(t, ()).any()


def test_config_refuses_an_empty_pitch_range_and_formants_above_nyquist():
    with pytest.raises(ValidationError, match="f0_min_hz"):
        VoiceConfig(f0_min_hz=300.0, f0_max_hz=200.0)
    with pytest.raises(ValidationError, match="Nyquist"):
        VoiceConfig(sample_rate=8000, formant_ceiling_hz=5500.0)


def test_measuring_egemaps_leaves_pyyaml_sorting_keys():
    """openSMILE's import chain (audformat -> oyaml) re-registers PyYAML's dict representer process-wide;
    KFP's compiler then wrote the pipeline packages in another key order (a CI failure, 2026-12-07)."""
    import subprocess
    import sys

    code = (
        "import yaml\n"
        "from hypomimia.voice.features import egemaps_names\n"
        "assert len(egemaps_names()) == 88\n"
        "print(yaml.safe_dump({'b': 1, 'a': 2}) + yaml.dump({'d': 1, 'c': 2}), end='')\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout == "a: 2\nb: 1\nc: 2\nd: 1\n"
