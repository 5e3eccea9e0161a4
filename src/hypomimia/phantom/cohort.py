"""Who is in the phantom study: subjects as matched PD/control pairs, and the videos each records.

Like a case-control study with matched controls, PD subject ``i`` and control ``i`` are matched
on base photo, mirroring and sex, so every base appearance is exactly balanced between the
classes; face shape, skin, hair and age are each subject's own draw from one distribution. So the
appearance of a face cannot predict the label: only how it moves can. Scenes (background,
lighting, framing, camera) are drawn per video, independently of the label.

Dynamic-only studies (the known-answer test) use *identical twins*: PD ``i`` and control ``i``
share the whole identity and, per clip, the same pattern of expressions, and differ only in speed.
Frame averages then match within each pair, not just on average, so a single-frame classifier
is at chance by construction rather than by luck. Such studies must be cross-validated with folds
that keep partners together (``pair`` in the truth sidecars): folds that split twins reward
memorising a face with the *opposite* label (measured: AUROC 0.12 on frame averages).

"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from hypomimia.config.phantom import PhantomConfig

# Independent random streams.
IDENTITY, SCORES, PROFILE, SCENE, TIMELINE, PATTERN, NOISE = range(7)
VOICE, AUDIO = 7, 8  # a subject's voice; one clip's audio (intonation, aspiration noise, room, gain)


def rng_for(seed: int, stream: int, *indices: int) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(stream, *indices)))


@dataclass(frozen=True)
class SubjectPlan:
    index: int  # position in the cohort: ph_s000, ph_s001, ...
    label: str  # "pd" or "control"
    pair: int  # matched-pair index: selects the base photo and mirroring

    @property
    def subject_id(self) -> str:
        return f"ph_s{self.index:03d}"


@dataclass(frozen=True)
class VideoPlan:
    subject: SubjectPlan
    video: int  # index within the subject
    task: str
    session: str

    @property
    def video_id(self) -> str:
        return f"{self.subject.subject_id}_v{self.video:02d}"


def plan_subjects(cfg: PhantomConfig) -> list[SubjectPlan]:
    """PD and control subjects interleaved, pair ``i`` = PD ``i`` + control ``i`` (while both exist)."""
    n_pd = int(np.clip(round(cfg.subjects * cfg.pd_fraction), 1, cfg.subjects - 1))
    n_control = cfg.subjects - n_pd
    labelled: list[tuple[str, int]] = []
    for i in range(max(n_pd, n_control)):
        if i < n_pd:
            labelled.append(("pd", i))
        if i < n_control:
            labelled.append(("control", i))
    return [SubjectPlan(k, label, pair) for k, (label, pair) in enumerate(labelled)]


def plan_videos(cfg: PhantomConfig) -> list[VideoPlan]:
    """Each subject records ``videos_per_subject`` clips cycling through the tasks, in sessions."""
    plans = []
    for s in plan_subjects(cfg):
        for v in range(cfg.videos_per_subject):
            task = cfg.tasks[v % len(cfg.tasks)]
            plans.append(VideoPlan(s, v, task, f"s{v // len(cfg.tasks) + 1}"))
    return plans
