"""Multi-node train as a Kubeflow Trainer v2 TrainJob (hypomimia.cluster.trainjob), against a fake Kubernetes
API at the HTTP level: the real TrainerClient creates the job, the fake plays it Running then Complete (or
Failed) and, on Complete, writes what the nodes' ``hypomimia train`` would: the model on the shared PVC."""

import json
import uuid
from pathlib import Path

import pytest
import yaml
from pydantic import ValidationError

from hypomimia.cluster import trainjob
from hypomimia.config import Params, load_params, params_errors
from hypomimia.config.pipeline import PipelineConfig
from hypomimia.config.train import TrainConfig
from hypomimia.errors import UserError
from hypomimia.pipeline_runner import apply_overrides, run_local
from tests.helpers_kubernetes import GROUP, FakeKubernetes, calls, check_trainjob

NS = "pd-team"


@pytest.fixture(autouse=True)
def _kubernetes_default_config():
    """load_kube_config sets the kubernetes client's process-wide default: put it back."""
    from kubernetes.client import Configuration

    yield
    Configuration.set_default(None)


@pytest.fixture
def inputs(tmp_path):
    """The train task's input artifacts, as folders (their contents only travel)."""
    tubes, ingest = tmp_path / "artifacts" / "tubes", tmp_path / "artifacts" / "ingested"
    (tubes / "tubes").mkdir(parents=True)
    (tubes / "tubes.parquet").write_bytes(b"tubes table")
    (tubes / "tubes" / "v001.npz").write_bytes(b"\x00tube" * 100)
    ingest.mkdir()
    (ingest / "folds.parquet").write_bytes(b"folds table")
    return tubes, ingest


def pipeline_cfg(tmp_path, **trainjob) -> PipelineConfig:
    pvc = tmp_path / "pvc"  # the PVC, as mounted in the launcher's pod and on every node
    pvc.mkdir(exist_ok=True)
    settings = {"nodes": 2, "gpus_per_node": 8, "cpu_per_node": "64", "memory_per_node": "512G",
                "namespace": NS, "pvc": "hypomimia-work", "mount_path": str(pvc), "shm_size": "64Gi",
                "timeout_s": 60, "poll_s": 1, **trainjob}  # fmt: skip
    return PipelineConfig(
        train_launcher="trainjob",
        mlflow_secret="mlflow-s3",
        gpu_node_selector={"cloud.google.com/gke-accelerator": "nvidia-h100-80gb"},
        trainjob=settings,
    )


def option(command: list[str], key: str) -> Path:
    return Path(command[command.index(key) + 1])


class Nodes:
    """What `torchrun -m hypomimia train` does on the nodes, seen from the PVC: read the staged params and
    inputs, write the model folder (the fake calls this when the job completes)."""

    def __init__(self):
        self.seen = {}

    def __call__(self, job: dict) -> None:
        command = job["spec"]["trainer"]["command"]
        self.seen["train"] = load_params(option(command, "--params")).train
        tubes = option(command, "--tubes")
        self.seen["tubes"] = sorted(p.relative_to(tubes).as_posix() for p in tubes.rglob("*") if p.is_file())
        self.seen["ingest"] = sorted(p.name for p in option(command, "--ingest").iterdir())
        if "--voice" in command:
            self.seen["voice"] = sorted(p.name for p in option(command, "--voice").iterdir())
        out = option(command, "--out")
        (out / "checkpoints").mkdir(parents=True)
        (out / "model.pt").write_bytes(bytes(range(256)) * 4)
        (out / "checkpoints" / "last.pt").write_bytes(b"last")
        (out / "metadata.json").write_text(json.dumps({"arch": "i3d"}))
        (out / "metrics.json").write_text(json.dumps({"overall": {"subject": {"auroc": 0.81, "n": 8}}}))


def backend(fake: FakeKubernetes, tmp_path: Path):
    from kubeflow.trainer import KubernetesBackendConfig

    return KubernetesBackendConfig(namespace=NS, config_file=str(fake.kubeconfig(tmp_path / "kubeconfig")))


