from pathlib import Path

import pytest

from tests.helpers_serving import face_clip, start_server, train_tiny_model


@pytest.fixture(scope="session")
def served_model_dir(tmp_path_factory) -> Path:
    return train_tiny_model(tmp_path_factory.mktemp("served-model"))


@pytest.fixture(scope="session")
def clip(tmp_path_factory) -> Path:
    return face_clip(tmp_path_factory.mktemp("clips") / "visit.mp4", seconds=2.0)


@pytest.fixture(scope="session")
def server(served_model_dir, tmp_path_factory):
    """ONE server for the whole serving test session: small limits so every refusal is reachable."""
    srv = start_server(
        served_model_dir,
        tmp_path_factory.mktemp("server"),
        HYPOMIMIA_SERVE_TIMEOUT_S="5",
        HYPOMIMIA_SERVE_MAX_CONCURRENCY="3",
        HYPOMIMIA_SERVE_MAX_UPLOAD_MB="2",
        HYPOMIMIA_SERVE_MAX_DURATION_S="8",
        HYPOMIMIA_SERVE_TEST_HOOKS="1",
    )
    yield srv
    srv.stop()


@pytest.fixture(scope="session")
def realfaces_dir_or_none():
    """The real clips folder, or None where absent (tests then use a phantom stand-in)."""
    from tests.conftest import REALFACES

    return REALFACES if (REALFACES / "README.md").is_file() else None
