"""Reading the gate's verdict back from a validate output folder (``summary.json``), for the messages
of the runners that only hold the folder: the KFP ``gate-failed`` task and ``pipeline run --local``.

Only the standard library here: the component that fails the run imports it in a bare container.
"""

from __future__ import annotations

import json
from pathlib import Path


def gate_summary(validation_dir: Path) -> str:
    """The failed error-level expectations named in a validation summary (for the gate's error message)."""
    try:
        summary = json.loads((Path(validation_dir) / "summary.json").read_text(encoding="utf-8"))
    except (FileNotFoundError, json.JSONDecodeError):
        summary = {}
    failed = [str(name) for name in (summary if isinstance(summary, dict) else {}).get("failed_errors", [])]
    if not failed:
        return "see summary.json"
    return ", ".join(failed[:10]) + (f" (+{len(failed) - 10} more)" if len(failed) > 10 else "")
