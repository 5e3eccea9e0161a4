"""The phantom's voice holds its truth: read back from the AAC like a recording (PyAV, then Praat).

Three tiny studies of 3-s speech clips are rendered once for the module: a natural one (every cue
on), an audio-only one (twins whose videos are identical) and a video-only one (pairs sharing a
voice). docs/phantom.md ("Voice") gives the figures on the demo study.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import av
import numpy as np
import pytest

from hypomimia.config.phantom import CueConfig, PhantomConfig, VoiceCueConfig
from hypomimia.data.video import iter_frames
from hypomimia.phantom.cohort import plan_videos
from hypomimia.phantom.disease import make_profile
from hypomimia.phantom.synth import make_video
from hypomimia.phantom.timeline import build_timeline
from hypomimia.phantom.voice import draw_voice, synthesize, voice_effects
from hypomimia.phantom.voice_readback import praat_measures, read_audio, read_back
from hypomimia.stages.phantom import run
from tests.helpers_phantom import tiny

REPO = Path(__file__).resolve().parents[2]


def _study(root: Path, **overrides) -> Path:
    run(tiny(**({"tasks": ["speech"]} | overrides)), root, progress=False)
    return root


def _truth(folder: Path, video_id: str) -> dict:
    return json.loads((folder / "truth" / f"{video_id}.json").read_text())


def _video_packets(path: Path) -> list[bytes]:
    with av.open(str(path)) as container:
        return [bytes(p) for p in container.demux(container.streams.video[0]) if p.size]


@pytest.fixture(scope="module")
def natural(tmp_path_factory) -> Path:
    return _study(tmp_path_factory.mktemp("natural"))


@pytest.fixture(scope="module")
def audio_only(tmp_path_factory) -> Path:
    # v00 speaks, v01 rests: the silent task is where twins' clips could be byte duplicates
    return _study(
        tmp_path_factory.mktemp("audio_only"),
        subjects=2,
        audio_only=True,
        videos_per_subject=2,
        tasks=["speech", "rest"],
    )


@pytest.fixture(scope="module")
def video_only(tmp_path_factory) -> Path:
    return _study(tmp_path_factory.mktemp("video_only"), subjects=2, video_only=True)


def test_speech_clips_carry_a_mono_aac_track_and_its_truth(natural: Path):
    meta = json.loads((natural / "phantom.json").read_text())
    assert len(meta["voice"]["videos_with_audio"]) == 4 and meta["voice"]["effects"]["4"]["loudness_db"] < 0
    for video_id in meta["voice"]["videos_with_audio"]:
        with av.open(str(natural / "videos" / f"{video_id}.mp4")) as container:
            audio = container.streams.audio[0]
            assert (audio.codec_context.name, audio.codec_context.sample_rate, audio.codec_context.channels) == (
                "aac", 16000, 1)  # fmt: skip
            assert float(audio.duration * audio.time_base) == pytest.approx(3.0)
        truth = _truth(natural, video_id)
        speech = truth["audio"]["speech"]
        assert truth["audio"]["codec"] == "aac" and truth["audio"]["clipped_samples"] == 0
        # One syllable per 'syllable' event of the timeline, at its onset: no timing of its own.
        onsets = [e["start"] for e in truth["events"] if e["kind"] == "syllable"]
        assert [s["onset"] for s in speech["syllables"]] == pytest.approx(sorted(onsets))
        for key in (
            "f0_mean_hz",
            "f0_sd_st",
            "intensity_db",
            "hnr_db",
            "articulation_rate",
            "vowel_dispersion_hz",
        ):
            assert isinstance(speech[key], float), key


def test_praat_reads_back_f0_variability_intensity_and_lip_sync(natural: Path):
    """F0 SD within 10% and intensity within 1 dB of the sidecar, after AAC; the audio envelope follows
    the mouth opening at a lag of at most 40 ms; every syllable is heard as one intensity peak."""
    for plan in plan_videos(tiny(tasks=["speech"])):
        truth = _truth(natural, plan.video_id)
        r = read_back(natural / "videos" / f"{plan.video_id}.mp4", truth)
        m, t = r["measured"], r["truth"]
        assert m["f0_sd_st"] == pytest.approx(t["f0_sd_st"], rel=0.10), plan.video_id
        assert m["intensity_db"] == pytest.approx(t["intensity_db"], abs=1.0), plan.video_id
        assert abs(m["envelope_lag_s"]) <= 0.04, plan.video_id
        assert abs(m["syllable_nuclei"] - len(t["syllables"])) <= 1, plan.video_id


def test_audio_only_twins_have_identical_videos_and_voices_apart_by_the_disease(audio_only: Path):
    pd, control = _truth(audio_only, "ph_s000_v00"), _truth(audio_only, "ph_s001_v00")
    assert (pd["profile"]["label"], control["profile"]["label"]) == ("pd", "control")
    assert pd["profile"]["updrs_3_2"] >= 3 and control["profile"]["updrs_3_2"] <= 1
    assert _video_packets(audio_only / "videos" / "ph_s000_v00.mp4") == _video_packets(
        audio_only / "videos" / "ph_s001_v00.mp4"
    )
    assert pd["au"] == control["au"] and pd["audio"]["voice"] == control["audio"]["voice"]
    heard = {
        t["profile"]["label"]: praat_measures(
            *read_audio(audio_only / "videos" / f"{t['video_id']}.mp4"), t["audio"]["speech"]
        )
        for t in (pd, control)
    }
    # Each voice cue moves the PD twin's voice the way the disease does (the rate cue is the lips'
    # too, so an audio-only study has none: tested below).
    assert heard["pd"]["intensity_db"] < heard["control"]["intensity_db"] - 3.0
    assert heard["pd"]["f0_sd_st"] < 0.8 * heard["control"]["f0_sd_st"]
    assert heard["pd"]["hnr_db"] < heard["control"]["hnr_db"] - 1.0
    assert heard["pd"]["vowel_dispersion_hz"] < 0.95 * heard["control"]["vowel_dispersion_hz"]


def test_audio_only_twins_silent_clips_differ_by_room_tone_alone(audio_only: Path):
    """A clip nobody speaks in still has its subject's own room tone, so twins' files are never byte
    duplicates (ingest would quarantine one and the label would follow which clips survive)."""
    pd, control = (audio_only / "videos" / f"{v}.mp4" for v in ("ph_s000_v01", "ph_s001_v01"))
    assert _truth(audio_only, "ph_s000_v01")["task"] == "rest"
    assert _video_packets(pd) == _video_packets(control) and pd.read_bytes() != control.read_bytes()
    for path, video_id in ((pd, "ph_s000_v01"), (control, "ph_s001_v01")):
        samples, rate = read_audio(path)
        truth = _truth(audio_only, video_id)["audio"]
        assert truth["speech"] is None and rate == 16000
        # room tone only: 25-35 dB SPL, far below speech (60+ dB)
        assert 20 * np.log10(np.sqrt(np.mean(samples**2)) / 2e-5) < 40


def test_a_camera_change_keeps_the_sound(natural: Path, tmp_path):
    """Another camera (or a mask) changes the picture, not the microphone: the monitor's camera known
    answer must not turn into lost sound (audio_share), so the re-encoded clip keeps the voice."""
    from hypomimia.phantom.camera import CHANGES, apply_to_video

    src = natural / "videos" / "ph_s000_v00.mp4"
    out = apply_to_video(src, tmp_path / "changed.mp4", CHANGES["camera"], fps=25)
    before, rate = read_audio(src)
    after, rate_after = read_audio(out)
    assert rate_after == rate and len(after) == len(before)
    assert np.corrcoef(before, after)[0, 1] > 0.99  # one more AAC generation, the same speech
    assert _video_packets(out) != _video_packets(src)


def test_video_only_pairs_share_one_voice_without_the_disease(video_only: Path):
    pd, control = _truth(video_only, "ph_s000_v00"), _truth(video_only, "ph_s001_v00")
    assert pd["profile"]["label"] == "pd" and pd["audio"]["voice"] == control["audio"]["voice"]
    assert pd["audio"]["effects"] | {"speech_speed": 1.0} == {
        "loudness_db": 0.0, "f0_variability": 1.0, "centralisation": 0.0, "hnr_db": 0.0, "speech_speed": 1.0}  # fmt: skip
    assert pd["audio"]["gain_db"] == control["audio"]["gain_db"]
    heard = [
        praat_measures(*read_audio(video_only / "videos" / f"{t['video_id']}.mp4"), t["audio"]["speech"])
        for t in (pd, control)
    ]
    assert heard[0]["intensity_db"] == pytest.approx(heard[1]["intensity_db"], abs=1.0)


def test_the_rate_cue_slows_the_syllables_that_lips_and_voice_share():
    cues = CueConfig()
    syllables_per_s = {}
    for label, updrs, rate in (("control", 0, True), ("pd", 4, True), ("pd_rate_off", 4, False)):
        profile = make_profile(np.random.default_rng(5), "pd", updrs, None, cues, False, speech_rate=rate)
        timeline = build_timeline(np.random.default_rng(3), "speech", 4.0, 25, profile)
        voice = draw_voice(np.random.default_rng(9), "F", 60)
        speech = synthesize(voice, voice_effects(profile, VoiceCueConfig()), timeline.events, profile.amplitude,
                            4.0, 16000, np.random.default_rng(11))  # fmt: skip
        heard = praat_measures(speech.samples / 32768.0, 16000, speech.truth["speech"])
        phrase_s = sum(p1 - p0 for p0, p1 in speech.truth["speech"]["phrases"])
        syllables_per_s[label] = heard["syllable_nuclei"] / phrase_s
        assert profile.speed < 1.0 or updrs == 0  # the face's own speed cue is untouched by the rate cue
    assert syllables_per_s["pd"] < 0.85 * syllables_per_s["control"]
    assert syllables_per_s["pd_rate_off"] == pytest.approx(syllables_per_s["control"], rel=0.1)


def test_audio_leaves_the_video_stream_and_silent_clips_unchanged(natural: Path, tmp_path: Path):
    cfg = tiny(tasks=["speech"], voice={"tasks": []})
    plan = plan_videos(cfg)[0]
    (tmp_path / "videos").mkdir()
    row = make_video(cfg, plan, tmp_path)
    silent, voiced = tmp_path / row["path"], natural / row["path"]
    with av.open(str(silent)) as container:
        assert not container.streams.audio and not row["audio"]
    assert "audio" not in _truth(tmp_path, plan.video_id)
    assert _video_packets(silent) == _video_packets(voiced)
    frames = lambda p: np.stack([f.rgb for f in iter_frames(p)])  # noqa: E731
    assert np.array_equal(frames(silent), frames(voiced))


def test_the_same_clip_renders_to_the_same_bytes(natural: Path, tmp_path: Path):
    cfg = tiny(tasks=["speech"])
    plan = plan_videos(cfg)[1]
    (tmp_path / "videos").mkdir()
    make_video(cfg, plan, tmp_path)
    for sub, suffix in (("videos", ".mp4"), ("truth", ".json")):
        name = f"{sub}/{plan.video_id}{suffix}"
        assert (tmp_path / name).read_bytes() == (natural / name).read_bytes(), name


# numpy's SIMD dispatch limited to pre-AVX kernels, and glibc's libm without its FMA/AVX2 variants.
_OLD_CPU = {"NPY_DISABLE_CPU_FEATURES": "AVX2 FMA3 F16C AVX AVX512F AVX512CD AVX512VL AVX512BW AVX512DQ "
            "AVX512_SKX AVX512_CLX AVX512_CNL AVX512_ICL", "GLIBC_TUNABLES": "glibc.cpu.hwcaps=-AVX2,-FMA,-AVX"}  # fmt: skip

_RENDER = """
import hashlib, sys
from pathlib import Path
from hypomimia.phantom.cohort import plan_videos
from hypomimia.phantom.synth import make_video
from tests.helpers_phantom import tiny
cfg, out = tiny(tasks=["speech"]), Path(sys.argv[1])
(out / "videos").mkdir(parents=True)
row = make_video(cfg, plan_videos(cfg)[1], out)
print(row["sha256"])
"""


@pytest.mark.slow
def test_another_process_on_older_cpu_paths_renders_the_same_audio(natural: Path, tmp_path: Path):
    """numpy/libm on pre-AVX code paths; FFmpeg's AAC kernels are pinned by write_mp4 itself."""
    env = {**os.environ, "PYTHONPATH": f"{REPO / 'src'}{os.pathsep}{REPO}", **_OLD_CPU}
    out = subprocess.run([sys.executable, "-c", _RENDER, str(tmp_path / "old")], check=True, capture_output=True,
                         text=True, env=env, cwd=REPO, timeout=300).stdout.split()[-1]  # fmt: skip
    video = natural / "videos" / f"{plan_videos(tiny(tasks=['speech']))[1].video_id}.mp4"
    assert out == hashlib.sha256(video.read_bytes()).hexdigest()


@pytest.mark.parametrize(
    "overrides",
    [{"audio_only": True, "video_only": True}, {"audio_only": True, "dynamic_only": True},
     {"video_only": True, "cue_region": "eyes"}, {"audio_only": True, "voice": {"tasks": ["rest"]}}],
)  # fmt: skip
def test_known_answers_do_not_combine_and_audio_only_needs_audio(overrides):
    with pytest.raises(ValueError, match="separate known answers|no clip gets an audio track"):
        PhantomConfig(tasks=["speech", "smile"], **overrides)
