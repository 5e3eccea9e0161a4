"""Runners of the one DAG (``pipeline/pipeline.py``): compile, run locally with kfp.local, submit, schedule.

The DAG definition lives at the repository root (``components/``, ``pipeline/``), next to
``dvc.yaml``; it is a developer/CI artifact, not part of the runtime package. Components ship only
their function bodies, which import ``hypomimia`` -- the package that the image and this venv have.
"""

from __future__ import annotations

import contextlib
import importlib
import logging
import os
import re
import sys
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from hypomimia.config import ConfigError, Params, params_errors
from hypomimia.errors import GateFailed, UserError

log = logging.getLogger(__name__)

PACKAGE_PATH = Path("pipeline/hypomimia_pipeline.yaml")

# The smoke-size profile: the whole DAG in about a minute on 2 CPU cores (tests, `make bench`, CI).
SMOKE_OVERRIDES = (
    "phantom.subjects=6",
    "phantom.videos_per_subject=1",
    "phantom.duration_s=3.0",
    "phantom.size=256",
    "phantom.tasks=[smile]",
    "phantom.workers=1",
    "ingest.folds=3",  # train needs a test, a validation and a train fold
    "ingest.workers=1",
    "facetubes.workers=1",
    "facetubes.min_frames=8",
    "voice.workers=1",
    "validate.min_tube_frames=8",
    "validate.max_fold_class_imbalance=0.5",
    "validate.near_duplicate_hamming=2",  # 6 look-alike phantom faces sit 4 pHash bits apart
    "train.epochs=1",
    "train.warmup_epochs=0.0",
    "train.model.width=0.125",
    "train.model.frames=8",
    "train.batch_size=2",
    "train.clips_per_video=1",
    "train.eval_clips_per_video=1",
    "train.workers=0",
    "train.threads=1",
    "train.bootstrap=0",
    "pipeline.shards=2",
    # evaluate: the reference on one fold (reusing the trained model), no ablation, no bootstrap
    "evaluate.models=[i3d]",
    "evaluate.folds=[0]",
    "evaluate.ablation.frames=[]",
    "evaluate.bootstrap=0",
    "explain.clips_per_video=1",
    "explain.render_per_group=0",
)


@dataclass(frozen=True)
class LocalRun:
    """Where a local DAG run left its artifacts (a cache hit points into an earlier run's folder)."""

    tubes: Path
    validation: Path
    model: Path | None
    seconds: float
    log_file: Path | None
    voice: Path | None = None


# ---------------------------------------------------------------- params and the DAG module


def apply_overrides(params: Params, overrides: list[str] | tuple[str, ...]) -> Params:
    """``["train.epochs=1", "phantom.tasks=[smile]"]`` on top of params; values are YAML; re-validated."""
    data = params.to_yaml_dict()
    for item in overrides:
        key, sep, raw = item.partition("=")
        if not sep or not key.strip():
            raise UserError(f"override {item!r} is not KEY=VALUE", "write it like train.epochs=1")
        *parents, leaf = key.strip().split(".")
        node = data
        for part in parents:
            if not isinstance(node.get(part), dict):
                raise UserError(f"override {item!r}: no section {part!r}", "see 'hypomimia config show'")
            node = node[part]
        if leaf not in node:
            raise UserError(f"override {item!r}: unknown key {key!r}", "see 'hypomimia config show'")
        node[leaf] = yaml.safe_load(raw)
    errors = params_errors(data)
    if errors:
        raise ConfigError("overrides", errors)
    return Params.model_validate(data)


def find_repo_root(start: Path | None = None) -> Path:
    """The checkout holding ``pipeline/pipeline.py``: the working directory or one above it."""
    start = (start or Path.cwd()).resolve()
    for folder in (start, *start.parents):
        if (folder / "pipeline" / "pipeline.py").is_file() and (folder / "components").is_dir():
            return folder
    raise UserError(
        "the pipeline definition (pipeline/pipeline.py, components/) was not found",
        "run this command from the repository root of a hypomimia checkout",
    )


def load_dag_module(repo: Path | None = None):
    """Import ``pipeline.pipeline`` from the checkout (it is not part of the installed package)."""
    root = str(find_repo_root(repo))
    if root not in sys.path:
        sys.path.insert(0, root)
    return importlib.import_module("pipeline.pipeline")


def build(params: Params, gpu: bool | None = None, repo: Path | None = None):
    return load_dag_module(repo).create_pipeline(params, gpu=gpu)


# ---------------------------------------------------------------- compile


def compile_pipeline(params: Params, out: Path = PACKAGE_PATH, repo: Path | None = None) -> Path:
    """Write the KFP package (YAML). Byte-identical for identical code, params and kfp version."""
    from kfp import compiler

    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.stem}.tmp.yaml")  # kfp insists on the .yaml suffix
    compiler.Compiler().compile(build(params, repo=repo), str(tmp))
    os.replace(tmp, out)
    return out


