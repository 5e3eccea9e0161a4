"""Evaluate stage and blessing gate on tiny tubes: paired folds (a mismatch fails), standard JSON,
MLflow parent/child runs, and the registry: first blessed becomes champion, a worse challenger is
not blessed and the champion stays, a better one is promoted, rollback restores the previous one.

One tiny training and one evaluation are shared by the module (the gate is re-decided by calling the
stage again: finished tasks are not fitted again).
"""

import json
import shutil

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from hypomimia.cli import _app
from hypomimia.config.evaluate import EvaluateConfig
from hypomimia.errors import UserError
from hypomimia.evaluation import registry, report
from hypomimia.lineage import audit
from hypomimia.stages import evaluate as stage
from hypomimia.stages import train as train_stage
from tests.helpers_train import make_tubes, tiny_train_config

pytestmark = pytest.mark.slow  # one tiny training and several evaluations (~90 s)

NAME = "hypomimia-i3d"


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    root = tmp_path_factory.mktemp("evaluate")
    mp = pytest.MonkeyPatch()
    mp.setenv("HYPOMIMIA_AUDIT_LOG", str(root / "audit.jsonl"))
    tubes, ingest = make_tubes(root, subjects=16, videos_per_subject=1, frames=24, size=32, folds=4)
    uri = f"sqlite:///{root / 'mlflow' / 'mlflow.db'}"
    train = tiny_train_config(epochs=2)
    trained = train_stage.run(train, tubes, ingest, root / "train", tracking_uri=uri)
    cfg = EvaluateConfig(
        models=["i3d", "landmark_static", "landmark_dynamic"],
        folds=[0, 1],
        ablation={"frames": [4], "designs": ["fixed_stride", "fixed_duration"]},
        bootstrap=200,
        blessing={"min_auroc_lower_ci": 0.95},  # the tiny model cannot reach it: not blessed
    )
    first = stage.run(
        cfg, train, tubes, ingest, root / "evaluate", model_dir=root / "train", tracking_uri=uri
    )
    yield {"root": root, "tubes": tubes, "ingest": ingest, "uri": uri, "train": train, "cfg": cfg,
           "trained": trained, "first": first}  # fmt: skip
    mp.undo()


def _evaluate(w, model_dir, **blessing):
    cfg = w["cfg"].model_copy(update={"blessing": w["cfg"].blessing.model_copy(update=blessing)})
    return stage.run(cfg, w["train"], w["tubes"], w["ingest"], w["root"] / "evaluate", model_dir=model_dir, tracking_uri=w["uri"])  # fmt: skip


def test_every_setting_is_scored_on_the_same_subjects_with_standard_json(world):
    r = world["first"]
    ev = json.loads(r.evaluation_path.read_text(), parse_constant=lambda c: pytest.fail(f"bare {c} in JSON"))
    assert set(ev["settings"]) == {
        "i3d",
        "landmark_static",
        "landmark_dynamic",
        "i3d/fixed_stride/f4",
        "i3d/fixed_duration/f4",
    }
    subjects = {n: s["pooled"]["subject"]["n"] for n, s in ev["settings"].items()}
    assert set(subjects.values()) == {8}  # folds 0 and 1: 4 subjects each, every setting
    assert [c["b"] for c in ev["comparisons"]] == ["landmark_static", "landmark_dynamic"]
    assert all("delong_p_holm" in c and "bootstrap_p_holm" in c for c in ev["comparisons"])
    assert {row["design"] for row in ev["ablation"]} == {"fixed_stride", "fixed_duration"}
    reused = json.loads((r.out_dir / "runs" / "i3d-f8-s2" / "seed0" / "fold0" / "task.json").read_text())
    assert reused["source"] == "reused train"  # the trained challenger is its own fold-0 run
    assert all((r.out_dir / f).is_file() for f in ev["figures"]) and len(ev["figures"]) == 3
    assert "## Paired comparisons" in r.report_path.read_text()
    # per model of the table (not the ablation's designs), AUROC per task on the same videos
    assert set(ev["task_slices"]) == {"i3d", "landmark_static", "landmark_dynamic"}
    tasks = {t for per in ev["task_slices"].values() for t in per}
    videos = pd.read_parquet(world["tubes"] / "tubes.parquet")
    assert tasks == set(videos["task"]) and "## Task slices" in r.report_path.read_text()
    for per in ev["task_slices"].values():
        assert sum(s["n"] for s in per.values()) == 8  # one video per subject, 8 test subjects
    from mlflow import MlflowClient

    c = MlflowClient(world["uri"])
    parent = c.get_run(r.run_id)
    assert {"git.commit", "params.hash", "data.tubes_digest", "folds.digest"} <= set(parent.data.tags)
    children = c.search_runs([parent.info.experiment_id], f"tags.mlflow.parentRunId = '{r.run_id}'")
    assert len(children) == 5 * 2 and {ch.info.run_name for ch in children} >= {
        "i3d fold0 seed0",
        "landmark_static fold1",
    }


