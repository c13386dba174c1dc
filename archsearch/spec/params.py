"""One parameter of either format as archsearch's declarative space entry (``conf/model/*.yaml``'s form).

INTEGER -> ``int``, DOUBLE -> ``float``, CATEGORICAL -> ``choice`` of strings, DISCRETE -> an ordered
``choice`` of numbers; the scale types become the sampling (``linear``, ``log``, ``reverse_log``).
The checks are the service's own, so that a spec that reads here would be accepted there too.
"""

from __future__ import annotations

from typing import Any

from archsearch.errors import ConfigError
from archsearch.spec.fields import enum, integer, number, show, string
from archsearch.spec.overrides import key_problem

SCALES = {"SCALE_TYPE_UNSPECIFIED": None, "NONE": None, "UNIT_LINEAR_SCALE": "linear",
          "UNIT_LOG_SCALE": "log", "UNIT_REVERSE_LOG_SCALE": "reverse_log"}
# The service's limit on a DISCRETE parameter's list.
MAX_DISCRETE_VALUES = 1000


def parameter_name(value: Any, where: str, declared: dict) -> str:
    """A parameter's name: unique, and one Hydra's override grammar can carry."""
    name = string(value, where)
    problem = key_problem(name)
    if problem:
        raise ConfigError(where, f"{name!r} is {problem}",
                          "rename the parameter (the program receives it as --name=value)")
    if name in declared:
        raise ConfigError(where, f"{name!r} is declared twice", "give each parameter its own name")
    return name


def scale(value: Any, where: str) -> str | None:
    return enum(value, where, SCALES) if value is not None else None


def numeric(kind: str, low: Any, high: Any, sampling: str | None, default: Any, where: dict[str, str]) -> dict:
    """An ``int``/``float`` entry; ``where`` maps ``min``/``max``/``scale``/``default`` to field paths."""
    read = (lambda v, w: integer(v, w)) if kind == "int" else (lambda v, w: float(number(v, w)))
    if low is None or high is None:
        missing = where["min"] if low is None else where["max"]
        raise ConfigError(missing, "missing", f"{'INTEGER' if kind == 'int' else 'DOUBLE'} needs minValue and maxValue")
    low, high = read(low, where["min"]), read(high, where["max"])
    if high < low or (kind == "float" and high == low):
        raise ConfigError(where["max"], f"{show(high)} is not above minValue {show(low)}",
                          "maxValue must be greater than minValue")
    if sampling in ("log", "reverse_log") and low <= 0:
        raise ConfigError(where["scale"], f"{sampling} scale needs minValue > 0, but minValue is {show(low)}",
                          "raise minValue above zero or use UNIT_LINEAR_SCALE")
    entry = {"type": kind, "min": low, "max": high, "sampling": sampling or "linear"}
    if default is not None:
        default = read(default, where["default"])
        if not low <= default <= high:
            raise ConfigError(where["default"], f"{show(default)} is outside [{show(low)}, {show(high)}]",
                              "give a default inside the range")
        entry["default"] = default
    return entry


def categorical(values: Any, where: str, default: Any = None, default_where: str = "") -> dict:
    """A ``choice`` of strings (a category written as a number in YAML is read as its text)."""
    names = [_category(v, f"{where}[{i}]") for i, v in enumerate(_non_empty(values, where))]
    _unique(names, where)
    entry: dict[str, Any] = {"type": "choice", "values": names}
    if default is not None:
        default = _category(default, default_where)
        if default not in names:
            raise ConfigError(default_where, f"{default!r} is not one of the values {show(names)}",
                              "give one of the values")
        entry["default"] = default
    return entry


def discrete(values: Any, where: str, default: Any = None, default_where: str = "") -> dict:
    """An ordered ``choice`` of numbers, strictly increasing as the service requires."""
    points = [number(v, f"{where}[{i}]") for i, v in enumerate(_non_empty(values, where))]
    if len(points) > MAX_DISCRETE_VALUES:
        raise ConfigError(where, f"{len(points)} values: the service takes at most {MAX_DISCRETE_VALUES}",
                          "use INTEGER or DOUBLE with a range instead")
    for i in range(1, len(points)):
        if points[i] <= points[i - 1]:
            raise ConfigError(f"{where}[{i}]", f"{show(points[i])} does not follow {show(points[i - 1])} in increasing "
                              "order", "list the values in strictly increasing order")
    entry: dict[str, Any] = {"type": "choice", "values": points, "ordered": True}
    if default is not None:
        default = number(default, default_where)
        match = [p for p in points if p == default]
        if not match:
            raise ConfigError(default_where, f"{show(default)} is not one of the values {show(points)}",
                              "give one of the values")
        entry["default"] = match[0]
    return entry


def check_discrete_scale(sampling: str | None, where: str) -> None:
    """archsearch spaces a DISCRETE parameter's values by rank: a log scale cannot be honoured."""
    if sampling in ("log", "reverse_log"):
        raise ConfigError(where, f"{sampling} scale on DISCRETE values cannot be honoured: archsearch places a "
                          "DISCRETE parameter's values by their rank (so [16, 32, 64] are already evenly spaced)",
                          "use UNIT_LINEAR_SCALE or leave scaleType out")


def _non_empty(values: Any, where: str) -> list:
    if not isinstance(values, list) or not values:
        raise ConfigError(where, f"expected a non-empty list, got {show(values)}", "list at least one value")
    return values


def _category(value: Any, where: str) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return str(value)
    return string(value, where)


def _unique(values: list, where: str) -> None:
    seen: set = set()
    for i, v in enumerate(values):
        if v in seen:
            raise ConfigError(f"{where}[{i}]", f"{show(v)} is listed twice", "list each value once")
        seen.add(v)
