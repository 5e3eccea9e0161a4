"""The prediction log after a crash: a torn last line (a write cut short) and garbage in the middle
of a daily file are skipped and reported by every reader (prediction_log.read, the monitor's window,
the window snapshot, the lineage query), never a crash; an append after a torn line keeps its record
whole; an append is on disk before it returns."""

from __future__ import annotations

import logging
import os
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from hypomimia.config.monitor import MonitorConfig
from hypomimia.errors import UserError
from hypomimia.inference import prediction_log as plog
from hypomimia.lineage import query
from hypomimia.monitoring.window import snapshot_log
from hypomimia.stages.monitor import current_table

T0 = datetime(2026, 12, 1, 10, tzinfo=UTC)
DAY = "predictions-2026-12-01.jsonl"


def _rec(i: int, **kw) -> plog.PredictionRecord:
    return plog.PredictionRecord(request_id=f"r{i}", time=T0 + timedelta(minutes=i), outcome="ok", p_pd=0.3,
                                 label="control", tube_quality={"blur_mean": 80.0}, **kw)  # fmt: skip


@pytest.fixture()
def torn_store(tmp_path: Path) -> Path:
    """Records r0..r2, garbage (bad UTF-8 and NUL bytes, a half record, JSON that is no record)
    between r0 and r1, then a torn last line: a writer killed in the middle of a record."""
    store = tmp_path / "predictions"
    plog.append(_rec(0), store)
    with open(store / DAY, "ab") as f:
        f.write(b"\xff\xfe\x00\x00garbage\n" + b'{"request_id": "half", "outc\n' + b'{"not": "a record"}\n')
    plog.append(_rec(1), store)
    plog.append(_rec(2), store)
    with open(store / DAY, "ab") as f:
        f.write(b'{"request_id": "r3", "time": "2026-12-01T10:03:00Z", "outcome": "o')
    return store


def test_read_log_skips_and_names_the_torn_last_line_and_the_garbage(torn_store):
    got = plog.read_log(torn_store)
    assert [r.request_id for r in got.records] == ["r0", "r1", "r2"]
    assert [(s.file, s.line, s.reason) for s in got.skipped] == [
        (DAY, 2, "unreadable"), (DAY, 3, "unreadable"), (DAY, 4, "unreadable"), (DAY, 7, "torn")]  # fmt: skip
    assert "4 lines of the prediction log are not records" in got.summary() and "1 torn" in got.summary()


def test_read_warns_about_skipped_lines(torn_store, caplog):
    with caplog.at_level(logging.WARNING, logger="hypomimia.inference.prediction_log"):
        assert [r.request_id for r in plog.read(torn_store)] == ["r0", "r1", "r2"]
    assert f"{DAY}:7" in caplog.text and "skipped" in caplog.text


def test_an_append_after_a_torn_line_starts_a_fresh_line(torn_store):
    plog.append(_rec(4), torn_store)  # would otherwise be glued to the torn r3 and lost with it
    got = plog.read_log(torn_store)
    assert [r.request_id for r in got.records] == ["r0", "r1", "r2", "r4"]
    assert [s.reason for s in got.skipped][-1] == "unreadable"  # r3 is no longer last: just not a record


def test_an_append_is_synced_before_it_returns(tmp_path, monkeypatch):
    synced = []
    real = getattr(os, "fdatasync", os.fsync)
    monkeypatch.setattr(os, "fdatasync" if hasattr(os, "fdatasync") else "fsync",
                        lambda fd: (synced.append(os.fstat(fd).st_size), real(fd))[1])  # fmt: skip
    path = plog.append(_rec(0), tmp_path)
    assert synced == [path.stat().st_size]  # the whole line was on disk when append returned


def test_the_monitor_window_skips_and_reports_torn_lines(torn_store):
    table, window = current_table(MonitorConfig(), None, None, torn_store, T0 + timedelta(days=1))[:2]
    assert table["video_id"].tolist() == ["r0", "r1", "r2"] and window["skipped_lines"] == 4


def test_the_window_snapshot_copies_only_whole_records(torn_store, tmp_path, caplog):
    with caplog.at_level(logging.WARNING):
        n, _, _ = snapshot_log(torn_store, tmp_path / "window", T0 + timedelta(days=1), 7)
    assert n == 3 and "skipped" in caplog.text
    copy = plog.read_log(tmp_path / "window")
    assert [r.request_id for r in copy.records] == ["r0", "r1", "r2"] and copy.skipped == []


def test_the_lineage_query_reads_past_torn_lines(torn_store, monkeypatch):
    monkeypatch.setattr(query, "_client", lambda uri: None)  # a request id needs only the log
    with pytest.raises(UserError, match="records no model"):  # found r2, which names no model version
        query.resolve("r2", None, torn_store)
    with pytest.raises(UserError, match="4 unreadable lines skipped"):
        query.resolve("r9", None, torn_store)