def test_trainjob_trains_on_the_cluster_and_hands_the_model_on(tmp_path, inputs):
    cfg, train, nodes, statuses = pipeline_cfg(tmp_path), TrainConfig(epochs=40, batch_size=32), Nodes(), []
    out = tmp_path / "model-artifact"
    run_id = str(uuid.uuid4())
    with FakeKubernetes(on_complete=nodes) as fake:
        run = trainjob.launch(
            train, cfg, *inputs, out, "http://mlflow.mlflow.svc:5000", run_id=run_id,
            backend_config=backend(fake, tmp_path), on_status=statuses.append,
        )  # fmt: skip

    # the real TrainerClient's requests: create once, poll until Complete, then delete the finished job
    jobs = f"{GROUP}/namespaces/{NS}/trainjobs"
    sequence = [c for c in calls(fake) if c[1].startswith(jobs)]
    assert sequence[0] == ("POST", jobs) and sequence[-1] == ("DELETE", f"{jobs}/{run.name}")
    assert sequence[1:-1] == [("GET", f"{jobs}/{run.name}")] * 3
    assert statuses == ["Created", "Running", "Complete"] and run.status == "Complete"
    assert all(h["authorization"] == "Bearer test-token" for _, _, _, h, _ in fake.requests)

    # the job: a TrainJob the CRD takes, running the train section on 2 nodes x 8 GPUs under torchrun
    manifest = next(body for method, _, _, _, body in fake.requests if method == "POST")
    check_trainjob(manifest)
    assert manifest["metadata"]["name"] == run.name and run.namespace == NS
    assert manifest["metadata"]["labels"]["hypomimia/kfp-run-id"] == run_id
    spec = manifest["spec"]
    assert spec["runtimeRef"] == {"name": "torch-distributed", "kind": "ClusterTrainingRuntime"}
    assert spec["activeDeadlineSeconds"] == 60
    t = spec["trainer"]
    assert t["image"] == cfg.gpu_image and t["numNodes"] == 2
    assert t["resourcesPerNode"]["limits"] == {"nvidia.com/gpu": "8", "cpu": "64", "memory": "512G"}
    assert t["resourcesPerNode"]["requests"] == t["resourcesPerNode"]["limits"]
    torchrun = t["command"][t["command"].index("torchrun") :]
    assert torchrun[:6] == ["torchrun", "--nnodes=2", "--nproc-per-node=8", "-m", "hypomimia", "train"]
    assert option(torchrun, "--tracking-uri") == Path("http://mlflow.mlflow.svc:5000")
    # the Secret's keys exported from its files before torchrun starts (the Trainer API has no env-from-secret)
    assert t["command"][:2] == ["/bin/sh", "-c"] and 'exec "$@"' in t["command"][2]
    assert (
        'export AWS_SECRET_ACCESS_KEY="$(cat /var/run/secrets/hypomimia-mlflow/AWS_SECRET_ACCESS_KEY)"'
        in t["command"][2]
    )

    # the nodes' pods: the PVC, /dev/shm in memory, the Secret, the GPU pool
    (patch,) = spec["runtimePatches"]
    assert patch["manager"] == "trainer.kubeflow.org/kubeflow-sdk"
    (job,) = patch["trainingRuntimeSpec"]["template"]["spec"]["replicatedJobs"]
    pod = job["template"]["spec"]["template"]
    assert job["name"] == "node" and pod["metadata"]["annotations"] == {"sidecar.istio.io/inject": "false"}
    volumes = {v["name"]: v for v in pod["spec"]["volumes"]}
    assert volumes["hypomimia-work"]["persistentVolumeClaim"] == {"claimName": "hypomimia-work"}
    assert volumes["dshm"]["emptyDir"] == {"medium": "Memory", "sizeLimit": "64Gi"}
    assert volumes["mlflow-secret"]["secret"]["secretName"] == "mlflow-s3"
    (container,) = pod["spec"]["containers"]
    mounts = {m["name"]: m["mountPath"] for m in container["volumeMounts"]}
    assert container["name"] == "node" and mounts["dshm"] == "/dev/shm"
    assert mounts["hypomimia-work"] == cfg.trainjob.mount_path
    assert pod["spec"]["tolerations"] == [
        {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}
    ]
    assert pod["spec"]["nodeSelector"] == {"cloud.google.com/gke-accelerator": "nvidia-h100-80gb"}

    # what the nodes found on the PVC, and the model handed on: the same files, byte for byte
    assert nodes.seen == {
        "train": train, "tubes": ["tubes.parquet", "tubes/v001.npz"], "ingest": ["folds.parquet"],
    }  # fmt: skip
    assert sorted(p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file()) == [
        "checkpoints/last.pt", "metadata.json", "metrics.json", "model.pt",
    ]  # fmt: skip
    assert (out / "model.pt").read_bytes() == bytes(range(256)) * 4
    assert not (Path(cfg.trainjob.mount_path) / "trainjobs" / run.name).exists()  # cleaned up (keep: false)


