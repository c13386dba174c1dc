"""The search space: parameter types, the define-by-run ``hp`` object, and
the unit-cube encoding the search algorithms work in.

One engine serves both ways of declaring a space:

* declaratively, from a model config (:meth:`HyperParameters.from_config`);
* define-by-run, KerasTuner style: a ``build(hp)`` function calls
  ``hp.Int(...)``, ``hp.Choice(...)`` ... and receives the trial's values.

Every parameter maps its values to and from ``[0, 1]`` (``to_unit`` /
``from_unit``) with its sampling warp (linear, log, reverse_log) applied, so
oracles can sample, enumerate and model any space without knowing its types.
"""

from __future__ import annotations

import contextlib
import logging
import math
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from archsearch.errors import InactiveHyperParameterError, SearchSpaceError, SearchSpaceTypeError

SAMPLINGS = ("linear", "log", "reverse_log")

log = logging.getLogger("archsearch")


@dataclass(frozen=True)
class Condition:
    """A parameter is active only while ``parent`` takes one of ``values``."""

    parent: str
    values: tuple

    def is_met(self, values: Mapping[str, Any]) -> bool:
        return self.parent in values and values[self.parent] in self.values

    def to_config(self) -> dict:
        return {self.parent: list(self.values)}

    @property
    def name(self) -> str:
        """KerasTuner's name for the parent (its ``conditions.Parent``)."""
        return self.parent


# --------------------------------------------------------------------------- types


class HyperParameter:
    """Base of all parameter types: a name, a default and optional conditions."""

    type_name = "base"

    def __init__(self, name: str, default: Any = None, conditions: Sequence[Condition] = ()):
        if not isinstance(name, str) or not name:
            raise SearchSpaceError("hyperparameter name", f"{name!r} is not a non-empty string")
        self.name = name
        self.conditions: tuple[Condition, ...] = tuple(conditions)
        self._default = default

    # Subclasses implement these five.
    @property
    def default(self) -> Any:
        return self._default

    def to_unit(self, value: Any) -> float:
        raise NotImplementedError

    def from_unit(self, u: float) -> Any:
        raise NotImplementedError

    def grid(self, float_points: int = 5) -> list:
        """All values a grid search should try, in order."""
        raise NotImplementedError

    def grid_order(self, points: int = 10) -> list:
        """The values grid search tries, in KerasTuner's order: the default first, then the others in
        ``grid`` order (``points`` bin centres of the range for a float without a step, as KerasTuner's 10)."""
        values = self._grid_points(points)
        default = self.default
        rest = [v for v in values if not same_value(v, default)]
        return [default, *rest]

    def _grid_points(self, points: int) -> list:
        return self.grid(points)

    def contains(self, value: Any) -> bool:
        raise NotImplementedError

    def random_sample(self, rng: np.random.Generator | int | None = None) -> Any:
        """A random value; ``rng`` is a NumPy generator, or a seed (KerasTuner's ``random_sample(seed)``)."""
        if not isinstance(rng, np.random.Generator):
            rng = np.random.default_rng(rng)
        return self.from_unit(float(rng.random()))

    # KerasTuner's names for the unit-cube mapping (bin centres for discrete values, as there).
    def value_to_prob(self, value: Any) -> float:
        return self.to_unit(value)

    def prob_to_value(self, prob: float) -> Any:
        return self.from_unit(prob)

    def get_config(self) -> dict:
        """KerasTuner's config of one parameter (``from_config`` reads it back)."""
        config: dict[str, Any] = {"name": self.name, "default": self._default,
                                  "conditions": [c.to_config() for c in self.conditions]}
        config.update(self._keras_tuner_fields())
        return config

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> HyperParameter:
        config = dict(config)
        conditions = _conditions_from_config(config["name"], config.pop("conditions", None) or None)
        return cls(**config, conditions=conditions)

    def _keras_tuner_fields(self) -> dict:
        return {}

    def is_active(self, values: Mapping[str, Any]) -> bool:
        return all(c.is_met(values) for c in self.conditions)

    def to_config(self) -> dict:
        config: dict[str, Any] = {"type": self.type_name}
        config.update(self._config_fields())
        if len(self.conditions) == 1:
            config["when"] = self.conditions[0].to_config()
        elif self.conditions:
            config["when"] = [c.to_config() for c in self.conditions]
        return config

    def _config_fields(self) -> dict:
        return {}

    def _err(self, problem: str, fix: str | None = None) -> SearchSpaceError:
        return SearchSpaceError(f"hyperparameter '{self.name}'", problem, fix)

    def __repr__(self) -> str:
        """``Int(name: 'units', min_value: 32, ...)``, KerasTuner's form: every field of get_config."""
        config = self.get_config()
        fields = ", ".join(f"{k}: {v!r}" for k, v in config.items() if k != "conditions" or v)
        return f"{type(self).__name__}({fields})"


def _check_sampling(hp: HyperParameter, sampling: str | None, low: float, high: float) -> str:
    sampling = (sampling or "linear").lower() if isinstance(sampling, str) or sampling is None else sampling
    if sampling not in SAMPLINGS:
        raise hp._err(f"unknown sampling {sampling!r}: sampling must be one of {', '.join(SAMPLINGS)}")
    if sampling != "linear" and low <= 0:
        raise hp._err(
            f"sampling '{sampling}' needs min > 0 (it does not support negative values or zero) but min is {low}",
            "raise min above zero or use sampling: linear",
        )
    return sampling


