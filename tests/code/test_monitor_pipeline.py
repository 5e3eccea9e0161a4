"""The scheduled monitor pipeline: checked-in package up to date and deterministic, its graph
(window -> monitor -> retrain only on 'retrain'), and `pipeline schedule --pipeline monitor` (weekly)."""

import json
import os
import subprocess
import sys
import warnings
from pathlib import Path

import pandas as pd
import pytest
import yaml
from typer.testing import CliRunner

from hypomimia.cli import _app
from hypomimia.config import load_params
from hypomimia.errors import UserError
from hypomimia.pipeline_runner import MONITOR_PACKAGE_PATH, apply_overrides, compile_named
from tests.helpers_pipeline import API, FakeKFP, body_of

pytestmark = pytest.mark.filterwarnings("ignore:This client only works:FutureWarning")


@pytest.fixture(scope="module")
def params(repo_root):
    return load_params(repo_root / "params.yaml")


@pytest.fixture(scope="module")
def compiled(tmp_path_factory, params, repo_root) -> Path:
    return compile_named("monitor", params, tmp_path_factory.mktemp("kfp") / "monitor.yaml", repo=repo_root)


def _cli(*args, env_extra=None, cwd=None):
    env = {**os.environ, **(env_extra or {})}
    return subprocess.run([sys.executable, "-m", "hypomimia", *args], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=120)  # fmt: skip


def test_checked_in_package_is_up_to_date_and_compiles_identically_elsewhere(compiled, repo_root, tmp_path):
    assert (repo_root / MONITOR_PACKAGE_PATH).read_bytes() == compiled.read_bytes(), (
        "pipeline/monitor_pipeline.yaml is out of date: run 'hypomimia pipeline compile --pipeline monitor'"
    )
    # another process, another hash seed: the same bytes (and the CLI's --check agrees)
    again = tmp_path / "again.yaml"
    res = _cli("pipeline", "compile", "--pipeline", "monitor", "--out", str(again), cwd=repo_root,
               env_extra={"PYTHONHASHSEED": "12345"})  # fmt: skip
    assert res.returncode == 0, res.stderr
    assert again.read_bytes() == compiled.read_bytes()
    res = _cli("pipeline", "compile", "--pipeline", "monitor", "--check", cwd=repo_root,
               env_extra={"PYTHONHASHSEED": "7"})  # fmt: skip
    assert res.returncode == 0 and "up to date" in res.stdout, res.stdout + res.stderr


def test_the_graph_branches_on_the_outcome(compiled, params):
    spec, *_ = yaml.safe_load_all(compiled.read_text())
    assert spec["pipelineInfo"]["name"] == params.monitor.pipeline_name
    tasks = spec["root"]["dag"]["tasks"]
    (drifted,) = [name for name in tasks if name.startswith("condition-")]
    assert {"current-window", "monitor", "voice"} <= set(tasks)
    assert sum(name.startswith("importer") for name in tasks) == 3  # log, reference ingest, reference tubes
    assert tasks["current-window"]["cachingOptions"] == {}  # a window is "now": never a cache hit
    condition = tasks[drifted]["triggerPolicy"]["condition"]
    assert condition == "inputs.parameter_values['pipelinechannel--monitor-Output'] == 'retrain'"
    branch = spec["components"][f"comp-{drifted}"]["dag"]["tasks"]
    assert set(branch) == {"retrain"} and branch["retrain"]["cachingOptions"] == {}
    inputs = spec["root"]["inputDefinitions"]["parameters"]
    assert inputs["prediction_log_uri"]["defaultValue"] == params.monitor.prediction_log_uri
    assert inputs["training_package"]["defaultValue"] == params.monitor.training_package
    executors = spec["deploymentSpec"]["executors"]
    for name in ("exec-current-window", "exec-monitor", "exec-retrain", "exec-voice-shard", "exec-voice"):
        assert executors[name]["container"]["image"] == params.pipeline.image, name
    assert spec["components"]["comp-monitor"]["inputDefinitions"]["artifacts"]["model"]["isOptional"] is True


def _producer(task: dict, artifact: str) -> tuple[str, str]:
    source = task["inputs"]["artifacts"][artifact]["taskOutputArtifact"]
    return source["producerTask"], source["outputArtifactKey"]


