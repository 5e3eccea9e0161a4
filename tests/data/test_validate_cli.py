"""`hypomimia validate`: exit 3 with the failed expectation named; --write-suites renders gx/."""

import sys

import pytest

from hypomimia import cli
from hypomimia.config.validate import ValidateConfig
from hypomimia.stages import validate as stage
from hypomimia.validation.context import context_files
from tests.helpers_validate import corrupt_one_class_fold, make_valid


def _main(monkeypatch, *args: str) -> int:
    monkeypatch.setattr(sys, "argv", ["hypomimia", *args])
    with pytest.raises(SystemExit) as info:
        cli.app()
    return info.value.code


def test_gate_failure_exits_3_and_names_the_expectation(tmp_path, monkeypatch, capsys, repo_root):
    ingest, tubes = make_valid(tmp_path)
    corrupt_one_class_fold(ingest, tubes)
    code = _main(
        monkeypatch,
        "validate",
        "--ingest", str(ingest),
        "--tubes", str(tubes),
        "--out", str(tmp_path / "out"),
        "--params", str(repo_root / "params.yaml"),
    )  # fmt: skip
    out = capsys.readouterr()
    assert code == 3
    assert "folds.every_fold_has_both_classes" in " ".join(out.err.split())
    assert "data validation gate" in out.out and "Data Docs:" in out.out
    assert (tmp_path / "out" / "data_docs" / "index.html").is_file()


def test_write_suites_renders_the_context(tmp_path, monkeypatch, capsys, repo_root):
    monkeypatch.setattr(stage, "REPO_GX_DIR", tmp_path / "gx")
    assert _main(monkeypatch, "validate", "--write-suites", "--params", str(repo_root / "params.yaml")) == 0
    assert (tmp_path / "gx" / "expectations" / "folds.json").is_file()
    assert (tmp_path / "gx" / "checkpoints" / "leakage.json").is_file()
    files = len(context_files(ValidateConfig()))  # 6 areas x (suite, validation definition, checkpoint) + 2
    assert files == 20 and f"{files} file(s) rewritten" in " ".join(capsys.readouterr().out.split())
