"""The installed package works outside the repository: configs and model families ship inside it.

CI installs with ``pip install .`` (not editable), so running from a folder other
than the checkout exercises the wheel's contents, conf/ included.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parent.parent


def _run_outside_repo(args: list[str], cwd) -> subprocess.CompletedProcess:
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    env.pop("PYTHONPATH", None)  # import archsearch as installed, not from the checkout
    return subprocess.run([sys.executable, "-m", "archsearch", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=600)


def test_help_and_every_config_group_resolve_outside_the_checkout(tmp_path):
    result = _run_outside_repo(["--help"], tmp_path)
    assert result.returncode == 0, result.stderr[-2000:]
    for option in ("mlp", "cnn", "unet", "resnet", "xception", "efficientnet", "custom", "hyperband", "bayesian", "bohb", "documents", "folder"):
        assert option in result.stdout

    result = _run_outside_repo(["--cfg", "job", "model=unet", "tuner=hyperband"], tmp_path)
    assert result.returncode == 0, result.stderr[-2000:]
    config = yaml.safe_load(result.stdout)
    assert config["model"]["builder"] == "hypermodels.unet:build"
    assert config["data"]["name"] == "documents"
    assert config["objective"] == "val_f1"


def test_model_families_import_from_the_installed_package(tmp_path):
    code = ("import hypermodels.mlp, hypermodels.cnn, hypermodels.unet, hypermodels.resnet, hypermodels.xception, "
            "hypermodels.efficientnet, archsearch; archsearch.keras_tuner.applications.HyperResNet; print('ok')")
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    result = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True,
                            text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip() == "ok"


def _core_requirements() -> set[str]:
    """The distributions a plain ``pip install .`` brings (pyproject's dependencies, no extra), normalised.

    Read from pyproject.toml, not the installed metadata: CI installs ``.[test]``, whose extra would hide
    a library missing from the plain install."""
    import re
    import tomllib

    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    return {re.split(r"[\s<>=!~;\[]", req, maxsplit=1)[0].lower().replace("_", "-")
            for req in project["dependencies"]}


def _third_party_imports(path) -> set[str]:
    """The top-level modules a source file imports, standard library and the project's own left out."""
    import ast

    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
    return {n for n in names if n not in sys.stdlib_module_names and n not in ("archsearch", "hypermodels")}


def test_the_plain_install_brings_everything_the_report_draws_with():
    # README's first command is `pip install . && python -m archsearch`: its report.html must have its plots,
    # so every library the report modules import is a core dependency, not an extra.
    import importlib.metadata

    distributions = importlib.metadata.packages_distributions()
    core = _core_requirements()
    modules = set().union(*(_third_party_imports(p) for p in (REPO / "archsearch" / "report").glob("*.py")))
    assert {"plotly", "matplotlib"} <= modules  # the check reads the real imports
    for module in sorted(modules):
        needed = {d.lower().replace("_", "-") for d in distributions.get(module, [module])}
        assert needed & core, f"report imports {module} ({needed}), which `pip install .` does not install"


def test_every_package_is_listed_for_the_wheel():
    """pyproject.toml lists the packages (conf/ is mapped in): a new package left off would be missing after
    ``pip install .`` while every test run from the checkout still passes."""
    import pytest

    tomllib = pytest.importorskip("tomllib")  # Python 3.11+
    listed = set(tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"])
    found = {".".join(init.parent.relative_to(REPO).parts)
             for top in ("archsearch", "hydra_plugins") for init in (REPO / top).rglob("__init__.py")}
    assert found - listed == set()
