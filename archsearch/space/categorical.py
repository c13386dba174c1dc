"""The parameter types that pick from listed values: Choice, Boolean and Fixed.

Each value owns one equal bin of the unit interval, so a uniform draw picks every value equally often.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from archsearch.errors import SearchSpaceError, SearchSpaceTypeError
from archsearch.space.parameters import HyperParameter
from archsearch.space.values import value_kind


class Choice(HyperParameter):
    """One of a list of values (all int, all float, all str or all bool)."""

    type_name = "choice"

    def __init__(self, name, values, ordered=None, default=None, conditions=()):
        super().__init__(name, default, conditions)
        if values is None or len(values) == 0:
            raise self._err("the list of values is empty: `values` must be provided", "give at least one value")
        values = list(values)
        kinds = {value_kind(v) for v in values}
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
        kind = value_kind(value)
        for i, v in enumerate(self.values):
            numeric = {value_kind(v), kind} <= {"int", "float"}  # 1 matches 1.0, but True never matches 1
            if v == value and (numeric or value_kind(v) == kind):
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
        if self.ordered != (value_kind(self.values[0]) in ("int", "float")):
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
