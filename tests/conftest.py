import os
from pathlib import Path

import pytest

from hypomimia.logs import telemetry_off

telemetry_off()
os.environ.setdefault("MPLBACKEND", "Agg")

REPO = Path(__file__).resolve().parents[1]
REALFACES = REPO.parent / "shared" / "realfaces"


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return REPO


@pytest.fixture(scope="session")
def realfaces_dir() -> Path:
    """Real third-party face clips (read in place, never copied); skipped where absent."""
    if not (REALFACES / "README.md").is_file():
        pytest.skip(f"real face media not present at {REALFACES}")
    return REALFACES


def pytest_collection_modifyitems(config, items):
    """Slow tests (marked ``slow``: a phantom render, a local DAG, a trained model) start first.

    ``make test`` hands whole modules to two workers (pytest-xdist ``--dist loadscope``) in collection
    order; starting the longest first keeps one long module from running alone at the end."""
    items.sort(key=lambda item: item.get_closest_marker("slow") is None)
