"""The gate passes valid data and fails, naming the right expectation, on each kind of corruption."""

import hashlib
import json
import shutil
from pathlib import Path

import pytest

from hypomimia.config.validate import ValidateConfig
from hypomimia.errors import GateFailed, UserError
from hypomimia.stages.validate import run
from hypomimia.validation.gx_run import REPO_GX_DIR
from tests.helpers_validate import (
    CORRUPTIONS,
    corrupt_face_ratio,
    corrupt_similar_face_other_video,
    make_valid,
)


@pytest.fixture(scope="module")
def valid_dirs(tmp_path_factory) -> tuple[Path, Path]:
    return make_valid(tmp_path_factory.mktemp("valid"))


@pytest.fixture
def data(valid_dirs, tmp_path) -> tuple[Path, Path]:
    """A private copy of the valid data, free to corrupt."""
    ingest, tubes = valid_dirs
    return shutil.copytree(ingest, tmp_path / "ingest"), shutil.copytree(tubes, tmp_path / "facetubes")


def _tree_hashes(root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in root.rglob("*")
        if p.is_file()
    }


def test_valid_data_passes_and_writes_reports_without_touching_gx(data, tmp_path):
    before = _tree_hashes(REPO_GX_DIR)
    result = run(ValidateConfig(), *data, tmp_path / "out")
    assert result.success, [(o.name, o.observed) for o in result.failed_errors]
    assert result.failed_errors == [] and result.warnings == []
    assert _tree_hashes(REPO_GX_DIR) == before, "validation must not write into the version-controlled gx/"

    summary = json.loads(result.summary_path.read_text())
    assert summary["success"] is True
    assert set(summary["checkpoints"]) == {"manifest", "ingest", "facetubes", "folds", "leakage"}
    assert sum(c["evaluated"] for c in summary["checkpoints"].values()) == len(result.outcomes)

    index = result.data_docs_index
    assert index.is_file() and "manifest" in index.read_text()
    assert len(list((index.parent / "validations").rglob("*.html"))) == 5

    stats = json.loads(result.reference_stats_path.read_text())
    assert stats["schema_version"] == 1 and stats["n_videos"] == 16
    ratio = stats["features"]["face_found_ratio"]
    assert ratio["count"] == 16 and sum(ratio["histogram"]["counts"]) == 16
    assert 0.9 <= ratio["quantiles"]["p50"] <= 1.0


@pytest.mark.parametrize("corrupt", list(CORRUPTIONS), ids=lambda f: f.__name__)
def test_corruption_fails_the_gate_naming_the_expectation(corrupt, data, tmp_path):
    expected = CORRUPTIONS[corrupt]
    corrupt(*data)
    with pytest.raises(GateFailed) as info:
        run(ValidateConfig(), *data, tmp_path / "out")
    assert expected in str(info.value)
    assert info.value.exit_code == 3

    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert summary["success"] is False and expected in summary["failed_errors"]
    area = expected.split(".")[0]
    failed = {f["name"]: f for f in summary["checkpoints"][area]["failed"]}
    assert failed[expected]["observed"], "a failure must show what was observed"


def test_colliding_phash_of_different_videos_is_not_a_near_duplicate(data, tmp_path):
    corrupt_similar_face_other_video(*data)
    result = run(ValidateConfig(), *data, tmp_path / "out")
    assert result.success, [o.name for o in result.failed_errors]


def test_warning_only_reports_without_stopping(data, tmp_path):
    corrupt_face_ratio(*data)
    cfg = ValidateConfig(warning_only=["facetubes.face_found_ratio"])
    result = run(cfg, *data, tmp_path / "out")
    assert result.success
    assert [o.name for o in result.warnings] == ["facetubes.face_found_ratio"]
    observed = result.warnings[0].observed
    assert observed["unexpected_count"] == 2 and observed["unexpected_values"] == [0.3, 0.3]
    assert {r["video_id"] for r in observed["unexpected_rows"]} <= {"sub000_v0", "sub000_v1"}


def test_unknown_warning_name_is_a_user_error(data, tmp_path):
    with pytest.raises(UserError, match="facetubes.face_ratio"):
        run(ValidateConfig(warning_only=["facetubes.face_ratio"]), *data, tmp_path / "out")


def test_missing_input_is_a_user_error_naming_the_stage(tmp_path):
    with pytest.raises(UserError) as info:
        run(ValidateConfig(), tmp_path / "nope", tmp_path / "nope", tmp_path / "out")
    assert "ingested.parquet" in info.value.problem and "hypomimia ingest" in info.value.fix
