"""The endpoint's process tree, and how it ends: nothing outlives the ``hypomimia serve`` process.

``bentoml serve`` runs a circus arbiter that starts one process per service worker, each in a
session of its own (circus calls ``setsid``). A signal to a process group never reaches them, and a
worker whose arbiter dies keeps the inherited listening socket and answers on (measured: after
``kill -9`` of the serve process both workers ran on under PID 1, and a restart could not bind).
So the serve command runs the server under a keeper::

    hypomimia serve            the pid a supervisor holds: forwards SIGTERM/SIGINT/SIGHUP, waits
      └─ keeper                python -m hypomimia.inference.process; its own session; child subreaper
           └─ bentoml serve    the circus arbiter
                ├─ Gateway worker      (own session)
                └─ TubeModel worker    (own session)

* The keeper is a child subreaper (``prctl(PR_SET_CHILD_SUBREAPER)``): a process of the tree whose
  parent dies is re-parented to the keeper, not to PID 1, so the keeper always finds the whole tree
  below it (:func:`descendants`).
* The keeper watches its parent (every :data:`POLL_S`): once the serve command is gone, ``kill -9``
  included, it stops the server: SIGTERM to the arbiter (circus stops its workers gracefully),
  :data:`PARENT_GONE_GRACE_S` for answers in flight, then SIGKILL to every process left below it.
* A signal the serve command forwards stops the server the same way, with ``grace_s`` (the serve
  command passes ``serve.timeout_s`` + 5 s: no request runs longer); a second signal kills at once.
* When the arbiter exits on its own (or is killed), whatever it left is killed: its orphans came to
  the keeper. The serve command is a subreaper too and does the same if the keeper itself dies.

Linux only for the subreaper (``prctl``); elsewhere the tree is still stopped through the arbiter,
but orphans go to PID 1. Inside a container the same holds, and the container's end kills its whole
PID namespace anyway.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

POLL_S = 0.05
PARENT_GONE_GRACE_S = 2.0  # kill -9 of the serve command: its supervisor wants the port back now
STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)
_PR_SET_CHILD_SUBREAPER = 36


def become_subreaper() -> bool:
    """Orphans of this process's descendants become this process's children (Linux >= 3.4)."""
    if not sys.platform.startswith("linux"):
        return False
    import ctypes

    try:
        libc = ctypes.CDLL(None, use_errno=True)
        return libc.prctl(_PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) == 0
    except (OSError, AttributeError):
        return False


def _parents(proc: Path = Path("/proc")) -> dict[int, tuple[int, str]]:
    """pid -> (parent pid, state letter) of every process in /proc."""
    out = {}
    for entry in proc.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:  # gone meanwhile
            continue
        fields = stat[stat.rindex(")") + 2 :].split()  # the name may hold spaces and parentheses
        out[int(entry.name)] = (int(fields[1]), fields[0])
    return out


def descendants(pid: int | None = None) -> list[int]:
    """Living descendants of ``pid`` (default: this process), parents before their children."""
    table = _parents()
    children: dict[int, list[int]] = {}
    for child, (parent, _) in table.items():
        children.setdefault(parent, []).append(child)
    out, todo = [], list(children.get(pid or os.getpid(), []))
    while todo:
        p = todo.pop(0)
        if table[p][1] not in "ZX":  # a zombie holds no socket and runs nothing
            out.append(p)
        todo.extend(children.get(p, []))
    return out


def reap() -> dict[int, int]:
    """Collect every exited child without blocking: pid -> wait status."""
    done = {}
    while True:
        try:
            pid, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return done
        if pid == 0:
            return done
        done[pid] = status


def kill_tree(timeout_s: float = 5.0) -> list[int]:
    """SIGKILL every descendant of this process, parents first (a dead arbiter respawns nothing),
    until none is left; returns the pids killed. Orphans come back as this process's children
    when it is a subreaper, so a second pass finds them."""
    killed: list[int] = []
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        alive = descendants()
        if not alive:
            break
        for pid in alive:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGKILL)
                killed.append(pid)
        reap()
        time.sleep(0.01)
    reap()
    return sorted(set(killed))


def _say(message: str) -> None:
    with contextlib.suppress(OSError, ValueError):  # stderr may be gone with the serve command
        print(f"serve: {message}", file=sys.stderr, flush=True)


def keep(cmd: list[str], parent: int, grace_s: float) -> int:
    """Run ``cmd`` (the server) until it exits, a stop signal arrives or ``parent`` is gone; then
    stop it (SIGTERM, then SIGKILL to the whole tree below). Returns the server's exit code."""
    become_subreaper()
    signals: list[int] = []
    for sig in STOP_SIGNALS:
        signal.signal(sig, lambda s, _f: signals.append(s))
    if os.getppid() != parent:  # the serve command died before we got here
        return 128 + signal.SIGTERM
    server = subprocess.Popen(cmd)
    status: int | None = None
    deadline: float | None = None
    parent_gone = False

    def stop(within_s: float) -> None:
        nonlocal deadline
        if deadline is None:
            os.kill(server.pid, signal.SIGTERM)  # circus stops its workers; SIGHUP would reload them
        deadline = min(deadline or float("inf"), time.monotonic() + within_s)

    try:
        while (status := reap().get(server.pid)) is None:
            if not parent_gone and os.getppid() != parent:
                parent_gone = True
                _say(f"the serve command is gone: stopping the server ({PARENT_GONE_GRACE_S:g} s grace)")
                stop(PARENT_GONE_GRACE_S)
            elif signals and deadline is None:
                stop(grace_s)
            if deadline is not None and (time.monotonic() > deadline or len(signals) > 1):
                break  # out of time, or asked twice: kill
            time.sleep(POLL_S)
    finally:
        killed = kill_tree()
        status = reap().get(server.pid, status)
    if killed:
        _say(f"killed {len(killed)} processes of the server that were still running")
    server.returncode = code = os.waitstatus_to_exitcode(status) if status is not None else -signal.SIGKILL
    return 128 - code if code < 0 else code


