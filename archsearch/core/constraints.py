"""Constraints on a trial's measures or metrics: ``params <= 2e6``, ``latency_ms <= 5``.

The config's ``constraints`` list is read here once (``Constraints.parse``) so a typo is a
ConfigError before anything trains.  A constraint on a measure known before training
(:data:`archsearch.core.measures.BEFORE_TRAINING`) is checked right after the build, and a trial
that breaks it is ``infeasible`` with no epoch spent; any other is checked when its value is known
(the end of the trial).  Infeasible is never a failure: it does not count towards
``max_consecutive_failed_trials``, and the oracles learn from it.

How much a trial breaks its constraints is one number, the *violation*: the sum over broken
constraints of the excess relative to the bound (``params = 3e6`` against ``params <= 2e6`` is 0.5).
Constraint-dominance (NSGA-II) ranks infeasible trials by it; a feasible trial's violation is 0.
"""

from __future__ import annotations

import math
import operator
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from archsearch.core.measures import BEFORE_TRAINING
from archsearch.errors import ConfigError

_OPERATORS = {"<=": operator.le, ">=": operator.ge, "<": operator.lt, ">": operator.gt}
_FORM = re.compile(r"^\s*([A-Za-z_][\w./-]*)\s*(<=|>=|<|>)\s*([-+0-9.eE_]+|inf)\s*$")


@dataclass(frozen=True)
class Constraint:
    """``name op bound``; ``op`` is one of ``<=``, ``>=``, ``<``, ``>``."""

    name: str
    op: str
    bound: float

    @classmethod
    def parse(cls, text: Any, field: str = "constraints") -> Constraint:
        match = _FORM.match(str(text)) if isinstance(text, str) else None
        if match is None:
            raise ConfigError(field, f"{text!r} is not a constraint",
                              "write 'name <= number' (or >=, <, >), e.g. constraints=['params <= 2e6']")
        name, op, bound = match.groups()
        try:
            value = float(bound.replace("_", ""))
        except ValueError:
            raise ConfigError(field, f"{text!r}: {bound!r} is not a number", "e.g. 'params <= 2e6'") from None
        if math.isnan(value):
            raise ConfigError(field, f"{text!r} has no bound", "give a number")
        return cls(name, op, value)

    @property
    def before_training(self) -> bool:
        return self.name in BEFORE_TRAINING

    def holds(self, value: float) -> bool:
        return bool(_OPERATORS[self.op](value, self.bound))

    def excess(self, value: float) -> float:
        """0.0 when it holds, else how far past the bound, relative to the bound (NaN: infinitely far)."""
        if not math.isfinite(value):
            return math.inf
        if self.holds(value):
            return 0.0
        scale = abs(self.bound) if self.bound != 0 else 1.0
        # a strict bound met exactly still breaks it: a tiny positive excess, never 0
        return max(abs(value - self.bound) / scale, 1e-12)

    def __str__(self) -> str:
        return f"{self.name} {self.op} {self.bound:g}"


@dataclass(frozen=True)
class Violation:
    constraint: Constraint
    value: float

    @property
    def amount(self) -> float:
        return self.constraint.excess(self.value)

    def __str__(self) -> str:
        return f"{self.constraint.name} = {self.value:g} breaks {self.constraint}"


class Constraints(tuple):
    """A search's constraints, in the order written."""

    @classmethod
    def parse(cls, spec: Any, field: str = "constraints") -> Constraints:
        """A list of ``'name op bound'`` strings (or one such string); None or [] is no constraint."""
        if spec is None:
            return cls()
        if isinstance(spec, (str, Constraint)):
            spec = [spec]
        if isinstance(spec, Mapping) or not isinstance(spec, Iterable):
            raise ConfigError(field, f"{spec!r} is not a list of constraints",
                              "e.g. constraints=['params <= 2e6','latency_ms <= 5']")
        parsed = [c if isinstance(c, Constraint) else Constraint.parse(c, f"{field}[{i}]") for i, c in enumerate(spec)]
        return cls(parsed)

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(c.name for c in self))

    def before_training(self) -> Constraints:
        return Constraints(c for c in self if c.before_training)

    def violations(self, values: Mapping[str, Any], names: Iterable[str] | None = None) -> list[Violation]:
        """The broken constraints among those whose value ``values`` holds (restricted to ``names`` if given).

        A constraint whose value is not there yet is not judged: it is checked when it is known.
        """
        wanted = None if names is None else set(names)
        broken = []
        for c in self:
            if (wanted is not None and c.name not in wanted) or c.name not in values:
                continue
            try:
                value = float(values[c.name])
            except (TypeError, ValueError):
                value = math.nan
            if c.excess(value) > 0:
                broken.append(Violation(c, value))
        return broken

    def missing(self, values: Mapping[str, Any]) -> list[str]:
        """The constrained names ``values`` lacks (a finished trial must have them all)."""
        return [name for name in self.names if name not in values]

    @staticmethod
    def total(violations: Iterable[Violation]) -> float:
        return float(sum(v.amount for v in violations))

    @staticmethod
    def message(violations: Iterable[Violation]) -> str:
        return "infeasible: " + "; ".join(str(v) for v in violations)

    def describe(self) -> list[str]:
        return [str(c) for c in self]
