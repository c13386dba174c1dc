"""What a search optimises: a metric name and a direction.

``Objective("val_f1", "max")`` means the same as in KerasTuner.  A bare name
infers its direction: names that end in ``loss`` or ``error`` (and a few
other obvious costs) are minimised, everything else is maximised.

A list (``["val_accuracy", "val_loss"]``) is KerasTuner's multi-objective: one combined score
to minimise, the sum of the minimised metrics minus the sum of the maximised ones.  Every
metric a trial reports is stored, so each component stays available (a Pareto search can use
them later).  ``None`` is KerasTuner's default objective: a ``run_trial`` that returns a bare
number is minimised under the name ``default_objective``.

A Pareto search (``search.mode=pareto``, :class:`ParetoObjective`) keeps the list's metrics apart
and looks for the front of trials no other trial beats on every one.  Its ``value`` (the one number
per trial that orderings and single-number displays use) is its main objective's: the first one that
training produces (not a model measure such as ``params``).  On the command
line ``name:max`` / ``name:min`` is short for ``{name: ..., direction: ...}``.

Each objective of a Pareto search has a ``scale``: ``linear`` (the default, as Optuna counts) or ``log``
(halving a value is worth the same at any size: ``params`` spanning decades; ``name:min:log`` on the command
line).  The hypervolume counts it so wherever it is computed -- the oracles' expected improvement, the
console, ``report.html`` -- so the search optimises the number the report shows (:meth:`ParetoObjective.scaled_costs`).
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from archsearch.core.measures import MEASURES, RUN_FIGURES, VIOLATION
from archsearch.errors import ConfigError, ConfigTypeError

DEFAULT_OBJECTIVE = "default_objective"
MULTI_OBJECTIVE = "multi_objective"
_MIN_SUFFIXES = ("loss", "error", "mse", "mae", "rmse", "mape", "crossentropy", "hinge", "divergence")
DIRECTIONS = ("min", "max")
_DIRECTION_WORDS = (*DIRECTIONS, "minimize", "maximize")  # what the command line's short forms accept
LINEAR, LOG = "linear", "log"
SCALES = (LINEAR, LOG)

_MAX_SUFFIXES = ("accuracy", "acc", "auc", "precision", "recall", "f1", "f1_score", "fbeta_score", "iou", "dice",
                 "io_u", "score", "r2", "map", "ndcg", "reward", "psnr", "ssim", "specificity", "sensitivity", "kappa",
                 "correlation", "true_positives", "true_negatives")


def infer_direction(name: str) -> str | None:
    """``min`` for losses, errors and model measures (params, latency_ms...), ``max`` for scores (accuracy, f1, iou, ...); None when the name says neither."""
    bare = name.lower()
    if bare in MEASURES or bare == VIOLATION:  # params, flops, latency_ms, ...: costs
        return "min"
    if bare.endswith(_MIN_SUFFIXES):
        return "min"
    if bare.endswith(_MAX_SUFFIXES):
        return "max"
    return None


@dataclass(frozen=True)
class Objective:
    """A metric to optimise; ``direction`` is ``"min"`` or ``"max"`` (inferred when omitted)."""

    name: str
    direction: str | None = None
    components: tuple[Objective, ...] = ()  # a multi-objective's metrics; empty for a single metric
    scale: str = LINEAR  # how a Pareto search counts it (module docstring); only a Pareto search takes log

    def __post_init__(self) -> None:
        if not self.name or not isinstance(self.name, str):
            raise ConfigError("objective", f"{self.name!r} is not a metric name", "e.g. objective=val_accuracy")
        direction = self.direction or infer_direction(self.name)
        if direction is None:  # guessing could optimise the wrong way round
            raise ConfigError("objective.direction",
                              f"Could not infer optimization direction of {self.name!r}: its name says neither a "
                              "loss nor a score", f"give it: Objective({self.name!r}, \"min\") or \"max\" (in a config: "
                              f"objective: {{name: {self.name}, direction: max}})")
        direction = {"minimize": "min", "maximize": "max"}.get(str(direction).lower(), str(direction).lower())
        if direction not in DIRECTIONS:
            raise ConfigError(
                "objective.direction", f"{self.direction!r} is not a direction", "use min or max"
            )
        object.__setattr__(self, "direction", direction)
        scale = LINEAR if self.scale is None else str(self.scale).lower()
        if scale not in SCALES:
            raise ConfigError("objective.scale", f"{self.scale!r} is not a scale of {self.name!r}",
                              "use linear (the default) or log")
        object.__setattr__(self, "scale", scale)

    @classmethod
    def create(cls, spec: Any) -> Objective:
        """Accept an Objective, a metric name, or a mapping ``{name, direction}`` (from a config)."""
        if isinstance(spec, Objective):
            return spec
        if spec is None:
            return cls(DEFAULT_OBJECTIVE, "min")
        if isinstance(spec, Sequence) and not isinstance(spec, str):
            parts = tuple(cls.create(item) for item in spec)
            if not parts:
                raise ConfigError("objective", "is an empty list", "name at least one metric, e.g. [val_accuracy]")
            if len(parts) == 1:
                return parts[0]
            names = [p.name for p in parts]
            if any(p.components for p in parts):
                raise ConfigError("objective", f"{names} nests a list", "give one flat list of metrics")
            _refuse_scale(parts)
            if len({(p.name, p.direction) for p in parts}) != len({p.name for p in parts}):
                # the same metric both maximised and minimised: the sum cancels it out
                raise ConfigError("objective", f"{[repr(p) for p in parts]} gives a metric two directions",
                                  "give each metric one direction")
            # a metric named twice (KerasTuner allows it) counts twice in the combined score: a weight
            return MultiObjective(MULTI_OBJECTIVE, "min", parts)
        if isinstance(spec, str):
            return cls._from_text(spec)
        if isinstance(spec, Mapping):
            unknown = set(spec) - {"name", "direction", "scale"}
            if unknown or "name" not in spec:
                raise ConfigError("objective", f"expected {{name, direction}} (and a Pareto objective's scale), "
                                  f"got {dict(spec)}", "e.g. objective={name: val_f1, direction: max}")
            return cls(str(spec["name"]), spec.get("direction"), scale=spec.get("scale"))
        if hasattr(spec, "name") and hasattr(spec, "direction"):  # a KerasTuner Objective
            return cls(str(spec.name), str(spec.direction))
        raise ConfigTypeError("objective", f"cannot read {spec!r} as an objective: {type(spec).__name__} not "
                              "understood, expected str, Objective, a list of them or {name, direction}",
                              "give a metric name such as val_loss")

    @classmethod
    def _from_text(cls, spec: str) -> Objective:
        """``val_iou``, ``val_iou:max`` or ``params:min:log``: the command line's short forms."""
        parts = spec.split(":")
        if len(parts) == 3 and parts[1].strip().lower() in _DIRECTION_WORDS:
            return cls(parts[0].strip(), parts[1].strip(), scale=parts[2].strip())
        name, colon, direction = spec.rpartition(":")
        if colon and direction.strip().lower() in _DIRECTION_WORDS:
            return cls(name.strip(), direction.strip())
        return cls(spec)

    def single(self) -> Objective:
        """This objective as a single-objective search's (``search.mode=single``): a ``scale`` is refused there."""
        _refuse_scale(self.components or (self,))
        return self

    def scaled_costs(self, costs: Any) -> Any:
        """This objective's costs (``-sign * value``) in its scale: ``-sign * log(value)`` for ``scale: log``
        (still to minimise), else as they are.  A value at 0 or below has no logarithm: refused by name."""
        import numpy as np

        costs = np.asarray(costs, dtype=float)
        if self.scale != LOG:
            return costs
        values = -self.sign * costs
        if np.any(values <= 0):
            raise ConfigError("objective.scale", f"{self.name!r} is counted by its log (scale: log), but has the "
                              f"value {float(values[values <= 0].flat[0]):g}, which has no logarithm",
                              f"give {self.name} scale: linear, or a metric that stays above 0")
        return -self.sign * np.log(values)

    @property
    def is_pareto(self) -> bool:
        """Whether the search looks for a front of several objectives (:class:`ParetoObjective`)."""
        return False

    @property
    def monitor(self) -> str:
        """The name in a Keras ``logs`` dict that holds this objective's value (EarlyStopping's ``monitor``)."""
        return self.name

    @property
    def sign(self) -> float:
        """Multiply by this to turn the objective into something to maximise."""
        return 1.0 if self.direction == "max" else -1.0

    def better(self, a: float | None, b: float | None) -> bool:
        """Whether ``a`` is strictly better than ``b`` (None and NaN are worst)."""
        if not is_finite(a):
            return False
        if not is_finite(b):
            return True
        return a > b if self.direction == "max" else a < b

    def best(self, values) -> float | None:
        finite = [v for v in values if is_finite(v)]
        if not finite:
            return None
        return max(finite) if self.direction == "max" else min(finite)

    def value_from(self, metrics: Mapping[str, float]) -> float | None:
        """The objective's value in a metrics dict, or None if a metric is missing."""
        if self.name in metrics:
            return float(metrics[self.name])
        if self.components and all(p.name in metrics for p in self.components):
            return sum(-p.sign * float(metrics[p.name]) for p in self.components)
        return None

    @property
    def metric_names(self) -> tuple[str, ...]:
        """The metrics the model must produce: the components of a multi-objective, else the name."""
        return tuple(dict.fromkeys(p.name for p in self.components)) or (self.name,)  # each once

    # KerasTuner's Objective methods, for code written against it.
    def has_value(self, logs: Mapping[str, float]) -> bool:
        return self.value_from(logs) is not None

    def get_value(self, logs: Mapping[str, float]) -> float | None:
        return self.value_from(logs)

    def better_than(self, a: float, b: float) -> bool:
        return self.better(a, b)

    def describe(self) -> dict[str, Any]:
        """Plain data for stores and exports: name, direction and any components."""
        data: dict[str, Any] = {"name": self.name, "direction": self.direction}
        if self.scale != LINEAR:
            data["scale"] = self.scale
        if self.components:
            data["components"] = [p.describe() for p in self.components]
        return data

    @property
    def label(self) -> str:
        """``val_loss (min)``: how console lines and messages show the objective."""
        if self.components:
            return f"{self.name} ({self.direction}) of " + ", ".join(p.label for p in self.components)
        return f"{self.name} ({self.direction}{', log' if self.scale == LOG else ''})"

    def __repr__(self) -> str:
        """KerasTuner's form, for ``str`` too: ``Objective(name="val_loss", direction="min")``."""
        return f'{type(self).__name__}(name="{self.name}", direction="{self.direction}")'


