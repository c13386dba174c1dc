"""Pruners: stop hopeless trials while they train.

The oracle's ``report(trial_id, epoch, value)`` stores each epoch's objective
in ``trial.intermediate`` and asks the pruner whether to stop; the runner then
ends the trial and it is recorded as pruned with the epoch it reached.

``median`` (the rule of Google Vizier and Optuna's MedianPruner): after
``warmup_epochs``, stop a trial whose best value so far is worse than the
median of the completed trials' values at the same epoch, once at least
``min_trials`` completed trials reached that epoch.
"""

from __future__ import annotations

import inspect
from collections.abc import Mapping
from typing import Any

import numpy as np

from archsearch.core.trial import COMPLETED
from archsearch.errors import ConfigError


class Pruner:
    """Base: ``should_prune(oracle, trial, epoch)`` decides after every reported epoch."""

    name = ""

    def should_prune(self, oracle, trial, epoch: int) -> bool:
        raise NotImplementedError


class MedianPruner(Pruner):
    """Stop a trial that is worse than the median completed trial at the same epoch."""

    name = "median"

    def __init__(self, warmup_epochs: int = 1, min_trials: int = 3) -> None:
        self.warmup_epochs = _whole(warmup_epochs, "tuner.pruner.warmup_epochs", minimum=0)
        self.min_trials = _whole(min_trials, "tuner.pruner.min_trials", minimum=1)

    def should_prune(self, oracle, trial, epoch: int) -> bool:
        """True when ``trial``'s best value up to ``epoch`` is strictly worse than the median."""
        epoch = int(epoch)
        if epoch <= self.warmup_epochs:
            return False
        objective = oracle.objective
        best = objective.best(v for e, v in trial.intermediate.items() if e <= epoch)
        if best is None:
            return False
        others = [
            t.intermediate[epoch]
            for t in oracle.trials.values()
            if t.id != trial.id and t.status == COMPLETED and epoch in t.intermediate
        ]
        others = [v for v in others if v is not None and np.isfinite(v)]
        if len(others) < self.min_trials:
            return False
        median = float(np.median(others))
        return objective.better(median, best)

    def __repr__(self) -> str:
        return f"MedianPruner(warmup_epochs={self.warmup_epochs}, min_trials={self.min_trials})"


PRUNERS: dict[str, type[Pruner]] = {"median": MedianPruner}


def create_pruner(spec: Any) -> Pruner | None:
    """``"median"`` or ``{name: median, warmup_epochs: 1, min_trials: 3}``; ``none``/None -> no pruner."""
    if spec is None or spec is False:
        return None
    if isinstance(spec, Pruner):
        return spec
    if isinstance(spec, str):
        name, options = spec, {}
    elif isinstance(spec, Mapping):
        options = dict(spec)
        if "name" not in options:
            raise ConfigError("tuner.pruner", f"{options} has no name",
                              "e.g. tuner.pruner={name: median, warmup_epochs: 1, min_trials: 3}")
        name = options.pop("name")
    else:
        raise ConfigError("tuner.pruner", f"cannot read {spec!r} as a pruner", "use none or median")
    name = str(name).lower()
    if name == "none":
        return None
    if name not in PRUNERS:
        raise ConfigError("tuner.pruner", f"unknown pruner {name!r}", f"use none or {', '.join(sorted(PRUNERS))}")
    cls = PRUNERS[name]
    allowed = [p for p in inspect.signature(cls.__init__).parameters if p != "self"]
    unknown = sorted(set(options) - set(allowed))
    if unknown:
        raise ConfigError(f"tuner.pruner.{unknown[0]}", f"is not an option of the {name} pruner",
                          f"its options are: {', '.join(allowed)}")
    return cls(**options)


def _whole(value: Any, field: str, minimum: int) -> int:
    try:
        ok = not isinstance(value, bool) and float(value).is_integer() and int(value) >= minimum
    except (TypeError, ValueError):
        ok = False
    if not ok:
        raise ConfigError(field, f"must be a whole number >= {minimum}, got {value!r}")
    return int(value)
