"""archsearch: declarative architecture search and hyperparameter tuning for Keras.

The public API mirrors KerasTuner's names (``HyperParameters``, ``Objective``,
``RandomSearch``, ``Hyperband``, ...) over an engine whose search algorithms
(``create_oracle``) know nothing of Keras.  Keras and TensorFlow are imported
only when a tuner is used, so the oracles stay importable anywhere.
"""

from __future__ import annotations

from archsearch.errors import ArchsearchError, ConfigError, DataError, SearchSpaceError
from archsearch.hyperparameters import HyperParameters
from archsearch.objective import Objective
from archsearch.oracles import Oracle, Trial, available_oracles, create_oracle

__version__ = "0.1.0"

_TUNERS = ("Tuner", "RandomSearch", "GridSearch", "Hyperband", "BayesianOptimization", "BOHB")


def __getattr__(name: str):
    # Tuners import Keras; load them on first use only.
    if name in _TUNERS:
        from archsearch import tuners

        return getattr(tuners, name)
    raise AttributeError(f"module 'archsearch' has no attribute {name!r}")


__all__ = [
    "ArchsearchError", "ConfigError", "DataError", "SearchSpaceError",
    "HyperParameters", "Objective", "Oracle", "Trial", "available_oracles", "create_oracle", *_TUNERS,
]
