"""One logging setup for the CLI, stages and components.

Human-readable (rich) by default, one JSON object per line with ``--log-json``. Privacy rule:
at INFO and above, videos are named by ``video_id`` or content hash, never by file path or
patient name; use :func:`redact_path` where a path must appear in a DEBUG message.
"""

from __future__ import annotations

import atexit
import contextlib
import hashlib
import importlib
import io
import json
import logging
import os
import re
import sys
import threading
import time
import types
import warnings
from collections.abc import Iterator
from pathlib import Path

_TELEMETRY_OFF = {
    "DO_NOT_TRACK": "true",
    "BENTOML_DO_NOT_TRACK": "true",
    "GX_ANALYTICS_ENABLED": "false",
    "DVC_NO_ANALYTICS": "1",
    "MLFLOW_ENABLE_SYSTEM_METRICS_LOGGING": os.environ.get("MLFLOW_ENABLE_SYSTEM_METRICS_LOGGING", "false"),
    "GLOG_minloglevel": "2",  # mediapipe's C++ logging
    "TF_CPP_MIN_LOG_LEVEL": "3",
}


def telemetry_off() -> None:
    """Turn every library's usage telemetry off (unless the user already chose a value)."""
    for key, value in _TELEMETRY_OFF.items():
        os.environ.setdefault(key, value)


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        payload = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        payload.update(getattr(record, "fields", {}) or {})
        if record.exc_info:
            payload["exc"] = self.formatException(record.exc_info)
        return json.dumps(payload, default=str)


def setup_logging(level: str = "INFO", json_lines: bool = False) -> None:
    telemetry_off()
    root = logging.getLogger()
    for h in list(root.handlers):
        root.removeHandler(h)
    if json_lines:
        handler: logging.Handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(JsonFormatter())
    else:
        from rich.logging import RichHandler

        handler = RichHandler(show_path=False, rich_tracebacks=False, markup=False)
        handler.setFormatter(logging.Formatter("%(message)s"))
    root.addHandler(handler)
    root.setLevel(level.upper())
    # Third-party chatter that is noise at INFO.
    for name in ("absl", "mlflow", "alembic", "great_expectations", "urllib3", "matplotlib", "PIL", "kfp"):
        logging.getLogger(name).setLevel(logging.WARNING)
    warnings.filterwarnings("ignore", category=FutureWarning)
    # MLflow cannot tell two local dataset-source classes apart for the run's input dataset: harmless noise.
    warnings.filterwarnings(
        "ignore", message="The specified dataset source can be interpreted in multiple ways"
    )


def redact_path(path: str | Path) -> str:
    """A stable, non-identifying token for a file path (for DEBUG logs)."""
    return "path:" + hashlib.sha256(str(path).encode("utf-8", "surrogateescape")).hexdigest()[:12]


# -- native library logs ----------------------------------------------------------------------------
# mediapipe/TFLite log through absl's C++ logging straight to file descriptor 2, from their own
# threads, at the first frame a graph processes; GLOG_minloglevel does not reach absl, and Python's
# logging never sees these lines. ``import mediapipe`` (with protobuf 6) also prints a harmless
# AttributeError through sys.stderr that reads like a crash. These patterns are the known noise.
# Two native threads can interleave their writes: TFLite's "INFO: " then absl's whole line, then the
# rest of TFLite's ("Created TensorFlow Lite XNNPACK delegate for CPU."): seen once in CI, so both
# halves match on their own.
NATIVE_NOISE = re.compile(
    rb"^(?:(?:INFO: )?[WI]\d{4} \d\d:\d\d:\d+\.\d+ +\d+ \S+\.cc:\d+\]"  # absl: W0000 00:00:17.. 123 x.cc:114]
    rb"|WARNING: All log messages before absl::InitializeLog\(\) is called"
    rb"|(?:INFO: )?Created TensorFlow Lite XNNPACK delegate"
    rb"|AttributeError: 'MessageFactory' object has no attribute 'GetPrototype')"
)
_silenced_pid: int | None = None
_unfiltered_fd: int | None = None  # stderr as it was before silence_native_logs, in this process