@dataclass(frozen=True, eq=False, repr=False)
class MultiObjective(Objective):
    """KerasTuner's multi-objective: one score to minimise over ``objectives`` (see the module docstring).

    Two are equal when they combine the same metrics, as often, in any order (the sum does not depend on it).
    """

    @property
    def objectives(self) -> list[Objective]:
        return list(self.components)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Objective):
            return NotImplemented
        return (other.name, other.direction) == (self.name, self.direction) and \
            Counter(other.components) == Counter(self.components)

    def __hash__(self) -> int:
        return hash((self.name, self.direction, frozenset(self.components)))

    def __repr__(self) -> str:
        return super().__repr__() + ": [" + ", ".join(repr(p) for p in self.components) + "]"


PARETO = "pareto"


@dataclass(frozen=True, eq=False, repr=False)
class ParetoObjective(Objective):
    """Several objectives kept apart: a trial is better only if no worse on every one and better on one.

    ``name`` is ``pareto``; ``direction`` and ``value`` are the main objective's (:attr:`main`: the first
    one training produces, not a model measure), so orderings and displays that need one number per
    trial (the progress line, "best so far", the best epoch) show it, while the oracles and the results
    use the vector (:meth:`costs_from`).
    """

    @classmethod
    def of(cls, spec: Any, field: str = "objective") -> ParetoObjective:
        """A Pareto objective from a list of objectives (names, ``name:dir``, mappings or Objectives)."""
        if isinstance(spec, ParetoObjective):
            return spec
        parts = spec.components if isinstance(spec, MultiObjective) else spec
        if isinstance(parts, (str, Mapping, Objective)) or not isinstance(parts, Sequence):
            parts = [parts]
        objectives = tuple(Objective.create(item) for item in parts)
        if len(objectives) < 2:
            raise ConfigError(field, f"{[o.name for o in objectives]} is one objective; search.mode=pareto needs "
                              "two or more", "e.g. objective=[val_accuracy:max,params:min]; or search.mode=single")
        names = [o.name for o in objectives]
        if any(o.components for o in objectives):
            raise ConfigError(field, f"{names} nests a list", "give one flat list of objectives")
        repeated = sorted({n for n in names if names.count(n) > 1})
        if repeated:
            raise ConfigError(field, f"names {repeated} more than once", "give each objective once in a Pareto search")
        return cls(PARETO, _main(objectives).direction, objectives)

    @property
    def is_pareto(self) -> bool:
        return True

    @property
    def objectives(self) -> list[Objective]:
        return list(self.components)

    @property
    def main(self) -> Objective:
        """The objective that scores epochs and gives ``trial.value``: the first one training produces.

        A model measure (params, flops, latency) is the same at every epoch or known only at the end, so
        ``objective=[params:min,val_iou:max]`` still keeps each trial's best-``val_iou`` epoch."""
        return _main(self.components)

    @property
    def monitor(self) -> str:
        return self.main.name

    def value_from(self, metrics: Mapping[str, float]) -> float | None:
        """The main objective's value: the one number per trial (see the class docstring)."""
        return self.main.value_from(metrics)

    def values_from(self, metrics: Mapping[str, Any]) -> tuple[float, ...] | None:
        """Every objective's value, in order; None when one is missing or not a finite number."""
        values = []
        for part in self.components:
            try:
                value = float(metrics[part.name])
            except (KeyError, TypeError, ValueError):
                return None
            if not math.isfinite(value):
                return None
            values.append(value)
        return tuple(values)

    def costs_from(self, metrics: Mapping[str, Any]) -> tuple[float, ...] | None:
        """The values as costs (each to minimise: maximised ones negated), or None (see values_from)."""
        values = self.values_from(metrics)
        return None if values is None else tuple(-p.sign * v for p, v in zip(self.components, values))

    @property
    def log_columns(self) -> list[int]:
        """The objectives counted by their logarithm (``scale: log``), by position."""
        return [j for j, p in enumerate(self.components) if p.scale == LOG]

    def scaled_costs(self, costs: Any) -> Any:
        """Costs (rows of :meth:`costs_from`, or a reference point) in each objective's scale: a ``log``
        objective's cost becomes ``-sign * log(value)``, still to minimise; the others stay as they are.

        A value at 0 or below has no logarithm: refused by the objective's name, never counted as something
        else (the hypervolume would not be the one the user asked for)."""
        import numpy as np

        array = np.array(costs, dtype=float)
        rows = array.reshape(-1, len(self.components))
        for j in self.log_columns:
            rows[:, j] = self.components[j].scaled_costs(rows[:, j])
        return rows.reshape(array.shape)

    @property
    def label(self) -> str:
        return "Pareto front of " + ", ".join(p.label for p in self.components)

    def describe(self) -> dict[str, Any]:
        return {"name": PARETO, "mode": PARETO, "components": [p.describe() for p in self.components]}

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Objective):
            return NotImplemented
        return isinstance(other, ParetoObjective) and other.components == self.components

    def __hash__(self) -> int:
        return hash((PARETO, self.components))

    def __repr__(self) -> str:
        return "ParetoObjective([" + ", ".join(repr(p) for p in self.components) + "])"