def same_value(a: Any, b: Any) -> bool:
    """Equal and of the same kind (True is not 1), floats within rounding."""
    if isinstance(a, (bool, np.bool_)) or isinstance(b, (bool, np.bool_)):
        return isinstance(a, (bool, np.bool_)) and isinstance(b, (bool, np.bool_)) and bool(a) == bool(b)
    if isinstance(a, (int, float, np.number)) and isinstance(b, (int, float, np.number)):
        return math.isclose(float(a), float(b), rel_tol=1e-12, abs_tol=1e-15)
    return a == b


def _warp(x: float, low: float, high: float, sampling: str) -> float:
    """Value -> unit interval, the inverse of :func:`_unwarp`."""
    if high == low:
        return 0.5
    if sampling == "log":
        u = math.log(x / low) / math.log(high / low)
    elif sampling == "reverse_log":
        u = 1.0 - math.log((high + low - x) / low) / math.log(high / low)
    else:
        u = (x - low) / (high - low)
    return min(1.0, max(0.0, u))


def _unwarp(u: float, low: float, high: float, sampling: str) -> float:
    """Unit interval -> value.  Log puts more points near min, reverse_log near max."""
    u = min(1.0, max(0.0, float(u)))
    if sampling == "log":
        return low * math.exp(u * math.log(high / low))
    if sampling == "reverse_log":
        return high + low - low * math.exp((1.0 - u) * math.log(high / low))
    return low + u * (high - low)


class _Numeric(HyperParameter):
    """Shared logic of Int and Float: bounds, step, sampling and the value grid."""

    def __init__(self, name, min_value, max_value, step=None, sampling="linear", default=None, conditions=()):
        super().__init__(name, default, conditions)
        if min_value is None or max_value is None:
            raise self._err("min and max are both required")
        if min_value > max_value:
            raise self._err(f"min_value {min_value} is greater than the max_value {max_value}", "swap min and max")
        self.min_value = min_value
        self.max_value = max_value
        self.sampling = _check_sampling(self, sampling, min_value, max_value)
        if step is not None and step <= 0:
            raise self._err(f"step must be > 0, got {step}")
        if step is not None and self.sampling != "linear" and step <= 1:
            raise self._err(  # the phrase after the colon is KerasTuner's
                f"with sampling '{self.sampling}' the step is a multiplication factor and must be > 1: "
                f"For HyperParameters.{type(self).__name__}(name='{self.name}'), expected step > 1, got step={step}"
            )
        self.step = step
        if default is not None and not self.contains(default):
            raise self._err(f"default {default!r} is outside [{min_value}, {max_value}]")

    def _steps(self) -> list | None:
        """The discrete values when a step is set (multiplicative for log scales), else None."""
        if self.step is None:
            return None
        values = []
        x = self.min_value
        if self.sampling == "linear":
            n = int(math.floor((self.max_value - self.min_value) / self.step + 1e-9))
            values = [self._cast(self.min_value + i * self.step) for i in range(n + 1)]
        else:
            while x <= self.max_value * (1 + 1e-9):
                values.append(x)
                x = x * self.step
            if self.sampling == "reverse_log":  # the log grid mirrored: dense near max
                values = sorted(self.max_value + self.min_value - v for v in values)
            values = [self._cast(v) for v in values]
        return values

    def _cast(self, x: float):
        return x

    @property
    def default(self):
        return self.min_value if self._default is None else self._default

    def to_unit(self, value) -> float:
        steps = self._discrete_values()
        if steps is not None:
            # Bin centres, so that uniform unit samples pick each value equally often.
            index = int(np.argmin([abs(v - value) for v in steps]))
            return (index + 0.5) / len(steps)
        return _warp(float(value), self.min_value, self.max_value, self.sampling)

    def from_unit(self, u: float):
        steps = self._discrete_values()
        if steps is not None:
            index = min(len(steps) - 1, int(math.floor(min(max(u, 0.0), 1.0) * len(steps))))
            return steps[index]
        return self._cast(_unwarp(u, self.min_value, self.max_value, self.sampling))

    def _discrete_values(self) -> list | None:
        """The values in unit-cube order: ascending, except reverse_log with a step (max first, as KerasTuner)."""
        steps = self._steps()
        if steps is not None and self.sampling == "reverse_log":
            return steps[::-1]
        return steps

    def contains(self, value) -> bool:
        """In range and, with a step, on the step grid (a condition on 2 of a 1, 3, 5 grid never holds)."""
        try:
            if not self.min_value - 1e-12 <= value <= self.max_value + 1e-12:
                return False
        except TypeError:
            return False
        steps = self._steps()
        return steps is None or any(math.isclose(value, v, rel_tol=1e-9, abs_tol=1e-12) for v in steps)

    @property
    def values(self) -> list:
        """Every value on the grid (KerasTuner's ``.values``; 10 spread values without a step)."""
        values = self._discrete_values()
        return values if values is not None else self._grid_points(10)

    def _grid_points(self, points: int) -> list:
        """Without a step, the centres of ``points`` equal bins of the unit interval (KerasTuner's
        0.05, 0.15, ..., 0.95 for 10), mapped through the sampling: the ends are not among them."""
        if self._discrete_values() is not None or self.min_value == self.max_value:
            return self.grid(points)
        n = max(1, int(points))
        return sorted({self.from_unit((i + 0.5) / n) for i in range(n)})

    def _keras_tuner_fields(self) -> dict:
        return {"min_value": self.min_value, "max_value": self.max_value, "step": self.step,
                "sampling": self.sampling}

    def _config_fields(self) -> dict:
        fields = {"min": self.min_value, "max": self.max_value}
        if self.step is not None:
            fields["step"] = self.step
        if self.sampling != "linear":
            fields["sampling"] = self.sampling
        if self._default is not None:
            fields["default"] = self._default
        return fields


