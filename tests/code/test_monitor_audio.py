"""Audio drift (issue 25) on synthetic window tables: which audio tests run, which fire, what the
decision makes of them, what is skipped and why; the prediction log's audio facts, old logs
included. No video (~10 s). The phantom known answers: tests/data/test_monitor_audio_phantom.py."""

import json
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from hypomimia.config.monitor import MonitorConfig
from hypomimia.inference import prediction_log as plog
from hypomimia.monitoring.audio import NO_VOICE_STREAM
from hypomimia.monitoring.decision import decide
from hypomimia.monitoring.drift import compare, headline_html
from hypomimia.monitoring.window import from_prediction_log

CFG = MonitorConfig(min_window=5)


def clips(subjects, per_subject, seed, lufs=-30.0, snr=30.0, rate=16000, audio=True, blur=200.0, voice=None):
    """``subjects`` x ``per_subject`` clips; each subject has its own level and room (clips of one
    person share them), blur as the one video column."""
    rng = np.random.default_rng(seed)
    rows = []
    for s in range(subjects):
        level, room, b = rng.normal(lufs, 3), rng.normal(snr, 3), rng.normal(blur, 30)
        for c in range(per_subject):
            heard = audio if not callable(audio) else audio(s, c)
            row = {"video_id": f"{seed}_{s}_{c}", "subject_ref": f"S{seed}_{s}", "blur_mean": b + rng.normal(0, 3),
                   "has_audio": heard, "audio_sample_rate": rate if heard else np.nan,
                   "audio_loudness_lufs": level + rng.normal(0, 1) if heard else np.nan,
                   "audio_snr_db": room + rng.normal(0, 1) if heard else np.nan,
                   "audio_clipped_share": 0.0 if heard else np.nan}  # fmt: skip
            if voice is not None:
                row["p_pd_voice"] = float(np.clip(rng.normal(voice, 0.1), 0, 1)) if heard else np.nan
            rows.append(row)
    return pd.DataFrame(rows)


@pytest.fixture(scope="module")
def reference():
    return clips(30, 2, seed=0)


def run(reference, current, cfg=CFG):
    out = compare(reference, current, cfg)
    return out.summary, decide(out.summary, cfg)


def test_the_same_microphone_is_ok_and_the_audio_tests_join_the_family(reference):
    summary, d = run(reference, clips(6, 3, seed=1))
    assert d.outcome == "ok"
    audio = summary["audio"]
    # blur + loudness + SNR; clipping (0 everywhere), the sample rate and the share (all 16 kHz, all
    # with audio) are constant and equal: shown, not tested
    assert (
        audio["tests"] == 2 and summary["tests"] == 3 and summary["per_test_alpha"] == pytest.approx(0.05 / 3)
    )
    assert {c for c, v in audio["columns"].items() if v["tested"]} == {"audio_loudness_lufs", "audio_snr_db"}
    assert "constant and equal" in audio["columns"]["audio_sample_rate"]["note"]
    assert audio["counts"]["current"] == {"clips_known": 18, "clips_with_audio": 18, "subjects_with_audio": 6}


def test_one_drifted_fact_warns_a_new_microphone_retrains(reference):
    summary, d = run(reference, clips(6, 3, seed=2, lufs=-42.0))
    assert d.outcome == "warn" and d.drivers == ["audio_loudness_lufs"]
    assert d.reasons[0].startswith("audio_loudness_lufs: median -3") and "-4" in d.reasons[0]
    summary, d = run(reference, clips(6, 3, seed=3, lufs=-42.0, snr=12.0))
    assert d.outcome == "retrain" and d.drivers == ["audio_loudness_lufs", "audio_snr_db"]
    assert summary["audio"]["columns"]["audio_snr_db"]["p_value"] < summary["per_test_alpha"]


def test_a_new_sample_rate_is_a_share_test(reference):
    summary, d = run(reference, clips(6, 3, seed=4, rate=8000))
    v = summary["audio"]["columns"]["audio_sample_rate"]
    assert v["tested"] and v["drifted"] and v["current_shares"] == {"8000": 1.0}
    assert d.drivers == ["audio_sample_rate"] and "{'16000': 1.0} -> {'8000': 1.0}" in d.reasons[0]


