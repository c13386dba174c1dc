"""archsearch: declarative architecture search and hyperparameter tuning for Keras.

The public API mirrors KerasTuner's names (``HyperParameters``, ``Objective``,
``RandomSearch``, ``Hyperband``, ...) over an engine whose search algorithms
(``create_oracle``) know nothing of Keras.  Every name is imported on first use:
``import archsearch`` costs almost nothing (so ``python -m archsearch`` can take
over Ctrl-C before anything slow loads), and Keras and TensorFlow are imported
only when a tuner is used, so the oracles stay importable anywhere.

A KerasTuner project migrates by changing its import: ``import archsearch as kt`` gives
``kt.HyperModel``, ``kt.HyperParameters``, ``kt.Objective``, the tuners (also as ``kt.tuners.*``),
``kt.oracles.*Oracle``, ``kt.errors.*``, ``kt.engine.*`` (aliases of the modules holding the
objects, see archsearch/engine) and ``kt.applications.HyperResNet``/``HyperXception``/
``HyperEfficientNet``/``HyperImageAugment`` under KerasTuner's names.
"""

from __future__ import annotations

import importlib

from archsearch import errors
from archsearch.errors import ArchsearchError, ConfigError, DataError, SearchSpaceError

__version__ = "0.1.0"

from archsearch.training.registration import register_when_keras_loads  # noqa: E402

register_when_keras_loads()  # exports load with plain keras.saving.load_model (see registration.py)

from archsearch.training.backend_logs import quiet_first_backend_import, wants_quiet_start  # noqa: E402

# TensorFlow's first import: Ctrl-C held through it, and its start-up notices off stderr as in the CLI
# (verbose_backend, or the user's own TF_CPP_MIN_LOG_LEVEL, shows them).
quiet_first_backend_import(quiet=wants_quiet_start(False))

_TUNERS = ("RandomSearch", "GridSearch", "Hyperband", "BayesianOptimization", "BOHB", "ASHA")  # keras_tuner/tuners.py
# KerasTuner's module attributes (``kt.tuners.RandomSearch``, ``kt.applications.HyperResNet``, ...) -> where they live.
_MODULES = {
    "oracles": "archsearch.oracles",
    "engine": "archsearch.engine",
    "tuners": "archsearch.keras_tuner.tuners",
    "applications": "archsearch.keras_tuner.applications",
    "hyperparameters": "archsearch.space.hyperparameters",
    "objective": "archsearch.core.objective",
    "hypermodel": "archsearch.training.hypermodel",
    "report": "archsearch.report",  # callable: archsearch.report(step=..., **metrics), the command trial's client
}
_LAZY = {
    "HyperParameters": "archsearch.space.hyperparameters",
    "HyperModel": "archsearch.training.hypermodel",
    "Objective": "archsearch.core.objective",
    "ParetoObjective": "archsearch.core.objective",  # search.mode=pareto from Python: the front of several objectives
    "Oracle": "archsearch.oracles",
    "synchronized": "archsearch.oracles.hand_driven",
    "available_oracles": "archsearch.oracles",
    "create_oracle": "archsearch.oracles",
    "Trial": "archsearch.core.trial",
    "Tuner": "archsearch.keras_tuner.tuner",
    "BaseTuner": "archsearch.keras_tuner.tuner",
    **{name: "archsearch.keras_tuner.tuners" for name in _TUNERS},
    "SklearnTuner": "archsearch.keras_tuner.sklearn_tuner",
    # A command trial's client (archsearch/command/client.py, standard library only): what a training program calls.
    **{name: "archsearch.command.client" for name in ("trial_values", "should_stop", "checkpoint_dir",
                                                      "report_infeasible")},
}


def __getattr__(name: str):
    if name in _MODULES:
        module = importlib.import_module(_MODULES[name])
        globals()[name] = module
        return module
    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'archsearch' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted({*globals(), *_LAZY, *_MODULES})


__all__ = ["ArchsearchError", "ConfigError", "DataError", "SearchSpaceError", "errors", "report", *_LAZY]