def test_seeds_give_per_seed_rows_and_the_gate_decides_on_their_ensemble(world):
    """evaluate.seeds [0, 1]: every network task once per seed (the challenger is seed 0 of fold 0), a
    row per seed, their mean and SD, the ensemble (mean probability per subject) as the setting's numbers,
    the paired tests and the gate on the ensemble, and the cross-fitted calibration beside."""
    out = world["root"] / "evaluate_seeds"
    shutil.copytree(world["root"] / "evaluate" / "runs", out / "runs", dirs_exist_ok=True)  # seed 0 is fitted
    cfg = EvaluateConfig(
        models=["i3d", "landmark_static"], folds=[0, 1], ablation={"frames": []}, seeds=[0, 1], bootstrap=200,
        blessing={"min_auroc_lower_ci": 0.0, "min_seed_agreement": 1.0},
    )  # fmt: skip
    r = stage.run(cfg, world["train"], world["tubes"], world["ingest"], out, model_dir=world["root"] / "train", tracking_uri="off")  # fmt: skip
    ev = json.loads(r.evaluation_path.read_text(), parse_constant=lambda c: pytest.fail(f"bare {c} in JSON"))
    runs = out / "runs" / "i3d-f8-s2"
    source = {(s, k): json.loads((runs / f"seed{s}" / f"fold{k}" / "task.json").read_text())["source"]
              for s in (0, 1) for k in (0, 1)}  # fmt: skip
    assert source[(0, 0)] == "reused train" and source[(1, 0)] == source[(1, 1)] == "trained"
    assert (out / "runs" / "landmark_static" / "fold0" / "task.json").is_file()  # deterministic: fitted once
    assert ev["settings"]["landmark_static"]["seeds"] is None

    i3d = ev["settings"]["i3d"]
    rows = i3d["seeds"]["per_seed"]
    assert [row["seed"] for row in rows] == [0, 1] and all(len(row["folds"]) == 2 for row in rows)
    aucs = [row["subject_auroc"] for row in rows]
    assert i3d["seeds"]["auroc_mean"] == pytest.approx(np.mean(aucs))
    assert i3d["seeds"]["auroc_sd"] == pytest.approx(np.std(aucs, ddof=1))
    # the ensemble, recomputed by hand: per subject the mean of the two seeds' subject probabilities
    per_seed = [
        report.subject_table(pd.concat([pd.read_parquet(runs / f"seed{s}" / f"fold{k}" / stage.CLIPS) for k in (0, 1)]))
        .set_index("subject_id") for s in (0, 1)
    ]  # fmt: skip
    p = (per_seed[0]["p"] + per_seed[1]["p"]) / 2
    ensemble = report.auroc(per_seed[0]["label"].to_numpy(), p.loc[per_seed[0].index].to_numpy())
    assert i3d["pooled"]["subject"]["auroc"] == pytest.approx(ensemble)
    assert ev["comparisons"][0]["auroc_a"] == pytest.approx(ensemble)  # paired tests use the ensemble

    b = r.decision  # the gate: the ensemble's CI, with each seed's own verdict beside
    assert b["challenger"]["subject_auroc"] == pytest.approx(ensemble)
    assert [s["seed"] for s in b["challenger"]["seeds"]] == [0, 1]
    assert {c["name"] for c in b["checks"]} == {
        "auroc_lower_ci_floor",
        "not_worse_than_champion",
        "seed_agreement",
    }
    assert b["extra"]["seed_agreement"] == 1.0 and r.blessed

    cal = i3d["calibration"]
    assert cal["method"] == "temperature" and [f["fold"] for f in cal["folds"]] == [0, 1]
    assert cal["ece_before"] == pytest.approx(i3d["pooled"]["subject"]["ece"])
    assert cal["ece_after"] is not None and 0 <= cal["ece_after"] <= 1
    md = r.report_path.read_text()
    assert "## Training seeds" in md and "**ensemble**" in md and "## Calibration" in md


