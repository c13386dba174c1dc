"""The engine is Keras-free: what chooses, drives, runs and records trials imports no backend and no Hydra.

The search algorithms, the driver, the executors and the store are checked, run in benches and reused
(a command trial, a Hydra sweeper) without Keras, TensorFlow, Hydra or OmegaConf.  Each module is
imported in a fresh interpreter, since this test process has long imported all of them.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.conftest import REPO

HEAVY = ("keras", "tensorflow", "jax", "torch", "hydra", "omegaconf", "ray")

ENGINE_MODULES = [
    # trials, objectives, events, the store and what keeps a run folder whole
    "archsearch.core.trial", "archsearch.core.objective", "archsearch.core.events", "archsearch.core.console",
    "archsearch.core.store",
    "archsearch.core.checkpoints", "archsearch.core.lock", "archsearch.core.atomic", "archsearch.core.disk", "archsearch.errors",
    "archsearch.core.interrupts", "archsearch.core.checks", "archsearch.core.trial_runner",
    # the space and the algorithms
    "archsearch.space.values", "archsearch.space.parameters", "archsearch.space.numeric",
    "archsearch.space.categorical", "archsearch.space.declarative", "archsearch.space.hyperparameters",
    "archsearch.oracles", "archsearch.oracles.driving",
    # the driver and where trials run
    "archsearch.engine.search", "archsearch.engine.settings", "archsearch.engine.assembly", "archsearch.executors", "archsearch.executors.base", "archsearch.executors.inline",
    "archsearch.executors.process", "archsearch.executors.worker", "archsearch.executors.ray",
    "archsearch.executors.ray_actor", "archsearch.executors.ray_options",
]


def _heavy_imported_after(*modules: str) -> list[str]:
    code = "import json, sys\n" + "".join(f"import {m}\n" for m in modules) + (
        f"print(json.dumps(sorted({{m.split('.')[0] for m in sys.modules}} & set({list(HEAVY)!r}))))")
    result = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-2000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_the_engine_imports_no_backend_and_no_hydra():
    # One interpreter for all (each costs a numpy import); on a failure, one each to name the culprits.
    if _heavy_imported_after(*ENGINE_MODULES):
        culprits = {m: heavy for m in ENGINE_MODULES if (heavy := _heavy_imported_after(m))}
        pytest.fail(f"engine modules that import a backend or Hydra: {culprits}")


def test_every_registered_oracle_is_keras_free():
    # A new oracle module is covered without editing the list above.
    code = ("import json, sys\nfrom archsearch.oracles import available_oracles, create_oracle\n"
            "from archsearch.space.hyperparameters import HyperParameters\n"
            "space = HyperParameters.from_config({'x': {'type': 'float', 'min': 0, 'max': 1}})\n"
            "for name in available_oracles():\n"
            "    create_oracle(name, space, 'loss', max_trials=2, seed=0).ask()\n"
            f"print(json.dumps(sorted({{m.split('.')[0] for m in sys.modules}} & set({list(HEAVY)!r}))))")
    result = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-2000:]
    assert json.loads(result.stdout.strip().splitlines()[-1]) == []


# ------------------------------------------------------------------ one writer of the terminal

# Where archsearch may print or write to sys.stdout / sys.stderr itself.  Everything else says what it has to
# say through the console channel (archsearch/core/console.py: ``say``, ``ConsoleEvents``), logs or raises.
TERMINAL_WRITERS_MODULES = {
    "archsearch/cli/console.py": "the CLI's console: a command's result on stdout, errors and problems on stderr",
    "archsearch/cli/progress.py": "the live progress display (rich draws it on the terminal)",
}
TERMINAL_WRITERS = {
    ("archsearch/core/trial.py", "Trial.summary"): "KerasTuner's Trial.summary prints, as tutorials expect",
    ("archsearch/report/html.py", "main"): "`python -m archsearch.report`: a command's own output and usage errors",
    ("archsearch/report/sweep.py", "main"): "`python -m archsearch.report.sweep`: a command's own output and errors",
    ("archsearch/training/backend_logs.py", "stderr_filtered"):
        "puts back the backend's own stderr lines it captured around TensorFlow's import, less the notices dropped",
    ("archsearch/training/backend_logs.py", "replay_dropped_notices"):
        "shows the backend's dropped start-up notices when asked for (verbose_backend=True)",
}


def _terminal_writes(path) -> set[str]:
    """Qualified names of the functions in ``path`` that call print() or sys.stdout/sys.stderr.write()."""
    import ast

    found: set[str] = set()

    def visit(node, scope: list[str]) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                visit(child, [*scope, child.name])
                continue
            if isinstance(child, ast.Call) and _writes_to_terminal(child.func):
                found.add(".".join(scope) or "<module>")
            visit(child, scope)

    visit(ast.parse(path.read_text(encoding="utf-8")), [])
    return found


def _writes_to_terminal(func) -> bool:
    import ast

    if isinstance(func, ast.Name):
        return func.id == "print"
    return (isinstance(func, ast.Attribute) and func.attr == "write" and isinstance(func.value, ast.Attribute)
            and func.value.attr in ("stdout", "stderr") and isinstance(func.value.value, ast.Name)
            and func.value.value.id == "sys")


def test_only_the_console_and_the_progress_display_write_to_the_terminal():
    writes = {(str(path.relative_to(REPO)), name) for path in sorted((REPO / "archsearch").rglob("*.py"))
              for name in _terminal_writes(path)}
    unexpected = sorted(w for w in writes if w[0] not in TERMINAL_WRITERS_MODULES and w not in TERMINAL_WRITERS)
    assert not unexpected, (f"print() or sys.stdout/stderr.write() outside the console: {unexpected}; say it through "
                            "archsearch.core.console.say (or log, or raise), or list the place here with its reason")
    stale = sorted(set(TERMINAL_WRITERS) - writes)
    assert not stale, f"allowed places that no longer write to the terminal (remove them from the list): {stale}"


def test_the_terminal_check_finds_prints_and_stream_writes(tmp_path):
    module = tmp_path / "m.py"
    module.write_text("import sys\nclass A:\n    def f(self):\n        print('x')\n"
                      "def g():\n    sys.stderr.write('y')\ndef h():\n    log.info('z')\n")
    assert _terminal_writes(module) == {"A.f", "g"}
