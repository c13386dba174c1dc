"""Pruners: stop hopeless trials while they train.

The oracle's ``report(trial_id, epoch, value)`` stores each epoch's objective
in ``trial.intermediate`` and asks the pruner whether to stop; the runner then
ends the trial and it is recorded as pruned with the epoch it reached.

``median`` (the rule of Google Vizier and Optuna's MedianPruner): after
``warmup_epochs``, stop a trial whose best value so far is worse than the
median of the completed trials' values at the same epoch, once at least
``min_trials`` completed trials reached that epoch.

In a Pareto search (``search.mode=pareto``) ``median`` compares objective vectors: it stops a trial
whose vector at the epoch is dominated by the *median point* of the completed trials at that epoch
(each objective's median over them; the front of a single point, so a trial is stopped only when it is
worse than the typical trial on every objective -- a trade-off, better on one and worse on another, is
kept).  The trial's vector is its best value so far on each objective, the median's the completed
trials' values at that very epoch, as in the single-objective rule.  Which objectives are compared:
those reported at every epoch (validation metrics), and the model measures known before training
(``params``, ``trainable_params``, ``flops``, ``model_size_mb``: the same at every epoch, taken from
whichever epoch or the final metrics hold them).  Measures taken after training (``latency_ms``) are
not known while a trial trains and are left out.  With fewer than two objectives left to compare it
never stops a trial: one objective alone would prune the small, fast models the search is for.

``decay_curve`` (the cloud service's decay-curve stopping, as a learning-curve rule): after
``warmup_epochs``, fit the trial's own curve so far with an exponential decay and a power law towards
an asymptote (``a + b * exp(-c * t)``, ``a + b * t ** -c``), extrapolate the more hopeful of the two to
the epoch the completed trials reached, and stop the trial when even that is worse than the best
completed trial's value, once ``min_trials`` trials completed.  Unlike the median rule it keeps a slow starter whose curve still falls steeply.
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
    pareto = False  # whether it can judge a Pareto search's trials (objective vectors)

    def should_prune(self, oracle, trial, epoch: int) -> bool:
        raise NotImplementedError

    def check_objective(self, objective) -> None:
        """Refuse, before the search starts, a Pareto search this pruner would judge on one objective."""
        if objective.is_pareto and not self.pareto:
            raise ConfigError("tuner.pruner", f"{self.name} cannot judge a Pareto search (search.mode=pareto): it "
                              "would stop trials on their first objective alone", "use tuner.pruner=median or none")


class MedianPruner(Pruner):
    """Stop a trial that is worse than the median completed trial at the same epoch."""

    name = "median"
    pareto = True  # dominated by the median point (see the module docstring)

    def __init__(self, warmup_epochs: int = 1, min_trials: int = 3) -> None:
        self.warmup_epochs = _whole(warmup_epochs, "tuner.pruner.warmup_epochs", minimum=0)
        self.min_trials = _whole(min_trials, "tuner.pruner.min_trials", minimum=1)

    def should_prune(self, oracle, trial, epoch: int) -> bool:
        """True when ``trial``'s best value up to ``epoch`` is strictly worse than the median."""
        epoch = int(epoch)
        if epoch <= self.warmup_epochs:
            return False
        objective = oracle.objective
        if objective.is_pareto:
            return self._dominated_by_median(oracle, trial, epoch)
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

    def _dominated_by_median(self, oracle, trial, epoch: int) -> bool:
        """The Pareto rule (see the module docstring): the median point of the completed trials dominates
        the trial's best-so-far vector, on the objectives both are known on."""
        from archsearch.core.pareto import dominates  # moocore: loaded by Pareto searches only

        parts = oracle.objective.components
        mine = [_cost_at(part, trial, epoch, best_so_far=True) for part in parts]
        rows = [[_cost_at(part, t, epoch) for part in parts] for t in oracle.trials.values()
                if t.id != trial.id and t.status == COMPLETED]
        known = [j for j, value in enumerate(mine) if value is not None]
        rows = [[row[j] for j in known] for row in rows if all(row[j] is not None for j in known)]
        if len(known) < 2 or len(rows) < self.min_trials:
            return False
        median = np.median(np.asarray(rows, dtype=float), axis=0)
        return dominates(median, [mine[j] for j in known])

    def __repr__(self) -> str:
        return f"MedianPruner(warmup_epochs={self.warmup_epochs}, min_trials={self.min_trials})"


