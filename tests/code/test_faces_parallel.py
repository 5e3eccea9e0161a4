"""faces.parallel: the calling process and helper processes share a task list."""

import math

import pytest

from hypomimia.faces.parallel import Helpers, _ready, run_tasks


@pytest.fixture(scope="module")
def helpers():
    with Helpers(1) as h:
        assert h.pool().submit(_ready).result(timeout=120)  # up and warm: tasks go to it at once
        yield h


def test_results_come_back_in_task_order_as_without_helpers(helpers):
    tasks = [float(x) for x in range(40)]
    seen = []
    got = run_tasks(math.sqrt, tasks, helpers, on_result=lambda i, r: seen.append(i))
    assert got == [math.sqrt(x) for x in tasks] == run_tasks(math.sqrt, tasks, None)
    assert sorted(seen) == list(range(40))  # every result reported once


def test_a_failing_task_raises_its_own_error(helpers):
    with pytest.raises(ValueError, match="math domain error"):
        run_tasks(math.sqrt, [4.0, 9.0, -1.0, 16.0] * 5, helpers)
    assert run_tasks(math.sqrt, [4.0, 9.0], helpers) == [2.0, 3.0]  # the helpers still work