class Int(_Numeric):
    """An integer in ``[min_value, max_value]`` (both inclusive), on a step grid (default step 1)."""

    type_name = "int"

    def __init__(self, name, min_value, max_value, step=None, sampling="linear", default=None, conditions=()):
        for label, v in (("min", min_value), ("max", max_value), ("step", step), ("default", default)):
            if v is not None and (isinstance(v, bool) or not float(v).is_integer()):
                raise SearchSpaceError(f"hyperparameter '{name}'", f"{label} must be an integer, got {v!r}")
        cast = (lambda v: None if v is None else int(v))
        super().__init__(name, cast(min_value), cast(max_value), cast(step), sampling, cast(default), conditions)

    def _cast(self, x: float) -> int:
        return int(round(x))

    def _discrete_values(self) -> list:
        steps = super()._discrete_values()
        if steps is not None:
            return steps
        if self.sampling == "linear" or self.max_value - self.min_value < 2:
            return list(range(self.min_value, self.max_value + 1))
        return None  # log/reverse_log integers: warp continuously, then round

    def from_unit(self, u: float) -> int:
        value = super().from_unit(u)
        return int(min(self.max_value, max(self.min_value, int(round(value)))))

    def grid(self, float_points: int = 5) -> list:
        values = self._discrete_values()
        if values is None:
            values = {self.from_unit(u) for u in np.linspace(0, 1, float_points)}
        return sorted(values)

    def contains(self, value) -> bool:
        return isinstance(value, (int, np.integer)) and not isinstance(value, bool) and super().contains(value)


class Float(_Numeric):
    """A float in ``[min_value, max_value]``; with a step, only values on the step grid."""

    type_name = "float"

    def __init__(self, name, min_value, max_value, step=None, sampling="linear", default=None, conditions=()):
        cast = (lambda v: None if v is None else float(v))
        super().__init__(name, cast(min_value), cast(max_value), cast(step), sampling, cast(default), conditions)

    def _cast(self, x: float) -> float:
        return float(x)

    def grid(self, float_points: int = 5) -> list:
        steps = self._steps()
        if steps is not None:
            return steps
        if self.min_value == self.max_value:
            return [self.min_value]
        return [self.from_unit(u) for u in np.linspace(0.0, 1.0, max(2, int(float_points)))]

    def contains(self, value) -> bool:
        return isinstance(value, (int, float, np.number)) and not isinstance(value, bool) and super().contains(value)


class Choice(HyperParameter):
    """One of a list of values (all int, all float, all str or all bool)."""

    type_name = "choice"

    def __init__(self, name, values, ordered=None, default=None, conditions=()):
        super().__init__(name, default, conditions)
        if values is None or len(values) == 0:
            raise self._err("the list of values is empty: `values` must be provided", "give at least one value")
        values = list(values)
        kinds = {_kind(v) for v in values}
        odd = sorted(kinds - {"int", "float", "str", "bool"})
        if odd:
            raise SearchSpaceTypeError(f"hyperparameter '{name}'",
                                       f"values of type {', '.join(odd)}: a choice can contain only `int`, `float`, "
                                       "`str` or `bool` values", "encode other values as strings and map them back")
        if len(kinds) > 1 and kinds != {"int", "float"}:
            raise SearchSpaceTypeError(f"hyperparameter '{name}'",
                                       f"values mix types {sorted(kinds)}: a choice can contain only one type of value",
                                       "use values of one type, e.g. all strings")
        if len(set(map(repr, values))) != len(values):
            raise self._err(f"values contain duplicates: {values}")
        self.values = values
        numeric = kinds <= {"int", "float"}
        self.ordered = numeric if ordered is None else bool(ordered)
        if self.ordered and not numeric:
            raise self._err(f"ordered: true needs numeric values, got {values}",
                            "ordered must be `False` (or left out) for non-numeric values")
        if default is not None and not self.contains(default):
            raise self._err(f"default {default!r} is not one of {values}: the default value should be one of the choices")

    @property
    def default(self):
        return self.values[0] if self._default is None else self._default

    def index(self, value) -> int:
        kind = _kind(value)
        for i, v in enumerate(self.values):
            numeric = {_kind(v), kind} <= {"int", "float"}  # 1 matches 1.0, but True never matches 1
            if v == value and (numeric or _kind(v) == kind):
                return i
        raise ValueError(f"{value!r} is not a value of {self.name}")

    def to_unit(self, value) -> float:
        return (self.index(value) + 0.5) / len(self.values)

    def from_unit(self, u: float):
        i = min(len(self.values) - 1, int(math.floor(min(max(u, 0.0), 1.0) * len(self.values))))
        return self.values[i]

    def grid(self, float_points: int = 5) -> list:
        return list(self.values)

    def contains(self, value) -> bool:
        try:
            self.index(value)
            return True
        except ValueError:
            return False

    def _keras_tuner_fields(self) -> dict:
        return {"values": list(self.values), "ordered": self.ordered}

    def _config_fields(self) -> dict:
        fields: dict[str, Any] = {"values": list(self.values)}
        if self.ordered != (_kind(self.values[0]) in ("int", "float")):
            fields["ordered"] = self.ordered
        if self._default is not None:
            fields["default"] = self._default
        return fields


