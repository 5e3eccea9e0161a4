"""The retrain trigger: a small JSON artifact that says retraining is due, why, and on what data.

``hypomimia monitor --submit`` (or a scheduler watching for the file) turns it into a run of the
training pipeline with ``pipeline.data_uri`` set to the trigger's ``data_uri``. An ``ok`` or
``warn`` window writes no trigger, and removes a stale one, so a trigger on disk is always current.
This wing decides and writes; submitting the run is the command's (``commands/monitor.py``, through
``pipeline_runner``), so nothing here reaches up to the orchestrator.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from hypomimia import __version__
from hypomimia.errors import UserError
from hypomimia.monitoring.decision import Decision

TRIGGER_NAME = "retrain_trigger.json"


def write_trigger(out_dir: Path, decision: Decision, window: dict[str, Any], data_uri: str) -> Path | None:
    path = Path(out_dir) / TRIGGER_NAME
    if decision.outcome != "retrain":
        path.unlink(missing_ok=True)
        return None
    trigger = {
        "kind": "hypomimia-retrain-trigger/1",
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "producer": f"hypomimia {__version__} monitor",
        "outcome": decision.outcome,
        "drivers": decision.drivers,
        "reasons": decision.reasons,
        "data_uri": data_uri,
        "window": window,
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(trigger, indent=2) + "\n", encoding="utf-8")
    return path


def read_trigger(path: Path) -> dict[str, Any]:
    try:
        trigger = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise UserError(f"retrain trigger {path} is unreadable ({e})", "re-run hypomimia monitor") from None
    if trigger.get("kind") != "hypomimia-retrain-trigger/1":
        raise UserError(
            f"{path} is not a retrain trigger", "pass the retrain_trigger.json hypomimia monitor wrote"
        )
    return trigger


def run_name(trigger: dict[str, Any]) -> str:
    """The name of the training run a trigger starts: its first drivers (a KFP run name, <= 60 chars)."""
    return f"retrain-{'-'.join(trigger['drivers'][:3]) or 'drift'}"[:60]
