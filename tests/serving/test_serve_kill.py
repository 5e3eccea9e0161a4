"""`kill -9` of `hypomimia serve` (the pid a supervisor holds) in the middle of concurrent requests:
within 5 s the port is free and no process of the server is left, and every answered request has its
record in the prediction log (no torn line). Its own server: the test kills it."""

from __future__ import annotations

import concurrent.futures as cf
import os
import signal
import time

import httpx
import psutil

from hypomimia.inference import prediction_log as plog
from tests.helpers_serving import KEYS, living, port_is_free, start_server

DELAYS = (0.0, 0.0, 0.2, 0.4, 8.0, 8.0, 9.0, 9.0)  # x-test-delay-s: 4 answered soon, 4 still in flight


def _ask(server, clip_bytes: bytes, delay: float) -> tuple[int, str | None]:
    try:
        r = httpx.post(server.url + "/predict", files={"video": ("v.mp4", clip_bytes, "video/mp4")},
                       headers={"X-API-Key": KEYS[0], "x-test-delay-s": str(delay)}, timeout=60)  # fmt: skip
    except httpx.HTTPError as e:  # the server died with this request in flight: not acknowledged
        return -1, type(e).__name__
    return r.status_code, r.json().get("request_id") if r.status_code == 200 else r.text[:200]


def test_kill_9_under_load_frees_the_port_leaves_no_process_and_loses_no_answer(
    served_model_dir, clip, tmp_path
):
    server = start_server(served_model_dir, tmp_path, via_cli=True, HYPOMIMIA_SERVE_TEST_HOOKS="1",
                          HYPOMIMIA_SERVE_MAX_CONCURRENCY="16", HYPOMIMIA_SERVE_TIMEOUT_S="30")  # fmt: skip
    try:
        tree = [c.pid for c in psutil.Process(server.proc.pid).children(recursive=True)]
        assert len(tree) >= 4, tree  # keeper, arbiter, Gateway worker, TubeModel worker
        data = clip.read_bytes()
        with cf.ThreadPoolExecutor(len(DELAYS)) as pool:
            futures = [pool.submit(_ask, server, data, d) for d in DELAYS]
            t0 = time.monotonic()
            while sum(f.done() for f in futures) < 2 and time.monotonic() - t0 < 60:
                time.sleep(0.05)  # under load: answers coming, others in flight
            os.kill(server.proc.pid, signal.SIGKILL)
            killed_at = time.monotonic()
            server.proc.wait(timeout=5)
            while (living(tree) or not port_is_free(server.url)) and time.monotonic() - killed_at < 5:
                time.sleep(0.05)
            gone_s = time.monotonic() - killed_at
            assert not living(tree), f"still running 5 s after kill -9: {living(tree)}"
            assert port_is_free(server.url)
            answers = [f.result() for f in futures]
    finally:
        for pid in living(tree):  # never leave a server behind, even when the test fails
            os.kill(pid, signal.SIGKILL)
    acked = [rid for status, rid in answers if status == 200]
    assert 2 <= len(acked) < len(DELAYS), answers  # some answered, some cut off by the kill
    got = plog.read_log(server.store)
    assert got.skipped == [], got.summary()
    logged = [r.request_id for r in got.records]
    assert sorted(rid for rid in logged if rid in acked) == sorted(acked)  # N answers, N records
    assert len(logged) <= len(DELAYS)
    print(
        f"\nkill -9: port free and tree gone after {gone_s:.2f} s; {len(acked)} answered = {len(acked)} records"
    )