class Boolean(HyperParameter):
    """True or False (KerasTuner's ``hp.Boolean``)."""

    type_name = "boolean"
    values = (True, False)  # KerasTuner's order

    def __init__(self, name, default=False, conditions=()):
        if not isinstance(default, (bool, np.bool_)):
            raise SearchSpaceError(f"hyperparameter '{name}'",
                                   f"default must be true or false (a Boolean's default must be a Python boolean), "
                                   f"got {default!r}", "leave it out for False")
        super().__init__(name, bool(default), conditions)

    def to_unit(self, value) -> float:
        return 0.75 if value else 0.25

    def from_unit(self, u: float) -> bool:
        return bool(u >= 0.5)

    def grid(self, float_points: int = 5) -> list:
        return [False, True]

    def contains(self, value) -> bool:
        return isinstance(value, (bool, np.bool_))

    def _config_fields(self) -> dict:
        return {"default": self._default} if self._default else {}


class Fixed(HyperParameter):
    """A constant: recorded with the trial, never searched."""

    type_name = "fixed"

    def __init__(self, name, value, conditions=()):
        super().__init__(name, value, conditions)
        if not isinstance(value, (bool, int, float, str, np.bool_, np.integer, np.floating)):
            raise self._err(f"value {value!r} is of type {type(value).__name__}: a fixed value must be an `int`, "
                            "`float`, `str` or `bool`", "encode other values as strings")
        self.value = value

    def to_unit(self, value) -> float:
        return 0.5

    def from_unit(self, u: float):
        return self.value

    def grid(self, float_points: int = 5) -> list:
        return [self.value]

    def contains(self, value) -> bool:
        return value == self.value

    @property
    def values(self) -> list:
        return [self.value]

    def get_config(self) -> dict:
        return {"name": self.name, "value": self.value, "conditions": [c.to_config() for c in self.conditions]}

    def _config_fields(self) -> dict:
        return {"value": self.value}


def _kind(value) -> str:
    if isinstance(value, (bool, np.bool_)):
        return "bool"
    if isinstance(value, (int, np.integer)):
        return "int"
    if isinstance(value, (float, np.floating)):
        return "float"
    if isinstance(value, str):
        return "str"
    return type(value).__name__


TYPES: dict[str, type[HyperParameter]] = {
    "int": Int,
    "float": Float,
    "choice": Choice,
    "boolean": Boolean,
    "bool": Boolean,
    "fixed": Fixed,
}


# --------------------------------------------------------------------------- the space

_UNSET = object()


class SearchSpace(dict):
    """The declared parameters: a dict ``name -> HyperParameter`` (archsearch's oracles look names up),
    that also reads as KerasTuner's list of parameters: iterating yields the parameter objects in
    declaration order (``for p in hp.space: p.name``), ``space[0]`` is the first one and
    ``space == [...]`` compares them in order.  Names: ``name in space``, ``space[name]``, ``keys()``.
    """

    def __iter__(self):
        return iter(list(self.values()))

    def __getitem__(self, key):
        if isinstance(key, (int, np.integer, slice)) and not isinstance(key, bool):
            return list(self.values())[key]
        return super().__getitem__(key)

    def __eq__(self, other):
        if isinstance(other, (list, tuple)):
            return list(self.values()) == list(other)
        return super().__eq__(other)

    def __ne__(self, other):
        return not self == other

    __hash__ = None  # type: ignore[assignment]


