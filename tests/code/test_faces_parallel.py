"""faces.parallel: the calling process and helper processes share a task list."""

import faulthandler
import math
import subprocess
import sys

import pytest

from hypomimia.faces.parallel import Helpers, _ready, run_tasks


@pytest.fixture(scope="module")
def helpers():
    with Helpers(1) as h:  # no warm-up: the pool knows nothing of what its tasks need
        assert h.pool().submit(_ready).result(timeout=120)  # up: tasks go to it at once
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


def test_each_helper_runs_the_warm_function_it_is_given_once_at_start():
    """The caller passes the warm-up in (faces.tube passes its MediaPipe warm-up), so the pool
    never imports the code its tasks run."""
    with Helpers(1, warm=faulthandler.enable) as h:
        assert h.pool().submit(faulthandler.is_enabled).result(timeout=120)


def test_mediapipe_import_leaves_pyplot_for_later_and_it_still_works():
    """import_mediapipe skips mediapipe's matplotlib.pyplot import (0.6 s of every helper start),
    yet pyplot imported afterwards is the real module and mediapipe's own ``plt`` reaches it."""
    code = (
        "import sys\n"
        "from hypomimia.logs import import_mediapipe\n"
        "mp = import_mediapipe()\n"
        "assert 'matplotlib.pyplot' not in sys.modules, 'pyplot was imported'\n"
        "from mediapipe.python.solutions import drawing_utils as du\n"
        "import matplotlib.pyplot as plt\n"
        "assert type(sys.modules['matplotlib']).__name__ == 'module'\n"
        "assert du.plt.figure is plt.figure and plt.figure.__module__ == 'matplotlib.pyplot'\n"
        "assert mp.solutions.face_mesh.FaceMesh\n"
        "print('ok')\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and done.stdout.strip().endswith("ok"), done.stderr[-2000:]
