"""KerasTuner's tuners (``kt.tuners.*``): each a ``Tuner`` over one of the engine's oracles.

``Tuner`` and ``BaseTuner`` live in archsearch/keras_tuner/tuner.py; ``SklearnTuner`` (it needs
scikit-learn) is imported on first use, from archsearch/keras_tuner/sklearn_tuner.py.
"""

from __future__ import annotations

from typing import Any

from archsearch.keras_tuner.tuner import BaseTuner, Tuner

__all__ = ["ASHA", "BOHB", "BaseTuner", "BayesianOptimization", "GridSearch", "Hyperband", "RandomSearch", "Tuner"]


class RandomSearch(Tuner):
    """Random (or Sobol, ``sampler="sobol"``) search."""

    oracle_name = "random"
    default_max_trials = 10  # KerasTuner's


class GridSearch(Tuner):
    """Every combination of the space."""

    oracle_name = "grid"


class Hyperband(Tuner):
    """Hyperband with checkpoint resume: ``max_epochs``, ``factor``, ``min_epochs``, ``hyperband_iterations``.

    It runs KerasTuner's bracket plan (``schedule="keras_tuner"``: ``max_epochs=4, factor=3`` is 10
    trials, 26 epochs, as with ``kt.Hyperband``); ``schedule="archsearch"`` runs the paper's (the
    command line's default).  See :mod:`archsearch.oracles.hyperband`.
    """

    oracle_name = "hyperband"

    def __init__(self, *args: Any, schedule: str | None = None, **kwargs: Any) -> None:
        if kwargs.get("oracle") is None:  # create_oracle would otherwise give the command line's plan
            kwargs["schedule"] = "keras_tuner" if schedule is None else schedule
        elif schedule is not None:
            kwargs["schedule"] = schedule  # refused: it belongs to the given oracle
        super().__init__(*args, **kwargs)


class BayesianOptimization(Tuner):
    """Gaussian-process Bayesian optimisation over a mixed space."""

    oracle_name = "bayesian"
    default_max_trials = 10  # KerasTuner's


class BOHB(Tuner):
    """Hyperband's budgets with model-based proposals (Falkner et al., 2018)."""

    oracle_name = "bohb"


class ASHA(Tuner):
    """Asynchronous successive halving with promotions (Li et al., 2020): no worker waits for a rung."""

    oracle_name = "asha"


def __getattr__(name: str) -> Any:
    """``kt.tuners.SklearnTuner`` (KerasTuner's path), imported on first use: it needs scikit-learn."""
    if name == "SklearnTuner":
        from archsearch.keras_tuner.sklearn_tuner import SklearnTuner

        return SklearnTuner
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
