"""Standard JSON for every file the project writes: no bare ``NaN``/``Infinity``.

Python's ``json`` writes ``NaN`` for an undefined metric (e.g. the AUROC of an abstention subset
left with one class); ``jq``, browsers and most JSON readers reject such a file. :func:`dumps`
writes ``null`` instead and says why in a top-level ``"nulls"`` map (JSON path -> reason), so a
reader can tell "undefined" from "missing".
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np

# Why a number is undefined, by the name of its key (the last path part; `_ci95` entries too).
REASONS = {
    "auroc": "undefined: AUROC needs both classes among the rows it is computed on",
    "auroc_ci95": "undefined: bootstrap off (n=0) or every resample had one class",
    "balanced_accuracy_ci95": "undefined: bootstrap off (n=0) or every resample had one class",
    "sensitivity": "undefined: no PD rows",
    "specificity": "undefined: no control rows",
    "recall": "undefined: no rows of this class",
    "mean_p_pd": "undefined: no rows of this class",
    "f1": "undefined: no positive predictions and no PD rows",
    "coverage": "undefined: no rows",
    "val_subject_auroc": "undefined: the validation fold has one class",
    "p_value": "undefined: the difference has no variance (identical or degenerate predictions)",
    "p_holm": "undefined: the difference has no variance (identical or degenerate predictions)",
    "auroc_sd": "undefined: an SD over training seeds needs two seeds with a defined AUROC (evaluate.seeds)",
    "seed_auroc_sd": "undefined: an SD over training seeds needs two seeds with a defined AUROC (evaluate.seeds)",
    "ece_after": "undefined: cross-fitted calibration needs at least two evaluated folds",
    "brier_after": "undefined: cross-fitted calibration needs at least two evaluated folds",
    "seed_agreement": "undefined: no training seeds (a deterministic reference)",
}
DEFAULT_REASON = "undefined: not a finite number (empty or one-class subset)"


def _key_reason(path: str) -> str:
    parts = [p for p in path.split(".") if not p.isdigit()]
    for part in reversed(parts):
        if part in REASONS:
            return REASONS[part]
    return DEFAULT_REASON


def sanitize(obj: Any, path: str = "", nulls: dict[str, str] | None = None) -> Any:
    """``obj`` with non-finite floats replaced by None (recorded in ``nulls``), numpy scalars and
    arrays, tuples, sets and Paths made plain JSON types."""
    if nulls is None:
        nulls = {}
    if isinstance(obj, dict):
        return {str(k): sanitize(v, f"{path}.{k}" if path else str(k), nulls) for k, v in obj.items()}
    if isinstance(obj, list | tuple | set | np.ndarray):
        seq = obj.tolist() if isinstance(obj, np.ndarray) else list(obj)
        return [sanitize(v, f"{path}.{i}", nulls) for i, v in enumerate(seq)]
    if isinstance(obj, np.bool_ | bool):
        return bool(obj)
    if isinstance(obj, np.integer):
        return int(obj)
    if isinstance(obj, float | np.floating):
        x = float(obj)
        if not math.isfinite(x):
            nulls[path] = _key_reason(path)
            return None
        return x
    if isinstance(obj, Path):
        return str(obj)
    return obj


def dumps(obj: Any, *, indent: int | None = 2, sort_keys: bool = False) -> str:
    """Standard JSON of ``obj``; a dict gets a ``"nulls"`` entry naming each undefined number and why."""
    nulls: dict[str, str] = {}
    clean = sanitize(obj, nulls=nulls)
    if isinstance(clean, dict) and nulls:
        clean = {**clean, "nulls": {**clean.get("nulls", {}), **nulls}}
    return json.dumps(clean, indent=indent, sort_keys=sort_keys, allow_nan=False, default=str)


def write(path: Path, obj: Any, **kw) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(dumps(obj, **kw) + "\n", encoding="utf-8")
    return path