def test_evaluation_fails_when_its_folds_differ_from_training(world, tmp_path):
    folds = pd.read_parquet(world["ingest"] / "folds.parquet")
    other = tmp_path / "ingest"
    other.mkdir()
    folds.assign(fold=(folds["fold"] + 1) % 4).to_parquet(other / "folds.parquet", index=False)
    with pytest.raises(UserError, match="not be paired"):
        stage.run(world["cfg"], world["train"], world["tubes"], other, tmp_path / "ev", model_dir=world["root"] / "train", tracking_uri="off")  # fmt: skip
    # a run fitted on other folds cannot be gathered with these either
    with pytest.raises(UserError, match="not be paired"):
        stage.gather(world["cfg"], world["train"], world["tubes"], other,
                     sorted((world["root"] / "evaluate" / "runs").glob("*/fold*")), tmp_path / "ev2", tracking_uri="off")  # fmt: skip


def test_a_finished_task_is_fitted_again_when_its_data_changed(world, tmp_path):
    """Same subjects, folds and params but other videos (a re-rendered study): nothing may be reused, neither
    a finished task nor a donor training run, or the report mixes the old study's results into the new."""
    from hypomimia.evaluation import plan

    w = world
    task = next(t for t in plan.tasks(w["cfg"], w["train"], [0]) if t.setting.name == "landmark_static")
    runs = tmp_path / "runs"
    first = stage.fit(task, w["cfg"], w["train"], w["tubes"], w["ingest"], runs)
    stamp = (first / "task.json").stat().st_mtime_ns
    assert stage.fit(task, w["cfg"], w["train"], w["tubes"], w["ingest"], runs) == first
    assert (first / "task.json").stat().st_mtime_ns == stamp  # unchanged data: reused
    other = tmp_path / "tubes"
    shutil.copytree(w["tubes"], other)
    tubes = pd.read_parquet(other / "tubes.parquet")
    tubes.loc[0, "sha256"] = "f" * 64  # one video re-rendered
    tubes.to_parquet(other / "tubes.parquet", index=False)
    stage.fit(task, w["cfg"], w["train"], other, w["ingest"], runs)
    spec = json.loads((first / "task.json").read_text())["spec"]
    assert (first / "task.json").stat().st_mtime_ns != stamp and spec["data"] == stage.data_identity(
        other, w["ingest"]
    )
    assert spec["data"]["tubes"] != stage.data_identity(w["tubes"], w["ingest"])["tubes"]
    # the trained challenger is a donor for its own videos only
    i3d = next(x for x in plan.settings(w["cfg"], w["train"]) if x.name == "i3d")
    tcfg = plan.train_config(i3d, w["train"], 0, None, 0)
    truth = pd.read_parquet(w["tubes"] / "tubes.parquet")
    videos = dict(zip(truth["video_id"], truth["sha256"], strict=True))
    assert stage._donor(tcfg, [w["root"] / "train"], videos) == w["root"] / "train"
    assert stage._donor(tcfg, [w["root"] / "train"], videos | {truth["video_id"][0]: "f" * 64}) is None


