"""A tiny served model and a real server for the serving tests (one per test session).

The model is trained in seconds on the training tests' blob tubes; its metadata carries face-tube
params (as a facetubes report would), so the endpoint makes real face tubes from real clips.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import httpx

from hypomimia.config.facetubes import FacetubesConfig
from hypomimia.faces.tube import tube_params
from tests.helpers_facetubes import moving_face, write_clip
from tests.helpers_train import make_tubes, tiny_train_config

REPO = Path(__file__).resolve().parents[1]
KEYS = ("key-one", "key-two")
# What the served model's tubes are made with: the defaults, with a shorter cut and a lower frame minimum.
TUBES = FacetubesConfig(max_seconds=4.0, min_frames=8, workers=1)


def train_tiny_model(root: Path) -> Path:
    """A trained model folder (model.pt, metadata.json with face_tubes, metrics.json); no MLflow."""
    from hypomimia.stages.train import run

    tubes, ingest = make_tubes(root, subjects=8, videos_per_subject=1, frames=24, size=32, folds=4)
    (tubes / "report.json").write_text(json.dumps({"params": tube_params(TUBES)}))
    run(tiny_train_config(epochs=1, bootstrap=20), tubes, ingest, root / "train", tracking_uri="off")
    return root / "train"


def face_clip(path: Path, seconds: float = 2.0, fps: int = 25, size=(256, 256)) -> Path:
    """A phantom face clip: the sample photo drifting (tests/helpers_facetubes)."""
    return write_clip(path, list(moving_face(int(seconds * fps), size=size, fps=fps)), fps=fps)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Server:
    url: str
    proc: subprocess.Popen
    log_file: Path
    store: Path  # the prediction log
    ready_s: float

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)


def port_is_free(url_or_port: str | int) -> bool:
    """A restarted server could listen on it (SO_REUSEADDR, as servers bind: TIME_WAIT is no obstacle)."""
    port = int(str(url_or_port).rsplit(":", 1)[-1])
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
            s.listen()
        except OSError:
            return False
    return True


def living(pids: list[int]) -> list[int]:
    """Those of ``pids`` still running (a zombie waiting for its reaper runs nothing and holds no socket)."""
    import psutil

    out = []
    for pid in pids:
        try:
            if psutil.Process(pid).status() != psutil.STATUS_ZOMBIE:
                out.append(pid)
        except psutil.NoSuchProcess:
            pass
    return out


def start_server(
    model: str | Path, work: Path, timeout: float = 120.0, via_cli: bool = False, **env: str
) -> Server:
    """`bentoml serve serving.service:Gateway` (or, ``via_cli``, `hypomimia serve`: the command a
    supervisor runs) in its own session; waits for /readyz."""
    port, store, log_file = free_port(), work / "predictions", work / "server.log"
    full_env = {
        **os.environ,
        "PYTHONPATH": f"{REPO / 'src'}{os.pathsep}{REPO}",
        "BENTOML_HOME": str(work / "bentoml"),
        "BENTOML_DO_NOT_TRACK": "true",
        "DO_NOT_TRACK": "true",
        "HYPOMIMIA_API_KEY": ",".join(KEYS),
        "HYPOMIMIA_SERVE_MODEL": str(model),
        "HYPOMIMIA_PREDICTION_LOG": str(store),
        **env,
    }
    cmd = [sys.executable, "-m", "bentoml", "serve", "serving.service:Gateway"]
    if via_cli:
        cmd = [sys.executable, "-m", "hypomimia", "serve", "--model", str(model)]
    with open(log_file, "wb") as out:
        proc = subprocess.Popen(
            [*cmd, "--host", "127.0.0.1", "--port", str(port)],
            cwd=REPO, env=full_env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
    url, t0 = f"http://127.0.0.1:{port}", time.perf_counter()
    server = Server(url, proc, log_file, store, 0.0)
    while time.perf_counter() - t0 < timeout:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited ({proc.returncode}):\n{log_file.read_text()[-3000:]}")
        try:
            if httpx.get(url + "/readyz", timeout=1).status_code == 200:
                server.ready_s = time.perf_counter() - t0
                return server
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    server.stop()
    raise TimeoutError(f"server not ready after {timeout} s:\n{log_file.read_text()[-3000:]}")
