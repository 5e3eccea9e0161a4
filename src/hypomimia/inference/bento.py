"""Build the endpoint's bento offline: the serving shell, this package's source, the pinned lock and
the model files, with ``lock_packages: false`` (re-locking needs PyPI and fails on the mediapipe /
protobuf pin; see docs/operations.md#serving).

The model is resolved once (registry alias, version or folder) and copied into the bento as
``serving/model/``, with ``source.json`` saying which registry version it is, so the container
serves exactly the promoted model without reaching the registry.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from hypomimia.errors import UserError

PACKAGE_DIR = Path(__file__).resolve().parents[1]  # src/hypomimia


def build_bento(
    model: str,
    serving_dir: Path,
    lock_file: Path,
    params_file: Path | None = None,
    tracking_uri: str | None = None,
    bentoml_home: Path | None = None,
) -> str:
    """Build the bento; return its tag (``hypomimia:<version>``). ``serving_dir``: the checkout's
    ``serving/`` (service.py, middleware.py, static/, bentofile.yaml)."""
    from hypomimia.inference.predictor import MODEL_FILES, resolve_model

    serving_dir = Path(serving_dir)
    if not (serving_dir / "service.py").is_file() or not (serving_dir / "bentofile.yaml").is_file():
        raise UserError(f"{serving_dir} is not the serving folder", "run from the repository root")
    if not Path(lock_file).is_file():
        raise UserError(f"lock file {lock_file} not found", "run from the repository root")
    with tempfile.TemporaryDirectory(prefix="hypomimia-bento-") as tmp:
        ctx = Path(tmp) / "ctx"
        shutil.copytree(
            serving_dir, ctx / "serving", ignore=shutil.ignore_patterns("__pycache__", "model", "k8s")
        )
        shutil.copytree(PACKAGE_DIR, ctx / "hypomimia", ignore=shutil.ignore_patterns("__pycache__"))
        shutil.copy(lock_file, ctx / "requirements.lock.txt")
        shutil.copy(serving_dir / "bentofile.yaml", ctx / "bentofile.yaml")
        if params_file and Path(params_file).is_file():
            shutil.copy(params_file, ctx / "params.yaml")
        folder, source = resolve_model(model, tracking_uri, cache=Path(tmp) / "download")
        (ctx / "serving" / "model").mkdir()
        for name in (*MODEL_FILES, "source.json"):
            if (folder / name).is_file():
                shutil.copy(folder / name, ctx / "serving" / "model" / name)
        if not (folder / "source.json").is_file():
            (ctx / "serving" / "model" / "source.json").write_text(json.dumps(source.__dict__))
        env = {**os.environ, "BENTOML_DO_NOT_TRACK": "true", "DO_NOT_TRACK": "true"}
        env.pop("BENTOML_BUNDLE_LOCAL_BUILD", None)  # that path would install uv into the venv
        if bentoml_home:
            env["BENTOML_HOME"] = str(bentoml_home)
        proc = subprocess.run(
            [sys.executable, "-m", "bentoml", "build", str(ctx), "--output", "tag"],
            capture_output=True, text=True, env=env, cwd=ctx, timeout=600,
        )  # fmt: skip
        if proc.returncode != 0:
            raise UserError(
                f"bentoml build failed: {proc.stderr.strip()[-800:]}", "see docs/operations.md#serving"
            )
        tag = proc.stdout.strip().splitlines()[-1].removeprefix("__tag__:")
        return tag