# ---------------------------------------------------------------- the monitor pipeline (issue 16)

MONITOR_PACKAGE_PATH = Path("pipeline/monitor_pipeline.yaml")
PIPELINES = ("main", "monitor")  # `hypomimia pipeline compile|schedule --pipeline NAME`


def build_monitor(params: Params, repo: Path | None = None):
    """The scheduled monitor pipeline (``pipeline/monitor_pipeline.py``), imported from the checkout."""
    load_dag_module(repo)  # puts the checkout on sys.path
    return importlib.import_module("pipeline.monitor_pipeline").create_monitor_pipeline(params)


def compile_named(name: str, params: Params, out: Path | None = None, repo: Path | None = None) -> Path:
    """Compile ``main`` (the training DAG) or ``monitor``; deterministic like :func:`compile_pipeline`."""
    if name not in PIPELINES:
        raise UserError(f"no pipeline named {name!r}", f"use one of: {', '.join(PIPELINES)}")
    if name == "main":
        return compile_pipeline(params, out or PACKAGE_PATH, repo)
    from kfp import compiler

    out = out or MONITOR_PACKAGE_PATH
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.stem}.tmp.yaml")
    compiler.Compiler().compile(build_monitor(params, repo), str(tmp))
    os.replace(tmp, out)
    return out


# ---------------------------------------------------------------- local run (kfp.local)


def run_local(
    params: Params,
    root: Path = Path("work/kfp"),
    cache: bool = True,
    tracking_uri: str | None = None,
    tube_cache: Path | None = None,
    log_file: Path | None = None,
    repo: Path | None = None,
    voice_cache: Path | None = None,
) -> LocalRun:
    """Run the whole DAG on this machine with ``kfp.local`` (SubprocessRunner, this venv's Python).

    Caching is on by default: a task whose component, params and input artifacts are unchanged
    reuses its earlier outputs (cache under ``root/.kfp_cache``). ``log_file`` receives kfp's
    per-task logs; None streams them to stdout. Raises GateFailed when the validation gate stops
    the DAG, UserError when any other task fails.
    """
    from kfp import local

    if params.pipeline.train_launcher != "pod":  # a TrainJob needs a cluster with Kubeflow Trainer
        raise UserError(
            f"pipeline.train_launcher is {params.pipeline.train_launcher!r}: train would launch a Kubeflow "
            "TrainJob, which needs a cluster",
            "run locally with --set pipeline.train_launcher=pod (the default), or submit to the cluster",
        )
    root = root.resolve()
    root.mkdir(parents=True, exist_ok=True)
    pipe = build(params, gpu=False, repo=repo)
    repo_root = find_repo_root(repo)
    arguments = {
        "mlflow_tracking_uri": tracking_uri or _default_tracking_uri(),
        "tube_cache": str((tube_cache or root / "tube-cache").resolve()),
        "voice_cache": str((voice_cache or root / "voice-cache").resolve()),
    }
    # use_venv=False: tasks run with sys.executable, i.e. this venv, where hypomimia is installed.
    local.init(
        runner=local.SubprocessRunner(use_venv=False),
        pipeline_root=str(root),
        raise_on_error=True,
        enable_caching=cache,
    )
    start = time.perf_counter()
    try:
        with _kfp_output(log_file), _importable(repo_root), warnings.catch_warnings():
            # kfp.local warns that images and resource requests do nothing here: expected, that is the point.
            warnings.filterwarnings("ignore", module=r"kfp\.local")
            outputs = pipe(**arguments).outputs
    except RuntimeError as e:
        _raise_task_failure(str(e), root, log_file)
    seconds = time.perf_counter() - start
    return LocalRun(
        tubes=Path(outputs["tubes"].path),
        validation=Path(outputs["validation"].path),
        model=_latest(root, "train", "model"),
        seconds=seconds,
        log_file=log_file,
        voice=Path(outputs["voice"].path),
    )


@contextlib.contextmanager
def _importable(repo_root: Path):
    """Task subprocesses import ``components.pipeline_io`` from the checkout and find ``serving/`` and the
    lock there (HYPOMIMIA_HOME), as the image ships them beside the package under /opt/hypomimia."""
    saved = {k: os.environ.get(k) for k in ("PYTHONPATH", "HYPOMIMIA_HOME")}
    os.environ["PYTHONPATH"] = os.pathsep.join(
        [str(repo_root), *([saved["PYTHONPATH"]] if saved["PYTHONPATH"] else [])]
    )
    os.environ.setdefault("HYPOMIMIA_HOME", str(repo_root))
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def _default_tracking_uri() -> str:
    return f"sqlite:///{Path('work/mlflow/mlflow.db').resolve()}"


