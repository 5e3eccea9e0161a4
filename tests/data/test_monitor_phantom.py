"""End to end on tiny phantom data: monitoring windows ingest, a camera change drifts, the retrain
trigger submits to a fake KFP server (ok submits nothing), and a known-answer patient course."""

import json

import pandas as pd
import pytest
from PIL import Image
from typer.testing import CliRunner

from hypomimia.cli import _app
from hypomimia.config.facetubes import FacetubesConfig
from hypomimia.config.ingest import IngestConfig
from hypomimia.config.monitor import MonitorConfig
from hypomimia.errors import UserError
from hypomimia.phantom.camera import CHANGES, apply_to_folder
from hypomimia.phantom.visits import course, render_visits
from hypomimia.stages import facetubes, ingest, phantom
from hypomimia.stages import monitor as stage
from tests.helpers_ingest import encode, write_manifest
from tests.helpers_phantom import tiny
from tests.helpers_pipeline import FakeKFP

pytestmark = [pytest.mark.slow, pytest.mark.filterwarnings("ignore:This client only works:FutureWarning")]
ING = IngestConfig(folds=2, workers=1)
TUBES = FacetubesConfig(workers=1)


def _prepare(folder, manifest):
    ingest.run(ING, manifest, folder / "ingest")
    facetubes.run(TUBES, folder / "ingest", folder / "tubes")
    return folder / "ingest", folder / "tubes"


@pytest.fixture(scope="module")
def windows(tmp_path_factory):
    root = tmp_path_factory.mktemp("monitor")
    ref = phantom.run(tiny(subjects=8, seed=0, workers=2), root / "ref" / "data", progress=False)
    cur = phantom.run(tiny(subjects=5, seed=1, workers=2), root / "same" / "data", progress=False)
    changed = apply_to_folder(root / "same" / "data", root / "camera" / "data", CHANGES["camera"], fps=25)
    return {
        "ref": _prepare(root / "ref", ref.manifest),
        "same": _prepare(root / "same", cur.manifest),
        "camera": _prepare(root / "camera", changed),
        "root": root,
    }


def test_camera_change_retrains_and_submits_fresh_subjects_do_not(windows, tmp_path, monkeypatch, repo_root):
    """`hypomimia monitor --submit`: the same camera -> ok, nothing submitted; a camera change ->
    retrain, a trigger naming the columns, one run on the (fake) KFP server with the current data."""
    monkeypatch.setenv("HOME", str(tmp_path))  # kfp.Client reads ~/.config/kfp/context.json
    ref_ing, ref_tubes = windows["ref"]
    package = repo_root / "pipeline" / "hypomimia_pipeline.yaml"
    with FakeKFP() as fake:
        for name, expected_runs in (("same", 0), ("camera", 1)):
            ing, tubes = windows[name]
            args = ["monitor", "--reference-ingest", str(ref_ing), "--reference-tubes", str(ref_tubes),
                    "--ingest", str(ing), "--tubes", str(tubes), "--out", str(tmp_path / name), "--no-model",
                    "--no-mlflow", "--params", str(_params(tmp_path)), "--submit", "--host", fake.url,
                    "--package", str(package)]  # fmt: skip
            res = CliRunner().invoke(_app, args)
            assert res.exit_code == 0, res.output + repr(res.exception)
            assert len(fake.runs) == expected_runs, res.output
            if name == "same":
                assert "decision: ok" in res.output and "nothing submitted" in res.output
        assert "submitted" in res.output and "decision: retrain" in res.output
        run = next(iter(fake.runs.values()))
        assert run["display_name"].startswith("retrain-")
    same = json.loads((tmp_path / "same" / "monitor.json").read_text())
    assert same["decision"]["outcome"] == "ok" and not (tmp_path / "same" / "retrain_trigger.json").exists()
    cam = json.loads((tmp_path / "camera" / "monitor.json").read_text())
    assert cam["decision"]["outcome"] == "retrain" and cam["files"]["html"] == "drift.html"
    assert {"width", "height"} <= set(cam["decision"]["drivers"])
    assert (tmp_path / "camera" / "drift.html").stat().st_size > 100_000
    trigger = json.loads((tmp_path / "camera" / "retrain_trigger.json").read_text())
    assert trigger["drivers"] == cam["decision"]["drivers"] and trigger["data_uri"] == str(
        windows["camera"][0]
    )
    drift = json.loads((tmp_path / "camera" / "drift.json").read_text())
    assert "hypomimia_index" in drift["population"]  # who is filmed is monitored too, model-free


