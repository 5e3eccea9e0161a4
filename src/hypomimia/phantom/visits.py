"""Phantom subjects with a chosen MDS-UPDRS 3.2 per video: patient courses and severe-PD windows.

The cohort generator draws one score per subject. Monitoring needs two more known answers:

* a patient followed over sessions whose 3.2 score changes (``course``: 0 -> 3 rising, or
  stable), with several clips per session so that the score's test-retest spread can be measured;
* a window whose PD patients are more severe than the training cohort's (``severe_cohort``), a
  population shift with the camera unchanged.

A subject keeps its identity, voice and individual traits (expressivity, own speed, blink rate) in
every session; only the disease effects of the chosen score change, and each clip draws its own scene,
timeline and audio, as a new recording would (clips of ``voice.tasks`` get a sound track). Rendering is the cohort generator's (``synth``).
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from hypomimia.config.phantom import PhantomConfig
from hypomimia.data.manifest import COLUMNS
from hypomimia.data.probe import sha256_file
from hypomimia.phantom import cohort
from hypomimia.phantom.disease import make_profile
from hypomimia.phantom.synth import clip_speech, render_clip, speech_rate_cue, subject_identity


@dataclass(frozen=True)
class Visit:
    subject: int  # subject index (identity and traits follow it)
    label: str  # pd | control
    updrs_3_2: int
    session: str
    video: int  # clip index within the subject (scene and timeline follow it)
    task: str = "smile"

    @property
    def video_id(self) -> str:
        return f"ph_s{self.subject:03d}_{self.session}_v{self.video:02d}"


def course(subject: int, scores: list[int], clips_per_session: int, label: str = "pd") -> list[Visit]:
    """One patient's sessions ``s1, s2, ...`` with the given 3.2 score each, ``clips_per_session`` clips each."""
    return [
        Visit(subject, label, int(u), f"s{k + 1}", k * clips_per_session + c)
        for k, u in enumerate(scores)
        for c in range(clips_per_session)
    ]


def severe_cohort(
    cfg: PhantomConfig, first_subject: int, subjects: int, scores: tuple[int, ...] = (3, 4)
) -> list[Visit]:
    """``subjects`` new subjects, PD share as ``cfg.pd_fraction``, every PD patient at one of ``scores``;
    controls at 0. One clip each, cycling through ``cfg.tasks``."""
    rng = np.random.default_rng([cfg.seed, first_subject, 0x5E])
    visits = []
    for i in range(subjects):
        label = "pd" if rng.random() < cfg.pd_fraction else "control"
        updrs = int(rng.choice(scores)) if label == "pd" else 0
        visits.append(Visit(first_subject + i, label, updrs, "s1", 0, cfg.tasks[i % len(cfg.tasks)]))
    return visits


def render_visit(cfg: PhantomConfig, visit: Visit, out_dir: Path) -> dict:
    """Render one clip; returns its manifest row."""
    import cv2

    cv2.setNumThreads(1)
    plan = cohort.SubjectPlan(visit.subject, visit.label, visit.subject)
    identity = subject_identity(cfg, plan)
    hy = (
        None
        if visit.label == "control"
        else float(np.clip(np.round(2 + 1.1 * visit.updrs_3_2) / 2, 1.0, 5.0))
    )
    traits = cohort.rng_for(cfg.seed, cohort.PROFILE, visit.subject)  # same traits in every session
    profile = make_profile(
        traits,
        visit.label,
        visit.updrs_3_2,
        hy,
        cfg.cues,
        cfg.dynamic_only,
        cfg.cue_region,
        speech_rate_cue(cfg),
    )
    rel = Path("videos") / f"{visit.video_id}.mp4"
    clip = cohort.VideoPlan(plan, visit.video, visit.task, visit.session)
    speak = None
    if visit.task in cfg.voice.tasks:  # the subject's own voice, with this session's disease effects
        speak = lambda events: clip_speech(cfg, clip, profile, events)  # noqa: E731
    key = (visit.subject, visit.video)
    scene, *_ = render_clip(cfg, identity, profile, key, visit.task, out_dir / rel, speak=speak)
    return {
        "video_id": visit.video_id,
        "path": rel.as_posix(),
        "subject_id": f"ph_s{visit.subject:03d}",
        "session": visit.session,
        "task": visit.task,
        "label": visit.label,
        "updrs_3_2": visit.updrs_3_2,
        "hoehn_yahr": hy,
        "age": identity.age,
        "sex": identity.sex,
        "site": "phantom",
        "camera": f"phantom-{scene.background}",
        "sha256": sha256_file(out_dir / rel),
    }


def render_visits(cfg: PhantomConfig, visits: list[Visit], out_dir: Path) -> Path:
    """Render every visit into ``out_dir/videos`` and write ``out_dir/manifest.csv``; returns the manifest."""
    out_dir = Path(out_dir)
    (out_dir / "videos").mkdir(parents=True, exist_ok=True)
    jobs = [(cfg, v, out_dir) for v in visits]
    if cfg.workers > 1 and len(jobs) > 1:
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor

        ctx = multiprocessing.get_context("spawn")  # as the cohort generator: no fork under MediaPipe
        with ProcessPoolExecutor(min(cfg.workers, len(jobs)), mp_context=ctx) as pool:
            rows = list(pool.map(_render_job, jobs))
    else:
        rows = [_render_job(j) for j in jobs]
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=list(COLUMNS), extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    for r in rows:
        writer.writerow({k: ("" if r.get(k) is None else r[k]) for k in COLUMNS})
    (out_dir / "manifest.csv").write_text(buf.getvalue(), encoding="utf-8")
    return out_dir / "manifest.csv"


def _render_job(job: tuple[PhantomConfig, Visit, Path]) -> dict:
    return render_visit(*job)