def test_failed_trainjob_is_an_error_naming_the_job_and_its_logs(tmp_path, inputs):
    cfg, out = pipeline_cfg(tmp_path), tmp_path / "model-artifact"
    log = "epoch 1/40\ntorch.OutOfMemoryError: CUDA out of memory. Tried to allocate 2.00 GiB"
    with FakeKubernetes(script=("Running", "Failed"), node_log=log) as fake, pytest.raises(UserError) as e:
        trainjob.launch(TrainConfig(), cfg, *inputs, out, name="hypomimia-0badc0de",
                        backend_config=backend(fake, tmp_path))  # fmt: skip
    problem, fix = e.value.problem, e.value.fix
    assert problem.startswith(f"TrainJob {NS}/hypomimia-0badc0de failed")
    assert "CUDA out of memory" in problem  # the tail of node-0's log
    assert f"kubectl -n {NS} logs -l jobset.sigs.k8s.io/jobset-name=hypomimia-0badc0de" in fix
    assert "get_job_logs('hypomimia-0badc0de')" in fix
    # kept for inspection: the job on the cluster, its folder on the PVC; no model handed on
    assert fake.deleted == [] and "hypomimia-0badc0de" in fake.jobs
    assert (Path(cfg.trainjob.mount_path) / "trainjobs" / "hypomimia-0badc0de" / "params.yaml").is_file()
    assert not out.exists()


def test_missing_runtime_is_an_error_before_any_job_is_created(tmp_path, inputs):
    with FakeKubernetes(runtimes=[]) as fake, pytest.raises(UserError) as e:
        trainjob.launch(TrainConfig(), pipeline_cfg(tmp_path), *inputs, tmp_path / "out",
                        backend_config=backend(fake, tmp_path))  # fmt: skip
    assert "training runtime 'torch-distributed' not found" in e.value.problem
    assert "runtimes.defaultEnabled=true" in e.value.fix
    assert not [c for c in calls(fake) if c[0] == "POST"]


def test_the_check_rejects_what_the_crd_does_not_know():
    """The strict check is strict: an unknown field (the pre-2.2 podTemplateOverrides), a missing required
    one (runtimeRef.name) and a wrong type all fail."""
    good = {"apiVersion": "trainer.kubeflow.org/v1alpha1", "kind": "TrainJob", "metadata": {"name": "hypomimia-1"},
            "spec": {"runtimeRef": {"name": "torch-distributed"}, "trainer": {"numNodes": 2}}}  # fmt: skip
    check_trainjob(good)
    with pytest.raises(AssertionError, match="unknown field"):
        check_trainjob({**good, "spec": {**good["spec"], "podTemplateOverrides": []}})
    with pytest.raises(AssertionError, match="required field"):
        check_trainjob({**good, "spec": {"runtimeRef": {"kind": "ClusterTrainingRuntime"}}})
    with pytest.raises(ValidationError):  # StrictInt: "2" is not a number of nodes
        check_trainjob({**good, "spec": {**good["spec"], "trainer": {"numNodes": "2"}}})


def test_the_train_trainjob_component_launches_through_kubeconfig(tmp_path, inputs, monkeypatch):
    """The component body as KFP runs it: KUBECONFIG (off-cluster) picks the API and, with no namespace
    set, its context's namespace; the model, metrics and report land on the task's outputs."""
    from kfp.dsl import Dataset, Markdown, Metrics, Model

    from components.train import train_trainjob

    monkeypatch.setattr("hypomimia.logs.setup_logging", lambda *a, **k: None)  # keep pytest's log capture
    cfg = pipeline_cfg(tmp_path, namespace="")
    model, metrics, report = (
        Model(uri=str(tmp_path / "m")),
        Metrics(uri=str(tmp_path / "x")),
        Markdown(uri=str(tmp_path / "r")),
    )
    voice = tmp_path / "artifacts" / "voice"
    voice.mkdir()
    (voice / "voice.parquet").write_bytes(b"voice table")
    nodes = Nodes()
    with FakeKubernetes(on_complete=nodes) as fake:
        monkeypatch.setenv("KUBECONFIG", str(fake.kubeconfig(tmp_path / "kubeconfig", namespace="pd-lab")))
        train_trainjob.python_func(
            params=TrainConfig().model_dump_json(), pipeline=cfg.model_dump_json(), tubes=Dataset(uri=str(inputs[0])),
            ingested=Dataset(uri=str(inputs[1])), voice=Dataset(uri=str(voice)), tracking_uri="", model=model,
            metrics=metrics, report=report,
        )  # fmt: skip
    assert nodes.seen["voice"] == ["voice.parquet"]  # the voice table travels to the nodes' `train --voice`
    assert ("POST", f"{GROUP}/namespaces/pd-lab/trainjobs") in calls(fake)
    manifest = next(body for method, _, _, _, body in fake.requests if method == "POST")
    assert "--tracking-uri" not in manifest["spec"]["trainer"]["command"]  # empty: the stage's default
    assert (Path(model.path) / "model.pt").is_file()
    assert json.loads(Path(metrics.path).read_text()) == {
        "overall.subject.auroc": 0.81,
        "overall.subject.n": 8.0,
    }
    assert "overall.subject.auroc | 0.81" in Path(report.path).read_text()