def _params(tmp_path):
    p = tmp_path / "p.yaml"
    p.write_text("monitor:\n  min_window: 5\n")
    return p


def test_known_answer_patient_course(tmp_path):
    # UPDRS 3.2 rising 0 -> 1 -> 2 -> 3 over four sessions (3 clips each); a patient stable at 2
    cfg = tiny(workers=2)  # both cores of a CI runner render
    visits = course(900, [0, 1, 2, 3], 3) + course(901, [2, 2, 2], 2)
    manifest = render_visits(cfg, visits, tmp_path / "data")
    ing, tubes = _prepare(tmp_path, manifest)
    result = stage.run_patients(MonitorConfig(), ing, tubes, tmp_path / "patients")
    rising, stable = result["patients"]["ph_s900"], result["patients"]["ph_s901"]
    assert rising["trend"] == "rising" and rising["alerts"], result
    assert {a["direction"] for a in rising["alerts"]} == {"up"}
    assert any(a["from"] == "s1" and a["to"] == "s4" for a in rising["alerts"]), rising["alerts"]
    assert stable["alerts"] == [] and stable["trend"] == "flat", result
    assert (tmp_path / "patients" / "patients" / "ph_s900.png").is_file()


def test_a_monitoring_window_ingests_and_photos_are_reported_as_photos(tmp_path):
    # 16 "videos" of one label that are really photos: probed and quarantined, not refused for folds
    rows = []
    for i in range(16):
        Image.new("RGB", (64, 64), (i * 10, 80, 90)).save(tmp_path / f"p{i}.jpg")
        rows.append({"video_id": f"p{i}", "path": f"p{i}.jpg", "subject_id": f"S{i}", "label": "control"})
    result = ingest.run(IngestConfig(), write_manifest(tmp_path / "manifest.csv", rows), tmp_path / "out")
    assert result.quarantined == 16 and "missing_file" not in result.reasons and result.reasons
    # a follow-up visit of 2 patients, one label: accepted, no folds, and training says why
    for i in range(2):
        encode(tmp_path / f"v{i}.mp4", 12, seed=i)
    rows = [
        {"video_id": f"v{i}", "path": f"v{i}.mp4", "subject_id": f"S{i}", "label": "pd"} for i in range(2)
    ]
    result = ingest.run(IngestConfig(min_frames=4, min_duration_s=0.5), write_manifest(tmp_path / "m2.csv", rows),
                        tmp_path / "out2")  # fmt: skip
    assert result.accepted == 2 and result.fold_videos == 0 and result.folds_note.startswith("no folds")
    assert pd.read_parquet(tmp_path / "out2" / "folds.parquet").empty
    from hypomimia.config.train import TrainConfig
    from hypomimia.learning.training import load_split

    with pytest.raises(UserError, match="ingest made no folds") as err:
        load_split(TrainConfig(), tmp_path / "tubes-unused", tmp_path / "out2")
    assert "2 pd, 0 control" in err.value.problem


def test_commands_outside_the_repository_use_built_in_defaults(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    res = CliRunner().invoke(_app, ["config", "show"])
    assert res.exit_code == 0 and "monitor:" in res.output
    assert "built-in defaults" in " ".join(res.output.split())  # the warning names them (rich wraps lines)
    res = CliRunner().invoke(_app, ["config", "show", "--params", "other.yaml"])
    assert res.exit_code != 0  # a named file that is missing stays an error
