"""One logging setup for the CLI, stages and components.

Human-readable (rich) by default, one JSON object per line with ``--log-json``. Privacy rule:
at INFO and above, videos are named by ``video_id`` or content hash, never by file path or
patient name; use :func:`redact_path` where a path must appear in a DEBUG message.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import sys
import time
import warnings
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


def redact_path(path: str | Path) -> str:
    """A stable, non-identifying token for a file path (for DEBUG logs)."""
    return "path:" + hashlib.sha256(str(path).encode("utf-8", "surrogateescape")).hexdigest()[:12]