def test_the_reference_voice_table_is_measured_like_training_and_feeds_the_scoring(
    compiled, params, repo_root
):
    """The reference ingest -> voice-shard x pipeline.shards -> voice (gather) -> monitor's reference_voice,
    with params.yaml's voice section: a voice model scores the reference with its voice (fused p_pd and
    p_pd_voice) and the audio tests get its SNR and high band. The same fan-out as the training DAG's."""
    spec, *_ = yaml.safe_load_all(compiled.read_text())
    tasks = spec["root"]["dag"]["tasks"]
    monitor = tasks["monitor"]
    assert _producer(monitor, "reference_voice") == ("voice", "features")
    assert not spec["components"]["comp-monitor"]["inputDefinitions"]["artifacts"]["reference_voice"].get(
        "isOptional", False
    )  # the pipeline always passes it: no run scores a voice model from the face alone
    assert "voice" in monitor["dependentTasks"]
    loop, key = _producer(tasks["voice"], "shards")
    assert tasks[loop]["taskInfo"]["name"] == "voice-shards" and tasks[loop]["iteratorPolicy"] == {
        "parallelismLimit": params.pipeline.shards
    }
    assert tasks[loop]["parameterIterator"]["items"]["raw"] == json.dumps(list(range(params.pipeline.shards)))
    loop_dag = spec["components"][tasks[loop]["componentRef"]["name"]]["dag"]
    assert loop_dag["outputs"]["artifacts"][key]["artifactSelectors"] == [
        {"outputArtifactKey": "shard", "producerSubtask": "voice-shard"}
    ]
    shard = loop_dag["tasks"]["voice-shard"]["inputs"]
    assert shard["parameters"]["num_shards"]["runtimeValue"]["constant"] == params.pipeline.shards
    assert shard["parameters"]["params"]["componentInputParameter"] == "pipelinechannel--voice_params"
    # the shards measure the very ingest the monitor reads as its reference
    (ingested,) = [
        v["taskOutputArtifact"]["producerTask"] for v in tasks[loop]["inputs"]["artifacts"].values()
    ]
    assert ingested == _producer(monitor, "reference_ingest")[0]
    inputs = spec["root"]["inputDefinitions"]["parameters"]
    assert inputs["voice_params"]["defaultValue"] == params.voice.model_dump_json()
    assert inputs["voice_cache"]["defaultValue"] == ""
    # the training DAG's voice-shard: the same component source, so both DAGs measure alike
    main, *_ = yaml.safe_load_all((repo_root / "pipeline" / "hypomimia_pipeline.yaml").read_text())
    for name in ("exec-voice-shard", "exec-voice"):
        here, there = (s["deploymentSpec"]["executors"][name]["container"] for s in (spec, main))
        assert here["command"] == there["command"] and here["args"] == there["args"], name


def test_a_served_model_is_imported_when_configured(params, tmp_path, repo_root):
    cfg = apply_overrides(params, ["monitor.model_uri=s3://hypomimia/models/champion"])
    spec, *_ = yaml.safe_load_all(
        compile_named("monitor", cfg, tmp_path / "m.yaml", repo=repo_root).read_text()
    )
    monitor = spec["root"]["dag"]["tasks"]["monitor"]["inputs"]["artifacts"]
    assert "model" in monitor
    importers = [e["importer"] for e in spec["deploymentSpec"]["executors"].values() if "importer" in e]
    assert {"constant": "s3://hypomimia/models/champion"} in [i["artifactUri"] for i in importers]


def test_schedule_the_monitor_weekly_on_kfp(tmp_path, monkeypatch, repo_root):
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.delenv("KF_PIPELINES_ENDPOINT", raising=False)
    with FakeKFP() as fake:
        res = CliRunner().invoke(_app, ["pipeline", "schedule", "--pipeline", "monitor", "--host", fake.url,
                                        "--package", str(repo_root / MONITOR_PACKAGE_PATH)])  # fmt: skip
        assert res.exit_code == 0, res.output + repr(res.exception)
        job = body_of(fake, "POST", f"{API}/recurringruns")
        assert job["trigger"] == {"cron_schedule": {"cron": "0 0 3 * * 1"}}  # monitor.cron: weekly
        assert job["display_name"] == "hypomimia-monitor" and job["no_catchup"] is True
        assert job["pipeline_spec"]["pipelineInfo"]["name"] == "hypomimia-monitor"
        # compiled from params when no package is given; the cron and URIs follow --set
        res = CliRunner().invoke(_app, ["pipeline", "schedule", "--pipeline", "monitor", "--host", fake.url,
                                        "--set", "monitor.cron=0 30 2 * * 0", "--set",
                                        "monitor.prediction_log_uri=gs://clinic/log"])  # fmt: skip
        assert res.exit_code == 0, res.output + repr(res.exception)
        job = body_of(fake, "POST", f"{API}/recurringruns")
        assert job["trigger"] == {"cron_schedule": {"cron": "0 30 2 * * 0"}}
        log_uri = job["pipeline_spec"]["root"]["inputDefinitions"]["parameters"]["prediction_log_uri"]
        assert log_uri["defaultValue"] == "gs://clinic/log"


