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
    "archsearch.core.trial", "archsearch.core.objective", "archsearch.core.events", "archsearch.core.store",
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
