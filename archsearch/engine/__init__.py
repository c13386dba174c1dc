"""KerasTuner's ``keras_tuner.engine.*`` paths, resolving to archsearch's own objects.

KerasTuner code reaches its classes through ``kt.engine.<module>.<Name>`` (``kt.engine.trial.TrialStatus``,
``kt.engine.hyperparameters.HyperParameters``, ``from keras_tuner.engine.tuner import Tuner``).  Each
such module is an alias of the archsearch module that holds those objects, imported on first use, so
``import archsearch`` stays light (no Keras) and every path gives the very object the top-level name
gives.  The alias is registered in ``sys.modules`` as ``archsearch.engine.<module>``, and a finder
answers ``import archsearch.engine.<module>`` before it was touched as an attribute.  A real module
file in this package wins over an alias (the finder is consulted after the ordinary ones).
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.util
import sys
from types import ModuleType

# KerasTuner 1.4.8's public engine modules (and ``objective``, public before 1.1) -> the archsearch module
# holding their public names.
ALIASES = {
    "base_tuner": "archsearch.keras_tuner.tuner",  # BaseTuner
    "hypermodel": "archsearch.training.hypermodel",  # HyperModel
    "hyperparameters": "archsearch.space.hyperparameters",  # HyperParameters, HyperParameter, Int, ..., (de)serialize
    "metrics_tracking": "archsearch.core.trial",  # infer_metric_direction, MetricsTracker, MetricObservation
    "objective": "archsearch.core.objective",  # Objective
    "oracle": "archsearch.oracles.base",  # Oracle, Objective, synchronized
    "trial": "archsearch.core.trial",  # Trial, TrialStatus
    "tuner": "archsearch.keras_tuner.tuner",  # Tuner, maybe_distribute
}


def _alias(name: str) -> ModuleType:
    """The archsearch module behind ``archsearch.engine.<name>``, imported and registered once."""
    full = f"{__name__}.{name}"
    module = sys.modules.get(full)
    if module is None:
        module = importlib.import_module(ALIASES[name])
        sys.modules[full] = module
    globals()[name] = module
    return module


def __getattr__(name: str) -> ModuleType:
    if name in ALIASES:
        return _alias(name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}; KerasTuner's engine modules here: "
                         f"{', '.join(sorted(ALIASES))}")


def __dir__() -> list[str]:
    return sorted({*globals(), *ALIASES})


class _AliasFinder(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Lets ``import archsearch.engine.trial`` (and ``from ... import``) load the alias."""

    def find_spec(self, fullname: str, path=None, target=None):
        package, _, name = fullname.rpartition(".")
        if package != __name__ or name not in ALIASES:
            return None
        return importlib.util.spec_from_loader(fullname, self)

    def create_module(self, spec) -> ModuleType:
        return _alias(spec.name.rpartition(".")[2])

    def exec_module(self, module: ModuleType) -> None:
        """Nothing to run: the archsearch module was imported by create_module."""


if not any(isinstance(finder, _AliasFinder) for finder in sys.meta_path):
    sys.meta_path.append(_AliasFinder())

__all__ = sorted(ALIASES)
