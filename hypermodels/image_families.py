"""Checks shared by the families built on ``archsearch.keras_tuner.applications`` (resnet, xception, efficientnet).

Each family reads its values with :func:`hypermodels.mlp.value` (a searched value, else a fixed
``model.params`` entry of the same name, else the default).  Before any training, a value that
could never build (an unknown version or pooling, anywhere in the space or in ``params``) and a
``model.params`` key or ``model.space`` name the family does not read are refused by name: nothing
written is ignored.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from archsearch.errors import ConfigError

COMPILE_VALUES = ("optimizer", "learning_rate")  # searched values the runner compiles the model with


def image_shape(input_shape: tuple[int, ...], family: str) -> tuple[int, ...]:
    """``(h, w)`` or ``(h, w, channels)``; anything else is refused (the builders add the channel axis)."""
    shape = tuple(int(d) for d in input_shape)
    if len(shape) not in (2, 3):
        raise ConfigError("model", f"the {family} family needs images of shape (h, w) or (h, w, channels), "
                          f"the data has inputs of shape {shape}", "use model=mlp for flat feature vectors")
    return shape


def check_family(space: Any, params: Mapping[str, Any], family: str, allowed: Mapping[str, Iterable[Any] | None],
                 extra_params: Iterable[str] = ()) -> None:
    """``allowed``: every value the family reads -> the values it accepts (None: any of its type)."""
    known = {*allowed, *extra_params}
    for key in params:
        if key not in known:
            raise ConfigError(f"model.params.{key}", f"the {family} family does not read {key!r}",
                              f"use one of: {', '.join(sorted(known))}")
    parameters = getattr(space, "space", {}) or {}
    for name in parameters.keys():
        if name not in allowed and name not in COMPILE_VALUES:
            raise ConfigError(f"model.space.{name}", f"the {family} family does not read {name!r}",
                              f"use names from: {', '.join([*allowed, *COMPILE_VALUES])}")
    for name, accepted in allowed.items():
        if accepted is None:
            continue
        accepted = list(accepted)
        where = [(f"model.space.{name}", list(getattr(parameters[name], "values", [])))] if name in parameters else []
        if name in params:
            where.append((f"model.params.{name}", [params[name]]))
        for field, values in where:
            bad = [v for v in values if v not in accepted]
            if bad:
                raise ConfigError(field, f"{', '.join(map(repr, bad))} is not a {family} {name}",
                                  f"use values from: {', '.join(map(str, accepted))}")
