"""The recording facts (SNR, power above 4 kHz), the microphone change that moves them, and what the
endpoint logs of an upload's sound: synthetic voices with a known answer (a few seconds)."""

import numpy as np
import pytest
from scipy.signal import butter, sosfilt

from hypomimia.config.voice import VoiceConfig
from hypomimia.data.probe import probe
from hypomimia.inference.predictor import audio_facts
from hypomimia.phantom.microphone import MicrophoneChange, voiced_power
from hypomimia.voice import activity
from hypomimia.voice.clip import listen, measure_video
from hypomimia.voice.recording import MAX_SNR_DB, hf_share_db, snr_db
from tests.helpers_voice import vowel, write_clip

SR = 16000
CFG = VoiceConfig()


def spoken(seconds=3.0, start=0.75, length=1.5, noise_snr_db=None, seed=0):
    """A sustained vowel from ``start`` for ``length`` s in silence, plus white noise at ``noise_snr_db``
    re the vowel's power (the definition snr_db estimates)."""
    x = np.zeros(int(seconds * SR))
    voice = vowel(SR, seconds=length, f0_hz=180.0, rms_db=70.0)
    x[int(start * SR) : int(start * SR) + len(voice)] = voice
    if noise_snr_db is not None:
        noise = np.random.default_rng(seed).standard_normal(len(x))
        x = x + noise * np.sqrt(np.mean(voice**2) / 10 ** (noise_snr_db / 10))
    return x


def facts(x):
    found = activity.detect(x, SR, CFG)
    return snr_db(found, CFG), hf_share_db(x, SR, found)


@pytest.mark.parametrize("truth", [10.0, 20.0, 30.0])
def test_snr_reads_the_noise_added(truth):
    assert facts(spoken(noise_snr_db=truth))[0] == pytest.approx(truth, abs=1.0)


def test_snr_without_pauses_is_unknown_and_digital_silence_is_the_cap():
    assert facts(spoken(seconds=1.6, start=0.05, length=1.5, noise_snr_db=20.0))[0] is None  # no room to hear
    assert facts(spoken())[0] == MAX_SNR_DB  # pauses of digital silence (a noise gate)


def test_a_low_pass_takes_the_high_band_down_and_noise_brings_it_up():
    clean = facts(spoken(noise_snr_db=40.0))[1]
    lowpass = sosfilt(butter(8, 3400.0, fs=SR, output="sos"), spoken(noise_snr_db=40.0))
    assert facts(lowpass)[1] < clean - 15.0
    assert facts(spoken(noise_snr_db=10.0))[1] > clean + 5.0


def test_the_microphone_change_is_the_change_it_names():
    x = np.round(spoken(noise_snr_db=40.0) * 32768) / 32768
    quieter = MicrophoneChange(gain_db=-12.0).apply(x, SR, "clip")
    assert 20 * np.log10(np.std(quieter) / np.std(x)) == pytest.approx(-12.0, abs=0.05)
    noisy = MicrophoneChange(noise_snr_db=10.0).apply(x, SR, "clip")
    assert facts(noisy)[0] == pytest.approx(10.0, abs=1.0)  # the estimate and the change agree
    assert np.array_equal(noisy, MicrophoneChange(noise_snr_db=10.0).apply(x, SR, "clip"))
    assert not np.array_equal(noisy, MicrophoneChange(noise_snr_db=10.0).apply(x, SR, "other clip"))
    assert voiced_power(x, SR) == pytest.approx(
        np.mean(vowel(SR, 1.5, f0_hz=180.0, rms_db=70.0) ** 2), rel=0.1
    )


def test_the_endpoint_logs_what_the_voice_stage_measures(tmp_path):
    """listen() (the endpoint's cheap path) gives the voice row's numbers for intensity, F0 and SNR;
    a clip without audio logs has_audio false and nothing else."""
    clip = write_clip(tmp_path / "speaker.mp4", audio=spoken(noise_snr_db=25.0), sample_rate=SR, seconds=3.0)
    row, heard = measure_video(clip, CFG), listen(clip, CFG)
    assert heard["status"] == row["status"] == "measured"
    for key in ("intensity_db", "f0_mean_hz", "f0_sd_st", "snr_db", "hf_share_db", "voiced_s"):
        assert heard[key] == row[key], key
    assert row["snr_db"] == pytest.approx(25.0, abs=1.5)
    logged = audio_facts(probe(clip), clip, CFG)
    assert logged["has_audio"] and logged["sample_rate"] == SR and logged["voice_status"] == "measured"
    assert logged["snr_db"] == row["snr_db"] and np.isfinite(logged["loudness_lufs"])
    # the endpoint with a voice model logs its row instead of listening again: the same record
    assert audio_facts(probe(clip), clip, CFG, measured=row) == logged
    silent = write_clip(tmp_path / "silent.mp4")
    assert audio_facts(probe(silent), silent, CFG) == {"has_audio": False}
    assert listen(silent, CFG)["status"] == "no_audio"
