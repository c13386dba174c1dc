"""The packages' layers, as docs/architecture.md draws them: every import points down, none up.

A package may import the packages on lower layers and those beside it on its own layer only where
the map says so; an import from a lower package up to a higher one (even a lazy one inside a
function) is how circles and "just this once" couplings start, so it fails here with its line.
"""

from __future__ import annotations

import ast
from pathlib import Path

import archsearch

PACKAGE = Path(archsearch.__file__).parent

# The layer of each top-level part of archsearch/ (docs/architecture.md, "The packages").
LAYERS = {
    "errors": 0,
    "core": 1,
    "space": 2, "datasets": 2, "spec": 2,
    "oracles": 3, "executors": 3,
    "engine": 4, "loggers": 4,
    "training": 5, "report": 5, "command": 5,
    "export": 6,
    "keras_tuner": 7,
    "cli": 8, "sweeper": 8,
    "__init__": 9, "__main__": 9,
}


def _imports(path: Path):
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "archsearch":
            yield node.lineno, node.module
        elif isinstance(node, ast.Import):
            yield from ((node.lineno, a.name) for a in node.names if a.name.split(".")[0] == "archsearch")


def _part(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def test_every_top_level_part_has_a_layer():
    parts = {p.stem if p.is_file() else p.name for p in PACKAGE.iterdir()
             if (p.suffix == ".py" or (p.is_dir() and (p / "__init__.py").exists()))}
    assert parts <= set(LAYERS), f"give {sorted(parts - set(LAYERS))} a layer here and in docs/architecture.md"


def test_no_import_points_up():
    upward = []
    for path in sorted(PACKAGE.rglob("*.py")):
        source = path.relative_to(PACKAGE).with_suffix("").parts[0]
        for line, module in _imports(path):
            target = _part(module)
            if target != source and LAYERS.get(target, -1) > LAYERS[source]:
                upward.append(f"{path.relative_to(PACKAGE.parent)}:{line} imports {module} "
                              f"(layer {LAYERS[target]} > {LAYERS[source]})")
    assert upward == [], "imports that point up:\n" + "\n".join(upward)


def test_the_check_sees_an_upward_import(tmp_path):
    """The scan itself: a core module importing the CLI is found (so the test above can fail)."""
    module = tmp_path / "bad.py"
    module.write_text("def f():\n    from archsearch.cli import app\n")
    assert [(line, _part(name)) for line, name in _imports(module)] == [(2, "cli")]


def test_the_package_never_imports_the_model_families():
    """hypermodels/ stands on training/ (layers, HyperModel); an import back down-to-up ties the engine to them.

    The CLI loads a family by its config's name at run time (``model.builder``), never by an import."""
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = ([node.module] if isinstance(node, ast.ImportFrom) and node.module else
                     [a.name for a in node.names] if isinstance(node, ast.Import) else [])
            found += [f"{path.relative_to(PACKAGE.parent)}:{node.lineno} imports {n}" for n in names
                      if n.split(".")[0] == "hypermodels"]
    assert found == [], "\n".join(found)
