"""Make one phantom video: subject -> identity, profile, scene, timeline -> frames -> mp4 + ground truth."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np

from hypomimia.config.phantom import CueConfig, PhantomConfig
from hypomimia.data.probe import sha256_file
from hypomimia.data.video import AudioTrack, write_mp4
from hypomimia.phantom import cohort
from hypomimia.phantom.cohort import VideoPlan
from hypomimia.phantom.disease import Profile, draw_scores, make_profile
from hypomimia.phantom.identities import Identity, describe, draw_identity, draw_scene, source_image
from hypomimia.phantom.render import Pose, VideoRenderer
from hypomimia.phantom.timeline import build_timeline, pattern_events
from hypomimia.phantom.voice import Speech, Voice, draw_voice, synthesize, voice_effects

_N_NOISE = 7  # camera-noise frames per video, reused in a shuffled order (cheaper than fresh noise)


def subject_identity(cfg: PhantomConfig, subject: cohort.SubjectPlan) -> Identity:
    """Base photo and mirroring follow the pair (balance); face shape, skin, hair and age are the subject's own.

    Dynamic-only and audio-only studies use identical twins instead: the whole identity follows the pair.
    """
    twins = cfg.dynamic_only or cfg.audio_only
    key = subject.pair if twins else subject.index
    return draw_identity(cohort.rng_for(cfg.seed, cohort.IDENTITY, key, int(twins)), subject.pair)


def subject_profile(cfg: PhantomConfig, subject: cohort.SubjectPlan) -> Profile:
    # The known-answer studies (dynamic-only, one cue region, audio-only) include PD patients with
    # moderate-severe disease (3.2 >= 3: movements 1.6-2x slower; lips parted at rest; lids lowered; a
    # voice 4.5-6 dB quieter), an effect a 16-subject test can detect; see docs/phantom.md. At score 1
    # the region cues are nearly nil.
    min_pd = 3 if cfg.dynamic_only or cfg.audio_only or cfg.cue_region != "face" else 1
    updrs, hy = draw_scores(cohort.rng_for(cfg.seed, cohort.SCORES, subject.index), subject.label, min_pd)
    if cfg.audio_only:  # twins move alike: no facial cue, and every individual draw follows the pair
        no_face_cue = CueConfig(amplitude=False, speed=False, blink=False, micro=False, static=False)
        rng = cohort.rng_for(cfg.seed, cohort.PROFILE, subject.pair, 1)
        return make_profile(rng, subject.label, updrs, hy, no_face_cue, False, "face", speech_rate=False)
    rng = cohort.rng_for(cfg.seed, cohort.PROFILE, subject.index)
    return make_profile(
        rng, subject.label, updrs, hy, cfg.cues, cfg.dynamic_only, cfg.cue_region, speech_rate_cue(cfg)
    )


def voice_cues_on(cfg: PhantomConfig) -> bool:
    """The voice carries the label unless the study puts it elsewhere (video-only, dynamic-only, a region)."""
    return not (cfg.video_only or cfg.dynamic_only or cfg.cue_region != "face")


def speech_rate_cue(cfg: PhantomConfig) -> bool:
    """The syllable rate is a voice cue that the lips share: on only where both modalities may differ."""
    return cfg.voice.cues.rate and voice_cues_on(cfg) and not cfg.audio_only


def subject_voice(cfg: PhantomConfig, subject: cohort.SubjectPlan) -> Voice:
    """The subject's own voice (sex and age from the face); audio-only and video-only studies give PD i
    and control i one voice, drawn for the pair (with the age of the pair's twin identity)."""
    if cfg.shared_voices:
        owner = draw_identity(cohort.rng_for(cfg.seed, cohort.IDENTITY, subject.pair, 1), subject.pair)
        return draw_voice(cohort.rng_for(cfg.seed, cohort.VOICE, subject.pair, 1), owner.sex, owner.age)
    identity = subject_identity(cfg, subject)
    return draw_voice(cohort.rng_for(cfg.seed, cohort.VOICE, subject.index), identity.sex, identity.age)


def clip_key(cfg: PhantomConfig, plan: VideoPlan) -> tuple[int, ...]:
    """The key of a clip's scene, timeline and camera-noise draws: audio-only twins share them."""
    return (plan.subject.pair, plan.video, 1) if cfg.audio_only else (plan.subject.index, plan.video)


def clip_speech(cfg: PhantomConfig, plan: VideoPlan, profile: Profile, events: list) -> Speech:
    """The clip's audio, on the syllables of its timeline ``events``."""
    voice = subject_voice(cfg, plan.subject)
    effects = voice_effects(profile, cfg.voice.cues, voice_cues_on(cfg))
    key = (plan.subject.pair, plan.video, 1) if cfg.shared_voices else (plan.subject.index, plan.video)
    rng = cohort.rng_for(cfg.seed, cohort.AUDIO, *key)
    return synthesize(voice, effects, events, profile.amplitude, cfg.duration_s, cfg.voice.sample_rate, rng)


def clip_room_tone(cfg: PhantomConfig, plan: VideoPlan, profile: Profile) -> Speech:
    """The sound of a clip nobody speaks in: the subject's own microphone and room, no voice.

    Audio-only twins have byte-identical videos, so their silent clips would be byte duplicates (ingest
    quarantines the second as duplicate_content, and the label would follow which clips survive: the
    first audio-only run scored every model 1.000). Room tone drawn for the subject, not the pair, keeps
    every clip apart and carries no label: gain and noise floor are drawn alike for PD and controls."""
    voice = subject_voice(cfg, plan.subject)
    neutral = voice_effects(profile, cfg.voice.cues, False)
    rng = cohort.rng_for(cfg.seed, cohort.AUDIO, plan.subject.index, plan.video, 2)
    return synthesize(voice, neutral, [], 1.0, cfg.duration_s, cfg.voice.sample_rate, rng)


def _cycles(cfg: PhantomConfig, plan: VideoPlan, profile: Profile) -> tuple[list, float]:
    """Dynamic-only: this clip's pattern (shared by the twins), and how many times this subject plays it."""
    rng = cohort.rng_for(cfg.seed, cohort.PATTERN, plan.subject.pair, plan.video)
    pattern = pattern_events(rng, plan.task)
    # About one expression a second for controls: enough whole movements per clip to time them.
    control_cycles = 4.0 * rng.uniform(0.95, 1.05) * cfg.duration_s / 4.0
    return pattern, control_cycles * profile.speed


def render_frames(renderer: VideoRenderer, timeline, noise_sigma: float, rng: np.random.Generator,
                  digests: dict | None = None):  # fmt: skip
    """Yield the clip's frames. With ``digests`` (a dict), also hash each step's output into it:
    ``geometry`` (the snapped mesh of every frame) and ``frames`` (the pixels before encoding), so a
    machine that renders other bytes can tell which step differs (tests/data/test_phantom_reproducible.py)."""
    size = renderer.size
    bank = np.round(rng.normal(0, noise_sigma, (_N_NOISE, size, size, 3))).astype(np.int16)
    steps = {"geometry": hashlib.sha256(), "frames": hashlib.sha256()}
    for i in range(timeline.n_frames):
        au = {k: float(v[i]) for k, v in timeline.au.items()}
        pose = Pose(*(float(x) for x in timeline.pose[i]))
        img, mesh = renderer.render(au, pose)
        noise = np.roll(bank[rng.integers(_N_NOISE)], int(rng.integers(size)), axis=int(rng.integers(2)))
        frame = np.clip(img.astype(np.int16) + noise, 0, 255).astype(np.uint8)
        steps["geometry"].update(np.ascontiguousarray(mesh, np.float64).tobytes())
        steps["frames"].update(frame.tobytes())
        yield frame
    if digests is not None:
        digests.update({k: h.hexdigest() for k, h in steps.items()})


def render_clip(cfg: PhantomConfig, identity, profile, key: tuple[int, ...], task: str, path: Path,
                pattern=None, cycles=None, digests: dict | None = None, speak=None):  # fmt: skip
    """Draw the scene and timeline of clip ``key`` = (subject index, video index), render and encode it
    to ``path``; returns (scene, timeline, crf, speech). Every random draw is keyed by (seed, stream, key),
    so a clip's bytes do not depend on which other clips are rendered, or in which process.
    ``speak(events) -> Speech`` (optional) gives the clip a sound track on the timeline's events."""
    scene = draw_scene(cohort.rng_for(cfg.seed, cohort.SCENE, *key))
    rng = cohort.rng_for(cfg.seed, cohort.TIMELINE, *key)
    timeline = build_timeline(rng, task, cfg.duration_s, cfg.fps, profile, pattern, cycles)
    speech = speak(timeline.events) if speak is not None else None
    audio = None
    if speech is not None:
        audio = AudioTrack(speech.samples, speech.sample_rate, cfg.voice.bitrate_kbps * 1000)
        if digests is not None:  # the samples before encoding: tells synthesis from AAC (render_frames)
            digests["audio"] = hashlib.sha256(speech.samples.tobytes()).hexdigest()
    src, lm = source_image(identity, scene)
    renderer = VideoRenderer(src, lm, identity, scene, cfg.size)
    noise_rng = cohort.rng_for(cfg.seed, cohort.NOISE, *key)
    crf = int(np.clip(cfg.crf + scene.crf_offset, 0, 51))
    frames = render_frames(renderer, timeline, scene.noise_sigma, noise_rng, digests)
    write_mp4(path, frames, cfg.fps, crf, audio)
    return scene, timeline, crf, speech


def make_video(cfg: PhantomConfig, plan: VideoPlan, out_dir: Path, digests: dict | None = None) -> dict:
    """Render, encode and document one clip; return its manifest row (``digests``: see render_frames)."""
    import cv2

    cv2.setNumThreads(1)  # the process pool is the parallelism; also keeps results order-independent
    subject = plan.subject
    identity = subject_identity(cfg, subject)
    profile = subject_profile(cfg, subject)
    pattern, cycles = _cycles(cfg, plan, profile) if cfg.dynamic_only else (None, None)
    rel = Path("videos") / f"{plan.video_id}.mp4"
    speak = None
    if plan.task in cfg.voice.tasks:
        speak = lambda events: clip_speech(cfg, plan, profile, events)  # noqa: E731
    elif cfg.audio_only:
        speak = lambda events: clip_room_tone(cfg, plan, profile)  # noqa: E731
    scene, timeline, crf, speech = render_clip(
        cfg, identity, profile, clip_key(cfg, plan), plan.task, out_dir / rel, pattern, cycles, digests, speak
    )

    age = identity.age
    truth = {
        "video_id": plan.video_id,
        "subject_id": subject.subject_id,
        "pair": subject.pair,
        "task": plan.task,
        "profile": profile.as_dict(),
        "identity": describe(identity),
        "scene": {k: v for k, v in vars(scene).items()},
        "crf": crf,
        "dynamic_only": cfg.dynamic_only,
        "cues": cfg.cues.model_dump(),
        "cue_region": cfg.cue_region,
        "audio_only": cfg.audio_only,
        "video_only": cfg.video_only,
        **timeline.to_json(),
    }
    if speech is not None:
        truth["audio"] = {"codec": "aac", "bitrate_kbps": cfg.voice.bitrate_kbps,
                          "voice_cues": cfg.voice.cues.model_dump(), **speech.truth}  # fmt: skip
    truth_rel = Path("truth") / f"{plan.video_id}.json"
    _write_json(out_dir / truth_rel, truth)
    return {
        "video_id": plan.video_id,
        "path": rel.as_posix(),
        "subject_id": subject.subject_id,
        "session": plan.session,
        "task": plan.task,
        "label": subject.label,
        "updrs_3_2": profile.updrs_3_2,
        "hoehn_yahr": profile.hoehn_yahr,
        "age": age,
        "sex": identity.sex,
        "site": "phantom",
        "camera": f"phantom-{scene.background}",
        # PD i and control i share a base face (and in dynamic-only studies are identical twins): folds
        # that split a pair reward memorising the partner's face with the opposite label.
        "split_group": f"ph_pair{subject.pair:03d}",
        "truth": truth_rel.as_posix(),
        "audio": speech is not None,
        "sha256": sha256_file(out_dir / rel),
    }


def _write_json(path: Path, data: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(_rounded(data), indent=None, sort_keys=True, separators=(",", ":")) + "\n")
    tmp.replace(path)


TRUTH_DECIMALS = 6  # a microsecond, a millionth of an intensity: far below anything the truth is used for


def _rounded(x):
    """``x`` with every float rounded to ``TRUTH_DECIMALS`` places, so that the sidecar's bytes do not
    depend on the CPU. Measured: a fresh-clone render on a CPU without AVX-512 gave the same 192 videos
    (every sha256 matched) but truth files 7 bytes shorter in all, so ``data.dvc`` no longer held. The
    likely cause (not confirmed: no AVX-512 machine here): math kernels that differ by a unit in the
    last place between CPUs, which changes how an unrounded float prints. Rounding leaves a flip only
    where a value lies within an ULP of a rounding boundary (odds ~1e-10 a value)."""
    if isinstance(x, float):
        return round(x, TRUTH_DECIMALS) + 0.0  # + 0.0: -0.0 prints as 0.0
    if isinstance(x, dict):
        return {k: _rounded(v) for k, v in x.items()}
    if isinstance(x, list | tuple):
        return [_rounded(v) for v in x]
    return x