def supervise(
    cmd: list[str], env: dict[str, str], cwd: Path, grace_s: float, stderr: int | None = None
) -> int:
    """What the serve command does: run ``cmd`` under a keeper in its own session, forward stop
    signals to it, wait, and kill whatever is left (this process is a subreaper too). Returns the
    server's exit code."""
    become_subreaper()
    keeper_cmd = [sys.executable, "-m", "hypomimia.inference.process", "--parent", str(os.getpid()),
                  "--grace-s", str(grace_s), "--", *cmd]  # fmt: skip
    keeper = subprocess.Popen(keeper_cmd, env=env, cwd=cwd, start_new_session=True, stderr=stderr)

    def forward(sig: int, _frame) -> None:
        with contextlib.suppress(ProcessLookupError):
            keeper.send_signal(signal.SIGTERM if sig == signal.SIGHUP else sig)

    for sig in STOP_SIGNALS:
        signal.signal(sig, forward)
    try:
        code = keeper.wait()
    finally:
        kill_tree()
    return 128 - code if code < 0 else code


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m hypomimia.inference.process", description=keep.__doc__)
    parser.add_argument("--parent", type=int, required=True, help="pid of the serve command")
    parser.add_argument("--grace-s", type=float, default=65.0, help="graceful stop before SIGKILL")
    parser.add_argument("cmd", nargs=argparse.REMAINDER, help="-- the server's command line")
    args = parser.parse_args(argv)
    cmd = args.cmd[1:] if args.cmd[:1] == ["--"] else args.cmd
    if not cmd:
        parser.error("no server command after --")
    return keep(cmd, args.parent, args.grace_s)


if __name__ == "__main__":
    sys.exit(main())