def _cost_at(part, trial, epoch: int, best_so_far: bool = False) -> float | None:
    """One objective of ``trial`` at ``epoch`` as a cost (to minimise), or None when not known then.

    A metric reported at every epoch: its value at ``epoch`` (``best_so_far``: its best up to it).
    A model measure known before training: the same at every epoch, from any epoch or the final metrics.
    """
    from archsearch.core.measures import BEFORE_TRAINING

    steps = trial.metrics.steps.get(part.name, {}) if hasattr(trial.metrics, "steps") else {}
    values = [float(np.mean(v)) for e, v in steps.items() if (e <= epoch if best_so_far else e == epoch)]
    if not values and part.name in BEFORE_TRAINING:
        values = [float(np.mean(v)) for v in steps.values()][:1] or [trial.metrics.get(part.name)]
    values = [v for v in values if v is not None and np.isfinite(v)]
    if not values:
        return None
    return min(-part.sign * v for v in values)  # costs: the best is the least


class DecayCurvePruner(Pruner):
    """Stop a trial whose extrapolated learning curve cannot reach the best completed trial's value."""

    name = "decay_curve"

    def __init__(self, warmup_epochs: int = 2, min_trials: int = 3) -> None:
        self.warmup_epochs = _whole(warmup_epochs, "tuner.pruner.warmup_epochs", minimum=2)
        self.min_trials = _whole(min_trials, "tuner.pruner.min_trials", minimum=1)

    def should_prune(self, oracle, trial, epoch: int) -> bool:
        epoch = int(epoch)
        if epoch <= self.warmup_epochs:
            return False
        objective = oracle.objective
        completed = [t for t in oracle.trials.values()
                     if t.id != trial.id and t.status == COMPLETED and t.value is not None and np.isfinite(t.value)]
        if len(completed) < self.min_trials:
            return False
        horizon = max(max(t.intermediate, default=0) for t in completed)
        if trial.budget is not None:
            horizon = min(horizon, int(trial.budget)) if horizon else int(trial.budget)
        if horizon <= epoch:
            return False  # nothing left to extrapolate: the median or the end decides
        points = sorted((e, v) for e, v in trial.intermediate.items() if e <= epoch and v is not None and np.isfinite(v))
        if len(points) < 3:
            return False
        best = objective.best(t.value for t in completed)
        predicted = extrapolate([e for e, _ in points], [objective.sign * v for _, v in points], horizon)
        return predicted is not None and objective.better(best, objective.sign * predicted)

    def __repr__(self) -> str:
        return f"DecayCurvePruner(warmup_epochs={self.warmup_epochs}, min_trials={self.min_trials})"


def extrapolate(epochs: list[int], values: list[float], horizon: int) -> float | None:
    """The value at ``horizon`` of a rising curve (``values`` to maximise) fitted to the points: the most
    optimistic of an exponential approach ``a - b * exp(-c * t)`` and a power law ``a - b * t ** -c``
    (learning curves follow one or the other), among the fits that explain the points; None when none does."""
    import warnings

    from scipy.optimize import OptimizeWarning, curve_fit

    t = np.asarray(epochs, dtype=float)
    y = np.asarray(values, dtype=float)
    scale = max(float(np.ptp(y)), 1e-12)
    forms = {
        "exponential": (lambda x, a, b, c: a - b * np.exp(-c * x), [(y[-1] + scale, scale, 0.5),
                                                                   (y[-1] + 10 * scale, 10 * scale, 0.05)]),
        "power": (lambda x, a, b, c: a - b * np.power(x, -c), [(y[-1] + scale, scale, 1.0),
                                                               (y[-1] + 10 * scale, 10 * scale, 0.2)]),
    }
    ends = []
    for curve, guesses in forms.values():
        for guess in guesses:
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", OptimizeWarning)
                    params, _ = curve_fit(curve, t, y, p0=guess, bounds=([-np.inf, 0.0, 1e-6], [np.inf, np.inf, 10.0]),
                                          maxfev=2000)
            except (RuntimeError, ValueError):
                continue
            if float(np.sqrt(np.mean((curve(t, *params) - y) ** 2))) <= 0.25 * scale + 1e-12:
                ends.append(float(curve(float(horizon), *params)))
    return max(ends) if ends else None


PRUNERS: dict[str, type[Pruner]] = {"median": MedianPruner, "decay_curve": DecayCurvePruner}


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
        raise ConfigError("tuner.pruner", f"cannot read {spec!r} as a pruner", "use none, median or decay_curve")
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
