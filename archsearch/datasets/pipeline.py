"""Numpy arrays to batched Keras inputs.

With TensorFlow installed this is a shuffled, batched, prefetched
``tf.data.Dataset``; without it (e.g. a JAX-only machine) a
``keras.utils.PyDataset`` yields the same numpy batches.  Both are imported
lazily so the package imports without TensorFlow.

``epoch_batches`` is the training input of a trial: the sample order and the
augmentation of every epoch are pure functions of (seed, trial, epoch), so a
trial resumed at epoch k (a fresh process, a Hyperband promotion) trains on
exactly the batches an uninterrupted run would have.  ``make_dataset`` stays
for validation data and other plain uses.
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


# ------------------------------------------------------------------ reproducible training epochs

_AUGMENT_STREAM = 0xA06  # keeps the augmentation seeds apart from the order seeds


def _word(value: int) -> int:
    """A seed component for ``np.random.SeedSequence``, which refuses negative integers."""
    return int(value) & 0xFFFFFFFFFFFFFFFF


def epoch_order(n: int, *, seed: int, trial_id: int, epoch: int, shuffle: bool = True,
                execution: int = 0) -> np.ndarray:
    """The sample order of ``epoch`` (0-based, as Keras counts): a pure function of its arguments."""
    if not shuffle:
        return np.arange(n, dtype=np.int64)
    key = [_word(seed), _word(trial_id), _word(epoch)]
    if execution:
        key.append(_word(execution))
    return np.random.default_rng(key).permutation(n).astype(np.int64, copy=False)


def augment_rng(*, seed: int, trial_id: int, epoch: int, batch: int, execution: int = 0) -> np.random.Generator:
    """The random generator handed to ``augment`` for one batch of one epoch."""
    return np.random.default_rng([_word(seed), _word(trial_id), _word(epoch), _word(execution),
                                  _word(batch), _AUGMENT_STREAM])


def _augmented(augment: Augment, xb: np.ndarray, yb: np.ndarray, rng: np.random.Generator):
    xa, ya = augment(xb, yb, rng)
    return np.asarray(xa, dtype=xb.dtype), np.asarray(ya, dtype=yb.dtype)


def epoch_batches(x: np.ndarray, y: np.ndarray, *, batch_size: int, seed: int, trial_id: int,
                  initial_epoch: int, epochs: int, augment: Augment | None = None, shuffle: bool = True,
                  execution: int = 0):
    """Training batches for epochs ``initial_epoch .. epochs-1`` of one trial, and the steps per epoch.

    Returns ``(dataset, steps_per_epoch)``, to be used as::

        model.fit(dataset, epochs=epochs, initial_epoch=initial_epoch,
                  steps_per_epoch=steps_per_epoch, shuffle=False, ...)

    Epoch ``e`` (0-based, as Keras counts) visits every sample once, in the order
    ``epoch_order(len(x), seed=seed, trial_id=trial_id, epoch=e, ...)`` (``np.arange`` when
    not ``shuffle``), cut into ``steps_per_epoch = ceil(len(x) / batch_size)`` batches, the last
    one partial.  Batch ``b`` of epoch ``e`` is augmented with the generator
    ``augment_rng(seed=..., trial_id=..., epoch=e, batch=b, ...)``.  Neither depends on
    ``initial_epoch``, on how often this object was iterated, or on other trials, so a
    resumed or promoted trial sees the batches an uninterrupted run would have seen.
    ``execution`` (0 = the first) gives repeated executions of a trial their own orders.

    The dataset is one stream of all the remaining epochs' batches, aligned on epoch
    boundaries; ``steps_per_epoch`` must be passed to ``fit`` so that Keras keeps one
    iterator across epochs and takes exactly one epoch's batches per epoch.  Build it per
    ``fit`` call; it is cheap (permutations are made lazily, one epoch at a time).

    With TensorFlow this is a ``tf.data.Dataset``; without it, a ``keras.utils.PyDataset``
    with the same batches.
    """
    if int(batch_size) < 1:
        raise ConfigError("trainer.batch_size", f"{batch_size} is not a positive batch size", "use e.g. 32")
    if len(x) != len(y):
        raise ValueError(f"x has {len(x)} samples but y has {len(y)}")
    if len(x) == 0:
        raise ValueError("no training samples")
    if int(initial_epoch) < 0:
        raise ValueError(f"initial_epoch={initial_epoch} is negative")
    key = dict(seed=int(seed), trial_id=int(trial_id), execution=int(execution))
    try:
        import tensorflow as tf  # noqa: F401
    except ImportError:
        builder = _py_epoch_batches
    else:
        builder = _tf_epoch_batches
    return builder(x, y, int(batch_size), key, int(initial_epoch), int(epochs), augment, bool(shuffle))


def _tf_epoch_batches(x: np.ndarray, y: np.ndarray, batch_size: int, key: dict, initial_epoch: int,
                      epochs: int, augment: Augment | None, shuffle: bool):
    import tensorflow as tf

    n = len(x)
    steps = math.ceil(n / batch_size)

    def order(epoch: np.ndarray) -> np.ndarray:
        return epoch_order(n, epoch=int(epoch), shuffle=shuffle, **key)

    def one_epoch(epoch):
        rows = tf.numpy_function(order, [epoch], tf.int64, stateful=False)
        rows.set_shape([n])
        batch = tf.data.Dataset.range(steps)
        return batch.map(lambda b: (epoch, b, rows[b * batch_size:tf.minimum((b + 1) * batch_size, n)]))

    # One permutation is made per epoch, when the pipeline reaches it: memory stays O(n).
    ds = tf.data.Dataset.range(initial_epoch, max(initial_epoch, epochs)).flat_map(one_epoch)
    with tf.device("/cpu:0"):  # the input pipeline runs on the CPU; keep the arrays off the GPU
        xt, yt = tf.convert_to_tensor(x), tf.convert_to_tensor(y)
    if augment is None:
        ds = ds.map(lambda e, b, rows: (tf.gather(xt, rows), tf.gather(yt, rows)),
                    num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    else:
        def apply(xb: np.ndarray, yb: np.ndarray, epoch: np.ndarray, batch: np.ndarray):
            rng = augment_rng(epoch=int(epoch), batch=int(batch), **key)
            return _augmented(augment, xb, yb, rng)

        def wrapped(e, b, rows):
            xb, yb = tf.gather(xt, rows), tf.gather(yt, rows)
            # Each batch's randomness comes from its own (epoch, batch) seed, so parallel calls
            # stay reproducible; deterministic=True keeps the batches in order.
            xa, ya = tf.numpy_function(apply, [xb, yb, e, b], [xb.dtype, yb.dtype], stateful=False)
            xa.set_shape(xb.shape)  # numpy_function forgets shapes; Keras layers need them
            ya.set_shape(yb.shape)
            return xa, ya

        ds = ds.map(wrapped, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    return ds.prefetch(tf.data.AUTOTUNE), steps


def _py_epoch_batches(x: np.ndarray, y: np.ndarray, batch_size: int, key: dict, initial_epoch: int,
                      epochs: int, augment: Augment | None, shuffle: bool):
    import keras

    n = len(x)
    steps = math.ceil(n / batch_size)
    total = steps * max(0, epochs - initial_epoch)

    class EpochBatches(keras.utils.PyDataset):
        """Batch ``i`` is batch ``i % steps`` of epoch ``initial_epoch + i // steps``.

        A pure function of ``i``: no state advances in ``on_epoch_end`` (Keras also calls it
        before the first epoch, and ``on_epoch_begin`` when it peeks a batch to build the
        model), so counting calls would drift.  ``num_batches`` is None (a stream), so Keras
        neither restarts it each epoch nor shuffles its indices; ``fit`` needs ``steps_per_epoch``.
        """

        def __init__(self) -> None:
            super().__init__()
            self.steps_per_epoch = steps
            self._orders: dict[int, np.ndarray] = {}

        @property
        def num_batches(self):
            return None

        def _order(self, epoch: int) -> np.ndarray:
            rows = self._orders.get(epoch)
            if rows is None:
                rows = epoch_order(n, epoch=epoch, shuffle=shuffle, **key)
                self._orders = {**{k: v for k, v in self._orders.items() if k == epoch - 1}, epoch: rows}
            return rows

        def __getitem__(self, index: int):
            index = int(index)
            # A batch or two past the end is fine (look-ahead iterators); a whole epoch past
            # it means fit() was called without steps_per_epoch and would never end an epoch.
            if index < 0 or index >= total + steps:
                raise IndexError(f"batch {index} is past the {total} batches of epochs "
                                 f"{initial_epoch}..{epochs - 1}: pass steps_per_epoch={steps} to fit()")
            epoch, batch = initial_epoch + index // steps, index % steps
            rows = self._order(epoch)[batch * batch_size:(batch + 1) * batch_size]
            xb, yb = x[rows], y[rows]
            if augment is not None:
                xb, yb = _augmented(augment, xb, yb, augment_rng(epoch=epoch, batch=batch, **key))
            return xb, yb

    return EpochBatches(), steps
