"""Optimizers by the names users write in configs and search spaces.

``sgd_nesterov`` is SGD with Nesterov momentum 0.9, the variant the source
tutorials tune against Adam.  Names are case-insensitive, so KerasTuner-style
spaces such as ``hp.Choice("optimizer", ["Adam", "SGD"])`` work unchanged.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from archsearch.errors import ConfigError

# name -> (Keras optimizer class name, fixed keyword arguments)
_OPTIMIZERS: dict[str, tuple[str, dict[str, Any]]] = {
    "adam": ("Adam", {}),
    "adamw": ("AdamW", {}),
    "nadam": ("Nadam", {}),
    "rmsprop": ("RMSprop", {}),
    "sgd": ("SGD", {}),
    "sgd_nesterov": ("SGD", {"momentum": 0.9, "nesterov": True}),
    "nesterov": ("SGD", {"momentum": 0.9, "nesterov": True}),
    "adagrad": ("Adagrad", {}),
}
OPTIMIZERS = tuple(n for n in _OPTIMIZERS if n != "nesterov")


def _key(name: str) -> str:
    return name.lower().replace("-", "_")


def check_optimizer_names(names: Iterable[Any], field: str = "trainer.optimizer") -> None:
    """Reject unknown optimizer names before any training starts (objects are the user's own)."""
    for name in names:
        if isinstance(name, str) and _key(name) not in _OPTIMIZERS:
            raise ConfigError(field, f"unknown optimizer {name!r}", f"use one of: {', '.join(OPTIMIZERS)}")


def make_optimizer(name: str | Any, learning_rate: float | None = None, field: str = "trainer.optimizer"):
    """A fresh Keras optimizer; an optimizer object passes through unchanged."""
    import keras

    if not isinstance(name, str):
        return name
    check_optimizer_names([name], field)
    class_name, fixed = _OPTIMIZERS[_key(name)]
    kwargs: dict[str, Any] = dict(fixed)
    if learning_rate is not None:
        kwargs["learning_rate"] = float(learning_rate)
    return getattr(keras.optimizers, class_name)(**kwargs)
