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


# -- the import graph of the package ---------------------------------------------------------------


def module_files(package: Path = PACKAGE) -> dict[str, Path]:
    """Every module under ``package`` by dotted name (a package by its ``__init__.py``)."""
    out = {}
    for f in sorted(package.rglob("*.py")):
        parts = f.relative_to(package.parent).with_suffix("").parts
        out[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = f
    return out


def import_targets(name: str, path: Path, modules: set[str]) -> set[str]:
    """What module ``name`` (file ``path``) imports, anywhere in the file (in functions too).

    ``from a.b import c`` is ``a.b.c`` when that is a module, else ``a.b``; relative imports are
    resolved against the module's package; a name outside ``modules`` keeps its own dotted name
    (``components.pipeline_io``); inside, it is cut back to the nearest module.
    """
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]

    def nearest(dotted: str) -> str:
        known = dotted
        while known and known not in modules:
            known = known.rpartition(".")[0]
        return known or dotted

    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(nearest(a.name) for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                up = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                base = ".".join(up + ([node.module] if node.module else []))
            for a in node.names:
                child = f"{base}.{a.name}"
                found.add(child if child in modules else nearest(base))
    found.discard(name)
    return found


def import_graph(package: Path = PACKAGE) -> dict[str, set[str]]:
    files = module_files(package)
    return {name: import_targets(name, path, set(files)) for name, path in files.items()}


def import_circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """One circle (``[a, b, a]``) per strongly connected group of modules (Tarjan), sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    groups: list[set[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in sorted(graph.get(v, ())):
            if w not in graph:
                continue  # outside the package
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            group = set()
            while True:
                w = stack.pop()
                group.add(w)
                if w == v:
                    break
            if len(group) > 1:
                groups.append(group)

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return sorted(_circle_through(min(g), g, graph) for g in groups)


def _circle_through(start: str, group: set[str], graph: dict[str, set[str]]) -> list[str]:
    """The shortest path from ``start`` back to itself inside ``group`` (breadth first)."""
    paths = {start: [start]}
    queue = [start]
    for v in queue:
        for w in sorted(graph[v] & group):
            if w == start:
                return [*paths[v], start]
            if w not in paths:
                paths[w] = [*paths[v], w]
                queue.append(w)
    raise AssertionError(f"{start} is in no circle")  # unreachable for a strongly connected group


def test_no_import_circles_between_modules():
    """No circle of imports between the package's modules, counting lazy ones inside functions.

    The edges are the imports each file names: ``import hypomimia.a.b`` or ``from hypomimia.a
    import b`` (b a module) is an edge to ``hypomimia.a.b`` and to nothing else. The parents
    Python imports first on the way (``hypomimia/__init__.py``, ``hypomimia/a/__init__.py``) are
    not edges: otherwise every package whose ``__init__`` re-exports its submodules (``config``,
    ``models``) would be a circle with each of them, which is harmless, since Python always runs
    the parent first anyway. An import that names a package itself is an edge to its
    ``__init__``: so a submodule importing back from its own re-exporting package
    (``from hypomimia.config import Params`` inside ``config/``) is a circle, and a real one (it
    works only while the ``__init__`` defines the name before the re-export line).
    """
    circles = [" -> ".join(c) for c in import_circles(import_graph())]
    assert not circles, "import circles between modules of src/hypomimia/:\n" + "\n".join(circles)


def test_the_circle_finder_names_a_circle():
    graph = {"a": {"b"}, "b": {"c", "x"}, "c": {"a"}, "d": {"a"}, "x": set()}
    assert import_circles(graph) == [["a", "b", "c", "a"]]
    assert import_circles({"p": {"p.q"}, "p.q": set()}) == []


def test_relative_and_from_imports_resolve_to_modules(tmp_path):
    pkg = tmp_path / "pkg"
    (pkg / "sub").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "util.py").write_text("")
    (pkg / "sub" / "__init__.py").write_text("from pkg.sub import b as b\n")
    (pkg / "sub" / "a.py").write_text("from . import b\nfrom ..util import helper\n")
    (pkg / "sub" / "b.py").write_text("def f():\n    from pkg.sub.a import name\n    import components.x\n")
    graph = import_graph(pkg)
    assert graph["pkg.sub"] == {"pkg.sub.b"}  # a package re-exporting its own submodule
    assert graph["pkg.sub.a"] == {"pkg.sub.b", "pkg.util"}
    assert graph["pkg.sub.b"] == {"pkg.sub.a", "components.x"}  # lazy imports count
    assert import_circles(graph) == [["pkg.sub.a", "pkg.sub.b", "pkg.sub.a"]]


# The one documented way the library reaches the orchestration layer (ARCHITECTURE.md, "The seam
# to the orchestration layer"): pipeline_runner imports the DAG factories from the checkout with
# importlib, for compile and run --local. Nothing else, and no static import at all.
DAG_LOADS = {
    ("hypomimia.pipeline_runner", "pipeline.pipeline"),
    ("hypomimia.pipeline_runner", "pipeline.monitor_pipeline"),
}
SHELLS = ("components", "pipeline", "serving", "benchmarks")


def dynamic_imports(path: Path) -> set[str]:
    """Module names passed to ``importlib.import_module``/``__import__`` (an f-string: its fixed start)."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if not (isinstance(node, ast.Call) and node.args):
            continue
        f = node.func
        called = f.attr if isinstance(f, ast.Attribute) else f.id if isinstance(f, ast.Name) else ""
        if called not in ("import_module", "__import__"):
            continue
        arg = node.args[0]
        if isinstance(arg, ast.Constant) and isinstance(arg.value, str):
            names.add(arg.value)
        elif isinstance(arg, ast.JoinedStr) and arg.values and isinstance(arg.values[0], ast.Constant):
            names.add(str(arg.values[0].value))
    return names  # a name computed at run time (logs' lazy module proxy) is not checked


def test_the_library_never_imports_the_shells():
    """Nothing under src/hypomimia/ imports components/, pipeline/, serving/ or benchmarks/, except
    pipeline_runner's importlib loading of the two DAG factories (``DAG_LOADS``)."""
    bad = []
    for name, path in module_files().items():
        static = import_targets(name, path, set())
        for mod in sorted(static | dynamic_imports(path)):
            top = mod.split(".")[0]
            if top in SHELLS and (mod in static or (name, mod) not in DAG_LOADS):
                bad.append(f"{name} imports {mod}")
    assert not bad, bad


WINGS = ["data", "faces", "learning", "models", "explain", "evaluation", "validation", "phantom",
         "inference", "monitoring", "lineage"]  # fmt: skip


def test_wings_never_import_stages_commands_the_runner_or_shells():
    """A wing does one thing and is called: it never reaches up to a stage, a command, the CLI, the
    orchestrator (``pipeline_runner``: a wing decides, e.g. that retraining is due; the command
    submits) or the shells."""
    up = ("hypomimia.stages", "hypomimia.commands", "hypomimia.cli", "hypomimia.pipeline_runner")
    graph = import_graph()
    bad = []
    for name, targets in graph.items():
        if name.count(".") and name.split(".")[1] in WINGS:
            for mod in sorted(targets):
                if mod.startswith(up) or mod.split(".")[0] in SHELLS:
                    bad.append(f"{name} imports {mod}")
    assert not bad, bad


def test_stages_never_import_another_stage():
    bad = []
    for f in (PACKAGE / "stages").glob("*.py"):
        for mod in imported_modules(f):
            if mod.startswith("hypomimia.stages.") and mod != f"hypomimia.stages.{f.stem}":
                bad.append(f"{f.name} imports {mod}")
    assert not bad, bad
