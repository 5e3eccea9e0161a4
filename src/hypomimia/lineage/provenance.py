"""Provenance: what every stage report records about how it was made.

One call per stage, :func:`stamp`, returns the same block everywhere:

- ``inputs``: each input's content hash (a file's sha256; a folder's sha256 over its files' relative
  paths and hashes) -- the bytes, not the path, so a report names what it read on any machine;
- ``params_sha256``: the hash of the stage's params section as validated (canonical JSON);
- ``code``: package version, git commit and dirty flag (``unknown`` outside a checkout);
- ``lock_sha256`` (the pinned lock file, where the checkout has it) and ``env_sha256`` (the installed
  distributions and their versions, always available, e.g. in a container);
- ``data_version``: the md5 a ``.dvc`` file pins for the tracked folder the inputs lie in (ingest's
  manifest inside ``data/``: ``data.dvc``'s), or else the one the upstream stage recorded (the report or
  metadata beside an input); ``None`` for data no ``.dvc`` file tracks, never the checkout's by default.

The phantom's own ``phantom.json`` deliberately carries none of this: it is part of the versioned data
set, and a commit hash in it would change ``data.dvc`` with every commit.
"""

from __future__ import annotations

import functools
import hashlib
import json
import subprocess
from collections.abc import Mapping
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

import yaml

from hypomimia import __version__
from hypomimia.data.probe import sha256_file

REPO = Path(__file__).resolve().parents[3]  # src/hypomimia/lineage -> the checkout (when run from one)
LOCK = Path("requirements") / "requirements.lock.txt"


def content_hash(path: Path) -> dict[str, Any]:
    """``{"sha256", "files"}`` of a file or a folder (hidden and temporary files skipped); a missing
    path is recorded as missing rather than raising: a report should say what it could not see."""
    path = Path(path)
    if path.is_file():
        return {"sha256": sha256_file(path), "files": 1}
    if not path.is_dir():
        return {"sha256": None, "files": 0, "missing": True}
    h, n = hashlib.sha256(), 0
    for f in sorted(p for p in path.rglob("*") if p.is_file()):
        rel = f.relative_to(path).as_posix()
        if any(part.startswith(".") for part in rel.split("/")):
            continue
        h.update(f"{rel}\0{sha256_file(f)}\n".encode())
        n += 1
    return {"sha256": h.hexdigest(), "files": n}


def params_sha256(params: Any) -> str:
    """Hash of a params section (a pydantic model or a plain dict) as canonical JSON."""
    data = params.model_dump(mode="json") if hasattr(params, "model_dump") else params
    return hashlib.sha256(json.dumps(data, sort_keys=True, default=str).encode()).hexdigest()


def _git(args: list[str], cwd: Path) -> str | None:
    try:
        out = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return out.stdout.strip() if out.returncode == 0 else None


def code_version(repo: Path | None = None) -> dict[str, Any]:
    """Package version, and the checkout's commit and dirty flag (tracked files only) where there is one."""
    root = Path(repo or REPO)
    commit = _git(["rev-parse", "HEAD"], root)
    dirty = _git(["status", "--porcelain", "--untracked-files=no"], root) if commit else None
    return {
        "package_version": __version__,
        "git_commit": commit or "unknown",
        "git_dirty": (bool(dirty) if dirty is not None else "unknown") if commit else "unknown",
    }


def lock_sha256(repo: Path | None = None) -> str | None:
    for root in (Path(repo) if repo else None, REPO, Path.cwd()):
        if root is not None and (root / LOCK).is_file():
            return sha256_file(root / LOCK)
    return None


@functools.lru_cache(maxsize=1)
def env_sha256() -> str:
    """Hash of every installed distribution ``name==version``: the environment that ran, lock or not."""
    pins = sorted({f"{(d.metadata['Name'] or '').lower()}=={d.version}" for d in metadata.distributions()})
    return hashlib.sha256("\n".join(pins).encode()).hexdigest()


def dvc_data_version(path: Path) -> str | None:
    """The md5 that a ``*.dvc`` file in an ancestor folder pins for the tracked output holding ``path``."""
    p = Path(path).resolve()
    for folder in p.parents:
        for f in sorted(folder.glob("*.dvc")):
            try:
                outs = (yaml.safe_load(f.read_text()) or {}).get("outs") or []
            except (OSError, yaml.YAMLError):
                continue
            for o in outs:
                if isinstance(o, dict) and o.get("md5") and o.get("path"):
                    tracked = (folder / str(o["path"])).resolve()
                    if p == tracked or tracked in p.parents:
                        return str(o["md5"])
    return None


def _recorded_data_version(path: Path) -> str | None:
    """The data version an upstream stage recorded: in ``path`` itself (a report or metadata JSON) or in
    the report beside it."""
    p = Path(path)
    for f in (p if p.suffix == ".json" else None, p.parent / "report.json", p.parent / "summary.json"):
        if f is None or not f.is_file():
            continue
        try:
            data = json.loads(f.read_text())
        except (OSError, ValueError):
            continue
        for block in ("provenance", "lineage"):
            if isinstance(data.get(block), dict) and data[block].get("data_version"):
                return str(data[block]["data_version"])
    return None


def data_version(inputs: Mapping[str, Path | None]) -> str | None:
    """The DVC data version behind a stage's inputs (see the module docstring)."""
    paths = [Path(v) for v in inputs.values() if v is not None]
    for p in paths:
        if (v := dvc_data_version(p)) is not None:
            return v
    for p in paths:
        if (v := _recorded_data_version(p)) is not None:
            return v
    return None


def stamp(
    stage: str, params: Any, inputs: Mapping[str, Path | None], repo: Path | None = None
) -> dict[str, Any]:
    """The provenance block of one stage's report (see the module docstring)."""
    return {
        "stage": stage,
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "inputs": {k: {"path": str(v), **content_hash(Path(v))} for k, v in inputs.items() if v is not None},
        "params_sha256": params_sha256(params),
        "code": code_version(repo),
        "lock_sha256": lock_sha256(repo),
        "env_sha256": env_sha256(),
        "data_version": data_version(inputs),
    }


def mlflow_tags(
    stage: str,
    params: Any,
    inputs: Mapping[str, Path | None] | None = None,
    repo: Path | None = None,
    **extra: Any,
) -> dict[str, str]:
    """Tags for an MLflow run or model version: stage, params hash, code, lock and data version."""
    code = code_version(repo)
    tags = {
        "stage": stage,
        "params.sha256": params_sha256(params),
        "git.commit": code["git_commit"],
        "git.dirty": str(code["git_dirty"]).lower(),
        "package.version": code["package_version"],
        "lock.sha256": lock_sha256(repo) or "unknown",
        "data.version": data_version(inputs or {}) or "unknown",
    }
    tags.update({k: str(v) for k, v in extra.items() if v is not None})
    return tags


def run_name(stage: str, params: Any, **parts: Any) -> str:
    """A readable, stable MLflow run name: ``train-fold0-r0-<params hash[:8]>``."""
    bits = [stage, *(f"{k}{v}" for k, v in parts.items() if v is not None), params_sha256(params)[:8]]
    return "-".join(str(b) for b in bits)
