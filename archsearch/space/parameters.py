"""What every parameter of a space is: a name, a default, the conditions that make it active, and a
map of its values to and from the unit interval that the oracles search in.

The types themselves live in :mod:`archsearch.space.numeric` (Int, Float) and
:mod:`archsearch.space.categorical` (Choice, Boolean, Fixed); the declarative form names them
through :data:`archsearch.space.declarative.PARAMETER_TYPES`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from archsearch.errors import SearchSpaceError
from archsearch.space.values import as_list, same_value


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
        conditions = conditions_from_config(config["name"], config.pop("conditions", None) or None)
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


def conditions_from_config(name: str, when: Any) -> tuple[Condition, ...]:
    """``when: {parent: [values]}`` (one mapping or a list of them), or KerasTuner's ``Parent`` configs."""
    if when is None:
        return ()
    items = when if isinstance(when, (list, tuple)) else [when]
    conditions = []
    for item in items:
        if isinstance(item, Mapping) and item.get("class_name") == "Parent":  # KerasTuner's condition config
            config = item.get("config") or {}
            conditions.append(Condition(str(config.get("name")), tuple(as_list(config.get("values")))))
            continue
        if not isinstance(item, Mapping) or not item:
            raise SearchSpaceError(f"hyperparameter '{name}'", f"'when' must map a parent to its values, got {when!r}",
                                   "e.g. when: {num_layers: [2, 3]}")
        for parent, values in item.items():
            conditions.append(Condition(str(parent), tuple(as_list(values))))
    return tuple(conditions)
