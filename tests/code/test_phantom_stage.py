"""Phantom rendering, the stage's outputs and the command (tiny sizes: seconds)."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from hypomimia.data.manifest import COLUMNS, read_manifest
from hypomimia.data.video import iter_frames
from hypomimia.phantom.identities import base_photo, draw_identity, draw_scene, source_image
from hypomimia.phantom.render import Pose, VideoRenderer
from hypomimia.stages.phantom import run
from tests.helpers_phantom import file_hashes, tiny


@pytest.fixture(scope="module")
def renderer() -> VideoRenderer:
    rng = np.random.default_rng(3)
    identity, scene = draw_identity(rng, 1), draw_scene(rng)
    src, lm = source_image(identity, scene)
    return VideoRenderer(src, lm, identity, scene, 256)


def test_base_photos_are_real_faces_with_full_meshes():
    for name in ("grace_hopper", "astronaut"):
        for mirror in (False, True):
            photo = base_photo(name, mirror)
            assert photo.rgb.shape == (512, 512, 3) and photo.landmarks.shape == (478, 3)
            assert 0.2 < photo.person.mean() < 0.9


def test_action_units_move_the_rendered_face(renderer: VideoRenderer):
    neutral_img, neutral = renderer.render({}, Pose())
    assert neutral_img.shape == (256, 256, 3) and neutral_img.dtype == np.uint8
    _, smile = renderer.render({"au12": 1.0}, Pose())
    width = lambda m: np.linalg.norm(m[291] - m[61])  # noqa: E731
    assert width(smile) > width(neutral) + 0.1 * renderer.iod_out
    blink_img, blink = renderer.render({"au45": 1.0}, Pose())
    gap = lambda m: np.linalg.norm(m[159] - m[145])  # noqa: E731
    assert gap(blink) < 0.2 * gap(neutral)
    assert np.abs(blink_img.astype(int) - neutral_img.astype(int)).max() > 40  # the lid is drawn
    _, jaw = renderer.render({"au26": 1.0, "au25": 1.0}, Pose())
    assert np.linalg.norm(jaw[14] - jaw[13]) > 0.15 * renderer.iod_out
    _, turned = renderer.render({}, Pose(yaw=5.0, dx=0.1))
    assert np.abs(turned - neutral).mean() > 1.0


@pytest.mark.slow
def test_same_seed_gives_identical_files_whatever_the_worker_count(tmp_path: Path):
    one = run(tiny(workers=1), tmp_path / "one", progress=False)
    two = run(tiny(workers=2), tmp_path / "two", progress=False)
    hashes = file_hashes(one.out_dir)
    assert len([f for f in hashes if f.endswith(".mp4")]) == 4
    assert hashes == file_hashes(two.out_dir)
    other = run(tiny(seed=1, subjects=2), tmp_path / "other", progress=False)
    assert file_hashes(other.out_dir)["videos/ph_s000_v00.mp4"] != hashes["videos/ph_s000_v00.mp4"]


def test_stage_writes_a_valid_manifest_videos_and_truth(tmp_path: Path):
    result = run(tiny(subjects=2, tasks=["rest"], dynamic_only=True), tmp_path, progress=False)
    assert (result.videos, result.subjects, result.pd_subjects) == (2, 2, 1)
    manifest = read_manifest(result.manifest)
    assert not manifest.problems and len(manifest) == 2
    assert tuple(result.manifest.read_text().splitlines()[0].split(",")) == COLUMNS
    row = manifest.rows[0]
    assert row["label"] == "pd" and 1 <= row["updrs_3_2"] <= 4 and row["hoehn_yahr"] >= 1
    frames = list(iter_frames(tmp_path / row["path"]))
    assert len(frames) == 75 and frames[0].rgb.shape == (256, 256, 3)
    assert frames[1].time == pytest.approx(0.04, abs=1e-3)
    truth = json.loads((tmp_path / "truth" / f"{row['video_id']}.json").read_text())
    assert truth["n_frames"] == 75 and len(truth["au"]["au12"]) == 75 and truth["cycles"] > 0
    assert set(truth["blink_frames"]) == {i for i, v in enumerate(truth["au"]["au45"]) if v >= 0.5}
    meta = json.loads((tmp_path / "phantom.json").read_text())
    assert meta["config"]["dynamic_only"] is True and set(meta["sha256"]) == {
        r["video_id"] for r in manifest.rows
    }
    # A smaller re-run into the same folder leaves nothing stale behind.
    run(tiny(subjects=2, tasks=["rest"], dynamic_only=True, videos_per_subject=1), tmp_path, progress=False)
    assert sorted(p.name for p in (tmp_path / "videos").iterdir()) == ["ph_s000_v00.mp4", "ph_s001_v00.mp4"]


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "hypomimia", "phantom", *args], capture_output=True, text=True,
                          timeout=300)  # fmt: skip


def test_command_overrides_params_and_reports_bad_options(tmp_path: Path):
    params = tmp_path / "params.yaml"
    params.write_text("phantom:\n  subjects: 40\n  duration_s: 3.0\n  size: 256\n  tasks: [speech]\n")
    r = _cli("--params", str(params), "--subjects", "2", "--videos-per-subject", "1", "--workers", "1",
             "--cue", "static=on", "--out", str(tmp_path / "ph"))  # fmt: skip
    assert r.returncode == 0, r.stderr
    assert "2 videos of 2 subjects" in r.stdout
    meta = json.loads((tmp_path / "ph" / "phantom.json").read_text())
    assert meta["config"]["cues"]["static"] is True and meta["config"]["tasks"] == ["speech"]
    r = _cli("--params", str(params), "--size", "100", "--out", str(tmp_path / "bad"))
    assert r.returncode == 2 and "phantom.size: got 100" in r.stderr and "Traceback" not in r.stderr


def test_cue_options_are_checked():
    from hypomimia.commands.phantom import _cues
    from hypomimia.config.phantom import PhantomConfig
    from hypomimia.errors import UserError

    assert _cues(PhantomConfig(), ["static=on", "blink=off"])["cues"] | {} == {
        "amplitude": True, "speed": True, "blink": False, "micro": True, "static": True}  # fmt: skip
    with pytest.raises(UserError, match="bad --cue"):
        _cues(PhantomConfig(), ["smile=on"])