def _second_version(w) -> tuple[str, str]:
    """Register another version of the tiny model under a run of its own (a retrained challenger)."""
    import mlflow

    c = registry.client(w["uri"])
    src = c.get_model_version(NAME, "1")
    with mlflow.start_run(run_name="retrained") as run:
        pass
    v = c.create_model_version(NAME, src.source, run_id=run.info.run_id)
    model_dir = w["root"] / "train2"
    if not model_dir.exists():
        shutil.copytree(
            w["root"] / "train", model_dir, ignore=shutil.ignore_patterns("checkpoints", "frame_cache")
        )
    meta = json.loads((model_dir / "metadata.json").read_text())
    meta["mlflow"]["run_id"] = run.info.run_id
    (model_dir / "metadata.json").write_text(json.dumps(meta))
    return str(v.version), model_dir


def test_gate_and_registry_promote_reject_rollback(world):
    c = registry.client(world["uri"])
    r = world["first"]
    assert not r.blessed and registry.alias_version(c, NAME, "challenger") == "1"
    assert registry.alias_version(c, NAME, "champion") is None
    assert registry.promote_decision(c, r.blessing_path)["changed"] is False

    first = _evaluate(world, world["root"] / "train", min_auroc_lower_ci=0.0)  # no champion: first blessed
    assert first.blessed
    registry.promote_decision(c, first.blessing_path)
    assert (
        registry.alias_version(c, NAME, "champion") == "1"
        and registry.alias_version(c, NAME, "challenger") is None
    )

    v2, dir2 = _second_version(world)
    # the champion measured 0.99 on these same folds: the challenger is worse by more than the margin
    c.set_model_version_tag(NAME, "1", registry.TAG_AUROC, "0.99")
    worse = _evaluate(world, dir2, min_auroc_lower_ci=0.0)
    assert not worse.blessed and "not_worse_than_champion" in worse.decision["reason"]
    registry.promote_decision(c, worse.blessing_path)
    assert (
        registry.alias_version(c, NAME, "champion") == "1"
        and registry.alias_version(c, NAME, "challenger") == v2
    )

    c.set_model_version_tag(NAME, "1", registry.TAG_AUROC, "0.2")  # now the challenger is better
    better = _evaluate(world, dir2, min_auroc_lower_ci=0.0)
    assert better.blessed
    registry.promote_decision(c, better.blessing_path)
    assert (
        registry.alias_version(c, NAME, "champion") == v2
        and registry.alias_version(c, NAME, "previous") == "1"
    )

    res = CliRunner().invoke(
        _app, ["registry", "rollback", "--name", NAME, "--tracking-uri", world["uri"], "--reason", "test"]
    )
    assert res.exit_code == 0, res.output
    assert (
        registry.alias_version(c, NAME, "champion") == "1"
        and registry.alias_version(c, NAME, "previous") is None
    )
    assert c.get_model_version(NAME, v2).tags[registry.TAG_ROLLED_BACK] == "true"
    with pytest.raises(UserError, match="nothing to roll back"):
        registry.rollback(c, NAME, why="again")

    actions = [e["action"] for e in audit.read()]
    # Training recorded its registration (lineage); the gate's decisions follow in order.
    assert "register" in actions
    assert [a for a in actions if a != "register"] == ["reject", "promote", "reject", "promote", "rollback"]
    assert audit.verify_chain().ok
    shown = CliRunner().invoke(_app, ["registry", "show", "--name", NAME, "--tracking-uri", world["uri"]])
    assert "v1: aliases champion" in shown.output and "(rolled back)" in shown.output
