"""Multi-layer perceptron: the Fashion-MNIST family tuned in the source tutorials.

Flatten, then ``num_layers`` hidden Dense layers (``units_1`` .. ``units_3``),
each optionally followed by Dropout, then a softmax output.  Works for images
with or without a channel axis and for flat feature vectors alike.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from archsearch.errors import ConfigError

DEFAULT_UNITS = 128


def value(hp: Any, params: Mapping[str, Any], name: str, default: Any) -> Any:
    """A searched value wins over a fixed param of the same name, which wins over the default."""
    found = hp.get(name, None) if hp is not None else None
    if found is None:
        found = params.get(name)
    return default if found is None else found


def dropout_rate(raw: Any, field: str = "dropout") -> float:
    """Dropout as a rate; a boolean (KerasTuner's ``hp.Boolean("dropout")``) means 0.2 or nothing."""
    if isinstance(raw, bool):
        return 0.2 if raw else 0.0
    try:
        rate = float(raw)
    except (TypeError, ValueError):
        raise ConfigError(field, f"{raw!r} is not a dropout rate", "use a number in [0, 1), e.g. 0.2") from None
    if not 0.0 <= rate < 1.0:
        raise ConfigError(field, f"dropout rate {rate} is outside [0, 1)", "use e.g. 0.0, 0.1 or 0.2")
    return rate


def build(hp: Any, *, input_shape: tuple[int, ...], num_classes: int, **params: Any):
    """An uncompiled MLP for ``num_classes`` classes (see the module docstring for the parameters)."""
    import keras

    num_layers = int(value(hp, params, "num_layers", 1))
    if num_layers < 0:
        raise ConfigError("num_layers", f"{num_layers} hidden layers", "use 0 or more (the space uses 1-3)")
    activation = str(value(hp, params, "activation", "relu"))
    rate = dropout_rate(value(hp, params, "dropout", 0.0))
    fallback_units = int(value(hp, params, "units", DEFAULT_UNITS))

    inputs = keras.Input(shape=tuple(input_shape), name="input")
    x = keras.layers.Flatten(name="flatten")(inputs)
    for i in range(1, num_layers + 1):
        units = int(value(hp, params, f"units_{i}", fallback_units))
        if units < 1:
            raise ConfigError(f"units_{i}", f"{units} units", "use a positive number of units")
        x = keras.layers.Dense(units, activation=activation, name=f"dense_{i}")(x)
        if rate > 0:
            x = keras.layers.Dropout(rate, name=f"dropout_{i}")(x)
    outputs = keras.layers.Dense(int(num_classes), activation="softmax", dtype="float32", name="output")(x)
    return keras.Model(inputs, outputs, name="mlp")
