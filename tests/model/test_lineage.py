"""Lineage for auditors, end to end on a tiny trained and registered model in a temporary MLflow store:
from a served prediction's request id (and from @champion) back to the exact video hashes, from one
of those hashes forward to the model, deletion marking from a manifest, the model card and the audit
log's command."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from hypomimia.errors import UserError
from hypomimia.inference import prediction_log
from hypomimia.lineage import audit, query
from hypomimia.lineage.model_card import build_model_card, render_markdown
from hypomimia.lineage.registry import audit_log_for
from hypomimia.stages.train import run
from tests.helpers_train import make_tubes, tiny_train_config

NAME = "hypomimia-i3d"


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """One tiny model trained on 12 subjects, registered as v1, promoted to @champion, and one
    served prediction made with it (the record the endpoint writes)."""
    from mlflow import MlflowClient

    root = tmp_path_factory.mktemp("lineage")
    tubes, ingest = make_tubes(root, subjects=12, videos_per_subject=1, frames=20, size=32, folds=3)
    uri = f"sqlite:///{root / 'mlflow' / 'mlflow.db'}"
    r = run(tiny_train_config(epochs=1, bootstrap=0), tubes, ingest, root / "train", tracking_uri=uri)
    assert r.registered_version == "1"
    MlflowClient(uri).set_registered_model_alias(NAME, "champion", "1")
    log = audit_log_for(uri)
    audit.record("promote", {"model": NAME, "version": "1", "alias": "champion"}, "blessed", "eval.json", log)
    rec = prediction_log.PredictionRecord(request_id="req-0001", outcome="ok", model_name=NAME, model_version="1",
                                          model_alias="champion", p_pd=0.8, label="pd")  # fmt: skip
    prediction_log.append(rec, root / "predictions")
    table = pd.read_parquet(tubes / "tubes.parquet")
    return {"root": root, "uri": uri, "run": r, "audit": log, "tubes": table}


@pytest.mark.slow
def test_from_a_request_id_back_to_the_exact_video_hashes_and_forward_again(trained):
    root, uri = trained["root"], trained["uri"]
    chain = query.lineage("req-0001", uri, root / "predictions", work_dir=root, audit_log=trained["audit"])
    assert chain["kind"] == "prediction" and chain["prediction"]["request_id"] == "req-0001"
    assert chain["registry"]["version"] == "1" and chain["registry"]["aliases"] == ["champion"]
    assert [h["action"] for h in chain["registry"]["audit"]] == ["register", "promote"]
    assert chain["registry"]["alias_history"][0]["alias"] == "champion"
    tags = chain["registry"]["tags"]
    assert {"git.commit", "params.sha256", "data.version", "lock.sha256", "model_card"} <= set(tags)
    t = chain["training_run"]
    assert t["run_id"] == trained["run"].run_id and t["run_name"].startswith("train-fold0-r0-")
    assert t["params_sha256"] == tags["params.sha256"] and t["git_commit"] == tags["git.commit"]

    used = {v["video_id"]: v["sha256"] for v in chain["data"]["videos"]}
    table = trained["tubes"]
    assert used == dict(zip(table["video_id"], table["sha256"], strict=True))  # every video, exact bytes
    assert chain["local"]["face_tubes"]["table"]["matches"] is True  # the tube table it was trained on

    same = query.lineage(f"models:/{NAME}@champion", uri, work_dir=root, audit_log=trained["audit"])
    assert same["data"]["videos"] == chain["data"]["videos"]
    by_run = query.lineage(trained["run"].run_id, uri, work_dir=root, audit_log=trained["audit"])
    assert by_run["kind"] == "run" and by_run["registry"]["version"] == "1"
    md = query.render_markdown(chain)
    assert "req-0001" in md and next(iter(used.values())) in md

    sha = table["sha256"].iloc[3]
    hits = query.models_using(video_sha256=sha, tracking_uri=uri)
    assert [(h["name"], h["version"], h["aliases"]) for h in hits] == [(NAME, "1", ["champion"])]
    assert hits[0]["videos"][0]["sha256"] == sha
    assert [h["version"] for h in query.models_using(subject_id="S003", tracking_uri=uri)] == ["1"]
    assert query.models_using(video_sha256="f" * 64, tracking_uri=uri) == []


@pytest.mark.slow
def test_removing_a_subject_from_the_manifest_marks_the_models_that_used_it(trained, tmp_path: Path):
    table = trained["tubes"]
    rows = table.assign(path=table["video_id"] + ".mp4", session="s1")
    cols = ["video_id", "path", "subject_id", "session", "task", "label"]
    rows[cols].to_csv(tmp_path / "full.csv", index=False)
    rows[rows["subject_id"] != "S005"][cols].to_csv(tmp_path / "without.csv", index=False)
    assert query.models_using_removed(tmp_path / "full.csv", trained["uri"]) == []
    marked = query.models_using_removed(tmp_path / "without.csv", trained["uri"], mark=True)
    assert [(m["version"], m["removed_subjects"], m["removed_videos"]) for m in marked] == [
        ("1", ["S005"], ["S005_v0"])
    ]
    from mlflow import MlflowClient

    assert MlflowClient(trained["uri"]).get_model_version(NAME, "1").tags["data.removed_subjects"] == "S005"


@pytest.mark.slow
def test_cli_writes_json_and_markdown_and_records_a_deletion_request(trained, tmp_path: Path, monkeypatch):
    from hypomimia.cli import _app

    monkeypatch.setenv("HYPOMIMIA_AUDIT_LOG", str(trained["audit"]))
    runner, uri = CliRunner(), trained["uri"]
    r = runner.invoke(_app, ["lineage", f"models:/{NAME}@champion", "--tracking-uri", uri, "--out", str(tmp_path),
                             "--work", str(trained["root"])])  # fmt: skip
    assert r.exit_code == 0, r.output
    assert json.loads((tmp_path / "lineage.json").read_text())["registry"]["version"] == "1"
    assert (tmp_path / "lineage.md").read_text().startswith("# Lineage of")
    r = runner.invoke(_app, ["lineage", "--subject", "S002", "--deletion-request", "subject withdrew consent",
                             "--tracking-uri", uri, "--out", str(tmp_path)])  # fmt: skip
    assert r.exit_code == 0, r.output
    assert "hypomimia-i3d v1" in r.output
    last = audit.read(trained["audit"])[-1]
    assert last["action"] == "deletion_request" and last["what"]["models"] == [f"{NAME}/1"]
    r = runner.invoke(_app, ["audit", "--json"])
    assert (
        r.exit_code == 0
        and [json.loads(x)["action"] for x in r.output.splitlines()][-1] == "deletion_request"
    )


def test_audit_command_flags_an_edited_log(tmp_path: Path, monkeypatch):
    from hypomimia.cli import _app

    log = tmp_path / "audit.jsonl"
    monkeypatch.setenv("HYPOMIMIA_AUDIT_LOG", str(log))
    audit.record("register", {"model": NAME, "version": "1"}, "trained")
    audit.record(
        "promote", {"model": NAME, "version": "1", "alias": "champion"}, "blessed", "evaluation.json"
    )
    r = CliRunner().invoke(_app, ["audit", "--action", "promote"])
    assert r.exit_code == 0 and "(1 records)" in r.output and "chain intact: 2 records" in r.output
    text = log.read_text()
    log.write_text(text.replace("blessed", "rubber-stamped"))  # the last record: no successor vouches for it
    r = CliRunner().invoke(_app, ["audit"])
    assert r.exit_code != 0 and audit.verify_chain(log).first_broken == 1
    log.write_text(text.splitlines(keepends=True)[0])  # the last record removed
    assert audit.verify_chain(log).first_broken == 1


@pytest.mark.slow
def test_model_card_is_generated_from_the_artifacts(trained):
    model_dir = trained["run"].model_path.parent
    metrics = json.loads((model_dir / "metrics.json").read_text())
    card = build_model_card(model_dir, registry={"name": NAME, "version": "1"})
    assert card["metrics"]["overall"]["subject"]["auroc"] == metrics["overall"]["subject"]["auroc"]
    assert card["training_data"]["splits"]["test"]["subjects"] == metrics["split"]["test_subjects"]
    assert card["training_data"]["synthetic"] is False  # blob tubes, not the phantom
    assert card["evaluation"] is None and any("evaluation.json" in s for s in card["limitations"])
    (model_dir / "evaluation.json").write_text(json.dumps({"models": {"i3d": {"subject": {"auroc": 0.9,
                                               "auroc_ci95": [0.7, 1.0], "n": 4}}}}))  # fmt: skip
    with_eval = build_model_card(model_dir)
    assert with_eval["evaluation"]["models"] == [
        {"model": "i3d", "auroc": 0.9, "auroc_ci95": [0.7, 1.0], "n": 4}
    ]
    md = render_markdown(with_eval)
    assert "not a medical device" in md and "| i3d | 0.900 | [0.700, 1.000] | 4 |" in md
    (model_dir / "evaluation.json").unlink()
    logged = (model_dir / "model_card" / "model_card.json").read_text()  # written and logged at registration
    assert json.loads(logged)["model"]["registry"] == {"name": NAME, "version": "1"}


def test_the_endpoint_resolves_the_champion_in_the_registry_and_falls_back_to_the_newest(
    trained, tmp_path: Path
):
    """What serving starts with: models:/NAME@champion resolves to its version and run, with the model's
    files fetched from the run; an alias that does not exist yet serves the newest version and says so."""
    from hypomimia.inference.predictor import load_served_model, resolve_model

    folder, champion = resolve_model(f"models:/{NAME}@champion", trained["uri"], cache=tmp_path / "a")
    assert (champion.name, champion.version, champion.alias) == (NAME, "1", "champion")
    assert champion.run_id == trained["run"].run_id
    assert (folder / "model.pt").read_bytes() == trained["run"].model_path.read_bytes()
    _, fallback = resolve_model(f"models:/{NAME}@no-such-alias", trained["uri"], cache=tmp_path / "b")
    assert fallback.version == "1" and fallback.alias is None and "newest version" in fallback.note
    with pytest.raises(UserError, match="not in the MLflow registry"):
        resolve_model("models:/no-such-model@champion", trained["uri"], cache=tmp_path / "c")
    # These tiny tubes were not made by the facetubes stage, so the model has no face-tube params: the
    # endpoint refuses to guess them rather than extract tubes unlike training did.
    with pytest.raises(UserError, match="no face_tubes params"):
        load_served_model(folder)