class HyperParameters:
    """A search space plus the values of one trial.

    Inside a model builder it is the ``hp`` object: ``hp.Int("units", 32, 512,
    step=32)`` registers the parameter the first time and returns the trial's
    value (or the default when the trial has no value for it yet), exactly as
    in KerasTuner.  ``hp.values`` holds the active values only.
    """

    def __init__(self) -> None:
        self.space = SearchSpace()
        self.values: dict[str, Any] = {}
        self._scope: list[Condition] = []
        self._name_scopes: list[str] = []
        # Parameters from_config left out because their conditions can never hold: name -> the note.
        self.dropped: dict[str, str] = {}
        # KerasTuner lets a builder declare one name twice under different conditions (``layers`` for
        # model v1 and for v2): the first declaration is in ``space``, the others are kept here.
        self.alternates: dict[str, list[HyperParameter]] = {}

    @property
    def space(self) -> SearchSpace:
        """``name -> HyperParameter`` for every declared name (see :class:`SearchSpace`)."""
        return self._space

    @space.setter
    def space(self, value: Mapping[str, HyperParameter]) -> None:
        self._space = value if isinstance(value, SearchSpace) else SearchSpace(value)

    # ------------------------------------------------------------ building
    @classmethod
    def from_config(cls, config: Mapping[str, Mapping[str, Any]] | None, where: str | None = None) -> HyperParameters:
        """Build a space from the declarative form used in ``conf/model/*.yaml``.

        A conditional parameter whose condition can never hold (say ``units_2``
        ``when: {num_layers: [2, 3]}`` after ``num_layers.max=1``) is dropped
        with a logged note, and so are the parameters conditioned on it; the
        notes are kept in :attr:`dropped`.  ``where`` (e.g. ``"model.space"``)
        prefixes the parameter names in those notes.
        """
        if _is_keras_tuner_config(config):
            return cls._from_keras_tuner_config(config)
        hp = cls()
        for name, spec in (config or {}).items():
            hp._register(parameter_from_config(str(name), spec))
        hp._check_conditions(where)
        hp.values = hp.active_values({})
        return hp

    @classmethod
    def _from_keras_tuner_config(cls, config: Mapping[str, Any]) -> HyperParameters:
        """KerasTuner's form, ``{"space": [{"class_name": "Int", "config": {...}}, ...], "values": {...}}``."""
        hp = cls()
        for item in config.get("space") or []:
            hp._add(deserialize(item))
        hp.values = dict(config.get("values") or {})
        return hp

    def get_config(self) -> dict[str, dict]:
        """The declarative form of this space: ``from_config(get_config())`` rebuilds it."""
        return {name: p.to_config() for name, p in self.space.items()}

    def copy(self) -> HyperParameters:
        clone = HyperParameters()
        clone.space = SearchSpace(self.space)
        clone.values = dict(self.values)
        clone.dropped = dict(self.dropped)
        clone.alternates = {name: list(ps) for name, ps in self._alternates().items()}
        return clone

    def with_values(self, values: Mapping[str, Any]) -> HyperParameters:
        """A copy of this space holding ``values`` (as a trial's ``hp``)."""
        clone = self.copy()
        clone.values = clone.active_values(values)
        return clone

    def keras_tuner_config(self) -> dict[str, Any]:
        """KerasTuner's form: every declaration (alternates included) and the values."""
        return {"space": [serialize(p) for p in self.all_declarations()], "values": dict(self.values)}

    def __setstate__(self, state: dict) -> None:
        if "space" in state:  # pickled when ``space`` was a plain attribute
            state["_space"] = SearchSpace(state.pop("space"))
        self.__dict__.update(state)

    def _register(self, parameter: HyperParameter) -> None:
        if parameter.name in self.space:
            raise parameter._err("is declared twice")
        self.space[parameter.name] = parameter

    def _check_conditions(self, where: str | None = None) -> None:
        """Undeclared parents are errors; a condition that can never hold drops its parameter (cascading)."""
        for p in self.space.values():
            for c in p.conditions:
                if c.parent not in self.space:
                    raise p._err(
                        f"its condition refers to '{c.parent}', which is not in the search space",
                        f"declare '{c.parent}' or fix the name in 'when'",
                    )
        dropped: dict[str, str] = {}
        changed = True
        while changed:  # fixed point: a child of a dropped parameter is dropped too, whatever the order
            changed = False
            for p in self.space.values():
                if p.name in dropped:
                    continue
                reason = self._never_holds(p, dropped)
                if reason is not None:
                    dropped[p.name] = reason
                    changed = True
        for name, reason in dropped.items():
            label = f"{where}.{name}" if where else f"hyperparameter '{name}'"
            note = f"Note: {label} is dropped: {reason}"
            log.warning("%s", note)
            self.dropped[name] = note
            del self.space[name]
        for p in self.space.values():
            for c in p.conditions:
                parent = self.space[c.parent]
                if not isinstance(parent, (Choice, Boolean)):
                    continue  # a narrowed numeric range (num_layers.max=2) leaves values out by design
                bad = [v for v in c.values if not parent.contains(v)]
                if bad:
                    raise p._err(f"its condition asks '{c.parent}' for {bad}, which '{c.parent}' never takes")

    def _never_holds(self, p: HyperParameter, dropped: Mapping[str, str]) -> str | None:
        """Why ``p`` can never be active (a dropped parent, or no reachable value), or None."""
        for c in p.conditions:
            if c.parent in dropped:
                return f"its parent {c.parent} is dropped"
            parent = self.space[c.parent]
            if not any(parent.contains(v) for v in c.values):
                return (f"its condition {c.parent} in {_show(list(c.values))} can never hold "
                        f"({c.parent} takes {_describe_values(parent)})")
        return None

    # ------------------------------------------------------------ declarations of one name
    def _alternates(self) -> dict[str, list[HyperParameter]]:
        return self.__dict__.setdefault("alternates", {})  # spaces pickled before alternates existed

    def declarations(self, name: str) -> list[HyperParameter]:
        """Every declaration of ``name``: the one in ``space``, then those under other conditions."""
        first = self.space.get(name)
        return ([first] if first is not None else []) + list(self._alternates().get(name, ()))

    def all_declarations(self) -> list[HyperParameter]:
        """Every declared parameter, alternates included (KerasTuner's ``hp.space`` list, grouped by name)."""
        return [p for name in self.space.keys() for p in self.declarations(name)]

    def _active_declaration(self, name: str, values: Mapping[str, Any]) -> HyperParameter | None:
        return next((p for p in self.declarations(name) if p.is_active(values)), None)

    def _same(self, parameter: HyperParameter) -> HyperParameter | None:
        """The declaration with ``parameter``'s name and conditions, if any."""
        return next((p for p in self.declarations(parameter.name) if p.conditions == parameter.conditions), None)

    def _add(self, parameter: HyperParameter, replace: HyperParameter | None = None) -> None:
        """Declare ``parameter`` (in place of ``replace``, a declaration of the same name and conditions)."""
        name = parameter.name
        if replace is not None and self.space.get(name) is replace:
            self.space[name] = parameter
        elif replace is not None:
            others = self._alternates()[name]
            others[others.index(replace)] = parameter
        elif name in self.space:
            self._alternates().setdefault(name, []).append(parameter)
        else:
            self.space[name] = parameter

    def _declared(self, name: str) -> bool:
        return name in self.space or name in self.dropped

    # ------------------------------------------------------------ define-by-run API (KerasTuner names)
    def _retrieve(self, parameter: HyperParameter) -> Any:
        for c in parameter.conditions:
            if c.parent == parameter.name:
                raise parameter._err(f"is declared inside a condition on '{c.parent}' itself: a hyperparameter "
                                     "cannot have the same name as the parent of its condition",
                                     "rename the parameter or the parent")
        existing = self._same(parameter)
        if existing is None:
            self._add(parameter)
            existing = parameter
        if not existing.is_active(self.values):
            return None  # KerasTuner returns None for inactive parameters, so nobody relies on them.
        if existing.name not in self.values:
            self.values[existing.name] = existing.default
        return self.values[existing.name]

    def _scoped(self, name: str) -> str:
        """``name`` prefixed with the open name scopes: ``block1/units``."""
        scopes = self.__dict__.get("_name_scopes") or []
        return "/".join([*scopes, name]) if scopes else name

    def _conditions(self, parent_name: str | None, parent_values) -> tuple[Condition, ...]:
        conditions = list(self._scope)
        if parent_name is not None:
            parent_name = self._scoped(parent_name)
            self._require_declared(parent_name, f"parent_name='{parent_name}'")
            conditions.append(Condition(parent_name, tuple(_as_list(parent_values))))
        return tuple(conditions)

    def Int(self, name: str, min_value: int, max_value: int, step: int | None = None, sampling: str = "linear",
            default: int | None = None, parent_name: str | None = None, parent_values=None) -> int:
        return self._retrieve(Int(self._scoped(name), min_value, max_value, step, sampling, default,
                                  self._conditions(parent_name, parent_values)))

    def Float(self, name: str, min_value: float, max_value: float, step: float | None = None,
              sampling: str = "linear", default: float | None = None, parent_name: str | None = None,
              parent_values=None) -> float:
        return self._retrieve(Float(self._scoped(name), min_value, max_value, step, sampling, default,
                                    self._conditions(parent_name, parent_values)))

    def Choice(self, name: str, values: Sequence, ordered: bool | None = None, default=None,
               parent_name: str | None = None, parent_values=None):
        return self._retrieve(Choice(self._scoped(name), values, ordered, default,
                                     self._conditions(parent_name, parent_values)))

    def Boolean(self, name: str, default: bool = False, parent_name: str | None = None, parent_values=None) -> bool:
        return self._retrieve(Boolean(self._scoped(name), default, self._conditions(parent_name, parent_values)))

    def Fixed(self, name: str, value, parent_name: str | None = None, parent_values=None):
        return self._retrieve(Fixed(self._scoped(name), value, self._conditions(parent_name, parent_values)))

    @contextlib.contextmanager
    def conditional_scope(self, parent_name: str, parent_values) -> Iterator[None]:
        """Parameters declared inside are active only while ``parent_name`` is in ``parent_values``.

        Scopes nest: a parameter inside two scopes needs both conditions.
        """
        parent_name = self._scoped(parent_name)
        self._require_declared(parent_name, f"conditional_scope('{parent_name}')")
        self._scope.append(Condition(parent_name, tuple(_as_list(parent_values))))
        try:
            yield
        finally:
            self._scope.pop()

    @contextlib.contextmanager
    def name_scope(self, name: str) -> Iterator[None]:
        """Parameters declared inside are named ``name/<their name>`` (scopes nest: ``a/b/units``)."""
        scopes = self.__dict__.setdefault("_name_scopes", [])
        scopes.append(str(name))
        try:
            yield
        finally:
            scopes.pop()

    def _require_declared(self, parent_name: str, where: str) -> None:
        if parent_name not in self.space:
            raise SearchSpaceError(
                where,
                f"'{parent_name}' is not declared yet (a parameter not defined yet cannot be a condition's parent)",
                "declare the parent with hp.Int/Choice/... before the parameters that depend on it",
            )

    def merge(self, other: HyperParameters | Sequence[HyperParameter], overwrite: bool = True) -> None:
        """Add ``other``'s parameters (a HyperParameters or a list of parameters) to this space.

        A parameter with the same name and conditions as one declared here replaces it when
        ``overwrite`` (its default becomes the value), and is skipped otherwise.  Only parameters
        active under this space's values get a value, as in KerasTuner.
        """
        parameters = other.all_declarations() if isinstance(other, HyperParameters) else list(other)
        for p in parameters:
            existing = self._same(p)
            if existing is not None and not overwrite:
                continue
            self._add(p, replace=existing)
            if p.is_active(self.values) and (overwrite or p.name not in self.values):
                self.values[p.name] = p.default

    # ------------------------------------------------------------ access
    def get(self, name: str, default: Any = _UNSET) -> Any:
        """The trial's value of ``name``, as KerasTuner's ``hp.get``: an inactive parameter (its conditions
        do not hold) raises ``ValueError``, an undeclared one ``KeyError``.

        ``default`` is archsearch's addition, for code that reads a parameter which may be inactive or
        absent: ``hp.get("momentum", None)`` returns None then, and ``hp.get("units", 32)`` 32.
        """
        name = self._scoped(name)
        if name in self.values:
            return self.values[name]
        if default is not _UNSET:
            return default
        if self._declared(name):
            why = (f"was dropped from the search space ({self.dropped[name]})" if name in self.dropped
                   else "is currently inactive (its conditions do not hold)")
            raise InactiveHyperParameterError(f"hyperparameter '{name}'", why,
                                              f"read it with hp.get('{name}', None) to get None while it is inactive")
        raise KeyError(f"hyperparameter '{name}' does not exist in the search space "
                       f"(declared: {', '.join(self.space.keys()) or 'none'}); declare it, or give a default: "
                       f"hp.get('{name}', None)")

    def __getitem__(self, name: str) -> Any:
        """The trial's value of ``name`` (KerasTuner's ``hp[name]``, the same as ``hp.get(name)``)."""
        return self.get(name)

    def __contains__(self, name: str) -> bool:
        return self._scoped(name) in self.values

    def is_active(self, name: str | HyperParameter) -> bool:
        """Whether ``name`` (any of its declarations), or that very parameter, is active now."""
        if isinstance(name, HyperParameter):
            return name.is_active(self.values)
        return self._active_declaration(name, self.values) is not None

    def __len__(self) -> int:
        return len(self.space)

    def __repr__(self) -> str:
        return f"HyperParameters(values={self.values!r})"

    # ------------------------------------------------------------ helpers for oracles
    def active_values(self, values: Mapping[str, Any]) -> dict[str, Any]:
        """Complete ``values`` with defaults and drop parameters whose conditions fail.

        Parents are resolved before children because a parameter can only be
        conditioned on one declared earlier (or on one whose value is given).
        """
        result: dict[str, Any] = {}
        for _ in range(len(self.space) + 1):  # fixed point: conditions may chain
            changed = False
            for name in self.space.keys():
                p = None if name in result else self._active_declaration(name, result)
                if p is None:
                    continue
                result[name] = values[name] if name in values else p.default
                changed = True
            if not changed:
                break
        return result

    def sample(self, rng: np.random.Generator, unit: Sequence[float] | None = None) -> dict[str, Any]:
        """Draw active values; ``unit`` (one number per parameter) replaces the random draws."""
        values: dict[str, Any] = {}
        for i, name in enumerate(self.space.keys()):
            p = self._active_declaration(name, values)
            if p is None:
                continue
            u = float(unit[i]) if unit is not None else float(rng.random())
            values[name] = p.from_unit(u)
        # Conditions on parents declared later are resolved here.
        return self.active_values(values)

    def grid(self, float_points: int = 5, order: Callable[[HyperParameter], list] | None = None
             ) -> Iterator[dict[str, Any]]:
        """Every combination of active values, once, in declaration order (the last name varies fastest).

        ``order(parameter)`` gives each parameter's values in place of ``parameter.grid(float_points)``.
        """
        names = list(self.space.keys())

        def expand(i: int, values: dict[str, Any]) -> Iterator[dict[str, Any]]:
            if i == len(names):
                yield dict(values)
                return
            p = self._active_declaration(names[i], values)
            if p is None:
                yield from expand(i + 1, values)
                return
            for v in (order(p) if order is not None else p.grid(float_points)):
                values[p.name] = v
                yield from expand(i + 1, values)
            del values[p.name]

        seen: set[str] = set()
        for combo in expand(0, {}):
            combo = self.active_values(combo)
            key = values_key(combo)
            if key not in seen:
                seen.add(key)
                yield combo

    def grid_size(self, float_points: int = 5, order: Callable[[HyperParameter], list] | None = None) -> int:
        return sum(1 for _ in self.grid(float_points, order))

    def validate_values(self, values: Mapping[str, Any]) -> None:
        """Raise a clear error when ``values`` (e.g. from ``best/hparams.yaml``) do not fit the space."""
        for name, v in values.items():
            p = self.space.get(name)
            if p is None:
                raise SearchSpaceError(f"hyperparameter '{name}'", "is not in the search space")
            if not any(q.contains(v) for q in self.declarations(name)):
                raise p._err(f"value {v!r} is outside its range {p._config_fields()}")

    def summary(self) -> str:
        lines = [f"Search space summary: {len(self.space)} hyperparameters"]
        for name, p in self.space.items():
            lines.append(f"  {name} ({p.type_name}): {p._config_fields()}"
                         + (f" when {[c.to_config() for c in p.conditions]}" if p.conditions else ""))
        return "\n".join(lines)


