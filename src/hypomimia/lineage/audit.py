"""The append-only audit log: every registration, promotion, rollback and deletion request.

One JSON object per line in ``work/audit/audit.jsonl`` (``HYPOMIMIA_AUDIT_LOG`` overrides the path).
Records are never rewritten: each carries the sha256 of the previous line (``prev``), so an edited or
deleted line breaks the chain and :func:`verify_chain` names the first broken record. The last record has
no successor to vouch for it, so a head file beside the log (``audit.jsonl.head``: count and sha256 of
the last line, rewritten on every append) catches an edited or removed last record too. Who acted comes
from the environment (``HYPOMIMIA_ACTOR``, else the login user), never from a request body.

:func:`exclusive` is the registry's change lock (``audit.jsonl.lock``): a registry change reads the
aliases, sets them and appends its record while holding it, so two promotions racing end in the
order the log tells (hypomimia.evaluation.registry).
"""

from __future__ import annotations

import contextlib
import fcntl
import getpass
import hashlib
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from hypomimia.errors import UserError

DEFAULT_PATH = Path("work/audit/audit.jsonl")
ACTIONS = ("register", "promote", "reject", "rollback", "deletion_request", "serve_build")
GENESIS = "0" * 64


def audit_path(path: Path | None = None) -> Path:
    return Path(path or os.environ.get("HYPOMIMIA_AUDIT_LOG") or DEFAULT_PATH)


def actor() -> str:
    """Who is acting: ``HYPOMIMIA_ACTOR`` (set by CI/KFP to the pipeline or service account), else the login."""
    if os.environ.get("HYPOMIMIA_ACTOR"):
        return os.environ["HYPOMIMIA_ACTOR"]
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return f"uid:{os.getuid()}"


def record(
    action: str,
    what: dict[str, Any],
    why: str,
    evidence: str | None = None,
    path: Path | None = None,
) -> dict[str, Any]:
    """Append one record and return it. ``what`` names the object (e.g. model, version, alias);
    ``evidence`` links to the artifact that justified it (a blessing decision, a request)."""
    if action not in ACTIONS:
        raise ValueError(f"unknown audit action {action!r}; one of {ACTIONS}")
    p = audit_path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    with open(p, "a+", encoding="utf-8") as f:
        fcntl.flock(f, fcntl.LOCK_EX)  # two writers never interleave or share a `prev`
        f.seek(0)
        lines = f.read().splitlines()
        prev = hashlib.sha256(lines[-1].encode()).hexdigest() if lines else GENESIS
        entry = {
            "seq": len(lines),
            "time": datetime.now(UTC).isoformat(timespec="seconds"),
            "actor": actor(),
            "action": action,
            "what": what,
            "why": why,
            "evidence": evidence,
            "prev": prev,
        }
        line = json.dumps(entry, sort_keys=True, default=str)
        f.write(line + "\n")
        f.flush()
        os.fsync(f.fileno())
        _write_head(p, len(lines) + 1, hashlib.sha256(line.encode()).hexdigest())  # still under the lock
    return entry


@contextlib.contextmanager
def exclusive(path: Path | None = None) -> Iterator[Path]:
    """Hold the change lock of this audit log (``audit.jsonl.lock`` beside it) for a
    read-decide-write of the registry and its audit record; other holders wait. A flock: released
    when the holder exits or dies, and shared by every process that sees the same file (on a cluster,
    the log and its lock on one shared volume)."""
    p = audit_path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    with open(p.with_name(p.name + ".lock"), "a") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        yield p


def head_path(path: Path) -> Path:
    return path.with_name(path.name + ".head")


def _write_head(path: Path, records: int, last_sha256: str) -> None:
    tmp = path.with_name(f".{path.name}.head.tmp")
    tmp.write_text(json.dumps({"records": records, "last_sha256": last_sha256}) + "\n", encoding="utf-8")
    tmp.replace(head_path(path))


def read(path: Path | None = None) -> list[dict[str, Any]]:
    p = audit_path(path)
    if not p.exists():
        return []
    out = []
    for n, line in enumerate(p.read_text(encoding="utf-8").splitlines(), 1):
        try:
            out.append(json.loads(line))
        except ValueError as e:
            raise UserError(
                f"audit log {p} line {n} is not JSON ({e})", "restore the log from backup; it is append-only"
            ) from None
    return out


@dataclass(frozen=True)
class ChainCheck:
    ok: bool
    records: int
    first_broken: int | None  # seq of the first record whose `prev` does not match


def verify_chain(path: Path | None = None) -> ChainCheck:
    p = audit_path(path)
    lines = p.read_text(encoding="utf-8").splitlines() if p.exists() else []
    prev = GENESIS
    for i, line in enumerate(lines):
        try:
            entry = json.loads(line)
        except ValueError:
            return ChainCheck(False, len(lines), i)
        if entry.get("prev") != prev or entry.get("seq") != i:
            return ChainCheck(False, len(lines), i)
        prev = hashlib.sha256(line.encode()).hexdigest()
    head = head_path(p)
    if head.is_file():  # logs written before the head file existed have none: the chain alone then
        try:
            h = json.loads(head.read_text(encoding="utf-8"))
        except ValueError:
            return ChainCheck(False, len(lines), max(len(lines) - 1, 0))
        if h.get("records") != len(lines) or (lines and h.get("last_sha256") != prev):
            # records missing at the end: the first missing one; else the edited last record
            first = len(lines) if int(h.get("records") or 0) > len(lines) else max(len(lines) - 1, 0)
            return ChainCheck(False, len(lines), first)
    return ChainCheck(True, len(lines), None)
