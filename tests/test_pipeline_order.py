"""Training batches that are a pure function of (seed, trial, epoch): resumed trials reproduce."""

from __future__ import annotations

import math

import numpy as np
import pytest

from archsearch.datasets import pipeline
from archsearch.errors import ConfigError

keras = pytest.importorskip("keras")

N, BATCH = 11, 4  # 3 steps per epoch, the last one partial (3 samples)
KEY = dict(seed=7, trial_id=3, execution=0)


def _ids():
    """Features are the sample ids, so a batch tells which samples it holds."""
    return np.arange(N, dtype=np.float32)[:, None], np.arange(N, dtype=np.int64)


def _noise(xb, yb, rng):
    return xb + rng.normal(size=xb.shape).astype(xb.dtype), yb


def _tf(x, y, initial_epoch, epochs, augment=None, shuffle=True, **key):
    pytest.importorskip("tensorflow")
    return pipeline._tf_epoch_batches(x, y, BATCH, {**KEY, **key}, initial_epoch, epochs, augment, shuffle)


def _py(x, y, initial_epoch, epochs, augment=None, shuffle=True, **key):
    return pipeline._py_epoch_batches(x, y, BATCH, {**KEY, **key}, initial_epoch, epochs, augment, shuffle)


BUILDERS = {"tf": _tf, "py": _py}


def _epochs(ds, steps, initial_epoch, epochs):
    """{epoch: [(x_batch, y_batch), ...]} read the way Keras reads it: one stream, steps per epoch."""
    if isinstance(ds, keras.utils.PyDataset):
        stream = (ds[i] for i in range(steps * (epochs - initial_epoch)))
    else:
        stream = iter(ds)
    out = {}
    for epoch in range(initial_epoch, epochs):
        out[epoch] = [tuple(np.asarray(a) for a in next(stream)) for _ in range(steps)]
    if not isinstance(ds, keras.utils.PyDataset):
        with pytest.raises(StopIteration):  # nothing after the last epoch
            next(stream)
    return out


def _order(batches):
    return np.concatenate([yb for _, yb in batches])


@pytest.mark.parametrize("kind", BUILDERS)
def test_each_epoch_is_a_permutation_with_the_last_batch_partial(kind):
    x, y = _ids()
    ds, steps = BUILDERS[kind](x, y, 0, 3)
    assert steps == math.ceil(N / BATCH) == 3
    epochs = _epochs(ds, steps, 0, 3)
    for epoch, batches in epochs.items():
        assert [len(yb) for _, yb in batches] == [4, 4, 3]
        order = _order(batches)
        assert sorted(order) == list(range(N))  # no sample lost or repeated
        np.testing.assert_array_equal(order, pipeline.epoch_order(N, epoch=epoch, **KEY))
        for xb, yb in batches:
            np.testing.assert_array_equal(xb[:, 0], yb)  # features and targets gathered together
    assert len({tuple(_order(b)) for b in epochs.values()}) == 3  # every epoch its own order


@pytest.mark.parametrize("kind", BUILDERS)
@pytest.mark.parametrize("augment", [None, _noise], ids=["plain", "augmented"])
def test_an_epoch_is_the_same_whatever_epoch_the_fit_started_from(kind, augment):
    x, y = _ids()
    full = _epochs(*BUILDERS[kind](x, y, 0, 4, augment), 0, 4)
    resumed = _epochs(*BUILDERS[kind](x, y, 2, 4, augment), 2, 4)
    assert sorted(resumed) == [2, 3]
    for epoch in (2, 3):
        for (xa, ya), (xb, yb) in zip(full[epoch], resumed[epoch]):
            np.testing.assert_array_equal(ya, yb)
            np.testing.assert_array_equal(xa, xb)
    if augment is not None:  # the noise differs from batch to batch and epoch to epoch
        noise = [xb[:, 0] - yb for e in (2, 3) for xb, yb in full[e]]
        assert all(np.all(np.abs(n) > 0) for n in noise)
        assert len({tuple(np.round(n[:3], 6)) for n in noise}) == len(noise)


def test_iterating_again_gives_the_same_batches():
    x, y = _ids()
    ds, steps = _tf(x, y, 1, 3, _noise)
    first, second = _epochs(ds, steps, 1, 3), _epochs(ds, steps, 1, 3)
    for epoch in (1, 2):
        for (xa, ya), (xb, yb) in zip(first[epoch], second[epoch]):
            np.testing.assert_array_equal(ya, yb)
            np.testing.assert_array_equal(xa, xb)


@pytest.mark.parametrize("augment", [None, _noise], ids=["plain", "augmented"])
def test_the_py_dataset_branch_gives_the_tf_batches(augment):
    x, y = _ids()
    tf_epochs = _epochs(*_tf(x, y, 1, 4, augment), 1, 4)
    py_epochs = _epochs(*_py(x, y, 1, 4, augment), 1, 4)
    for epoch in (1, 2, 3):
        for (xa, ya), (xb, yb) in zip(tf_epochs[epoch], py_epochs[epoch]):
            np.testing.assert_array_equal(ya, yb)
            np.testing.assert_allclose(xa, xb, rtol=0, atol=0)


