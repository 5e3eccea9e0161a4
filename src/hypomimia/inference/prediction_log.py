"""The prediction log: one record per endpoint request, read by drift monitoring and patient courses.

Storage: JSON Lines, one file per UTC day (``<store>/predictions-YYYY-MM-DD.jsonl``), appended under
an exclusive lock, so several server workers write safely and a reader never sees half a record.
No PHI: no file names, frames or client IPs; a patient is followed only through the optional,
pseudonymous ``subject_ref`` the caller chooses (and ``session``, e.g. a visit date or number).
"""

from __future__ import annotations

import fcntl
import os
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

import pandas as pd
from pydantic import BaseModel, ConfigDict, Field

Outcome = Literal["ok", "uncertain", "refused", "error"]
DEFAULT_STORE = Path("work/predictions")


class PredictionRecord(BaseModel):
    """One request. ``outcome``: ok (a pd/control answer), uncertain (abstained), refused (4xx with a
    ``reason``), error (5xx). Quality and embedding are present whenever a tube was extracted."""

    model_config = ConfigDict(extra="forbid")

    request_id: str
    time: datetime = Field(default_factory=lambda: datetime.now(UTC))
    endpoint: str = "predict"
    outcome: Outcome
    status_code: int = 200
    reason: str = ""  # machine-readable refusal reason (ingest/facetubes vocabulary), '' when answered
    model_name: str | None = None
    model_version: str | None = None
    model_alias: str | None = None
    data_version: str | None = None
    p_pd: float | None = None
    label: Literal["pd", "control", "uncertain"] | None = None
    n_clips: int | None = None
    latency_ms: float | None = None
    tube_quality: dict[str, float | int | None] = Field(default_factory=dict)
    embedding: list[float] | None = None  # the model's embed() descriptor, averaged over clips
    subject_ref: str | None = None  # pseudonymous, chosen by the caller; never a name or MRN
    session: str | None = None


def store_path(store: Path | None = None) -> Path:
    return Path(store or os.environ.get("HYPOMIMIA_PREDICTION_LOG") or DEFAULT_STORE)


def append(record: PredictionRecord, store: Path | None = None) -> Path:
    root = store_path(store)
    root.mkdir(parents=True, exist_ok=True)
    day = record.time.astimezone(UTC).strftime("%Y-%m-%d")
    path = root / f"predictions-{day}.jsonl"
    line = record.model_dump_json() + "\n"
    with open(path, "a", encoding="utf-8") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        f.write(line)
        f.flush()
    return path


def read(
    store: Path | None = None, since: datetime | None = None, until: datetime | None = None
) -> list[PredictionRecord]:
    """Records with ``since <= time < until`` (UTC), oldest first. A torn last line (a writer killed
    mid-write) is skipped, not fatal."""
    root = store_path(store)
    out: list[PredictionRecord] = []
    for path in sorted(root.glob("predictions-*.jsonl")):
        for line in path.read_text(encoding="utf-8").splitlines():
            if not line.strip():
                continue
            try:
                rec = PredictionRecord.model_validate_json(line)
            except ValueError:
                continue
            t = rec.time.astimezone(UTC)
            if (since is None or t >= since) and (until is None or t < until):
                out.append(rec)
    return sorted(out, key=lambda r: r.time)


def to_frame(records: list[PredictionRecord]) -> pd.DataFrame:
    """One row per record; ``tube_quality`` flattened to ``q_<metric>`` columns, embedding kept as a list."""
    rows: list[dict[str, Any]] = []
    for r in records:
        row = r.model_dump(exclude={"tube_quality"})
        row.update({f"q_{k}": v for k, v in r.tube_quality.items()})
        rows.append(row)
    return pd.DataFrame(rows)
