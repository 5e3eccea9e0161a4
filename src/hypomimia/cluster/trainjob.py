"""Train as a Kubeflow Trainer v2 ``TrainJob``: ``nodes`` x ``gpus_per_node`` processes of ``hypomimia train``
under torchrun, launched and awaited by the DAG's train task (``pipeline.train_launcher: trainjob``).

The hand-off is one ReadWriteMany PVC (``pipeline.trainjob.pvc``) that the task and every node mount at
``pipeline.trainjob.mount_path``; each launch owns one folder on it::

    <mount>/trainjobs/<job>/params.yaml      the train section the task was given
                            tubes/ ingest/ [voice/]   copies of the task's input artifacts
                            model/           `hypomimia train --out`: model.pt, metadata.json, metrics.json, ...

:func:`launch` stages the inputs, creates the TrainJob with the Kubeflow SDK's ``TrainerClient`` (runtime
``torch-distributed``, whose torch plugin sets the ``PET_*`` rendezvous variables torchrun reads), waits
for ``Complete`` or ``Failed``, and copies ``model/`` into the task's ``Output[Model]`` folder: the same
files the pod launcher's train task writes, so explain, evaluate and promote cannot tell the two apart.
Rank 0 logs to MLflow and registers the version exactly as a one-GPU run does. On success the job and its
folder are deleted (``keep: true`` keeps them); a failed or timed-out job is always kept for its logs.

The nodes get what the pod launcher's task gets from kfp-kubernetes, through the job's runtime patch: the
PVC, a memory-backed ``/dev/shm`` for the loaders, the GPU toleration and node selector, and the MLflow
Secret. The Trainer API sets the env of the ``node`` container from plain values only, so the Secret is
mounted as files and the command exports each key before it execs torchrun.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import yaml

from hypomimia.config.pipeline import PipelineConfig
from hypomimia.config.train import TrainConfig
from hypomimia.errors import UserError

log = logging.getLogger(__name__)

NODE = "node"  # the torch-distributed runtime's replicated job and its trainer container
JOBS_DIR = "trainjobs"
VOLUME, SHM, SECRET_VOLUME = "hypomimia-work", "dshm", "mlflow-secret"
SECRET_DIR = "/var/run/secrets/hypomimia-mlflow"
COMPLETE, FAILED = "Complete", "Failed"
POD_LABEL = "jobset.sigs.k8s.io/jobset-name"  # on every pod of the job (the SDK selects its steps by it)
_LABEL_VALUE = re.compile(r"^[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$")


@dataclass(frozen=True)
class JobPaths:
    """One launch's folder on the shared PVC, as the task and the nodes both see it."""

    root: Path
    params: Path
    tubes: Path
    ingest: Path
    out: Path
    voice: Path | None = None  # the voice table, staged when the task was given one


@dataclass(frozen=True)
class TrainJobRun:
    name: str
    namespace: str
    status: str
    seconds: float
    model_dir: Path


def job_paths(mount_path: str | Path, name: str) -> JobPaths:
    root = Path(mount_path) / JOBS_DIR / name
    return JobPaths(root, root / "params.yaml", root / "tubes", root / "ingest", root / "model")


def new_name() -> str:
    """A fresh TrainJob name: short (JobSet derives pod names from it), DNS-1035, unique per launch."""
    return f"hypomimia-{uuid.uuid4().hex[:8]}"


def stage_inputs(
    paths: JobPaths, train: TrainConfig, tubes_dir: Path, ingest_dir: Path, voice_dir: Path | None = None
) -> None:
    """Copy the task's inputs onto the PVC and write the params file the nodes' ``hypomimia train`` reads."""
    staged = [(tubes_dir, paths.tubes), (ingest_dir, paths.ingest)]
    if voice_dir is not None and paths.voice is not None:
        staged.append((voice_dir, paths.voice))
    for src, dst in staged:
        if not Path(src).is_dir():
            raise UserError(
                f"train input {src} is not a folder", "wire the facetubes and ingest outputs to train"
            )
        shutil.copytree(src, dst, dirs_exist_ok=True)
    # Only the train section: every other section takes its defaults, and train reads nothing else.
    paths.params.write_text(yaml.safe_dump({"train": train.model_dump(mode="json")}, sort_keys=False))


