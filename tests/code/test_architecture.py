"""ARCHITECTURE.md's code map matches the tree, and the wings keep their direction of imports."""

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "src" / "hypomimia"


def code_map_paths() -> list[str]:
    text = (ROOT / "ARCHITECTURE.md").read_text()
    section = text.split("## Code map", 1)[1].split("\n## ", 1)[0]
    rows = [line for line in section.splitlines() if line.startswith("| `")]
    paths = []
    for row in rows:
        first_cell = row.split("|")[1]
        paths += re.findall(r"`([^`]+)`", first_cell)
    return paths


def resolve(path: str) -> Path:
    """A listed path; a bare file name after a package path (`doctor.py`) lives in src/hypomimia/."""
    p = ROOT / path
    return p if p.exists() or "/" in path else PACKAGE / path


def test_every_listed_path_exists():
    paths = code_map_paths()
    assert len(paths) > 15
    missing = [p for p in paths if not resolve(p).exists()]
    assert not missing, f"ARCHITECTURE.md lists paths that do not exist: {missing}"


def test_every_package_is_listed():
    listed = {str(resolve(p).resolve()).rstrip("/") for p in code_map_paths()}
    packages = [d for d in PACKAGE.iterdir() if d.is_dir() and (d / "__init__.py").exists()]
    assert packages
    unlisted = [d.name for d in packages if str(d.resolve()) not in listed]
    assert not unlisted, f"packages under src/hypomimia/ missing from ARCHITECTURE.md's code map: {unlisted}"


def imported_modules(path: Path) -> set[str]:
    mods = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module:
            mods.add(node.module)
        elif isinstance(node, ast.Import):
            mods.update(a.name for a in node.names)
    return mods


def test_wings_never_import_stages_commands_or_shells():
    wings = ["data", "faces", "learning", "models", "explain", "validation", "phantom"]
    bad = []
    for wing in wings:
        for f in (PACKAGE / wing).rglob("*.py"):
            for mod in imported_modules(f):
                if mod.startswith(("hypomimia.stages", "hypomimia.commands", "hypomimia.cli")) or mod.split(
                    "."
                )[0] in {"components", "pipeline", "serving"}:
                    bad.append(f"{f.relative_to(ROOT)} imports {mod}")
    assert not bad, bad


def test_stages_never_import_another_stage():
    bad = []
    for f in (PACKAGE / "stages").glob("*.py"):
        for mod in imported_modules(f):
            if mod.startswith("hypomimia.stages.") and mod != f"hypomimia.stages.{f.stem}":
                bad.append(f"{f.name} imports {mod}")
    assert not bad, bad
