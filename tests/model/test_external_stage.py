"""External validation (``hypomimia external``): a trained model scores a cohort it never saw as /predict
does, every video of the cohort is accounted for, and the seed's deployment map is applied to subject means."""

import json

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from hypomimia.cli import _app
from hypomimia.errors import UserError
from hypomimia.evaluation import calibration
from hypomimia.faces.tube import tube_params
from hypomimia.monitoring.scoring import Scorer
from hypomimia.stages import external as stage
from hypomimia.stages import train as train_stage
from tests.helpers_serving import TUBES
from tests.helpers_train import make_tubes, tiny_train_config

pytestmark = pytest.mark.slow  # one tiny training (~20 s)


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    root = tmp_path_factory.mktemp("external")
    tubes, ingest = make_tubes(root / "dev", subjects=16, videos_per_subject=1, frames=24, size=32, folds=4)
    (tubes / "report.json").write_text(json.dumps({"params": tube_params(TUBES)}))  # what serving needs
    trained = train_stage.run(
        tiny_train_config(epochs=2, seed=3), tubes, ingest, root / "train", tracking_uri="off"
    )
    # an unseen cohort of the same kind (another generator seed), with one video of each fate besides "scored"
    # (both of S000's: it has no scored video left, so the cohort scores 11 subjects)
    tubes2, ingest2 = make_tubes(
        root / "cohort", subjects=12, videos_per_subject=2, frames=24, size=32, seed=7
    )
    table = pd.read_parquet(tubes2 / "tubes.parquet")
    table.loc[0, ["status", "reason"]] = ["failed", "no_face"]
    table.loc[1, "label"] = ""
    table.to_parquet(tubes2 / "tubes.parquet", index=False)
    ingested = table[["video_id", "subject_id"]].assign(status="accepted")
    quarantined = pd.DataFrame([{"video_id": "broken", "subject_id": "S999", "status": "quarantined"}])
    pd.concat([ingested, quarantined], ignore_index=True).to_parquet(
        ingest2 / "ingested.parquet", index=False
    )
    evaluation = root / "evaluation.json"
    evaluation.write_text(json.dumps({"reference": "i3d", "settings": {"i3d": {"seeds": {"per_seed": [
        {"seed": 3, "calibration_map": {"temperature": 0.5}}]}}}}))  # fmt: skip
    return {
        "root": root,
        "model": trained.model_path.parent,
        "tubes": tubes2,
        "ingest": ingest2,
        "evaluation": evaluation,
    }


def test_every_cohort_video_is_accounted_for_and_scored_as_the_endpoint_scores_it(world):
    r = stage.run([world["model"]], world["ingest"], world["tubes"], world["root"] / "out",
                  evaluation=world["evaluation"], bootstrap=20)  # fmt: skip
    c = r.report["cohort"]
    assert c == {"videos": 25, "quarantined_at_ingest": 1, "no_face_tube": 1, "unlabelled": 1, "scored": 22,
                 "subjects": 11, "pd_subjects": 6}  # fmt: skip
    assert c["scored"] + c["quarantined_at_ingest"] + c["no_face_tube"] + c["unlabelled"] == c["videos"]
    scores = pd.read_parquet(r.out_dir / "scores.parquet")
    assert len(scores) == 22 and set(scores.columns) >= {"model", "video_id", "subject_id", "label", "p"}
    # the served number: the Scorer (the endpoint's arithmetic) on the same tubes
    scorer = Scorer.load(world["model"], 2)  # the stage's threads: the same float path
    some = pd.read_parquet(world["tubes"] / "tubes.parquet").iloc[2:5]
    direct = scorer.score(
        some.assign(tube=[str(world["tubes"] / t) for t in some["tube"]])[["video_id", "tube"]]
    )[0]
    merged = direct.merge(scores, on="video_id")
    np.testing.assert_allclose(merged["p_pd"], merged["p"], rtol=0, atol=1e-12)
    # the seed's map (seed 3 -> temperature 0.5) on the subject means, not on the videos
    m = r.report["models"][0]
    assert m["seed"] == 3 and m["calibration_map"] == {"temperature": 0.5}
    subj = scores.groupby("subject_id").agg(label=("label", "first"), p=("p", "mean"))
    after = calibration.apply(subj["p"].to_numpy(), {"temperature": 0.5})
    assert m["after"]["ece"] == pytest.approx(calibration.consistency(after, subj["label"].to_numpy())["ece"])
    assert m["subjects"] == 11 and m["videos"] == 22
    text = (r.out_dir / "external.md").read_text()
    assert "22 of 25 videos scored" in text and "1 quarantined at ingest" in text
    assert json.loads((r.out_dir / "external.json").read_text())["provenance"]["stage"] == "external"