def test_launcher_refuses_without_the_mounted_pvc(tmp_path, inputs):
    cfg = pipeline_cfg(tmp_path, mount_path=str(tmp_path / "not-mounted"))
    with pytest.raises(UserError, match="not mounted"):
        trainjob.launch(TrainConfig(), cfg, *inputs, tmp_path / "out")


# ---------------------------------------------------------------- params and the DAG


def test_trainjob_needs_a_pvc_and_a_poll_inside_the_timeout():
    assert Params().pipeline.train_launcher == "pod"  # today's behaviour by default
    (error,) = params_errors({"pipeline": {"train_launcher": "trainjob"}})
    assert "trainjob.pvc is empty" in error and "ReadWriteMany" in error
    (error,) = params_errors({"pipeline": {"trainjob": {"poll_s": 60, "timeout_s": 60}}})
    assert "poll_s (60) must be less than timeout_s (60)" in error
    assert params_errors({"pipeline": {"mlflow_secret_keys": ["AWS-KEY"]}})  # not an env var name
    assert params_errors({"pipeline": {"trainjob": {"memory_per_node": "lots"}}})


def test_gpu_profile_shows_two_nodes_of_eight_gpus(repo_root):
    gpu = load_params(repo_root / "params" / "gpu.yaml")
    assert gpu.pipeline.train_launcher == "pod"
    assert (gpu.pipeline.trainjob.nodes, gpu.pipeline.trainjob.gpus_per_node) == (2, 8)
    assert (
        apply_overrides(gpu, ["pipeline.train_launcher=trainjob"]).pipeline.trainjob.pvc == "hypomimia-work"
    )


def test_trainjob_pipeline_compiles_with_pvc_shm_and_secret(repo_root, tmp_path, monkeypatch):
    from typer.testing import CliRunner

    from hypomimia.cli import _app

    monkeypatch.chdir(repo_root)
    args = ["pipeline", "compile", "--params", "params/gpu.yaml", "--out", str(tmp_path / "tj.yaml"),
            "--set", "pipeline.train_launcher=trainjob", "--set", "pipeline.mlflow_secret=mlflow-s3"]  # fmt: skip
    result = CliRunner().invoke(_app, args)
    assert result.exit_code == 0, result.output + repr(result.exception)
    params = apply_overrides(load_params("params/gpu.yaml"), ["pipeline.train_launcher=trainjob"])
    spec, platform = yaml.safe_load_all((tmp_path / "tj.yaml").read_text())
    executors = spec["deploymentSpec"]["executors"]
    assert "exec-train" not in executors
    launcher = executors["exec-train-trainjob"]["container"]
    # the launcher only stages, waits and copies: CPU image, no GPU (the job's nodes have them)
    assert launcher["image"] == params.pipeline.image and "accelerator" not in launcher["resources"]
    k8s = platform["platforms"]["kubernetes"]["deploymentSpec"]["executors"]["exec-train-trainjob"]
    assert (
        k8s["pvcMount"][0]["constant"] == "hypomimia-work"
        and k8s["pvcMount"][0]["mountPath"] == "/mnt/hypomimia"
    )
    assert k8s["emptyDirMounts"] == [
        {"medium": "Memory", "mountPath": "/dev/shm", "sizeLimit": "64Gi", "volumeName": "dshm"}
    ]
    assert k8s["secretAsEnv"][0]["secretName"] == "mlflow-s3"
    assert k8s["fieldPathAsEnv"] == [
        {"fieldPath": "metadata.labels['pipeline/runid']", "name": "HYPOMIMIA_KFP_RUN_ID"}
    ]
    branch = next(
        c for n, c in spec["components"].items() if "train-trainjob" in c.get("dag", {}).get("tasks", {})
    )
    tasks = branch["dag"]["tasks"]
    # the launcher's settings: a constant of the task (they shape the DAG: the PVC it mounts)
    constant = json.loads(
        tasks["train-trainjob"]["inputs"]["parameters"]["pipeline"]["runtimeValue"]["constant"]
    )
    assert constant["trainjob"]["nodes"] == 2 and constant["trainjob"]["gpus_per_node"] == 8
    # downstream reads the launcher's model as it reads the pod launcher's
    model = {"taskOutputArtifact": {"outputArtifactKey": "model", "producerTask": "train-trainjob"}}
    assert tasks["explain"]["inputs"]["artifacts"]["model"] == model


def test_local_run_refuses_the_trainjob_launcher(tmp_path):
    params = apply_overrides(Params(), ["pipeline.train_launcher=trainjob", "pipeline.trainjob.pvc=work"])
    with pytest.raises(UserError, match="needs a cluster") as e:
        run_local(params, tmp_path)
    assert "pipeline.train_launcher=pod" in e.value.fix
