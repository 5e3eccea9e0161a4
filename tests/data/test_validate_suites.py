"""The version-controlled GX context (gx/) matches params.yaml, loads in GX, and every check is documented."""

import shutil
from pathlib import Path

import pytest

from hypomimia.config import load_params
from hypomimia.config.validate import ValidateConfig
from hypomimia.validation import context, suites
from hypomimia.validation.gx_run import REPO_GX_DIR


def test_checked_in_context_matches_params_yaml(repo_root):
    cfg = load_params(repo_root / "params.yaml").validate_
    stale = context.stale_files(cfg, REPO_GX_DIR)
    assert stale == [], f"gx/ is stale: {stale}; run `hypomimia validate --write-suites` and commit gx/"


def test_a_threshold_change_makes_the_context_stale(repo_root):
    cfg = load_params(repo_root / "params.yaml").validate_
    changed = cfg.model_copy(update={"min_blur": cfg.min_blur + 1})
    assert context.stale_files(changed, REPO_GX_DIR) == ["expectations/facetubes.json"]


def test_gx_loads_the_checked_in_context(tmp_path):
    import great_expectations as gx

    shutil.copytree(REPO_GX_DIR, tmp_path / "gx")  # GX writes store ids into its context; keep gx/ clean
    ctx = gx.get_context(mode="file", project_root_dir=tmp_path)
    cfg = ValidateConfig()
    for area in suites.AREAS:
        suite = ctx.suites.get(area)
        assert [e.meta["name"] for e in suite.expectations] == [
            c.name for c in suites.checks(cfg) if c.area == area
        ]
        checkpoint = ctx.checkpoints.get(area)
        assert checkpoint.validation_definitions[0].suite.name == area
        assert checkpoint.validation_definitions[0].data.data_asset.name == area


def test_names_are_unique_dotted_and_documented(repo_root):
    names = [c.name for c in suites.checks(ValidateConfig())]
    assert len(names) == len(set(names))
    assert all(n.split(".")[0] in suites.AREAS for n in names)
    doc = (repo_root / "docs" / "validation.md").read_text()
    missing = [n for n in names if f"`{n}`" not in doc]
    assert missing == [], f"docs/validation.md does not list {missing}"


def test_warning_only_sets_severity_in_the_suite():
    cfg = ValidateConfig(warning_only=["folds.class_balance"])
    by_name = {c.name: c.severity for c in suites.checks(cfg)}
    assert by_name["folds.class_balance"] == "warning"
    assert by_name["folds.no_subject_in_two_folds"] == "error"
    assert suites.unknown_names(ValidateConfig(warning_only=["folds.nope"])) == ["folds.nope"]


@pytest.mark.parametrize("key", ["fps_range", "duration_range_s", "brightness_range"])
def test_reversed_range_is_a_config_error(key):
    with pytest.raises(ValueError, match=key):
        ValidateConfig(**{key: (5.0, 1.0)})


def test_write_context_is_idempotent(tmp_path: Path):
    cfg = ValidateConfig()
    assert len(context.write_context(cfg, tmp_path)) == len(context.context_files(cfg))
    assert context.write_context(cfg, tmp_path) == []
