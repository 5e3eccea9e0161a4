"""Both cores on face-tube work: helper processes that share a task list with the calling process.

Why processes and not threads: a video's time segments on two threads of one process overlapped
by only ~5 % (docs/benchmarks.md, issue 17): each segment runs per-frame Python between its
native calls (decode, FaceMesh, OpenCV), and the GIL serialises that. Why the caller works too:
a spawned helper needs ~0.8-1.1 s to start (Python, MediaPipe and the tube code imported, the
models loaded; 1.4-1.8 s before mediapipe's unused matplotlib import was deferred), about half of a
20 s 720p video's work; the calling process starts on the first task at once while the helpers start,
and the helpers take tasks as soon as they are ready. So nothing waits for a helper, and with
``workers = 1`` no process is started at all.

* :class:`Helpers` - ``n`` spawned processes (no fork: MediaPipe/TFLite threads do not survive it),
  each warmed once by the caller's ``warm`` function (for tubes, :func:`faces.tube.warm_helper`:
  MediaPipe imported, the detection and mesh models loaded).
* :func:`run_tasks` - run ``fn`` on every task, greedily: once a helper is up, each is kept one
  task busy by a feeder thread; the caller takes the next task whenever it is free; results come
  back in order. A helper that dies has its task redone by the caller.
* :func:`shared_helpers` - one long-lived set per process (the stage and the endpoint use it): the
  second run or request finds its helpers warm; they are closed at exit.

What a task computes never depends on who runs it, so the results do not depend on ``workers``.
This module knows nothing of tubes: the work (``fn``) and the warm-up (``warm``) are passed in, and
both must be importable module-level functions (a spawned helper unpickles them by name).
"""

from __future__ import annotations

import atexit
import contextlib
import queue
import threading
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from multiprocessing import get_context
from typing import Any, TypeVar

T = TypeVar("T")
R = TypeVar("R")


class Helpers:
    """``n`` helper processes (started on first use, in the background), each running ``warm()``
    once as it starts (None: nothing beyond Python's start-up)."""

    def __init__(self, n: int, warm: Callable[[], object] | None = None):
        if n < 1:
            raise ValueError(f"Helpers needs at least one process, got {n}")
        self.n = n
        self.warm = warm
        self._pool: ProcessPoolExecutor | None = None
        self._lock = threading.Lock()

    def pool(self) -> ProcessPoolExecutor:
        with self._lock:
            if self._pool is None:
                self._pool = ProcessPoolExecutor(
                    self.n, mp_context=get_context("spawn"), initializer=self.warm
                )
            return self._pool

    def close(self) -> None:
        with self._lock:
            if self._pool is not None:
                self._pool.shutdown(wait=True, cancel_futures=True)
                self._pool = None

    def __enter__(self) -> Helpers:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


_SHARED: dict[str, Helpers] = {}
_SHARED_LOCK = threading.Lock()


def shared_helpers(n: int, warm: Callable[[], object] | None) -> Helpers | None:
    """This process's long-lived helpers (``n`` of them, warmed by ``warm``; None for ``n < 1``),
    closed at exit. Asking with another ``n`` or ``warm`` replaces them."""
    if n < 1:
        return None
    with _SHARED_LOCK:
        h = _SHARED.get("helpers")
        if h is None or h.n != n or h.warm is not warm:
            if h is not None:
                h.close()
            h = _SHARED["helpers"] = Helpers(n, warm)
        return h


@atexit.register
def close_shared_helpers() -> None:
    """Stop this process's long-lived helpers (the next :func:`shared_helpers` starts new ones)."""
    with _SHARED_LOCK:
        for h in _SHARED.values():
            h.close()
        _SHARED.clear()


def run_tasks(
    fn: Callable[[T], R],
    tasks: Sequence[T],
    helpers: Helpers | None,
    on_result: Callable[[int, R], None] | None = None,
) -> list[R]:
    """``[fn(t) for t in tasks]``, computed by the calling process and ``helpers`` together.

    Tasks are taken in order (put the longest first). ``on_result(i, r)`` runs in the calling
    thread as each result arrives (for progress and saving). An exception in ``fn`` is raised
    here after the tasks already handed out have finished; ``fn`` and the tasks must pickle.
    """
    results: list[Any] = [None] * len(tasks)
    if helpers is None or len(tasks) <= 1:
        for i, t in enumerate(tasks):
            results[i] = fn(t)
            if on_result:
                on_result(i, results[i])
        return results

    pending = deque(enumerate(tasks))
    arrived: queue.Queue[tuple[int, Future[R]]] = queue.Queue()
    submitted: list[Future[R]] = []
    free = threading.Semaphore(helpers.n)  # one task in flight per helper process
    stop = threading.Event()

    def feed() -> None:
        pool = helpers.pool()
        # Hand out nothing before a helper is up: a task given to a starting helper would wait
        # ~1 s, which the caller could spend doing it (a few short videos need no helper at all).
        ready = [pool.submit(_ready) for _ in range(helpers.n)]
        while not stop.is_set() and not wait(ready, timeout=0.05, return_when=FIRST_COMPLETED)[0]:
            pass
        while not stop.is_set():
            if not free.acquire(timeout=0.05):
                continue
            try:
                i, t = pending.popleft()
            except IndexError:
                return  # every task is handed out
            try:
                fut = pool.submit(fn, t)
            except BrokenProcessPool:  # a helper died: the caller does the rest
                pending.appendleft((i, t))
                return
            submitted.append(fut)
            fut.add_done_callback(lambda f, i=i: (free.release(), arrived.put((i, f))))

    feeder = threading.Thread(target=feed, name="tube-helpers-feed", daemon=True)
    feeder.start()
    done, error = 0, None

    def take(i: int, r: R) -> None:
        nonlocal done
        results[i] = r
        done += 1
        if on_result:
            on_result(i, r)

    def receive(i: int, f: Future[R]) -> None:
        nonlocal error
        exc = f.exception()
        if exc is None:
            take(i, f.result())
        elif isinstance(exc, BrokenProcessPool):  # the helper died (killed, out of memory): redo it here
            pending.appendleft((i, tasks[i]))
        else:
            error = exc

    try:
        while done < len(tasks) and error is None:
            while not arrived.empty() and error is None:  # the helpers' results, as they come
                receive(*arrived.get())
            if error is not None:
                break
            try:
                i, t = pending.popleft()  # the caller works too
            except IndexError:  # all handed out: wait for the helpers
                with contextlib.suppress(queue.Empty):
                    receive(*arrived.get(timeout=0.05))
                continue
            try:
                take(i, fn(t))
            except Exception as e:
                error = e
    finally:
        stop.set()
        feeder.join()
        for f in submitted:  # nothing keeps running behind the caller's back
            f.cancel() or f.exception()
    if error is not None:
        raise error
    return results


def _ready() -> bool:
    return True