def test_orders_differ_between_seeds_trials_executions_and_epochs():
    base = dict(seed=1, trial_id=2, epoch=3)
    orders = [
        pipeline.epoch_order(50, **base),
        pipeline.epoch_order(50, **{**base, "seed": 2}),
        pipeline.epoch_order(50, **{**base, "trial_id": 3}),
        pipeline.epoch_order(50, **{**base, "epoch": 4}),
        pipeline.epoch_order(50, **base, execution=1),
    ]
    assert len({tuple(o) for o in orders}) == len(orders)
    np.testing.assert_array_equal(orders[0], pipeline.epoch_order(50, **base))  # and are reproducible
    np.testing.assert_array_equal(pipeline.epoch_order(50, **base), np.random.default_rng([1, 2, 3]).permutation(50))
    np.testing.assert_array_equal(pipeline.epoch_order(50, **base, shuffle=False), np.arange(50))
    assert np.all(np.sort(pipeline.epoch_order(50, seed=-1, trial_id=0, epoch=0)) == np.arange(50))  # negative seed


@pytest.mark.parametrize("kind", BUILDERS)
def test_unshuffled_epochs_keep_the_array_order(kind):
    x, y = _ids()
    epochs = _epochs(*BUILDERS[kind](x, y, 0, 2, shuffle=False), 0, 2)
    for batches in epochs.values():
        np.testing.assert_array_equal(_order(batches), np.arange(N))


def test_the_public_function_checks_its_arguments():
    x, y = _ids()
    with pytest.raises(ConfigError, match="batch_size"):
        pipeline.epoch_batches(x, y, batch_size=0, seed=0, trial_id=0, initial_epoch=0, epochs=1)
    with pytest.raises(ValueError, match="samples"):
        pipeline.epoch_batches(x, y[:-1], batch_size=4, seed=0, trial_id=0, initial_epoch=0, epochs=1)
    ds, steps = pipeline.epoch_batches(x, y, batch_size=4, seed=7, trial_id=3, initial_epoch=1, epochs=2)
    assert steps == 3
    np.testing.assert_array_equal(_order(_epochs(ds, steps, 1, 2)[1]), pipeline.epoch_order(N, epoch=1, **KEY))


def test_the_py_dataset_refuses_to_run_on_without_steps_per_epoch():
    x, y = _ids()
    ds, steps = _py(x, y, 0, 2)
    assert ds.num_batches is None  # a stream: Keras neither restarts nor shuffles it per epoch
    ds[2 * steps]  # a look-ahead batch past the end is served (it is the next epoch's first)
    with pytest.raises(IndexError, match="steps_per_epoch"):
        ds[3 * steps]


# ------------------------------------------------------------------ through model.fit


def _data():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(37, 5)).astype(np.float32)
    y = (x @ rng.normal(size=(5, 1)) + 0.1 * rng.normal(size=(37, 1))).astype(np.float32)
    return x, y


def _model(seed: int):
    keras.utils.set_random_seed(seed)
    model = keras.Sequential([keras.Input((5,)), keras.layers.Dense(8, activation="tanh"), keras.layers.Dense(1)])
    model.compile(optimizer=keras.optimizers.Adam(0.05), loss="mse")
    return model


def _fit(model, x, y, kind, initial_epoch, epochs, augment):
    builder = _py if kind == "py" else _tf
    ds, steps = builder(x, y, initial_epoch, epochs, augment)
    history = model.fit(ds, epochs=epochs, initial_epoch=initial_epoch, steps_per_epoch=steps,
                        shuffle=False, verbose=0)
    return history.history["loss"]


@pytest.mark.parametrize("kind", BUILDERS)
@pytest.mark.parametrize("augment", [None, _noise], ids=["plain", "augmented"])
def test_a_trial_resumed_from_a_checkpoint_trains_like_an_uninterrupted_one(kind, augment, tmp_path):
    x, y = _data()
    straight = _model(0)
    losses = _fit(straight, x, y, kind, 0, 4, augment)

    first = _model(0)
    head = _fit(first, x, y, kind, 0, 2, augment)
    first.save_weights(tmp_path / "checkpoint.weights.h5")
    resumed = _model(123)  # a fresh process: other initial weights, other random state
    resumed.optimizer.build(resumed.trainable_variables)
    resumed.load_weights(tmp_path / "checkpoint.weights.h5")
    tail = _fit(resumed, x, y, kind, 2, 4, augment)

    np.testing.assert_allclose(head, losses[:2], rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(tail, losses[2:], rtol=1e-6, atol=1e-7)
    for a, b in zip(straight.get_weights(), resumed.get_weights()):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("kind", BUILDERS)
def test_fit_takes_exactly_each_epochs_own_batches(kind):
    """Keras keeps one iterator across epochs when given steps_per_epoch; record what it trains on."""
    if keras.backend.backend() != "tensorflow":
        pytest.skip("the recording train_step is written for the TensorFlow backend")

    class Recorder(keras.Sequential):
        def train_step(self, data):
            self.seen.setdefault(self.epoch, []).append(np.asarray(data[1]))
            return super().train_step(data)

    class Epoch(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            self.model.epoch = epoch

    x, y = _ids()
    model = Recorder([keras.Input((1,)), keras.layers.Dense(1)])
    model.seen = {}
    model.compile(optimizer="sgd", loss="mse", run_eagerly=True)
    ds, steps = BUILDERS[kind](x.astype(np.float32), y.astype(np.float32), 1, 4)
    model.fit(ds, epochs=4, initial_epoch=1, steps_per_epoch=steps, shuffle=False, verbose=0, callbacks=[Epoch()])
    assert sorted(model.seen) == [1, 2, 3]
    for epoch, batches in model.seen.items():
        assert [len(b) for b in batches] == [4, 4, 3]
        np.testing.assert_array_equal(np.concatenate(batches).astype(int), pipeline.epoch_order(N, epoch=epoch, **KEY))
