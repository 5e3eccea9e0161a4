"""The prediction log: one record per endpoint request, read by drift monitoring and patient courses.

Storage: JSON Lines, one file per UTC day (``<store>/predictions-YYYY-MM-DD.jsonl``), appended under
an exclusive lock, so several server workers write safely and a reader (shared lock) never sees half
a record. Durability: :func:`append` returns only once the line is on disk (``fdatasync``; the
directory too when it made the day's file), and the endpoint answers only after it returned, so
every acknowledged answer has its record, whatever is killed afterwards. A torn line (a disk that
filled up mid-line, a machine that lost power mid-write) is skipped by :func:`read`, which reports
it (:func:`read_log` returns it), and the next append starts on a fresh line so it cannot glue a
good record onto it.
No PHI: no file names, frames or client IPs; a patient is followed only through the optional,
pseudonymous ``subject_ref`` the caller chooses (and ``session``, e.g. a visit date or number).
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

import pandas as pd
from pydantic import BaseModel, ConfigDict, Field

Outcome = Literal["ok", "uncertain", "refused", "error"]
DEFAULT_STORE = Path("work/predictions")
log = logging.getLogger(__name__)


class AudioFacts(BaseModel):
    """The upload's sound, as /predict heard it (docs/monitoring.md, "Audio drift"): the probe's stream
    facts (ingest's ``audio_*`` columns) and what :func:`hypomimia.voice.clip.listen` measured. A clip
    without audio logs ``has_audio: false`` and nulls; a number that is not finite (the -inf loudness
    of digital silence) logs null."""

    model_config = ConfigDict(extra="forbid")

    has_audio: bool
    codec: str | None = None
    sample_rate: int | None = None
    channels: int | None = None
    duration_s: float | None = None
    loudness_lufs: float | None = None  # BS.1770 integrated
    peak_dbfs: float | None = None
    clipped_share: float | None = None
    voice_status: str | None = None  # measured | no_voice | failed (voice.clip.listen); null without audio
    voiced_s: float | None = None
    snr_db: float | None = None  # speech vs pauses (voice.recording)
    hf_share_db: float | None = None  # power above 4 kHz of the voiced speech (voice.recording)
    intensity_db: float | None = None  # Praat, the voice stage's measure
    f0_mean_hz: float | None = None
    f0_sd_st: float | None = None


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
    # /predict's upload sound; None: a tube upload, a refusal, or a record written before issue 25
    audio: AudioFacts | None = None
    modalities: list[str] | None = None  # what the answer was made from (video, landmarks, voice)
    voice: dict[str, float | str | None] = Field(default_factory=dict)  # status, p_pd: audio drift's input
    subject_ref: str | None = None  # pseudonymous, chosen by the caller; never a name or MRN
    session: str | None = None


def store_path(store: Path | None = None) -> Path:
    return Path(store or os.environ.get("HYPOMIMIA_PREDICTION_LOG") or DEFAULT_STORE)


def append(record: PredictionRecord, store: Path | None = None) -> Path:
    """Append one record and return once it is on disk (see the module docstring)."""
    root = store_path(store)
    root.mkdir(parents=True, exist_ok=True)
    day = record.time.astimezone(UTC).strftime("%Y-%m-%d")
    path = root / f"predictions-{day}.jsonl"
    line = (record.model_dump_json() + "\n").encode("utf-8")
    new_file = not path.exists()
    with open(path, "ab+") as f:  # appends always go to the end, whatever the position
        fcntl.flock(f, fcntl.LOCK_EX)
        size = f.seek(0, os.SEEK_END)
        if size and f.seek(size - 1) >= 0 and f.read(1) != b"\n":
            line = b"\n" + line  # the file ends in a torn line: end it, keep this record whole
        f.write(line)
        f.flush()
        _sync(f.fileno())
    if new_file:
        _sync_dir(root)  # the day's file itself survives a power loss
    return path


def _sync(fd: int) -> None:
    (getattr(os, "fdatasync", None) or os.fsync)(fd)  # data and size; no need for the mtime


def _sync_dir(root: Path) -> None:
    with contextlib.suppress(OSError):  # a platform that cannot open or sync a folder
        fd = os.open(root, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


@dataclass(frozen=True)
class Skipped:
    """A line that is not a record: ``torn`` (the file's last line, not ended by a newline: a write
    cut short) or ``unreadable`` (not a record, anywhere else)."""

    file: str
    line: int  # 1-based
    reason: str


@dataclass
class LogRead:
    records: list[PredictionRecord]
    skipped: list[Skipped] = field(default_factory=list)

    def summary(self) -> str:
        torn = sum(s.reason == "torn" for s in self.skipped)
        where = ", ".join(f"{s.file}:{s.line}" for s in self.skipped[:5])
        more = f" and {len(self.skipped) - 5} more" if len(self.skipped) > 5 else ""
        return (
            f"{len(self.skipped)} lines of the prediction log are not records and were skipped "
            f"({torn} torn last lines): {where}{more}"
        )


def read_log(
    store: Path | None = None, since: datetime | None = None, until: datetime | None = None
) -> LogRead:
    """Records with ``since <= time < until`` (UTC), oldest first, and the lines skipped: a torn or
    unreadable line is never fatal (the records around it are read) and is logged as a warning."""
    root = store_path(store)
    out = LogRead([])
    for path in sorted(root.glob("predictions-*.jsonl")):
        with open(path, "rb") as f:
            fcntl.flock(f, fcntl.LOCK_SH)  # no append lands while we read
            data = f.read()
        lines = data.split(b"\n")
        for n, raw in enumerate(lines, 1):
            if not raw.strip():
                continue
            try:
                rec = PredictionRecord.model_validate_json(raw)
            except ValueError:  # pydantic's ValidationError, bad JSON, bad UTF-8
                torn = n == len(lines)  # after the last newline: a write that did not finish
                out.skipped.append(Skipped(path.name, n, "torn" if torn else "unreadable"))
                continue
            t = rec.time.astimezone(UTC)
            if (since is None or t >= since) and (until is None or t < until):
                out.records.append(rec)
    out.records.sort(key=lambda r: r.time)
    if out.skipped:  # every reader reports them, once, here
        log.warning("%s", out.summary())
    return out


def read(
    store: Path | None = None, since: datetime | None = None, until: datetime | None = None
) -> list[PredictionRecord]:
    """Records with ``since <= time < until`` (UTC), oldest first (skipped lines: :func:`read_log`)."""
    return read_log(store, since, until).records


def to_frame(records: list[PredictionRecord]) -> pd.DataFrame:
    """One row per record; ``tube_quality`` flattened to ``q_<metric>`` columns, ``audio`` to
    ``audio_<fact>`` (``has_audio`` as it is; all null for a record without audio facts), ``voice`` to
    ``p_pd_voice`` (the voice stream's P(PD) as the answer gave it; null without a voice stream, or for a
    clip it did not hear) and ``voice_model_status``, the embedding kept as a list."""
    rows: list[dict[str, Any]] = []
    for r in records:
        row = r.model_dump(exclude={"tube_quality", "audio", "voice"})
        # p_pd_voice: the name audio drift tests (monitoring.audio.VOICE_OUTPUT)
        row.update(p_pd_voice=r.voice.get("p_pd"), voice_model_status=r.voice.get("status"))
        row.update({f"q_{k}": v for k, v in r.tube_quality.items()})
        audio = r.audio.model_dump() if r.audio is not None else dict.fromkeys(AudioFacts.model_fields)
        row.update({k if k == "has_audio" else f"audio_{k}": v for k, v in audio.items()})
        rows.append(row)
    return pd.DataFrame(rows)
