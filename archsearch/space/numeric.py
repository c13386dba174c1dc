"""The numeric parameter types, Int and Float: a range, an optional step, and a sampling warp.

``linear`` spreads the unit interval evenly over the range, ``log`` puts more points near the
minimum and ``reverse_log`` near the maximum; with a step the values are a grid (multiplicative
for the log samplings) and the unit interval is cut into one bin per value.
"""

from __future__ import annotations

import math

import numpy as np

from archsearch.errors import SearchSpaceError
from archsearch.space.parameters import HyperParameter

SAMPLINGS = ("linear", "log", "reverse_log")


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


class Numeric(HyperParameter):
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


class Int(Numeric):
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


class Float(Numeric):
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