def command(cfg: PipelineConfig, paths: JobPaths, tracking_uri: str = "") -> list[str]:
    """The nodes' command: ``torchrun ... -m hypomimia train`` on the staged folders.

    torchrun takes the rendezvous (master address and port, node rank) from the ``PET_*`` variables the
    Trainer's torch plugin sets; nodes and processes per node are also given here, from the same settings
    the job's ``numNodes`` and ``resourcesPerNode`` come from, so a runtime that is not ``numProcPerNode:
    auto`` cannot start a different world size than the one asked for.
    """
    tj = cfg.trainjob
    train = [
        "torchrun", f"--nnodes={tj.nodes}", f"--nproc-per-node={tj.gpus_per_node}",
        "-m", "hypomimia", "train",
        "--tubes", str(paths.tubes), "--ingest", str(paths.ingest), "--out", str(paths.out),
        "--params", str(paths.params),
    ]  # fmt: skip
    if paths.voice is not None:
        train += ["--voice", str(paths.voice)]
    if tracking_uri:
        train += ["--tracking-uri", tracking_uri]
    if not cfg.mlflow_secret:
        return train
    exports = "; ".join(f'export {k}="$(cat {SECRET_DIR}/{k})"' for k in cfg.mlflow_secret_keys)
    return ["/bin/sh", "-c", f'set -e; {exports}; exec "$@"', "hypomimia-train", *train]


def runtime_patch(cfg: PipelineConfig) -> Any:
    """The pod-level settings of the nodes (``spec.runtimePatches``, replicated job ``node``)."""
    from kubeflow.trainer.options import (
        ContainerPatch,
        JobSetSpecPatch,
        JobSetTemplatePatch,
        JobSpecPatch,
        JobTemplatePatch,
        PodSpecPatch,
        PodTemplatePatch,
        ReplicatedJobPatch,
        RuntimePatch,
        TrainingRuntimeSpecPatch,
    )

    tj = cfg.trainjob
    volumes: list[dict] = [
        {"name": VOLUME, "persistentVolumeClaim": {"claimName": tj.pvc}},
        {"name": SHM, "emptyDir": {"medium": "Memory", "sizeLimit": tj.shm_size}},
    ]
    mounts: list[dict] = [
        {"name": VOLUME, "mountPath": tj.mount_path},
        {"name": SHM, "mountPath": "/dev/shm"},
    ]
    if cfg.mlflow_secret:
        items = [{"key": k, "path": k} for k in cfg.mlflow_secret_keys]
        volumes.append({"name": SECRET_VOLUME, "secret": {"secretName": cfg.mlflow_secret, "items": items}})
        mounts.append({"name": SECRET_VOLUME, "mountPath": SECRET_DIR, "readOnly": True})
    pod = PodSpecPatch(
        volumes=volumes,
        containers=[ContainerPatch(name=NODE, volume_mounts=mounts)],
        # GPU node pools are tainted so that only GPU work lands there (as for the pod launcher's task).
        tolerations=[{"key": cfg.accelerator_type, "operator": "Exists", "effect": "NoSchedule"}],
        node_selector=dict(sorted(cfg.gpu_node_selector.items())) or None,
    )
    # An Istio sidecar never exits, so a node pod with one never completes (Kubeflow profile namespaces).
    template = PodTemplatePatch(metadata={"annotations": {"sidecar.istio.io/inject": "false"}}, spec=pod)
    job = ReplicatedJobPatch(name=NODE, template=JobTemplatePatch(spec=JobSpecPatch(template=template)))
    spec = JobSetTemplatePatch(spec=JobSetSpecPatch(replicated_jobs=[job]))
    return RuntimePatch(training_runtime_spec=TrainingRuntimeSpecPatch(template=spec))


def trainer_and_options(
    cfg: PipelineConfig, name: str, paths: JobPaths, tracking_uri: str = "", run_id: str = ""
) -> tuple[Any, list]:
    """The SDK's ``CustomTrainerContainer`` (image, nodes, resources per node) and the TrainJob's options."""
    from kubeflow.trainer import CustomTrainerContainer
    from kubeflow.trainer.options import ActiveDeadlineSeconds, Labels, Name, TrainerCommand

    tj = cfg.trainjob
    trainer = CustomTrainerContainer(
        image=tj.image or cfg.gpu_image,
        num_nodes=tj.nodes,
        resources_per_node={
            cfg.accelerator_type: str(tj.gpus_per_node),
            "cpu": tj.cpu_per_node,
            "memory": tj.memory_per_node,
        },
        env={"PYTHONUNBUFFERED": "1"},  # node logs as they happen
    )
    labels = {"app.kubernetes.io/part-of": "hypomimia", "app.kubernetes.io/component": "train"}
    if run_id and _LABEL_VALUE.match(run_id):
        labels["hypomimia/kfp-run-id"] = run_id
    options = [
        Name(name),
        Labels(labels),
        TrainerCommand(command(cfg, paths, tracking_uri)),
        ActiveDeadlineSeconds(tj.timeout_s),
        runtime_patch(cfg),
    ]
    return trainer, options


