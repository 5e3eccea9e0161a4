"""The phantom is a data version: the same params render the same bytes in any process, on any machine.

Three causes were found and are guarded here: x264's AVX-512 kernels read uninitialised memory (the
same frames gave different files depending on what the process had allocated before), x264's
kernels above SSE2 are not bit-exact across CPUs, and the base photos' landmarks and person masks
came from run-time TFLite inference. The golden hashes tie ``data.dvc`` to the renderer: change
either and this file says which to regenerate.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import yaml

from hypomimia.config import load_params
from hypomimia.data.video import iter_frames
from hypomimia.phantom.cohort import plan_videos
from hypomimia.phantom.synth import make_video
from tests.helpers_phantom import file_hashes

REPO = Path(__file__).resolve().parents[2]
GOLDEN = Path(__file__).with_name("phantom_golden.json")
_TINY = ["--subjects", "4", "--videos-per-subject", "1", "--seed", "7301", "--duration", "3", "--size", "320"]


# An older x86-64 CPU, as far as numpy's and OpenCV's run-time SIMD dispatch can tell: no AVX at all.
OLD_CPU = {
    "NPY_DISABLE_CPU_FEATURES": "AVX2 FMA3 F16C AVX AVX512F AVX512CD AVX512VL AVX512BW AVX512DQ AVX512_SKX "
    "AVX512_CLX AVX512_CNL AVX512_ICL AVX512_KNL AVX512_KNM",
    "OPENCV_CPU_DISABLE": "AVX2,FP16,AVX",
}


def _env(**extra: str) -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": f"{REPO / 'src'}{os.pathsep}{REPO}", **extra}


def _phantom(out: Path, workers: int, **env: str) -> dict[str, str]:
    cmd = [sys.executable, "-m", "hypomimia", "phantom", "--out", str(out), "--workers", str(workers), *_TINY]
    subprocess.run(cmd, check=True, capture_output=True, env=_env(**env), cwd=REPO, timeout=300)
    return file_hashes(out)


@pytest.fixture(scope="module")
def two_renders(tmp_path_factory) -> tuple[dict[str, str], dict[str, str], Path]:
    """Two processes: 1 worker on this CPU; 2 workers with numpy/OpenCV dispatch limited to pre-AVX kernels."""
    root = tmp_path_factory.mktemp("phantom_twice")
    return _phantom(root / "a", workers=1), _phantom(root / "b", workers=2, **OLD_CPU), root / "a"


@pytest.mark.slow
def test_two_renders_in_separate_processes_and_cpu_paths_are_byte_identical(two_renders):
    a, b, _ = two_renders
    assert len([f for f in a if f.endswith(".mp4")]) == 4
    assert a == b, f"differing files: {sorted(f for f in a if a[f] != b.get(f))}"


_ENCODE = textwrap.dedent(
    """
    import hashlib, os, sys
    import numpy as np
    from hypomimia.data.video import write_mp4
    frames, seed, out = np.load(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
    rng, junk = np.random.default_rng(seed), []
    def frames_with_heap_noise():  # what the renderer allocates between frames differs per process
        for f in frames:
            junk.extend(os.urandom(int(n)) for n in rng.integers(1000, 120000, rng.integers(0, 20)))
            if len(junk) > 30:
                del junk[: int(rng.integers(0, 30))]
            yield f
    write_mp4(out, frames_with_heap_noise(), 25, 20)
    print(hashlib.sha256(open(out, "rb").read()).hexdigest())
    """
)


@pytest.mark.slow
def test_encoding_does_not_depend_on_the_process_heap(two_renders, tmp_path: Path):
    """Before the fix, 5 or 6 of 6 encodes of these frames differed (x264 AVX-512 kernels, this machine)."""
    *_, out = two_renders
    frames = np.stack([f.rgb for f in iter_frames(out / "videos" / "ph_s000_v00.mp4")]).astype(np.int16)
    # Camera noise, as rendered (decoded frames alone are too smooth to reach the bad kernels).
    noisy = frames + np.round(np.random.default_rng(0).normal(0, 2.5, frames.shape))
    np.save(tmp_path / "frames.npy", np.clip(noisy, 0, 255).astype(np.uint8))
    hashes = {
        subprocess.run(
            [sys.executable, "-c", _ENCODE, str(tmp_path / "frames.npy"), str(seed), str(tmp_path / f"{seed}.mp4")],
            check=True, capture_output=True, text=True, env=_env(), timeout=120,
        ).stdout.strip()
        for seed in range(6)
    }  # fmt: skip
    assert len(hashes) == 1


@pytest.mark.slow
def test_shipped_base_photo_data_is_what_mediapipe_detects():
    """The shipped landmarks and masks are MediaPipe's own (within what CPU kernels change), not edited."""
    from hypomimia.phantom.identities import _shipped, detect_base_data

    fresh, shipped = detect_base_data(), _shipped()
    assert set(fresh) == set(shipped)
    for key, value in fresh.items():
        if key.endswith(".landmarks"):
            assert np.abs(value - shipped[key])[:, :2].max() < 1.0, key  # pixels of the 512 px crop
        elif key.endswith(".person"):
            assert np.abs(value.astype(int) - shipped[key]).mean() < 3.0, key  # of 255
        elif key.endswith(".crop"):
            np.testing.assert_allclose(value, shipped[key], rtol=1e-3, atol=0.5)
        else:
            assert str(value) == str(shipped[key]), key  # the photos' sha256


def test_a_last_place_difference_in_the_geometry_changes_no_pixel(monkeypatch):
    """The renderer snaps control points to a grid, so a one-ULP difference in the float math before it
    (another CPU's trig or BLAS) renders the same frames. Without the snap a nudge like this one changed
    40 of the 192 shipped videos (docs/lineage.md)."""
    from hypomimia.phantom import cohort, render, synth
    from hypomimia.phantom.timeline import build_timeline

    cfg = load_params(REPO / "params.yaml").phantom
    plan = plan_videos(cfg)[9]  # ph_s001_v04, one of the videos an Intel Xeon rendered differently
    identity, profile = synth.subject_identity(cfg, plan.subject), synth.subject_profile(cfg, plan.subject)
    scene = synth.draw_scene(cohort.rng_for(cfg.seed, cohort.SCENE, plan.subject.index, plan.video))
    rng = cohort.rng_for(cfg.seed, cohort.TIMELINE, plan.subject.index, plan.video)
    timeline = build_timeline(rng, plan.task, 1.0, cfg.fps, profile)

    def frames_and_targets():
        src, lm = synth.source_image(identity, scene)
        renderer = render.VideoRenderer(src, lm, identity, scene, cfg.size)
        targets = [renderer.targets({k: float(v[i]) for k, v in timeline.au.items()},
                                    render.Pose(*timeline.pose[i])) for i in range(timeline.n_frames)]  # fmt: skip
        frames = list(synth.render_frames(renderer, timeline, scene.noise_sigma, np.random.default_rng(0)))
        return np.stack(frames), np.stack(targets)

    frames, targets = frames_and_targets()
    assert np.array_equal(targets * 256, np.round(targets * 256)), "control points off the 1/256-px grid"
    camera = render.VideoRenderer._camera
    monkeypatch.setattr(render.VideoRenderer, "_camera", lambda self, pts: camera(self, pts) * (1 + 2**-52))
    nudged_frames, nudged_targets = frames_and_targets()
    assert np.array_equal(targets, nudged_targets)
    assert np.array_equal(frames, nudged_frames)


def _data_dvc_md5() -> str:
    return yaml.safe_load((REPO / "data.dvc").read_text())["outs"][0]["md5"]


# What a differing file points to, in the order the renderer runs (docs/phantom.md#reproducibility).
_STEPS = {
    "geometry": "geometry: the float math before the 1/256-px snap (head-pose trig, identity morph, BLAS) "
    "moved a control point across a grid midpoint",
    "frames": "pixels: the warp, lids, mouth or camera noise (OpenCV remap/fillPoly/GaussianBlur, numpy) "
    "differ after an identical geometry",
    "audio": "audio: the voice's samples before AAC (phantom/voice.py: numpy/scipy float math before the int16 "
    "rounding)",
    "encoding": "encoding: identical pixels (and audio samples), other mp4 bytes (PyAV's RGB->YUV conversion, "
    "x264 or FFmpeg's AAC encoder)",
}


def _likely_step(cfg, plan, golden_steps: dict, tmp: Path) -> str:
    digests: dict = {}
    (tmp / "videos").mkdir(parents=True, exist_ok=True)
    make_video(cfg, plan, tmp, digests)
    for step in ("geometry", "frames", "audio"):
        if digests.get(step) != golden_steps.get(step):
            return _STEPS[step]
    return _STEPS["encoding"]


@pytest.mark.slow
def test_checked_in_data_version_is_what_this_renderer_renders(tmp_path: Path):
    """Every file of params.yaml's phantom, rendered here, equals the one data.dvc versions.

    A machine that renders other bytes fails here with the first differing file and the step that
    differs (geometry, pixels or encoding), found by re-rendering that video with step digests.
    Regenerate after a deliberate renderer change (a minute): ``python -m tests.data.test_phantom_reproducible``
    renders data/phantom, re-adds data.dvc and rewrites the golden file.
    """
    golden = json.loads(GOLDEN.read_text())
    cfg = load_params(REPO / "params.yaml").phantom.model_copy(update={"workers": 2})
    assert golden["phantom_config"] == cfg.model_dump(mode="json", exclude={"workers"}), (
        "params.yaml's phantom section changed: regenerate data.dvc and tests/data/phantom_golden.json"
    )
    assert golden["data_dvc_md5"] == _data_dvc_md5(), (
        "data.dvc was re-added: regenerate tests/data/phantom_golden.json from the same render"
    )
    from hypomimia.stages import phantom as phantom_stage

    phantom_stage.run(cfg, tmp_path / "phantom", progress=False)
    rendered = file_hashes(tmp_path / "phantom")
    assert set(rendered) == set(golden["files"]), "the phantom renders other files than data.dvc versions"
    differing = sorted(f for f in golden["files"] if rendered[f] != golden["files"][f])
    if not differing:
        return
    # Videos first: manifest.csv and phantom.json list the videos' sha256 and follow them.
    first = sorted(differing, key=lambda f: (not f.startswith("videos/"), not f.startswith("truth/"), f))[0]
    video_id = Path(first).stem
    plans = {p.video_id: p for p in plan_videos(cfg)}
    if first.startswith("videos/"):
        step = _likely_step(cfg, plans[video_id], golden["steps"][video_id], tmp_path / "probe")
    elif first.startswith("truth/"):
        step = "the truth sidecar: timeline/profile math or JSON float formatting (synth.TRUTH_DECIMALS)"
    else:
        step = "the phantom's own tables"
    pytest.fail(
        f"{first} renders differently from data.dvc's version ({len(differing)} files differ: "
        f"{differing[:8]}{' ...' if len(differing) > 8 else ''}); likely step: {step}"
    )


def _write_golden(phantom_dir: Path = REPO / "data" / "phantom") -> None:
    """Render the shipped phantom into ``phantom_dir``, ``dvc add`` it, and pin every file and step."""
    from concurrent.futures import ProcessPoolExecutor
    from multiprocessing import get_context

    cfg = load_params(REPO / "params.yaml").phantom
    from hypomimia.stages import phantom as phantom_stage

    phantom_stage.run(cfg, phantom_dir, progress=True)
    subprocess.run(["dvc", "add", "-q", "data"], check=True, cwd=REPO)
    plans = plan_videos(cfg)
    with ProcessPoolExecutor(2, mp_context=get_context("spawn")) as pool:
        steps = dict(pool.map(_steps_of, [(cfg, p) for p in plans]))
    golden = {
        "data_dvc_md5": _data_dvc_md5(),
        "phantom_config": cfg.model_dump(mode="json", exclude={"workers"}),
        "files": file_hashes(phantom_dir),
        "steps": steps,
    }
    GOLDEN.write_text(json.dumps(golden, indent=1, sort_keys=True) + "\n")
    print(f"wrote {GOLDEN}")


def _steps_of(job) -> tuple[str, dict]:
    import tempfile

    cfg, plan = job
    digests: dict = {}
    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / "videos").mkdir()
        make_video(cfg, plan, Path(tmp), digests)
    return plan.video_id, digests


if __name__ == "__main__":
    _write_golden(Path(sys.argv[1]) if len(sys.argv) > 1 else REPO / "data" / "phantom")