def parameter_from_config(name: str, spec: Any) -> HyperParameter:
    """One parameter from its declarative form; a bare scalar or list is shorthand for fixed/choice."""
    if not isinstance(spec, Mapping):
        if isinstance(spec, (list, tuple)):
            return Choice(name, list(spec))
        return Fixed(name, spec)
    spec = dict(spec)
    where = f"hyperparameter '{name}'"
    kind = str(spec.pop("type", "")).lower()
    if kind not in TYPES:
        raise SearchSpaceError(where, f"unknown type {kind!r}", f"use one of {', '.join(sorted(set(TYPES) - {'bool'}))}")
    conditions = _conditions_from_config(name, spec.pop("when", None))
    allowed = {
        "int": {"min", "max", "step", "sampling", "default"},
        "float": {"min", "max", "step", "sampling", "default"},
        "choice": {"values", "ordered", "default"},
        "boolean": {"default"},
        "bool": {"default"},
        "fixed": {"value"},
    }[kind]
    unknown = set(spec) - allowed
    if unknown:
        raise SearchSpaceError(where, f"unknown field(s) {sorted(unknown)} for type {kind}",
                               f"allowed: {sorted(allowed | {'type', 'when'})}")
    if kind in ("int", "float"):
        missing = [k for k in ("min", "max") if k not in spec]
        if missing:
            raise SearchSpaceError(where, f"missing {', '.join(missing)}", f"{kind} needs both min and max")
        return TYPES[kind](name, spec["min"], spec["max"], spec.get("step"), spec.get("sampling", "linear"),
                           spec.get("default"), conditions)
    if kind == "choice":
        if "values" not in spec:
            raise SearchSpaceError(where, "missing values", "choice needs values: [...]")
        return Choice(name, list(spec["values"] or []), spec.get("ordered"), spec.get("default"), conditions)
    if kind in ("boolean", "bool"):
        return Boolean(name, spec.get("default", False), conditions)
    if "value" not in spec:
        raise SearchSpaceError(where, "missing value", "fixed needs value: ...")
    return Fixed(name, spec["value"], conditions)