def logs_hint(name: str, namespace: str) -> str:
    return (
        f"kubectl -n {namespace} logs -l {POD_LABEL}={name} --all-containers --prefix "
        f"(or TrainerClient().get_job_logs('{name}')); kubectl -n {namespace} describe trainjob {name}"
    )


def launch(
    train: TrainConfig,
    cfg: PipelineConfig,
    tubes_dir: Path,
    ingest_dir: Path,
    out_dir: Path,
    tracking_uri: str = "",
    *,
    voice_dir: Path | None = None,
    run_id: str = "",
    name: str | None = None,
    backend_config: Any = None,
    on_status: Callable[[str], None] | None = None,
) -> TrainJobRun:
    """Run ``hypomimia train`` as a TrainJob and copy its model folder into ``out_dir``.

    ``backend_config``: the SDK's ``KubernetesBackendConfig``; None -> ``pipeline.trainjob.namespace`` (empty:
    this pod's namespace) with the in-cluster credentials, or ``$KUBECONFIG`` where that is set.
    ``on_status``: called with each new status (Created, Running, Complete, Failed). Raises UserError
    naming the job and where its logs are when it fails, times out or cannot be created.
    """
    tj = cfg.trainjob
    if not tj.pvc:
        raise UserError("pipeline.trainjob.pvc is empty", "name the ReadWriteMany PVC the train task mounts")
    mount = Path(tj.mount_path)
    if not mount.is_dir():
        raise UserError(
            f"the TrainJob's PVC is not mounted at {mount} in this pod",
            "compile the pipeline with pipeline.train_launcher=trainjob (it mounts pipeline.trainjob.pvc there)",
        )
    client, namespace = _client(tj, backend_config)
    _check_runtime(client, tj.runtime)
    name = name or new_name()
    paths = job_paths(mount, name)
    if voice_dir is not None:
        paths = replace(paths, voice=paths.root / "voice")
    stage_inputs(paths, train, Path(tubes_dir), Path(ingest_dir), voice_dir)
    trainer, options = trainer_and_options(cfg, name, paths, tracking_uri, run_id)
    start = time.perf_counter()
    try:
        client.train(runtime=tj.runtime, trainer=trainer, options=options)
    except (RuntimeError, TimeoutError, ValueError) as e:
        shutil.rmtree(paths.root, ignore_errors=True)
        raise UserError(
            f"could not create TrainJob {namespace}/{name}: {_cause(e)}",
            "check that Kubeflow Trainer v2 is installed (kubectl get crd trainjobs.trainer.kubeflow.org) and "
            "that the pipeline's service account may create trainjobs (docs/operations.md, multi-node training)",
        ) from None
    log.info("TrainJob %s/%s created: %d node(s) x %d GPU(s)", namespace, name, tj.nodes, tj.gpus_per_node)
    job = _wait(client, name, namespace, tj, on_status)
    seconds = time.perf_counter() - start
    if job.status == FAILED:
        raise UserError(
            f"TrainJob {namespace}/{name} failed after {seconds:.0f} s{_log_tail(client, name)}",
            f"see its logs: {logs_hint(name, namespace)}; the job and its folder {paths.root} on PVC "
            f"{tj.pvc} are kept (delete them with kubectl -n {namespace} delete trainjob {name})",
        )
    if not (paths.out / "model.pt").is_file():
        raise UserError(
            f"TrainJob {namespace}/{name} completed but wrote no model.pt under {paths.out}",
            f"read rank 0's log: {logs_hint(name, namespace)}",
        )
    shutil.copytree(paths.out, out_dir, dirs_exist_ok=True)
    log.info("TrainJob %s/%s complete in %.0f s; model copied from %s", namespace, name, seconds, paths.out)
    if not tj.keep:
        _clean_up(client, name, paths)
    return TrainJobRun(name, namespace, job.status, seconds, Path(out_dir))