@contextlib.contextmanager
def _kfp_output(log_file: Path | None):
    """kfp.local prints every task's full log to stdout and logs cache hits on the root logger;
    send both to a file when one is given."""
    if log_file is None:
        yield
        return
    log_file.parent.mkdir(parents=True, exist_ok=True)
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    with log_file.open("w", encoding="utf-8") as fh, contextlib.redirect_stdout(fh):
        handler = logging.StreamHandler(fh)
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
        root.handlers[:] = [handler]
        root.setLevel(logging.INFO)
        try:
            yield
        finally:
            root.handlers[:] = handlers
            root.setLevel(level)


_ANSI = re.compile(r"\x1b\[[0-9;]*m")


def _raise_task_failure(message: str, root: Path, log_file: Path | None) -> None:
    message = _ANSI.sub("", message)
    where = f" (task logs: {log_file})" if log_file else ""
    if "gate-failed" in message:
        from hypomimia.validation.gate import gate_summary

        validation = _latest(root, "validate", "validation")
        failed = gate_summary(validation) if validation else "see the validate task's report"
        raise GateFailed(
            f"validation gate failed: {failed}; train and later stages did not run{where}",
            f"read {validation}/summary.json, fix the input data or the validate params, re-run",
        ) from None
    cause = _last_error_line(log_file)
    raise UserError(
        f"local pipeline run failed: {message}" + (f"\n  cause: {cause}" if cause else ""),
        f"read the failing task's log{where or ' above'}",
    ) from None


def _last_error_line(log_file: Path | None) -> str:
    """The last 'SomethingError: message' line of the task logs: usually the reason a task failed."""
    if log_file is None or not log_file.is_file():
        return ""
    pattern = re.compile(r"^\s*(?:[\w.]+\.)?(\w+(?:Error|Failed|Exception)): (.+)$")
    hits = [
        m
        for line in log_file.read_text(encoding="utf-8", errors="replace").splitlines()
        if (m := pattern.match(line))
    ]
    hits = [m for m in hits if "GetPrototype" not in m.group(2)]  # mediapipe's harmless protobuf-6 line
    return f"{hits[-1].group(1)}: {hits[-1].group(2)}" if hits else ""


def _latest(root: Path, task: str, output: str) -> Path | None:
    """Newest ``<run>/<task>/<output>`` under the pipeline root (kfp.local's layout)."""
    found = [p for p in root.glob(f"*/{task}/{output}") if p.exists()]
    return max(found, key=lambda p: p.stat().st_mtime) if found else None


# ---------------------------------------------------------------- cluster (kfp.Client)


@dataclass(frozen=True)
class ClusterOptions:
    host: str
    experiment: str = "hypomimia"
    namespace: str | None = None
    service_account: str | None = None
    token: str | None = None
    cookies: str | None = None
    pipeline_root: str | None = None
    enable_caching: bool | None = None


def _client(opts: ClusterOptions):
    # kfp.client, not kfp.Client: inside a running component (_KFP_RUNTIME=true) kfp does not export
    # Client, and the monitor pipeline's retrain step submits from there.
    from kfp.client import Client

    return Client(host=opts.host, namespace=opts.namespace, existing_token=opts.token, cookies=opts.cookies)


def submit(
    package: Path, opts: ClusterOptions, run_name: str, arguments: dict[str, Any] | None = None
) -> str:
    """Create one run of the compiled package on a KFP cluster; returns the run id."""
    result = _client(opts).create_run_from_pipeline_package(
        str(package),
        arguments=arguments or {},
        run_name=run_name,
        experiment_name=opts.experiment,
        namespace=opts.namespace,
        pipeline_root=opts.pipeline_root,
        enable_caching=opts.enable_caching,
        service_account=opts.service_account,
    )
    return result.run_id


def schedule(
    package: Path,
    opts: ClusterOptions,
    job_name: str,
    cron: str,
    arguments: dict[str, Any] | None = None,
    max_concurrency: int = 1,
    catchup: bool = False,
) -> str:
    """A recurring run (KFP cron: 6 fields, seconds first, e.g. '0 0 3 * * 1'); returns its id."""
    fields = cron.split()
    if len(fields) != 6:
        raise UserError(
            f"cron {cron!r} has {len(fields)} fields; KFP wants 6 (seconds first)",
            "e.g. '0 0 3 * * 1' = Mondays 03:00",
        )
    client = _client(opts)
    experiment = client.create_experiment(opts.experiment, namespace=opts.namespace)
    job = client.create_recurring_run(
        experiment_id=experiment.experiment_id,
        job_name=job_name,
        pipeline_package_path=str(package),
        params=arguments or {},
        cron_expression=cron,
        max_concurrency=max_concurrency,
        no_catchup=not catchup,
        pipeline_root=opts.pipeline_root,
        enable_caching=opts.enable_caching,
        service_account=opts.service_account,
    )
    return job.recurring_run_id