def _conditions_from_config(name: str, when: Any) -> tuple[Condition, ...]:
    if when is None:
        return ()
    items = when if isinstance(when, (list, tuple)) else [when]
    conditions = []
    for item in items:
        if isinstance(item, Mapping) and item.get("class_name") == "Parent":  # KerasTuner's condition config
            config = item.get("config") or {}
            conditions.append(Condition(str(config.get("name")), tuple(_as_list(config.get("values")))))
            continue
        if not isinstance(item, Mapping) or not item:
            raise SearchSpaceError(f"hyperparameter '{name}'", f"'when' must map a parent to its values, got {when!r}",
                                   "e.g. when: {num_layers: [2, 3]}")
        for parent, values in item.items():
            conditions.append(Condition(str(parent), tuple(_as_list(values))))
    return tuple(conditions)


def _show(values: list) -> str:
    """``[2, 3]`` / ``[sgd, adam]``: values as a user writes them in YAML."""
    return "[" + ", ".join(str(to_python(v)) for v in values) + "]"


def _describe_values(p: HyperParameter) -> str:
    """The values ``p`` can take, briefly: ``1..3``, ``[1, 3]``, ``32..512 step 32``, ``[adam, sgd]``."""
    if isinstance(p, _Numeric):
        steps = p._steps()
        if steps is None or (p.step == 1 and p.sampling == "linear"):
            return f"{p.min_value}..{p.max_value}"
        if len(steps) <= 8:
            return _show(steps)
        return f"{p.min_value}..{p.max_value} step {p.step}" + ("" if p.sampling == "linear" else f" ({p.sampling})")
    if isinstance(p, Fixed):
        return f"only {to_python(p.value)}"
    if isinstance(p, Boolean):
        return "[False, True]"
    return _show(list(getattr(p, "values", ())))


