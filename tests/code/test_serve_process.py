"""The serve command's process tree (hypomimia.inference.process) on a stand-in for `bentoml serve`:
an "arbiter" that listens on a port and starts two "workers" in sessions of their own holding that
socket, as circus does. kill -9 of the serve command, a forwarded SIGTERM, a server that ignores it,
and an arbiter killed under its workers: each ends with the port free and no process left."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from tests.helpers_serving import REPO, free_port, living, port_is_free

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="prctl: Linux only")

ARBITER = textwrap.dedent("""
    import os, signal, socket, subprocess, sys, time
    port, marker, ignore_term = int(sys.argv[1]), sys.argv[2], sys.argv[3] == "1"
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", port))
    sock.listen()
    worker = "import time\\nwhile True: time.sleep(1)"
    workers = [subprocess.Popen([sys.executable, "-c", worker], pass_fds=[sock.fileno()],
                                start_new_session=True) for _ in range(2)]
    def stop(*_):
        open(marker, "w").write("stopped")
        for w in workers:
            w.kill()
            w.wait()
        sys.exit(0)
    signal.signal(signal.SIGTERM, signal.SIG_IGN if ignore_term else stop)
    open(marker, "w").write("up")
    while True:
        time.sleep(1)
""")
SERVE = "import sys; from hypomimia.inference.process import supervise; sys.exit(supervise({cmd!r}, None, {cwd!r}, {grace}))"


def _start(tmp_path: Path, grace_s: float = 5.0, ignore_term: bool = False):
    port, marker = free_port(), tmp_path / "arbiter.state"
    cmd = [sys.executable, "-c", ARBITER, str(port), str(marker), "1" if ignore_term else "0"]
    code = SERVE.format(cmd=cmd, cwd=str(REPO), grace=grace_s)
    proc = subprocess.Popen([sys.executable, "-c", code], cwd=REPO, start_new_session=True)
    t0 = time.monotonic()
    while not (marker.is_file() and marker.read_text() == "up" and len(_tree(proc.pid)) == 4):
        assert proc.poll() is None and time.monotonic() - t0 < 30, "the stand-in server did not start"
        time.sleep(0.02)
    return proc, port, marker, _tree(proc.pid)


def _tree(pid: int) -> list[int]:
    import psutil

    return [c.pid for c in psutil.Process(pid).children(recursive=True)]


def _gone_within(tree: list[int], port: int, seconds: float) -> float:
    t0 = time.monotonic()
    while (living(tree) or not port_is_free(port)) and time.monotonic() - t0 < seconds:
        time.sleep(0.02)
    assert not living(tree), f"left running: {living(tree)}"
    assert port_is_free(port), "the port is still held"
    return time.monotonic() - t0


def test_kill_9_of_the_serve_command_takes_the_whole_tree_and_frees_the_port(tmp_path):
    proc, port, _, tree = _start(tmp_path)
    assert not port_is_free(port)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=5)
    _gone_within(tree, port, 5.0)


def test_sigterm_is_forwarded_and_stops_the_server_gracefully(tmp_path):
    proc, port, marker, tree = _start(tmp_path)
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=10) == 0  # the server's own exit code, passed up
    assert marker.read_text() == "stopped"  # its handler ran: a graceful stop, not a kill
    _gone_within(tree, port, 1.0)


def test_a_server_that_ignores_sigterm_is_killed_after_the_grace(tmp_path):
    proc, port, marker, tree = _start(tmp_path, grace_s=0.5, ignore_term=True)
    proc.send_signal(signal.SIGINT)  # Ctrl-C
    assert proc.wait(timeout=10) == 128 + signal.SIGKILL
    assert marker.read_text() == "up"
    _gone_within(tree, port, 1.0)


def test_an_arbiter_killed_under_its_workers_takes_them_along(tmp_path):
    import psutil

    proc, port, _, tree = _start(tmp_path)
    (keeper,) = psutil.Process(proc.pid).children()
    (arbiter,) = keeper.children()
    os.kill(
        arbiter.pid, signal.SIGKILL
    )  # its workers are orphaned: they come to the keeper, which kills them
    assert proc.wait(timeout=10) == 128 + signal.SIGKILL
    _gone_within(tree, port, 1.0)
