"""Numpy arrays to batched Keras inputs.

With TensorFlow installed this is a shuffled, batched, prefetched
``tf.data.Dataset``; without it (e.g. a JAX-only machine) a
``keras.utils.PyDataset`` yields the same numpy batches.  Both are imported
lazily so the package imports without TensorFlow.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

from archsearch.errors import ConfigError

# (x_batch, y_batch, rng) -> (x_batch, y_batch), on numpy arrays
Augment = Callable[[np.ndarray, np.ndarray, np.random.Generator], tuple[np.ndarray, np.ndarray]]


def make_dataset(x: np.ndarray, y: np.ndarray, *, batch_size: int, shuffle: bool, seed: int = 0,
                 augment: Augment | None = None):
    """Batches of ``(x, y)``, reshuffled every epoch when ``shuffle``; ``augment`` edits each batch."""
    if int(batch_size) < 1:
        raise ConfigError("trainer.batch_size", f"{batch_size} is not a positive batch size", "use e.g. 32")
    try:
        import tensorflow as tf
    except ImportError:
        return _py_dataset(x, y, int(batch_size), shuffle, seed, augment)

    ds = tf.data.Dataset.from_tensor_slices((x, y))
    if shuffle:
        ds = ds.shuffle(len(x), seed=seed, reshuffle_each_iteration=True)
    ds = ds.batch(int(batch_size))
    if augment is not None:
        rng = np.random.default_rng(seed)

        def apply(xb: np.ndarray, yb: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
            xa, ya = augment(xb, yb, rng)
            return np.asarray(xa, dtype=xb.dtype), np.asarray(ya, dtype=yb.dtype)

        def wrapped(xb, yb):
            xa, ya = tf.numpy_function(apply, [xb, yb], [xb.dtype, yb.dtype], stateful=True)
            xa.set_shape(xb.shape)  # numpy_function forgets shapes; Keras layers need them
            ya.set_shape(yb.shape)
            return xa, ya

        ds = ds.map(wrapped)  # sequential: the shared rng keeps augmentation reproducible
    return ds.prefetch(tf.data.AUTOTUNE)


def _py_dataset(x: np.ndarray, y: np.ndarray, batch_size: int, shuffle: bool, seed: int,
                augment: Augment | None):
    import keras

    class ArrayBatches(keras.utils.PyDataset):
        """Numpy batches for backends without tf.data."""

        def __init__(self) -> None:
            super().__init__()
            self.rng = np.random.default_rng(seed)
            self.order = self.rng.permutation(len(x)) if shuffle else np.arange(len(x))

        def __len__(self) -> int:
            return math.ceil(len(x) / batch_size)

        def __getitem__(self, index: int):
            rows = self.order[index * batch_size:(index + 1) * batch_size]
            xb, yb = x[rows], y[rows]
            if augment is not None:
                xb, yb = augment(xb, yb, self.rng)
            return xb, yb

        def on_epoch_end(self) -> None:
            if shuffle:
                self.order = self.rng.permutation(len(x))

    return ArrayBatches()
