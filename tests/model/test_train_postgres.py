"""The production tracking setup: an MLflow server backed by PostgreSQL, with a training run logged to it.

PostgreSQL comes from the installed server binaries (``initdb``/``pg_ctl``; Debian puts them in
/usr/lib/postgresql/<version>/bin). initdb refuses to run as root, so as root the cluster is created
and started as the ``postgres`` system user through ``runuser`` (in a world-writable temp folder,
since pytest's tmp_path is private to root).
"""

from __future__ import annotations

import glob
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import pytest

from hypomimia.stages.train import run
from tests.helpers_train import make_tubes, tiny_train_config


def _pg_bin(name: str) -> str | None:
    found = shutil.which(name)
    if found:
        return found
    candidates = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    return candidates[-1] if candidates else None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _as_db_user(cmd: list[str]) -> list[str]:
    if os.geteuid() != 0:
        return cmd
    if shutil.which("runuser") is None:
        pytest.skip("running as root without runuser: initdb refuses root")
    try:
        import pwd

        pwd.getpwnam("postgres")
    except KeyError:
        pytest.skip("running as root and no 'postgres' user for initdb")
    return ["runuser", "-u", "postgres", "--", *cmd]


@pytest.fixture
def postgres_uri():
    initdb, pg_ctl = _pg_bin("initdb"), _pg_bin("pg_ctl")
    if not (initdb and pg_ctl):
        pytest.skip("PostgreSQL server binaries (initdb, pg_ctl) not found on PATH or in /usr/lib/postgresql")
    root = Path(tempfile.mkdtemp(prefix="hypomimia-pg-"))
    root.chmod(0o777)
    data, port = root / "data", _free_port()
    if os.geteuid() == 0:
        shutil.chown(root, "postgres")
    subprocess.run(
        _as_db_user([initdb, "-D", str(data), "-U", "mlflow", "--auth=trust", "-E", "UTF8"]),
        check=True,
        capture_output=True,
        timeout=120,
    )
    subprocess.run(
        _as_db_user(
            [
                pg_ctl,
                "-D",
                str(data),
                "-l",
                str(root / "pg.log"),
                "-w",
                "-o",
                f"-p {port} -k {root} -c listen_addresses=127.0.0.1",
                "start",
            ]
        ),
        check=True,
        capture_output=True,
        timeout=120,
    )
    try:
        yield f"postgresql+psycopg2://mlflow@127.0.0.1:{port}/postgres"  # SQLAlchemy 2.1 defaults to psycopg 3
    finally:
        subprocess.run(
            _as_db_user([pg_ctl, "-D", str(data), "-m", "fast", "-w", "stop"]),
            capture_output=True,
            timeout=120,
        )
        shutil.rmtree(root, ignore_errors=True)


@pytest.mark.slow
@pytest.mark.postgres
def test_training_logs_to_an_mlflow_server_backed_by_postgres(postgres_uri, tmp_path):
    from mlflow import MlflowClient

    port = _free_port()
    server_log = (tmp_path / "server.log").open("w")
    server = subprocess.Popen(
        [
            str(Path(sys.executable).with_name("mlflow")),
            "server",
            "--backend-store-uri",
            postgres_uri,
            "--artifacts-destination",
            str(tmp_path / "artifacts"),
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--workers",
            "1",
        ],
        stdout=server_log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    uri = f"http://127.0.0.1:{port}"
    try:
        deadline = time.time() + 120
        while True:
            try:
                if httpx.get(f"{uri}/health", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert server.poll() is None, (tmp_path / "server.log").read_text()[-2000:]
            assert time.time() < deadline, "mlflow server did not start"
            time.sleep(1)
        tubes, ingest = make_tubes(tmp_path, subjects=12, videos_per_subject=1, frames=16, size=32, folds=3)
        r = run(
            tiny_train_config(epochs=1, registered_model="hypomimia-pg"),
            tubes,
            ingest,
            tmp_path / "train",
            tracking_uri=uri,
        )
        client = MlflowClient(uri)
        logged = client.get_run(r.run_id)
        assert logged.info.status == "FINISHED"
        assert "test.overall.subject.auroc" in logged.data.metrics
        assert r.registered_version == "1"
        assert client.get_model_version("hypomimia-pg", "1").run_id == r.run_id
        assert list((tmp_path / "artifacts").rglob("model.pt"))  # artifacts went through the server
    finally:
        if server.poll() is None:
            os.killpg(server.pid, signal.SIGTERM)
            server.wait(timeout=30)
        server_log.close()
