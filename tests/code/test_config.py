from pathlib import Path

import pytest
import yaml

from hypomimia.config import ConfigError, Params, load_params, params_errors


def test_repo_params_are_valid(repo_root: Path):
    params = load_params(repo_root / "params.yaml")
    assert isinstance(params, Params)


def test_params_yaml_lists_every_knob(repo_root: Path):
    """params.yaml spells out every knob, so nothing hides in code defaults."""
    on_disk = yaml.safe_load((repo_root / "params.yaml").read_text())
    resolved = load_params(repo_root / "params.yaml").to_yaml_dict()

    def keys(d, prefix=""):
        out = set()
        for k, v in d.items():
            out.add(prefix + k)
            if isinstance(v, dict):
                out |= keys(v, prefix + k + ".")
        return out

    assert keys(resolved) == keys(on_disk)


def test_three_precise_errors():
    errors = params_errors({"phantom": {"subjects": "many", "fps": 24}, "ingest": {"folds": 100, "foldz": 3}})
    assert len(errors) == 4
    assert any(e.startswith("phantom.subjects: got 'many'") and "integer" in e for e in errors)
    assert any(e.startswith("phantom.fps: got 24") and "25 or 30" in e for e in errors)
    assert any(e.startswith("ingest.folds: got 100") and "less than or equal to 20" in e for e in errors)
    assert any(e.startswith("ingest.foldz: unknown key") for e in errors)


def test_unknown_section_is_an_error():
    assert params_errors({"trian": {}}) == [
        "trian: unknown key (remove it, or check its spelling against 'hypomimia config show')"
    ]


def test_missing_sections_take_defaults(tmp_path: Path):
    f = tmp_path / "p.yaml"
    f.write_text("train:\n  epochs: 3\n")
    p = load_params(f)
    assert p.train.epochs == 3 and p.phantom == Params().phantom


@pytest.mark.parametrize(
    "text, fragment",
    [("train: [1, 2\n", "not valid YAML"), ("- 1\n- 2\n", "expected a mapping")],
)
def test_unreadable_files(tmp_path: Path, text: str, fragment: str):
    f = tmp_path / "p.yaml"
    f.write_text(text)
    with pytest.raises(ConfigError) as e:
        load_params(f)
    assert fragment in str(e.value)


def test_missing_file(tmp_path: Path):
    with pytest.raises(ConfigError, match="file not found"):
        load_params(tmp_path / "nope.yaml")


def test_sections_are_frozen():
    p = Params()
    with pytest.raises(ValueError):
        p.train.epochs = 5  # type: ignore[misc]


def test_yaml_key_validate_roundtrips():
    d = Params().to_yaml_dict()
    assert "validate" in d and "validate_" not in d
    assert Params.model_validate(d) == Params()