def _as_list(values) -> list:
    if isinstance(values, (list, tuple)):
        return list(values)
    if hasattr(values, "__iter__") and not isinstance(values, (str, bytes, Mapping)):
        return list(values)
    return [values]


def values_key(values: Mapping[str, Any]) -> str:
    """A canonical string for a set of values, used to never propose a combination twice."""
    parts = []
    for name in sorted(values):
        v = values[name]
        if isinstance(v, (float, np.floating)):
            v = float(f"{float(v):.10g}")
        elif isinstance(v, np.generic):
            v = v.item()
        parts.append(f"{name}={v!r}")
    return "|".join(parts)


def to_python(value: Any) -> Any:
    """numpy scalars -> Python scalars, so values serialise to JSON and YAML cleanly."""
    if isinstance(value, np.generic):
        return value.item()
    return value


# --------------------------------------------------------------------------- KerasTuner's module functions

_CLASSES: dict[str, type] = {"Int": Int, "Float": Float, "Choice": Choice, "Boolean": Boolean, "Fixed": Fixed,
                             "HyperParameters": HyperParameters}


def serialize(obj: HyperParameter | HyperParameters) -> dict[str, Any]:
    """``{"class_name": "Int", "config": {...}}``: a parameter or a space as plain data (KerasTuner's form)."""
    config = obj.keras_tuner_config() if isinstance(obj, HyperParameters) else obj.get_config()
    return {"class_name": type(obj).__name__, "config": config}


def deserialize(config: Mapping[str, Any]) -> HyperParameter | HyperParameters:
    """The parameter or space :func:`serialize` wrote."""
    if isinstance(config, (HyperParameter, HyperParameters)):
        return config
    name = config.get("class_name") if isinstance(config, Mapping) else None
    if name not in _CLASSES:
        raise SearchSpaceError("hyperparameter config", f"unknown class_name {name!r}",
                               f"use one of {', '.join(_CLASSES)}")
    return _CLASSES[name].from_config(config.get("config") or {})


def _is_keras_tuner_config(config: Any) -> bool:
    return (isinstance(config, Mapping) and bool(config) and set(config) <= {"space", "values"}
            and isinstance(config.get("space", []), (list, tuple)))
