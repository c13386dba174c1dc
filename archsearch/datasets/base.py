"""The contract between data loaders and the runner.

Every loader returns a :class:`DataSplits`: plain numpy arrays for training
and validation plus what the model families need to know (task, classes,
input shape).  Keeping loaders to numpy keeps them backend-agnostic; the
``pipeline`` module turns the arrays into batched ``tf.data`` datasets.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from archsearch.errors import ConfigError, DataError

TASKS = ("classification", "segmentation")


@dataclass
class DataSplits:
    """Training, validation and test arrays with the metadata model builders need.

    The search trains on ``train`` and scores on ``val``; ``test`` is held out for
    ``mode=retrain`` (the honest final check) and may be empty (``has_test``).

    ``x_*`` are float32 arrays scaled to 0..1 with a channel axis for images.
    For classification ``y_*`` holds integer class ids, shape ``(n,)``.
    For segmentation ``y_*`` holds float32 masks, shape ``(n, h, w, classes)``.
    """

    name: str
    task: str
    x_train: np.ndarray
    y_train: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray
    num_classes: int
    class_names: list[str] = field(default_factory=list)
    x_test: np.ndarray | None = None
    y_test: np.ndarray | None = None

    def __post_init__(self) -> None:
        if self.task not in TASKS:
            raise DataError(f"data.task: unknown task {self.task!r} (expected one of {TASKS})")
        if len(self.x_train) == 0:
            raise DataError(f"data '{self.name}': the training set is empty")
        if len(self.x_val) == 0:
            raise DataError(
                f"data '{self.name}': the validation set is empty "
                "(raise data.validation_split or provide more samples)"
            )
        if len(self.x_train) != len(self.y_train) or len(self.x_val) != len(self.y_val):
            raise DataError(f"data '{self.name}': inputs and targets have different lengths")
        if not self.class_names:
            self.class_names = [str(i) for i in range(self.num_classes)]
        if self.x_test is None or self.y_test is None:
            self.x_test = self.x_train[:0]
            self.y_test = self.y_train[:0]
        if len(self.x_test) != len(self.y_test):
            raise DataError(f"data '{self.name}': test inputs and targets have different lengths")

    @property
    def has_test(self) -> bool:
        return len(self.x_test) > 0

    def without_test(self) -> "DataSplits":
        """The same splits with the test set emptied: what a search receives, so it can never see it."""
        return replace(self, x_test=self.x_train[:0], y_test=self.y_train[:0])

    @property
    def input_shape(self) -> tuple[int, ...]:
        return tuple(int(d) for d in self.x_train.shape[1:])


def split_validation(
    x: np.ndarray, y: np.ndarray, fraction: float, seed: int = 0
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Shuffle deterministically and hold out ``fraction`` of the samples for validation."""
    if not 0.0 < fraction < 1.0:
        raise DataError(
            f"data.validation_split: {fraction} is outside (0, 1) (use e.g. data.validation_split=0.2)"
        )
    n = len(x)
    n_val = max(1, int(round(n * fraction)))
    if n_val >= n:
        raise DataError(
            f"data.validation_split: {fraction} leaves no training samples out of {n}"
        )
    order = np.random.default_rng(seed).permutation(n)
    val, train = order[:n_val], order[n_val:]
    return x[train], y[train], x[val], y[val]


# The test hold-out draws from its own random stream, never the validation split's.
TEST_STREAM = 1


def split_test(
    x: np.ndarray, y: np.ndarray, fraction: float, seed: int = 0, field_name: str = "data.test_split"
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Hold out ``fraction`` of the samples as the test set (0: an empty test set), before validation."""
    try:
        fraction = float(fraction)
    except (TypeError, ValueError):
        raise ConfigError(field_name, f"{fraction!r} is not a number", "use e.g. 0.2, or 0 for no test set") from None
    if not 0.0 <= fraction < 1.0:
        raise ConfigError(field_name, f"{fraction} is outside [0, 1)", "use e.g. 0.2, or 0 for no test set")
    if fraction == 0.0:
        return x, y, x[:0], y[:0]
    n = len(x)
    n_test = max(1, int(round(n * fraction)))
    if n_test >= n - 1:
        raise ConfigError(field_name, f"{fraction} leaves too few of the {n} samples for training and validation",
                          "use a smaller fraction")
    order = np.random.default_rng([seed, TEST_STREAM]).permutation(n)
    test, rest = np.sort(order[:n_test]), np.sort(order[n_test:])
    return x[rest], y[rest], x[test], y[test]


def image_size(value: Any, minimum: int = 1, why: str = "") -> tuple[int, int]:
    """``data.image_size`` as (height, width): an int means a square; ``why`` explains ``minimum``."""
    if isinstance(value, (int, np.integer)) and not isinstance(value, bool):
        dims = (int(value), int(value))
    elif isinstance(value, (list, tuple)) and len(value) == 2:
        dims = (int(value[0]), int(value[1]))
    else:
        raise ConfigError("data.image_size", f"expected an int or [height, width], got {value!r}")
    if min(dims) < minimum:
        raise ConfigError("data.image_size", f"{dims[0]}x{dims[1]} is too small{why}", f"use at least {minimum}")
    return dims