def test_a_calibration_cohort_fits_each_models_map_there_and_applies_it_here(world, tmp_path):
    first = stage.run([world["model"]], world["ingest"], world["tubes"], tmp_path / "a", bootstrap=0)
    r = stage.run([world["model"]], world["ingest"], world["tubes"], tmp_path / "b", bootstrap=0,
                  calibration_cohort=first.out_dir, method="temperature")  # fmt: skip
    m = r.report["models"][0]
    scores = pd.read_parquet(first.out_dir / "scores.parquet")
    subj = scores.groupby("subject_id").agg(label=("label", "first"), p=("p", "mean"))
    fitted = calibration.fit(subj["p"].to_numpy(), subj["label"].to_numpy(), "temperature")
    assert m["cohort_map"] == fitted
    after = calibration.apply(subj["p"].to_numpy(), fitted)
    assert m["after_cohort_map"]["ece"] == pytest.approx(
        calibration.consistency(after, subj["label"].to_numpy())["ece"]
    )
    assert "after the calibration cohort's map" in (r.out_dir / "external.md").read_text()
    other = pd.read_parquet(first.out_dir / "scores.parquet").assign(model="elsewhere/train")
    other.to_parquet(tmp_path / "a" / "scores.parquet", index=False)
    with pytest.raises(UserError, match="was not scored by"):
        stage.run(
            [world["model"]],
            world["ingest"],
            world["tubes"],
            tmp_path / "c",
            calibration_cohort=tmp_path / "a",
        )


def test_a_model_without_a_map_for_its_seed_reports_after_as_undefined(world):
    other = world["root"] / "other.json"
    other.write_text(json.dumps({"reference": "i3d", "settings": {}}))
    r = stage.run([world["model"]], world["ingest"], world["tubes"], world["root"] / "out2", evaluation=other,
                  bootstrap=0)  # fmt: skip
    assert r.report["models"][0]["after"] is None and "undefined" in r.report["models"][0]["note"]


def test_bad_inputs_are_named_with_their_fix(world, tmp_path):
    with pytest.raises(UserError, match="not both classes"):
        one = tmp_path / "one"
        tubes, ingest = make_tubes(one, subjects=4, videos_per_subject=1, frames=8, size=16)
        t = pd.read_parquet(tubes / "tubes.parquet").assign(label="pd")
        t.to_parquet(tubes / "tubes.parquet", index=False)
        t[["video_id"]].assign(status="accepted").to_parquet(ingest / "ingested.parquet", index=False)
        stage.run([world["model"]], ingest, tubes, tmp_path / "o")
    with pytest.raises(UserError, match="ingested.parquet"):
        stage.run([world["model"]], tmp_path, world["tubes"], tmp_path / "o")
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(UserError, match="evaluation.json"):
        stage.run([world["model"]], world["ingest"], world["tubes"], tmp_path / "o", evaluation=bad)
    res = CliRunner().invoke(_app, ["external", str(tmp_path), "--ingest", str(world["ingest"])])
    assert isinstance(res.exception, UserError) and "no trained model" in res.exception.problem
