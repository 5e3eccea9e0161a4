"""What KFP components do around a stage's ``run``: turn its output files into typed artifacts.

Components ship only their function's source to the container, so anything shared lives here, in
the package that the image (and the local venv) already has. Nothing here knows a stage's logic:
it reads the files ``docs/data-format.md`` promises (``report.json``, ``summary.json``,
``metrics.json``) and copies numbers into ``Output[Metrics]`` and tables into ``Output[Markdown]``.
"""

from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path
from typing import Any

# the gate's message lives in the library (pipeline_runner needs it too); the gate-failed
# component's compiled source imports it from here
from hypomimia.validation.gate import gate_summary as gate_summary


def read_json(path: Path) -> dict[str, Any]:
    """A stage's JSON report, or {} when the stage wrote none (a report is a courtesy, not the contract)."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (FileNotFoundError, json.JSONDecodeError):
        return {}
    return data if isinstance(data, dict) else {}


def numeric_leaves(data: dict[str, Any], prefix: str = "", depth: int = 3) -> dict[str, float]:
    """Flatten a report to ``{"a.b": number}``; strings, lists and NaN are left out (KFP metrics are numbers)."""
    out: dict[str, float] = {}
    for key, value in data.items():
        name = f"{prefix}{key}"
        if isinstance(value, int | float) and math.isfinite(value):  # bools too: success -> 1.0
            out[name] = float(value)
        elif isinstance(value, dict) and depth > 1:
            out.update(numeric_leaves(value, f"{name}.", depth - 1))
    return out


def publish_metrics(metrics: Any, values: dict[str, float]) -> None:
    """Log numbers on an ``Output[Metrics]`` and write its file.

    The file matters: an ``Output[Metrics]`` filled only with ``log_metric`` has no file on disk, and
    the kfp.local cache treats a missing artifact file as a miss, so every re-run would redo the step.
    """
    for name, value in sorted(values.items()):
        metrics.log_metric(name, value)
    Path(metrics.path).parent.mkdir(parents=True, exist_ok=True)
    Path(metrics.path).write_text(json.dumps(values, indent=2, sort_keys=True), encoding="utf-8")


def publish_markdown(markdown: Any, title: str, values: dict[str, Any]) -> None:
    """A two-column Markdown table on an ``Output[Markdown]`` (rendered by the KFP UI)."""
    lines = [f"# {title}", "", "| key | value |", "|---|---|"]
    lines += [f"| {k} | {v} |" for k, v in values.items()]
    Path(markdown.path).parent.mkdir(parents=True, exist_ok=True)
    Path(markdown.path).write_text("\n".join(lines) + "\n", encoding="utf-8")


def result_fields(result: Any) -> dict[str, Any]:
    """A stage's Result dataclass as a shallow dict ({} for anything else)."""
    if dataclasses.is_dataclass(result) and not isinstance(result, type):
        return {f.name: getattr(result, f.name) for f in dataclasses.fields(result)}
    return {}


def publish_stage_report(
    out_dir: Path, report_name: str, metrics: Any, markdown: Any | None, title: str, result: Any = None
) -> None:
    """Copy a stage's numbers (its Result and its JSON report) to Metrics and, when asked, a table to Markdown."""
    # The stage's JSON report when it wrote one (it is the documented output), else its Result's numbers.
    values = numeric_leaves(read_json(Path(out_dir) / report_name)) or numeric_leaves(result_fields(result))
    publish_metrics(metrics, values)
    if markdown is not None:
        publish_markdown(markdown, title, values or {"report": f"no {report_name} written"})
