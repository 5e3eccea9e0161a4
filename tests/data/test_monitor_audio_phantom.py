"""Audio drift known answers on phantom speech (issue 25): a new microphone raises an audio alarm,
fresh subjects recorded the same way do not, and video-only uploads skip the audio tests.

Reference: 8 phantom subjects (seed 0) x 1 speech clip with the phantom's voice, through ingest and
the voice stage, as `hypomimia monitor --voice` reads them. Windows: 6 fresh subjects (seed 1), their
clips logged as /predict logs them (probe + `predictor.audio_facts` -> the prediction log ->
`window.from_prediction_log`), as recorded or re-recorded by `phantom.microphone` (the video packets
copied, the sound changed). Only the audio columns are compared: the video is the same bytes.
docs/monitoring.md ("Audio drift") has the figures.
"""

import csv
from pathlib import Path

import av
import pytest

from hypomimia.config.ingest import IngestConfig
from hypomimia.config.monitor import MonitorConfig
from hypomimia.config.voice import VoiceConfig
from hypomimia.data.probe import probe
from hypomimia.inference import prediction_log as plog
from hypomimia.inference.predictor import audio_facts
from hypomimia.monitoring.decision import decide
from hypomimia.monitoring.drift import compare
from hypomimia.monitoring.window import audio_table, from_prediction_log
from hypomimia.phantom.microphone import CHANGES, apply_to_folder
from hypomimia.stages import ingest, phantom, voice
from tests.helpers_phantom import tiny

pytestmark = pytest.mark.slow  # ~25 s on the shared 2-core machine: 14 clips rendered, 5 windows logged
VOICE = VoiceConfig(workers=1)
CFG = MonitorConfig(min_window=5)
LOUDNESS, SNR, HIGH_BAND = "audio_loudness_lufs", "audio_snr_db", "audio_hf_share_db"


def _logged_window(folder: Path):
    """The clips of a phantom folder as the endpoint logs them, read back as the monitor's window."""
    for row in csv.DictReader((folder / "manifest.csv").open(encoding="utf-8")):
        video = folder / row["path"]
        record = plog.PredictionRecord(request_id=row["video_id"], outcome="ok", p_pd=0.5, label="control",
                                       subject_ref=row["subject_id"], audio=audio_facts(probe(video), video, VOICE))  # fmt: skip
        plog.append(record, folder / "log")
    return from_prediction_log(plog.read(folder / "log"))


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    root = tmp_path_factory.mktemp("audio_drift")
    ref = phantom.run(tiny(tasks=["speech"], subjects=8, seed=0), root / "ref", progress=False)
    phantom.run(tiny(tasks=["speech"], subjects=6, seed=1), root / "fresh", progress=False)
    ingest.run(IngestConfig(folds=2, workers=1), ref.manifest, root / "ref_ingest")
    voice.run(VOICE, root / "ref_ingest", root / "ref_voice")
    windows = {"same": _logged_window(root / "fresh")}
    for name, change in CHANGES.items():
        apply_to_folder(root / "fresh", root / name, change)
        windows[name] = _logged_window(root / name)
    return {
        "root": root,
        "reference": audio_table(root / "ref_ingest", root / "ref_voice"),
        "windows": windows,
    }


def judge(study, name):
    summary = compare(study["reference"], study["windows"][name], CFG).summary
    return summary, decide(summary, CFG)


def test_fresh_subjects_with_the_same_microphone_raise_no_alarm(study):
    summary, d = judge(study, "same")
    audio = summary["audio"]
    assert d.outcome == "ok" and audio["skipped"] == ""
    # 16 kHz everywhere, nothing clipped, every clip with audio: shown, not tested
    assert {c for c, v in audio["columns"].items() if v["tested"]} == {LOUDNESS, SNR, HIGH_BAND}
    assert all(audio["columns"][c]["p_value"] > 0.2 for c in (LOUDNESS, SNR, HIGH_BAND))


@pytest.mark.parametrize(
    ("change", "outcome", "drivers"),
    [
        ("gain", "warn", [LOUDNESS]),  # -12 dB: quieter, the SNR and the band unchanged
        ("noise", "retrain", [SNR, HIGH_BAND]),  # white noise at 10 dB SNR: also fills the band above 4 kHz
        ("lowpass", "warn", [HIGH_BAND]),  # 3.4 kHz: loudness and SNR barely move, the high band drops
        ("microphone", "retrain", [LOUDNESS, SNR, HIGH_BAND]),  # all three together
    ],
)
def test_a_new_microphone_raises_an_audio_alarm(study, change, outcome, drivers):
    summary, d = judge(study, change)
    assert (d.outcome, d.drivers) == (outcome, drivers), d.reasons
    columns = summary["audio"]["columns"]
    for col in drivers:
        assert columns[col]["p_value"] < summary["per_test_alpha"]


def test_the_measured_change_is_the_change_made(study):
    """The window's medians move by what phantom.microphone did: -12 LU, an SNR of ~10 dB, the high band down."""
    same = judge(study, "same")[0]["audio"]["columns"]
    gain, noise, lowpass = (judge(study, n)[0]["audio"]["columns"] for n in ("gain", "noise", "lowpass"))
    shift = gain[LOUDNESS]["current_median"] - same[LOUDNESS]["current_median"]
    assert shift == pytest.approx(-12.0, abs=0.5)
    assert noise[SNR]["current_median"] == pytest.approx(10.0, abs=1.5)
    assert lowpass[HIGH_BAND]["current_median"] < same[HIGH_BAND]["current_median"] - 15.0


def test_the_microphone_change_leaves_the_video_as_it_was(study):
    root = study["root"]
    for name in ("fresh", "microphone"):
        with av.open(str(root / name / "videos" / "ph_s000_v00.mp4")) as container:
            packets = [bytes(p) for p in container.demux(container.streams.video[0]) if p.size]
        if name == "fresh":
            original = packets
    assert packets == original


def test_a_window_of_video_only_clips_skips_the_audio_tests_with_the_reason(study):
    summary, d = judge(study, "off")
    audio = summary["audio"]
    assert audio["skipped"].startswith("too few clips with audio: window 0 clips of 0 subjects have audio")
    assert not {LOUDNESS, SNR, HIGH_BAND} & set(audio["columns"])
    # the sound track itself is gone from every upload: the share of clips with audio says so
    assert d.outcome == "warn" and d.drivers == ["audio_share"]
