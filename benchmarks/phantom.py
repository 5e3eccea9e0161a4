"""Phantom generation speed: frames rendered per second against the encoder alone.

In one run: (a) ``encode``: x264 encoding of pre-made frames (the floor: every video must be
encoded), (b) ``render+encode``: :func:`hypomimia.phantom.synth.make_video` for the same number
of frames, one process, base photos already loaded. The ratio says how much the warp costs
on top of encoding; the demo-size estimate multiplies the per-frame cost by the demo's frames.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from benchmarks import row
from hypomimia.config.phantom import PhantomConfig
from hypomimia.data.video import write_mp4
from hypomimia.phantom.cohort import plan_videos
from hypomimia.phantom.identities import base_photo
from hypomimia.phantom.synth import make_video


def run(out: Path, quick: bool) -> list[dict]:
    out.mkdir(parents=True, exist_ok=True)
    (out / "videos").mkdir(exist_ok=True)
    cfg = PhantomConfig(subjects=2, videos_per_subject=1 if quick else 2, duration_s=3.0 if quick else 4.0,
                        size=320, workers=1)  # fmt: skip
    plans = plan_videos(cfg)
    n_frames = len(plans) * round(cfg.duration_s * cfg.fps)
    for name in ("grace_hopper", "astronaut"):  # load once, outside the timing
        base_photo(name, False), base_photo(name, True)
    t0 = time.perf_counter()
    for p in plans:
        make_video(cfg, p, out)
    render = time.perf_counter() - t0
    frames = np.random.default_rng(0).integers(
        0, 255, (round(cfg.duration_s * cfg.fps), 320, 320, 3), np.uint8
    )
    t0 = time.perf_counter()
    for _ in plans:
        write_mp4(out / "encode_only.mp4", iter(frames), cfg.fps, cfg.crf)
    encode = time.perf_counter() - t0
    demo = PhantomConfig()
    demo_frames = demo.subjects * demo.videos_per_subject * round(demo.duration_s * demo.fps)
    note = f"{len(plans)} videos, {n_frames} frames at 320 px, one process"
    return [
        row("phantom", "render+encode", n_frames / render, "frames/s", note),
        row("phantom", "encode", n_frames / encode, "frames/s", "noise frames"),
        row("phantom", "render_cost_ratio", encode / render, "x",
            "share of time spent encoding; the rest is the warp"),
        row("phantom", "demo_estimate_2_workers", demo_frames * render / n_frames / 2, "s",
            f"{demo_frames} frames of the demo study, from this run's per-frame cost"),
    ]  # fmt: skip