def _client(tj, backend_config) -> tuple[Any, str]:
    from kubeflow.trainer import KubernetesBackendConfig, TrainerClient

    if backend_config is None:
        kubeconfig = os.environ.get("KUBECONFIG") or None
        namespace = tj.namespace or _default_namespace(kubeconfig)
        backend_config = KubernetesBackendConfig(namespace=namespace, config_file=kubeconfig)
    try:
        client = TrainerClient(backend_config=backend_config)
    except Exception as e:  # kubernetes config errors have no common base
        raise UserError(
            f"no Kubernetes API to launch the TrainJob from here: {e}",
            "run the pipeline on the cluster (the train task uses its pod's service account), or set KUBECONFIG",
        ) from None
    return client, str(getattr(client.backend, "namespace", None) or tj.namespace or "default").strip()


def _default_namespace(kubeconfig: str | None) -> str | None:
    """This pod's namespace, else the namespace of the kubeconfig's current context (None: the SDK's default).

    The SDK looks the context up in the kubeconfig path the kubernetes client fixed at import, not in
    ``config_file``: hence done here."""
    sa = Path("/var/run/secrets/kubernetes.io/serviceaccount/namespace")
    if sa.is_file():
        return sa.read_text(encoding="utf-8").strip()
    if kubeconfig:
        from kubernetes import config

        try:
            return config.list_kube_config_contexts(config_file=kubeconfig)[1]["context"].get("namespace")
        except Exception:  # an unreadable kubeconfig fails again, with its message, when the client loads it
            return None
    return None


def _check_runtime(client, runtime: str) -> None:
    try:
        found = client.get_runtime(runtime)
    except (RuntimeError, TimeoutError) as e:
        raise UserError(
            f"training runtime {runtime!r} not found: {_cause(e)}",
            "install Kubeflow Trainer with its default runtimes (helm ... --set runtimes.defaultEnabled=true), "
            "or set pipeline.trainjob.runtime to one `kubectl get clustertrainingruntimes` lists",
        ) from None
    if found.trainer.framework != "torch":
        raise UserError(
            f"training runtime {runtime!r} is a {found.trainer.framework!r} runtime; train runs under torchrun",
            "set pipeline.trainjob.runtime to a runtime labelled trainer.kubeflow.org/framework: torch",
        )


def _wait(client, name: str, namespace: str, tj, on_status) -> Any:
    seen: list[str] = []

    def report(job) -> None:
        if not seen or seen[-1] != job.status:
            seen.append(job.status)
            log.info("TrainJob %s/%s: %s", namespace, name, job.status)
            if on_status is not None:
                on_status(job.status)

    try:
        return client.wait_for_job_status(
            name,
            status={COMPLETE, FAILED},
            timeout=tj.timeout_s,
            polling_interval=tj.poll_s,
            callbacks=[report],
        )
    except TimeoutError:
        raise UserError(
            f"TrainJob {namespace}/{name} did not finish within {tj.timeout_s} s (last status: "
            f"{seen[-1] if seen else 'unknown'})",
            f"its activeDeadlineSeconds stops it too; raise pipeline.trainjob.timeout_s if it needs longer; "
            f"logs: {logs_hint(name, namespace)}",
        ) from None
    except RuntimeError as e:
        raise UserError(
            f"lost track of TrainJob {namespace}/{name}: {_cause(e)}",
            "the pipeline's service account needs get on trainjobs, (cluster)trainingruntimes and list on pods "
            f"(docs/operations.md, multi-node training); logs: {logs_hint(name, namespace)}",
        ) from None


def _log_tail(client, name: str, lines: int = 20) -> str:
    """The last lines of node 0's log (best effort: the pod may be gone or unreadable)."""
    try:
        tail = list(client.get_job_logs(name, step=f"{NODE}-0"))[-lines:]
    except Exception:  # best effort: a message without the tail is still the message
        return ""
    return ("\n  last lines of node-0:\n    " + "\n    ".join(tail)) if tail else ""


def _clean_up(client, name: str, paths: JobPaths) -> None:
    try:
        client.delete_job(name)
    except (RuntimeError, TimeoutError) as e:
        log.warning("could not delete TrainJob %s (%s); delete it with kubectl", name, _cause(e))
    shutil.rmtree(paths.root, ignore_errors=True)


def _cause(e: BaseException) -> str:
    """The SDK wraps the Kubernetes API's answer: name both (e.g. '... 403 Forbidden')."""
    inner = e.__cause__
    reason = getattr(inner, "reason", None) or (str(inner) if inner else "")
    status = getattr(inner, "status", None)
    extra = f" ({status} {reason})".rstrip() if status else (f" ({reason})" if reason else "")
    return f"{e}{extra}"
