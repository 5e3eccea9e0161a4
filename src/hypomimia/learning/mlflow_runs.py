"""MLflow helpers: where runs go, which data and code they came from, and how models are logged.

Default store: embedded, local -- ``sqlite:///<abs work/mlflow/mlflow.db>`` with artifacts in
``work/mlflow/artifacts`` (``make mlflow-ui`` serves it). ``MLFLOW_TRACKING_URI`` overrides it
(e.g. ``http://mlflow.mlflow.svc:5000`` in the cluster, a server backed by PostgreSQL).
"""

from __future__ import annotations

import hashlib
import logging
import os
import subprocess
from pathlib import Path
from typing import Any

import yaml

log = logging.getLogger(__name__)

PACKAGE_DIR = Path(__file__).resolve().parent


def default_tracking_uri(work_dir: Path = Path("work")) -> str:
    """``MLFLOW_TRACKING_URI`` if set, else the local SQLite store under ``work_dir/mlflow``."""
    env = os.environ.get("MLFLOW_TRACKING_URI")
    if env:
        return env
    db = (Path(work_dir) / "mlflow" / "mlflow.db").resolve()
    return f"sqlite:///{db}"


def local_artifact_root(tracking_uri: str) -> str | None:
    """Artifact folder beside a local SQLite store (``.../mlflow/artifacts``); None for servers,
    which choose their own (``--artifacts-destination``)."""
    if tracking_uri.startswith("sqlite:///"):
        return (Path(tracking_uri.removeprefix("sqlite:///")).parent / "artifacts").as_uri()
    return None


def setup_experiment(tracking_uri: str, name: str) -> str:
    """Point MLflow at ``tracking_uri`` and return the id of experiment ``name`` (created if missing)."""
    import mlflow

    if tracking_uri.startswith("sqlite:///"):
        Path(tracking_uri.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
    mlflow.set_tracking_uri(tracking_uri)
    exp = mlflow.get_experiment_by_name(name)
    if exp is not None:
        return exp.experiment_id
    return mlflow.create_experiment(name, artifact_location=local_artifact_root(tracking_uri))


def git_commit(repo: Path | None = None) -> dict[str, str]:
    """``{"git.commit": sha or "unknown", "git.dirty": "true"/"false"/"unknown"}``."""
    cwd = repo or Path.cwd()
    try:
        sha = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=cwd, capture_output=True, text=True, timeout=10
        )
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=cwd,
            capture_output=True,
            text=True,
            timeout=10,
        )
    except (OSError, subprocess.TimeoutExpired):
        return {"git.commit": "unknown", "git.dirty": "unknown"}
    if sha.returncode != 0:
        return {"git.commit": "unknown", "git.dirty": "unknown"}
    return {"git.commit": sha.stdout.strip(), "git.dirty": str(bool(dirty.stdout.strip())).lower()}


def dvc_hashes(repo: Path | None = None) -> dict[str, str]:
    """md5 of every ``*.dvc``-tracked output in the repo root and ``data/`` (``dvc.<file>`` tags)."""
    root = repo or Path.cwd()
    tags = {}
    for f in sorted([*root.glob("*.dvc"), *(root / "data").glob("*.dvc")]):
        try:
            outs = (yaml.safe_load(f.read_text()) or {}).get("outs") or []
        except (OSError, yaml.YAMLError):
            continue
        for out in outs:
            if isinstance(out, dict) and out.get("md5"):
                tags[f"dvc.{f.relative_to(root)}"] = str(out["md5"])
    return tags


def tubes_digest(tubes_dir: Path, tube_files: list[Path]) -> str:
    """Content hash of the training data: tubes.parquet + every tube file used (sha256, first 16 hex)."""
    h = hashlib.sha256()
    for f in [tubes_dir / "tubes.parquet", *sorted(tube_files)]:
        h.update(f.name.encode())
        with open(f, "rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 20), b""):
                h.update(chunk)
    return h.hexdigest()[:16]


def data_version_tags(tubes_dir: Path, digest: str, repo: Path | None = None) -> dict[str, str]:
    return {
        "data.tubes_digest": digest,
        "data.tubes_dir": Path(tubes_dir).name,
        **dvc_hashes(repo),
        **git_commit(repo),
    }


def flatten(d: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """``{"a": {"b": 1}}`` -> ``{"a.b": 1}`` (params and metrics are flat in MLflow)."""
    out = {}
    for k, v in d.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict):
            out.update(flatten(v, key + "."))
        else:
            out[key] = v
    return out


def numeric_metrics(d: dict[str, Any], prefix: str = "") -> dict[str, float]:
    """The finite numbers of a nested metrics dict, flattened (CI tuples become ``_lo``/``_hi``)."""
    out = {}
    for k, v in flatten(d, prefix).items():
        key = k.replace("[", "_").replace("]", "").replace("=", "_")
        if isinstance(v, tuple | list) and len(v) == 2:
            for suffix, x in zip(("_lo", "_hi"), v, strict=True):
                if isinstance(x, int | float) and x == x:
                    out[key + suffix] = float(x)
        elif isinstance(v, bool):
            continue
        elif isinstance(v, int | float) and v == v:
            out[key] = float(v)
    return out


def model_pip_requirements() -> list[str]:
    """Pinned requirements of a logged model (the pickled model imports ``hypomimia.models``, shipped
    as code with it)."""
    from importlib.metadata import version

    return [f"{p}=={version(p)}" for p in ("torch", "numpy", "pydantic", "pyyaml")]


def log_torch_model(model, *, frames: int, size: int, registered_model: str | None) -> tuple[str, str | None]:
    """Log ``model`` (pickle, explicit requirements, tensor signature, package code) and register it.
    Returns (model_uri, registered version or None)."""
    import mlflow
    import mlflow.pytorch
    import numpy as np
    from mlflow.models import ModelSignature
    from mlflow.types import Schema, TensorSpec

    signature = ModelSignature(
        inputs=Schema([TensorSpec(np.dtype(np.float32), (-1, 3, frames, size, size), "clip")]),
        outputs=Schema([TensorSpec(np.dtype(np.float32), (-1, 2), "logits")]),
    )
    info = mlflow.pytorch.log_model(
        model,
        name="model",
        serialization_format="pickle",
        pip_requirements=model_pip_requirements(),
        signature=signature,
        code_paths=[str(PACKAGE_DIR)],
        registered_model_name=registered_model or None,
    )
    version = getattr(info, "registered_model_version", None)
    return info.model_uri, (str(version) if version is not None else None)