def test_the_training_dag_still_needs_a_cron_and_unknown_pipelines_are_refused(
    tmp_path, monkeypatch, repo_root
):
    monkeypatch.setenv("HOME", str(tmp_path))
    with FakeKFP() as fake:
        package = str(repo_root / "pipeline" / "hypomimia_pipeline.yaml")
        res = CliRunner().invoke(_app, ["pipeline", "schedule", "--host", fake.url, "--package", package])
        assert res.exit_code != 0 and "--cron" in str(res.exception)
        res = CliRunner().invoke(_app, ["pipeline", "schedule", "--pipeline", "nightly", "--host", fake.url])
        assert res.exit_code != 0 and "main, monitor" in str(res.exception.fix)
        assert fake.requests == []


def test_monitor_submit_names_the_run_after_the_drivers_and_needs_a_package(tmp_path, monkeypatch, repo_root):
    """`hypomimia monitor submit`: the command (not the monitoring wing) starts the training run."""
    monkeypatch.setenv("HOME", str(tmp_path))
    trigger = tmp_path / "retrain_trigger.json"
    trigger.write_text(json.dumps({"kind": "hypomimia-retrain-trigger/1", "drivers": ["blur", "brightness"],
                                   "data_uri": "s3://b/w"}))  # fmt: skip
    with FakeKFP() as fake:
        missing = tmp_path / "nowhere.yaml"
        res = CliRunner().invoke(
            _app, ["monitor", "submit", str(trigger), "--host", fake.url, "--package", str(missing)]
        )
        assert isinstance(res.exception, UserError) and f"{missing} does not exist" in res.exception.problem
        assert "hypomimia pipeline compile" in res.exception.fix and fake.requests == []
        package = str(repo_root / "pipeline" / "hypomimia_pipeline.yaml")
        res = CliRunner().invoke(
            _app, ["monitor", "submit", str(trigger), "--host", fake.url, "--package", package]
        )
        assert res.exit_code == 0, res.output + repr(res.exception)
        assert body_of(fake, "POST", f"{API}/runs")["display_name"] == "retrain-blur-brightness"


def test_the_pipeline_runs_locally_and_a_drifted_week_starts_training(
    params, tmp_path, monkeypatch, repo_root
):
    """kfp.local: log snapshot -> monitor -> (retrain) -> one run on the fake KFP server, submitted from
    inside the component (its own process, as on a cluster)."""
    from kfp import local

    from hypomimia.pipeline_runner import _importable, build_monitor
    from hypomimia.validation.synthetic import make_dataset
    from tests.code.test_monitor_prediction_log import UNTIL, _log

    monkeypatch.setenv("HOME", str(tmp_path))
    ingest, tubes = make_dataset(tmp_path / "ref", n_subjects=24, videos_per_subject=2)
    store = _log(tmp_path / "log", seed=2, shifted_last_week=True)
    pipe = build_monitor(apply_overrides(params, ["monitor.min_window=10"]), repo_root)
    local.init(runner=local.SubprocessRunner(use_venv=False), pipeline_root=str(tmp_path / "kfp"),
               raise_on_error=True)  # fmt: skip
    with FakeKFP() as fake, _importable(repo_root), warnings.catch_warnings():
        warnings.filterwarnings("ignore", module=r"kfp\.local")  # images and resources do nothing locally
        task = pipe(prediction_log_uri=str(store), reference_ingest_uri=str(ingest), reference_tubes_uri=str(tubes),
                    until=UNTIL.isoformat(), mlflow_tracking_uri="", kfp_host=fake.url,
                    training_package=str(repo_root / "pipeline" / "hypomimia_pipeline.yaml"))  # fmt: skip
    assert task.output == "retrain"
    (run,) = fake.runs.values()
    assert run["display_name"] == "retrain-blur_mean-brightness_mean"
    assert run["pipeline_spec"]["pipeline_spec"]["pipelineInfo"]["name"] == "hypomimia"
    (window,) = (tmp_path / "kfp").glob("*/current-window/window")
    assert (
        len(list(window.glob("predictions-*.jsonl"))) == 7
    )  # the 7 days before --until, kept as an artifact
    # the reference's voice table was measured in the run (every accepted video has a row; these synthetic
    # videos have no file, so each failed, with its reason) and the monitor read it
    (voice,) = (tmp_path / "kfp").glob("*/voice/features")
    table = pd.read_parquet(voice / "voice.parquet")
    accepted = pd.read_parquet(ingest / "ingested.parquet").query("status == 'accepted'")
    assert sorted(table["video_id"]) == sorted(accepted["video_id"]) and (table["status"] == "failed").all()
    (report,) = (tmp_path / "kfp").glob("*/monitor/drift/monitor.json")
    assert json.loads(report.read_text())["reference"]["voice"] == voice.name