def test_too_few_subjects_with_audio_skip_the_audio_tests_with_the_reason(reference):
    summary, d = run(reference, clips(3, 4, seed=5))
    audio = summary["audio"]
    assert d.outcome == "ok" and audio["tests"] == 0 and summary["tests"] == 1  # blur only
    assert audio["skipped"].startswith("too few clips with audio: window 12 clips of 3 subjects")
    assert "monitor.audio_min_subjects is 5" in audio["skipped"]
    cfg = CFG.model_copy(update={"audio_min_subjects": 3})
    assert compare(reference, clips(3, 4, seed=5), cfg).summary["audio"]["skipped"] == ""


def test_uploads_that_lost_their_sound_are_a_finding_not_a_skip(reference):
    """Video-only clips: the tests over clips with audio are skipped; the share of clips with audio
    (every subject: 100 % -> 0 %) drifts."""
    summary, d = run(reference, clips(6, 3, seed=6, audio=False))
    audio = summary["audio"]
    assert "window 0 clips of 0 subjects have audio" in audio["skipped"]
    assert audio["tests"] == 1 and audio["columns"]["audio_share"]["drifted"]
    assert d.outcome == "warn" and d.drivers == ["audio_share"] and "100% -> 0%" in d.reasons[0]
    # against a video-only reference, a video-only window is no finding: nothing to test
    summary, d = run(clips(30, 2, seed=7, audio=False), clips(6, 3, seed=6, audio=False))
    assert d.outcome == "ok" and summary["audio"]["tests"] == 0
    assert summary["audio"]["columns"]["audio_share"]["tested"] is False


def test_only_clips_with_audio_count_and_unknown_is_not_silent(reference):
    # Half of each subject's clips are silent: their missing loudness is not a drift, the share is.
    half = clips(6, 4, seed=8, audio=lambda s, c: c % 2 == 0)
    summary, _ = run(reference, half)
    audio = summary["audio"]
    assert audio["counts"]["current"]["clips_with_audio"] == 12
    assert not audio["columns"]["audio_loudness_lufs"]["drifted"]
    assert audio["columns"]["audio_share"]["current_share"] == 0.5
    # has_audio unknown (a log written before issue 25): no share test, no audio test
    old = clips(6, 3, seed=9).assign(has_audio=None)
    audio = run(reference, old)[0]["audio"]
    assert audio["tests"] == 0 and "window records no audio facts" in audio["not_tested"]["audio_share"]


def test_without_the_voice_table_snr_is_not_tested_and_the_reason_says_so(reference):
    summary, _ = run(reference.drop(columns="audio_snr_db"), clips(6, 3, seed=10))
    assert "hypomimia monitor --voice" in summary["audio"]["not_tested"]["audio_snr_db"]


def test_the_voice_model_outputs_are_model_drift_a_shift_retrains():
    """Known answer: a window whose voice P(PD) moved (0.3 -> 0.8 for every subject) retrains on
    p_pd_voice alone; the same window unshifted is tested and raises nothing."""
    ref = clips(30, 2, seed=11, voice=0.3)
    summary, d = run(ref, clips(6, 3, seed=12, voice=0.3))
    v = summary["audio"]["columns"]["p_pd_voice"]
    assert v["kind"] == "voice_model" and v["tested"] and not v["drifted"] and d.outcome == "ok"
    assert summary["tests"] == 4 and summary["audio"]["tests"] == 3  # blur, loudness, SNR, p_pd_voice
    assert summary["audio"]["voice_model"] == {
        "tested": True, "skipped": "", "note": "",
        "counts": {"reference": {"clips_with_voice_p": 60, "subjects_with_voice_p": 30},
                   "current": {"clips_with_voice_p": 18, "subjects_with_voice_p": 6}},
    }  # fmt: skip
    summary, d = run(ref, clips(6, 3, seed=13, voice=0.8))
    v = summary["audio"]["columns"]["p_pd_voice"]
    assert v["drifted"] and v["p_value"] < summary["per_test_alpha"]
    assert v["reference_median"] == pytest.approx(0.3, abs=0.05)
    assert v["current_median"] == pytest.approx(0.8, abs=0.1)
    assert d.outcome == "retrain" and d.drivers == ["p_pd_voice"]  # model-side: one is enough
    assert "voice model's outputs moved" in d.reasons[0]


