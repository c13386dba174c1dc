"""Values of a space, as the oracles compare, key and store them: no parameter types here.

Oracles never propose one combination twice (:func:`values_key`), grid search matches values of any
kind (:func:`same_value`), and what goes to ``trials.db`` and YAML is plain Python (:func:`to_python`).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np


def same_value(a: Any, b: Any) -> bool:
    """Equal and of the same kind (True is not 1), floats within rounding."""
    if isinstance(a, (bool, np.bool_)) or isinstance(b, (bool, np.bool_)):
        return isinstance(a, (bool, np.bool_)) and isinstance(b, (bool, np.bool_)) and bool(a) == bool(b)
    if isinstance(a, (int, float, np.number)) and isinstance(b, (int, float, np.number)):
        return math.isclose(float(a), float(b), rel_tol=1e-12, abs_tol=1e-15)
    return a == b


def value_kind(value: Any) -> str:
    """The kind a Choice checks its values by: ``bool``, ``int``, ``float``, ``str`` (else the type's name)."""
    if isinstance(value, (bool, np.bool_)):
        return "bool"
    if isinstance(value, (int, np.integer)):
        return "int"
    if isinstance(value, (float, np.floating)):
        return "float"
    if isinstance(value, str):
        return "str"
    return type(value).__name__


def as_list(values: Any) -> list:
    """A condition's values as a list: one value, a list or any other iterable (not a string or mapping)."""
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


def to_plain(value: Any) -> Any:
    """Like :func:`to_python`, also inside lists, tuples and mappings: a result ready for JSON or YAML."""
    if hasattr(value, "item"):
        return value.item()
    if isinstance(value, Mapping):
        return {k: to_plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_plain(v) for v in value]
    return value
