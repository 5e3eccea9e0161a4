"""`hypomimia pipeline submit|schedule` against a fake KFP API server, at the HTTP level (no cluster here)."""

import pytest
from typer.testing import CliRunner

from hypomimia.cli import _app
from tests.helpers_pipeline import API, FakeKFP, body_of, calls

pytestmark = pytest.mark.filterwarnings("ignore:This client only works:FutureWarning")


@pytest.fixture
def fake_kfp(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))  # kfp.Client reads ~/.config/kfp/context.json
    for var in (
        "KF_PIPELINES_ENDPOINT",
        "KF_PIPELINES_DEFAULT_EXPERIMENT_NAME",
        "KF_PIPELINES_OVERRIDE_EXPERIMENT_NAME",
    ):
        monkeypatch.delenv(var, raising=False)
    with FakeKFP() as fake:
        yield fake


@pytest.fixture(scope="module")
def package(repo_root):
    """The checked-in compiled package (its freshness is test_pipeline_compile's job)."""
    return repo_root / "pipeline" / "hypomimia_pipeline.yaml"


def cli(*args: str):
    result = CliRunner().invoke(_app, list(args))
    assert result.exit_code == 0, result.output + repr(result.exception)
    return result


def test_submit_creates_experiment_and_run(fake_kfp, package):
    cli(
        "pipeline", "submit", "--host", fake_kfp.url, "--package", str(package), "--experiment", "pd-retrain",
        "--run-name", "nightly-1", "--service-account", "pipeline-runner", "--token", "tok123",
        "--pipeline-root", "s3://bucket/hypomimia", "--no-cache",
    )  # fmt: skip
    assert calls(fake_kfp) == [
        ("GET", f"{API}/healthz"),
        ("GET", f"{API}/experiments"),  # looked up by name: not there yet
        ("POST", f"{API}/experiments"),
        ("POST", f"{API}/runs"),
    ]
    run = body_of(fake_kfp, "POST", f"{API}/runs")
    assert run["display_name"] == "nightly-1"
    assert run["service_account"] == "pipeline-runner"
    assert run["runtime_config"]["pipeline_root"] == "s3://bucket/hypomimia"
    spec = run["pipeline_spec"]["pipeline_spec"]  # wrapped: the package has a kubernetes platform spec
    assert spec["pipelineInfo"]["name"] == "hypomimia"
    assert all(not t["cachingOptions"].get("enableCache") for t in spec["root"]["dag"]["tasks"].values())
    assert (
        "exec-train"
        in run["pipeline_spec"]["platform_spec"]["platforms"]["kubernetes"]["deploymentSpec"]["executors"]
    )
    assert body_of(fake_kfp, "POST", f"{API}/experiments")["display_name"] == "pd-retrain"
    assert fake_kfp.requests[3][3]["authorization"] == "Bearer tok123"


def test_schedule_creates_weekly_recurring_run(fake_kfp, package):
    out = cli(
        "pipeline", "schedule", "--host", fake_kfp.url, "--package", str(package), "--cron", "0 0 3 * * 1",
        "--name", "weekly-retrain", "--service-account", "pipeline-runner",
    )  # fmt: skip
    job = body_of(fake_kfp, "POST", f"{API}/recurringruns")
    assert job["trigger"] == {"cron_schedule": {"cron": "0 0 3 * * 1"}}
    assert job["display_name"] == "weekly-retrain"
    assert job["mode"] == "ENABLE" and job["no_catchup"] is True and job["max_concurrency"] == 1
    assert job["service_account"] == "pipeline-runner"
    assert job["experiment_id"] in fake_kfp.experiments
    assert "weekly-retrain" in out.output and next(iter(fake_kfp.recurring)) in out.output


def test_submit_in_a_profile_namespace(tmp_path, monkeypatch, package):
    monkeypatch.setenv("HOME", str(tmp_path))
    with FakeKFP(multi_user=True) as fake:
        cli(
            "pipeline",
            "submit",
            "--host",
            fake.url + "/pipeline",
            "--package",
            str(package),
            "--namespace",
            "pd-team",
        )
    method, path, query, *_ = fake.requests[0]  # no healthz probe: the namespace is given
    assert (method, path, query["namespace"]) == ("GET", f"/pipeline{API}/experiments", "pd-team")
    assert body_of(fake, "POST", f"/pipeline{API}/experiments") == {
        "display_name": "hypomimia",
        "namespace": "pd-team",
    }


def test_submit_compiles_from_params_when_no_package_is_given(fake_kfp):
    cli(
        "pipeline",
        "submit",
        "--host",
        fake_kfp.url,
        "--set",
        "pipeline.shards=3",
        "--set",
        "pipeline.gpu=false",
    )
    spec = body_of(fake_kfp, "POST", f"{API}/runs")["pipeline_spec"]
    loop = next(t for name, t in spec["root"]["dag"]["tasks"].items() if name.startswith("for-loop"))
    assert loop["parameterIterator"]["items"]["raw"] == "[0, 1, 2]"
    assert "accelerator" not in str(spec["deploymentSpec"]["executors"]["exec-train"])


def test_bad_cron_is_a_user_error_before_any_request(fake_kfp, package):
    result = CliRunner().invoke(
        _app,
        ["pipeline", "schedule", "--host", fake_kfp.url, "--package", str(package), "--cron", "0 3 * * 1"],
    )
    assert result.exit_code != 0
    assert "6" in str(result.exception) and fake_kfp.requests == []