def test_the_voice_outputs_count_their_own_subjects_not_has_audio():
    """Only clips with a voice P(PD) count; has_audio unknown (an ingest from before issue 25) skips the
    audio facts, not the voice model's outputs."""
    ref = clips(30, 2, seed=11, voice=0.3).assign(has_audio=None)
    summary, d = run(ref, clips(6, 3, seed=13, voice=0.8))
    assert summary["audio"]["skipped"].startswith("too few clips with audio: reference 0 clips")
    assert summary["audio"]["tests"] == 1 and d.drivers == ["p_pd_voice"]
    # half the window's clips unheard by the voice stream (no voiced speech): the others still test it
    half = clips(6, 4, seed=12, voice=0.3)
    half.loc[half.index % 2 == 1, "p_pd_voice"] = np.nan
    summary, _ = run(clips(30, 2, seed=11, voice=0.3), half)
    counts = summary["audio"]["voice_model"]["counts"]["current"]
    assert counts == {"clips_with_voice_p": 12, "subjects_with_voice_p": 6}
    assert summary["audio"]["columns"]["p_pd_voice"]["tested"]


def test_a_log_without_voice_p_skips_the_voice_test_with_the_reason():
    ref = clips(30, 2, seed=11, voice=0.3)
    # a voice model's log whose uploads had no voiced speech: the window has no voice P(PD)
    summary, d = run(ref, clips(6, 3, seed=12, voice=0.3).assign(p_pd_voice=np.nan))
    voice = summary["audio"]["voice_model"]
    assert not voice["tested"] and "p_pd_voice" not in summary["audio"]["columns"] and d.outcome == "ok"
    assert voice["skipped"].startswith("too few subjects with a voice P(PD): window 0 clips of 0 subjects")
    assert "monitor.audio_min_subjects is 5" in voice["skipped"]
    assert summary["audio"]["not_tested"]["p_pd_voice"] == voice["skipped"]
    assert summary["tests"] == 3  # it left the family
    assert "Voice model: too few subjects" in headline_html(d.as_dict(), summary)
    # a reference scored without its voice table: the reason names the fix
    summary, _ = run(ref.drop(columns="p_pd_voice"), clips(6, 3, seed=12, voice=0.3))
    assert "reference 0 clips of 0 subjects" in summary["audio"]["voice_model"]["skipped"]
    assert "hypomimia monitor --voice" in summary["audio"]["voice_model"]["skipped"]


def test_no_voice_p_on_either_side_is_a_model_without_a_voice_stream(reference):
    summary, d = run(reference, clips(6, 3, seed=12).assign(p_pd_voice=np.nan))
    voice = summary["audio"]["voice_model"]
    assert voice["note"] == NO_VOICE_STREAM and not voice["tested"] and not voice["skipped"]
    assert summary["audio"]["not_tested"]["p_pd_voice"] == NO_VOICE_STREAM and d.outcome == "ok"
    assert "Voice model" not in headline_html(d.as_dict(), summary)


def _served_with_voice():
    """A model with the voice stream, set by hand (quieter: PD), and a net that gives every clip the same
    video margin: what the Scorer and the endpoint both run."""
    import torch

    from hypomimia.config.facetubes import FacetubesConfig
    from hypomimia.config.voice import VoiceConfig
    from hypomimia.inference import predictor as pr
    from hypomimia.models.fusion import VoiceFusion, VoiceStream
    from hypomimia.voice.schema import FEATURE_VERSION

    def forward_all(x):
        n = x.shape[0]
        return {"logits": torch.tensor([[0.0, 0.4]]).repeat(n, 1), "embedding": torch.ones(n, 3)}

    stream = VoiceStream(("intensity_db",), (70.0,), (5.0,), (-1.0,), 0.0, 1.0, FEATURE_VERSION)
    fusion = VoiceFusion(0.0, 1.0, 0.0, 1.0, visual_coef=1.0, voice_coef=1.0, bias=0.0, visual_temperature=1.0,
                         c=1.0, method="stacking", voiced_subjects={})  # fmt: skip
    return pr.ServedModel(
        net=SimpleNamespace(forward_all=forward_all), labels=("control", "pd"), frames=4, stride=1, size=8,
        clips_per_video=2, temperature=1.0, abstain_band=0.1, face_tubes=FacetubesConfig(), metadata={},
        metrics={}, source=pr.ModelSource("m", None, None, "here"), folder=Path("."), voice_stream=stream,
        voice_fusion=fusion, voice_config=VoiceConfig(),
    )  # fmt: skip