def silence_native_logs() -> None:
    """Drop mediapipe/TFLite native log lines at the file-descriptor level, keep everything else.

    File descriptor 2 becomes a pipe; a daemon thread forwards each line that is not
    :data:`NATIVE_NOISE` to the original stderr. Child processes inherit the pipe, so the stage
    workers are filtered too. Call it once at a process entry point (the CLI, a server worker),
    not in a library function: it rewires the process's stderr. ``HYPOMIMIA_NATIVE_LOGS=show``
    turns it off (debugging mediapipe itself).
    """
    global _silenced_pid, _unfiltered_fd
    if _silenced_pid == os.getpid() or os.environ.get("HYPOMIMIA_NATIVE_LOGS") == "show":
        return
    _silenced_pid = os.getpid()
    with contextlib.suppress(AttributeError, ValueError, OSError):
        sys.stderr.flush()
    original = _unfiltered_fd = os.dup(2)
    read_end, write_end = os.pipe()
    os.dup2(write_end, 2)
    os.close(write_end)
    sink = os.fdopen(original, "wb", buffering=0)

    def forward() -> None:
        with os.fdopen(read_end, "rb") as lines:
            for line in lines:
                if not NATIVE_NOISE.match(line):
                    with contextlib.suppress(OSError):
                        sink.write(line)

    thread = threading.Thread(target=forward, name="native-log-filter", daemon=True)
    thread.start()

    def drain() -> None:  # at exit: close our end of the pipe, let the thread forward the rest
        with contextlib.suppress(AttributeError, ValueError, OSError):
            sys.stderr.flush()
        try:
            os.dup2(original, 2)
        except OSError:  # the saved stderr is closed already (a test harness closed it): nothing to restore
            return
        thread.join(timeout=1.0)

    atexit.register(drain)


def unfiltered_stderr() -> int | None:
    """The file descriptor stderr was before :func:`silence_native_logs` in this process (None when
    it was not called): for a child process that must keep a working stderr after this one dies
    (the filter thread dies with it; a child writing into its pipe would get EPIPE)."""
    return _unfiltered_fd if _silenced_pid == os.getpid() else None


@contextlib.contextmanager
def quiet_python_stderr() -> Iterator[None]:
    """Hold what is written to ``sys.stderr`` meanwhile, then pass it on without the known noise
    lines (the AttributeError ``import mediapipe`` prints). For in-process library use, where
    :func:`silence_native_logs` is not active."""
    held, real = io.StringIO(), sys.stderr
    sys.stderr = held
    try:
        yield
    finally:
        sys.stderr = real
        kept = [
            line
            for line in held.getvalue().splitlines(keepends=True)
            if not NATIVE_NOISE.match(line.encode("utf-8", "replace"))
        ]
        if kept:
            real.write("".join(kept))


def import_mediapipe():
    """``import mediapipe`` without its protobuf-6 AttributeError print (native lines: see above),
    and without importing matplotlib (:func:`_pyplot_on_first_use`)."""
    telemetry_off()
    with quiet_python_stderr(), _pyplot_on_first_use():
        import mediapipe as mp
    return mp


class _DeferredModule(types.ModuleType):
    """Stands in for a module until one of its attributes is used, then imports the real one."""

    def __getattr__(self, name: str):
        if name.startswith("__"):  # what the import system asks of any module: a plain module's answer
            raise AttributeError(name)
        if sys.modules.get(self.__name__) is self:  # used while still standing in: import the real one
            del sys.modules[self.__name__]
        return getattr(importlib.import_module(self.__name__), name)


@contextlib.contextmanager
def _pyplot_on_first_use() -> Iterator[None]:
    """While mediapipe is imported, ``matplotlib`` and ``matplotlib.pyplot`` are stand-ins.

    Why: ``mediapipe.solutions`` imports ``matplotlib.pyplot`` for a plotting helper the project
    never calls, and that import is 0.6 of the 1.0 s mediapipe takes to import (measured): every
    face-tube helper process, CLI run and endpoint start paid it. The stand-ins leave
    ``sys.modules`` afterwards, so any later ``import matplotlib.pyplot`` gets the real module,
    and mediapipe's own ``plt`` imports it on first use. (``importlib.util.LazyLoader`` does not
    help here: the import statement itself touches the module and loads it.)
    """
    if "mediapipe" in sys.modules or "matplotlib.pyplot" in sys.modules:
        yield  # nothing to save (every FaceTracker calls import_mediapipe: no stand-ins each time)
        return
    added = [name for name in ("matplotlib", "matplotlib.pyplot") if name not in sys.modules]
    for name in added:
        sys.modules[name] = _DeferredModule(name)
        parent, _, child = name.rpartition(".")
        if isinstance(sys.modules.get(parent), _DeferredModule):  # ``import a.b as c`` reads ``a.b``
            setattr(sys.modules[parent], child, sys.modules[name])
    try:
        yield
    finally:
        for name in added:
            if isinstance(sys.modules.get(name), _DeferredModule):
                del sys.modules[name]
