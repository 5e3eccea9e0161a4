"""The phantom is a data version: the same params render the same bytes in any process, on any machine.

Three causes were found and are guarded here: x264's AVX-512 kernels read uninitialised memory (the
same frames gave different files depending on what the process had allocated before), x264's
kernels above SSE2 are not bit-exact across CPUs, and the base photos' landmarks and person masks
came from run-time TFLite inference. The golden hashes tie ``data.dvc`` to the renderer: change
either and this file says which to regenerate.
"""

from __future__ import annotations

import hashlib
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


def _data_dvc_md5() -> str:
    return yaml.safe_load((REPO / "data.dvc").read_text())["outs"][0]["md5"]


@pytest.mark.slow
def test_checked_in_data_version_is_what_this_renderer_renders(tmp_path: Path):
    """The first videos of params.yaml's phantom, rendered here, equal the ones data.dvc versions.

    Regenerate after a deliberate renderer change (several minutes):
    ``hypomimia phantom --params params.yaml --out data/phantom && dvc add data``, then
    ``python -m tests.data.test_phantom_reproducible`` rewrites the golden file.
    """
    golden = json.loads(GOLDEN.read_text())
    cfg = load_params(REPO / "params.yaml").phantom
    assert golden["phantom_config"] == cfg.model_dump(mode="json", exclude={"workers"}), (
        "params.yaml's phantom section changed: regenerate data.dvc and tests/data/phantom_golden.json"
    )
    assert golden["data_dvc_md5"] == _data_dvc_md5(), (
        "data.dvc was re-added: regenerate tests/data/phantom_golden.json from the same render"
    )
    plans = {p.video_id: p for p in plan_videos(cfg)}
    (tmp_path / "videos").mkdir()
    for video_id, sha in golden["videos"].items():
        row = make_video(cfg, plans[video_id], tmp_path)
        assert row["sha256"] == sha, f"{video_id} renders differently from data.dvc's version"
        # the truth sidecar is data too (a new Profile field changes every sidecar, not the videos)
        truth = hashlib.sha256((tmp_path / "truth" / f"{video_id}.json").read_bytes()).hexdigest()
        assert truth == golden["truth"][video_id], (
            f"{video_id}'s truth sidecar differs from data.dvc's version"
        )


def _write_golden(phantom_dir: Path = REPO / "data" / "phantom", n: int = 2) -> None:
    meta = json.loads((phantom_dir / "phantom.json").read_text())
    cfg = load_params(REPO / "params.yaml").phantom
    ids = [p.video_id for p in plan_videos(cfg)[:n]]
    golden = {
        "data_dvc_md5": _data_dvc_md5(),
        "phantom_config": cfg.model_dump(mode="json", exclude={"workers"}),
        "phantom_json_sha256": hashlib.sha256((phantom_dir / "phantom.json").read_bytes()).hexdigest(),
        "videos": {v: meta["sha256"][v] for v in ids},
        "truth": {
            v: hashlib.sha256((phantom_dir / "truth" / f"{v}.json").read_bytes()).hexdigest() for v in ids
        },
    }
    GOLDEN.write_text(json.dumps(golden, indent=2, sort_keys=True) + "\n")
    print(f"wrote {GOLDEN}")


if __name__ == "__main__":
    _write_golden(Path(sys.argv[1]) if len(sys.argv) > 1 else REPO / "data" / "phantom")
