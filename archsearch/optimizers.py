"""Optimizers by the names users write in configs and search spaces.

``sgd_nesterov`` is SGD with Nesterov momentum 0.9, the variant the source
tutorials tune against Adam.  Names are case-insensitive, so KerasTuner-style
spaces such as ``hp.Choice("optimizer", ["Adam", "SGD"])`` work unchanged.
"""

from __future__ import annotations

from typing import Any

from archsearch.errors import ConfigError

OPTIMIZERS = ("adam", "adamw", "nadam", "rmsprop", "sgd", "sgd_nesterov", "adagrad")


def make_optimizer(name: str | Any, learning_rate: float | None = None, field: str = "trainer.optimizer"):
    """A fresh Keras optimizer; an optimizer object passes through unchanged."""
    import keras

    if not isinstance(name, str):
        return name
    key = name.lower().replace("-", "_")
    kwargs: dict[str, Any] = {}
    if learning_rate is not None:
        kwargs["learning_rate"] = float(learning_rate)
    if key == "adam":
        return keras.optimizers.Adam(**kwargs)
    if key == "adamw":
        return keras.optimizers.AdamW(**kwargs)
    if key == "nadam":
        return keras.optimizers.Nadam(**kwargs)
    if key == "rmsprop":
        return keras.optimizers.RMSprop(**kwargs)
    if key == "adagrad":
        return keras.optimizers.Adagrad(**kwargs)
    if key == "sgd":
        return keras.optimizers.SGD(**kwargs)
    if key in ("sgd_nesterov", "nesterov"):
        return keras.optimizers.SGD(momentum=0.9, nesterov=True, **kwargs)
    raise ConfigError(field, f"unknown optimizer {name!r}", f"use one of: {', '.join(OPTIMIZERS)}")
