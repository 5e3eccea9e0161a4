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