def _refuse_scale(parts: Sequence[Objective]) -> None:
    """KerasTuner's list objective is one sum: a ``scale`` there would not be honoured, so it is refused."""
    scaled = [p.name for p in parts if p.scale != LINEAR]
    if scaled:
        raise ConfigError("objective.scale", f"{scaled} has scale log, which counts a Pareto search's hypervolume, "
                          "but this search has one objective (a list is one summed score there)",
                          "set search.mode=pareto, or leave out scale")


def _main(objectives: Sequence[Objective]) -> Objective:
    """The first objective that is a metric of the model: not a measure, nor a speed or GPU figure."""
    return next((o for o in objectives if o.name not in MEASURES and o.name not in RUN_FIGURES), objectives[0])


def is_finite(value: float | None) -> bool:
    return value is not None and isinstance(value, (int, float)) and math.isfinite(value)


def numeric_metrics(metrics: Mapping[str, Any]) -> dict[str, float]:
    """The entries of a metrics dict that are numbers, as floats (a trial may report strings too)."""
    out = {}
    for name, value in metrics.items():
        try:
            out[name] = float(value)
        except (TypeError, ValueError):
            continue
    return out


def create_objective(objective: Any) -> Objective:
    """KerasTuner's name for :meth:`Objective.create` (a name, an Objective, a list, or None)."""
    return Objective.create(objective)
