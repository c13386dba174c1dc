"""What a trial's ``fit`` is given: the data, batched so a resumed trial sees the batches of an uninterrupted run."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from archsearch.training.settings import DEFAULT_BATCH_SIZE


class FitData(Protocol):
    """Supplies ``fit`` arguments for one fit: its batch size, and which trial, execution and
    epochs it trains (so the data order can be a function of them alone)."""

    def fit_kwargs(self, batch_size: int | None, *, trial_id: int = 0, initial_epoch: int = 0, epochs: int = 1,
                   execution: int = 0) -> dict[str, Any]: ...


@dataclass
class FitArguments:
    """The arguments a user passed to ``tuner.search(...)``, handed to every ``fit``.

    NumPy arrays that Keras would shuffle are batched here instead, with each epoch's order a
    function of (``seed``, trial, epoch) alone (``validation_split`` takes the last samples, as
    Keras does), so a resumed trial sees the batches of an uninterrupted run.  Anything else
    (datasets, generators, sample weights, ``shuffle=False``) goes to ``fit`` unchanged.
    """

    args: tuple = ()
    kwargs: dict[str, Any] = field(default_factory=dict)
    seed: int = 0

    def fit_kwargs(self, batch_size: int | None, *, trial_id: int = 0, initial_epoch: int = 0, epochs: int = 1,
                   execution: int = 0) -> dict[str, Any]:
        kwargs = dict(self.kwargs)
        names = ("x", "y")
        for name, value in zip(names, self.args):
            kwargs[name] = value
        if _orders_arrays_itself(kwargs):
            return self._epoch_ordered(kwargs, int(batch_size or kwargs.get("batch_size") or DEFAULT_BATCH_SIZE),
                                       trial_id, initial_epoch, epochs, execution)
        if batch_size is not None and _is_array_like(kwargs.get("x")):
            kwargs["batch_size"] = batch_size
        for name in ("x", "validation_data"):
            if name in kwargs:
                kwargs[name] = prefetched(kwargs[name])
        return kwargs

    def as_given(self) -> dict[str, Any]:
        """The arguments exactly as passed to ``search()`` (positional ones named ``x`` and ``y``)."""
        kwargs = dict(self.kwargs)
        kwargs.update(zip(("x", "y"), self.args))
        return kwargs

    def _epoch_ordered(self, kwargs: dict[str, Any], batch_size: int, trial_id: int, initial_epoch: int,
                       epochs: int, execution: int) -> dict[str, Any]:
        import numpy as np

        from archsearch.datasets.pipeline import epoch_batches, make_dataset

        x, y = kwargs.pop("x"), kwargs.pop("y")
        split = float(kwargs.pop("validation_split", 0.0) or 0.0)
        kwargs.pop("batch_size", None)
        kwargs.pop("shuffle", None)
        if split > 0 and "validation_data" not in kwargs:
            cut = int(math.floor(len(x) * (1.0 - split)))  # Keras' rule: the last samples validate
            x, y, x_val, y_val = x[:cut], y[:cut], x[cut:], y[cut:]
            kwargs["validation_data"] = make_dataset(np.asarray(x_val), np.asarray(y_val), batch_size=batch_size,
                                                     shuffle=False)
        train, steps = epoch_batches(x, y, batch_size=batch_size, seed=self.seed, trial_id=trial_id,
                                     initial_epoch=initial_epoch, epochs=epochs, execution=execution)
        return {**kwargs, "x": train, "steps_per_epoch": steps, "shuffle": False}


# fit() arguments that tie samples to positions or steps: with them, Keras keeps batching the arrays.
_POSITIONAL_FIT_ARGS = ("sample_weight", "class_weight", "steps_per_epoch", "validation_steps")


def _orders_arrays_itself(kwargs: Mapping[str, Any]) -> bool:
    import numpy as np

    x, y = kwargs.get("x"), kwargs.get("y")
    return (isinstance(x, np.ndarray) and isinstance(y, np.ndarray) and len(x) == len(y) and len(x) > 0
            and kwargs.get("shuffle", True) is True and not any(k in kwargs for k in _POSITIONAL_FIT_ARGS))


def _is_array_like(x: Any) -> bool:
    return hasattr(x, "shape") and hasattr(x, "dtype") or isinstance(x, (list, tuple, dict))


def prefetched(x: Any) -> Any:
    """A ``tf.data`` pipeline given to ``search()`` with a prefetch at its end when it has none, so the next
    batches are made while the device trains on this one (the same batches, in the same order); anything
    else as it is (Keras prefetches the arrays and generators it batches itself, and archsearch's own
    epoch batches end with one)."""
    if not is_tf_dataset(x) or not hasattr(x, "prefetch") or type(x).__name__.lstrip("_").startswith("Prefetch"):
        return x
    import tensorflow as tf

    return x.prefetch(tf.data.AUTOTUNE)


def is_tf_dataset(x: Any) -> bool:
    return type(x).__module__.startswith("tensorflow") and hasattr(x, "element_spec")
