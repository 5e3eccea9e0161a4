"""Two promotions racing, in two processes on one real MLflow (SQLite) registry: they run one after
the other under the audit log's change lock, so the aliases match the audit log's last record and
its hash chain verifies; a rollback afterwards too."""

from __future__ import annotations

import multiprocessing as mp
import os
from pathlib import Path

import pytest

from hypomimia.evaluation import registry
from hypomimia.lineage import audit

NAME = "hypomimia-i3d"


def _promote_at_once(uri: str, log: str, version: str, barrier, rounds: int) -> None:
    os.environ["HYPOMIMIA_AUDIT_LOG"] = log
    c = registry.client(uri)
    registry.alias_version(c, NAME, registry.CHAMPION)  # connect and migrate before the start line
    for i in range(rounds):
        barrier.wait()
        registry.promote(c, NAME, version, why=f"race {i}", evidence=None)
        barrier.wait()
        if version == "2":  # the next round starts from v1 again
            registry.promote(c, NAME, "1", why="reset", evidence=None)


@pytest.fixture()
def store(tmp_path: Path, monkeypatch):
    """A registry with versions 1-3 of one model; v1 is champion."""
    uri = f"sqlite:///{tmp_path / 'mlflow' / 'mlflow.db'}"
    monkeypatch.setenv("HYPOMIMIA_AUDIT_LOG", str(tmp_path / "audit" / "audit.jsonl"))
    c = registry.client(uri)
    c.create_registered_model(NAME)
    (tmp_path / "model").mkdir()
    for _ in range(3):
        c.create_model_version(NAME, source=str(tmp_path / "model"))
    registry.promote(c, NAME, "1", why="first", evidence=None)
    return c, uri, tmp_path / "audit" / "audit.jsonl"


def test_two_promotions_racing_leave_aliases_matching_the_audit_chain(store):
    c, uri, log = store
    ctx = mp.get_context("spawn")
    barrier = ctx.Barrier(2, timeout=60)  # a failed promotion breaks it: no hang
    procs = [ctx.Process(target=_promote_at_once, args=(uri, str(log), v, barrier, 2)) for v in ("2", "3")]
    for p in procs:
        p.start()
    for p in procs:
        p.join(timeout=120)
    assert [p.exitcode for p in procs] == [0, 0]

    check = audit.verify_chain(log)
    assert check.ok and check.first_broken is None, check
    promotions = [r["what"] for r in audit.read(log) if r["action"] == "promote"]
    last = promotions[-1]
    assert registry.alias_version(c, NAME, registry.CHAMPION) == last["version"]
    assert registry.alias_version(c, NAME, registry.PREVIOUS) == last["previous"]
    # each promotion saw the champion the one before it made: no lost update
    for before, after in zip(promotions, promotions[1:], strict=False):
        assert after["previous"] == before["version"] or after["previous"] is None
    assert {p["version"] for p in promotions} == {"1", "2", "3"}

    back = registry.rollback(c, NAME, why="after the race")  # under the same lock
    assert back == {"model": NAME, "champion": last["previous"], "demoted": last["version"]}
    assert audit.read(log)[-1]["what"]["version"] == registry.alias_version(c, NAME, registry.CHAMPION)
    assert audit.verify_chain(log).ok