def test_the_log_and_the_scorer_give_the_same_p_pd_voice(tmp_path):
    """The endpoint's answer -> log_modalities -> prediction log -> window table carries p_pd_voice; the
    Scorer (reference, batch) reads the same number for the same voice row; unheard clips are NaN, and a
    model without the voice stream gives no voice P(PD) at all."""
    from dataclasses import replace

    from hypomimia.inference import predictor as pr
    from hypomimia.monitoring.scoring import Scorer

    served = _served_with_voice()
    frames = np.zeros((12, 8, 8, 3), np.uint8)
    tubes = {}
    for vid in ("loud", "quiet", "silent"):
        tubes[vid] = tmp_path / f"{vid}.npz"
        np.savez(tubes[vid], frames=frames, fps=np.float32(25))
    rows = {"loud": {"video_id": "loud", "status": "measured", "intensity_db": 75.0},
            "quiet": {"video_id": "quiet", "status": "measured", "intensity_db": 60.0},
            "silent": {"video_id": "silent", "status": "no_audio", "intensity_db": None}}  # fmt: skip
    when = datetime(2026, 3, 1, tzinfo=UTC)
    for vid, row in rows.items():
        a = pr.answer(served, pr.forward(served, pr.clip_frames(frames, served)), None, row)
        plog.append(plog.PredictionRecord(request_id=vid, time=when, outcome="ok", p_pd=a["p_pd"],
                                          label=a["label"], **pr.log_modalities(a)), tmp_path / "log")  # fmt: skip
    logged = from_prediction_log(plog.read(tmp_path / "log")).set_index("video_id")["p_pd_voice"]
    # the voice stream's P(PD): sigmoid(-(intensity - 70) / 5); PD is quieter
    assert logged["loud"] == pytest.approx(1 / (1 + np.exp(1.0)))
    assert logged["quiet"] == pytest.approx(1 / (1 + np.exp(-2.0)))
    assert np.isnan(logged["silent"])
    table = pd.DataFrame({"video_id": list(tubes), "tube": [str(t) for t in tubes.values()]})
    scored = Scorer(served).score(table, pd.DataFrame(list(rows.values())[:2]))[0].set_index("video_id")
    assert scored["p_pd_voice"].loc[["loud", "quiet"]].tolist() == logged.loc[["loud", "quiet"]].tolist()
    assert np.isnan(scored.loc["silent", "p_pd_voice"])  # no row in the voice table: the face alone
    video_only = replace(served, voice_stream=None, voice_fusion=None)
    assert "p_pd_voice" not in Scorer(video_only).score(table)[0]


def test_the_headline_of_drift_html_names_the_audio_tests(reference):
    summary, d = run(reference, clips(6, 3, seed=6, audio=False))
    page = headline_html(d.as_dict(), summary)
    assert "Audio: too few clips with audio" in page and "audio_share" in page


def test_the_log_carries_audio_facts_and_old_records_still_read(tmp_path):
    when = datetime(2026, 3, 1, tzinfo=UTC)
    facts = {"has_audio": True, "codec": "aac", "sample_rate": 44100, "channels": 1, "loudness_lufs": -24.5,
             "voice_status": "measured", "snr_db": 31.5, "hf_share_db": -25.0, "intensity_db": 68.0}  # fmt: skip
    plog.append(plog.PredictionRecord(request_id="a", time=when, outcome="ok", p_pd=0.2, label="control",
                                      audio=facts), tmp_path)  # fmt: skip
    plog.append(plog.PredictionRecord(request_id="b", time=when, outcome="ok", p_pd=0.7, label="pd",
                                      audio={"has_audio": False}), tmp_path)  # fmt: skip
    old = {"request_id": "c", "time": when.isoformat(), "outcome": "ok", "p_pd": 0.4, "label": "control"}
    with open(tmp_path / "predictions-2026-03-01.jsonl", "a") as f:  # a record written before issue 25
        f.write(json.dumps(old) + "\n")
    got = plog.read_log(tmp_path)
    assert not got.skipped and [r.request_id for r in got.records] == ["a", "b", "c"]
    window = from_prediction_log(got.records).set_index("video_id")
    assert window.loc["a", "audio_sample_rate"] == 44100 and window.loc["a", "audio_snr_db"] == 31.5
    assert window["has_audio"].tolist() == [True, False, None]
    assert window.loc["b", ["audio_loudness_lufs", "audio_snr_db"]].isna().all()
    with pytest.raises(ValueError):  # the schema is closed: a typo is not silently logged
        plog.AudioFacts(has_audio=True, snr=3.0)
