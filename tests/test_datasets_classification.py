"""Classification data: shapes, keras.datasets errors, npz, dispatch and the input pipeline."""

from __future__ import annotations

import sys

import numpy as np
import pytest

from archsearch.datasets import DataSplits, available_datasets, load_data
from archsearch.datasets import keras_datasets, npz, pipeline, shapes
from archsearch.errors import ConfigError, DataError

SMALL = {"name": "shapes", "num_samples": 120, "image_size": 16, "num_classes": 4, "validation_split": 0.25, "seed": 3}


# ----------------------------------------------------------------------------- shapes

def test_shapes_is_deterministic_per_seed_and_seeds_differ():
    a, b = load_data(SMALL), load_data(SMALL)
    np.testing.assert_array_equal(a.x_train, b.x_train)
    np.testing.assert_array_equal(a.y_val, b.y_val)
    other = load_data({**SMALL, "seed": 4})
    assert not np.array_equal(a.x_train, other.x_train)


def test_shapes_arrays_shapes_ranges_and_balance():
    s = load_data({**SMALL, "num_samples": 300, "num_classes": 6, "image_size": 20})
    assert isinstance(s, DataSplits) and s.task == "classification"
    assert s.x_train.shape == (225, 20, 20, 1) and s.x_val.shape == (75, 20, 20, 1)
    assert s.x_train.dtype == np.float32 and 0.0 <= s.x_train.min() and s.x_train.max() <= 1.0
    assert s.x_train.std() > 0.1  # shapes, not a blank canvas
    assert np.issubdtype(s.y_train.dtype, np.integer)
    counts = np.bincount(np.concatenate([s.y_train, s.y_val]), minlength=6)
    assert counts.tolist() == [50] * 6
    assert s.num_classes == 6 and s.class_names[:4] == ["circle", "rectangle", "triangle", "cross"]
    assert s.input_shape == (20, 20, 1)


def test_shapes_generation_gives_the_sizes_asked_for():  # its speed: bench/data_speed_bench.py
    x, y = shapes.generate(1200, 28, 4, seed=0)
    assert x.shape == (1200, 28, 28, 1) and y.shape == (1200,)


@pytest.mark.parametrize("key,value", [("num_classes", 9), ("num_classes", 1), ("image_size", 4), ("num_samples", "many")])
def test_shapes_bad_settings_name_the_field(key, value):
    with pytest.raises(ConfigError, match=f"data.{key}"):
        load_data({**SMALL, key: value})


def test_shapes_are_learnable_by_a_small_mlp():
    keras = pytest.importorskip("keras")
    from hypermodels import mlp

    class HP(dict):
        def get(self, name, default=None):
            return dict.get(self, name, default)

    s = load_data({"name": "shapes", "seed": 0})
    keras.utils.set_random_seed(0)
    model = mlp.build(HP(num_layers=2, units_1=128, units_2=64), input_shape=s.input_shape,
                      num_classes=s.num_classes)
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    train = pipeline.make_dataset(s.x_train, s.y_train, batch_size=32, shuffle=True, seed=0)
    val = pipeline.make_dataset(s.x_val, s.y_val, batch_size=32, shuffle=False, seed=0)
    model.fit(train, epochs=3, verbose=0, shuffle=False)  # the dataset shuffles itself
    _, accuracy = model.evaluate(val, verbose=0)
    assert accuracy > 0.5  # chance is 0.25


# ----------------------------------------------------------------------------- dispatch

def test_unknown_dataset_lists_the_choices():
    with pytest.raises(ConfigError) as info:
        load_data({"name": "imagenet"})
    message = str(info.value)
    assert message.startswith("data.name") and "imagenet" in message
    for name in ("shapes", "mnist", "fashion_mnist", "cifar10", "npz", "documents", "folder"):
        assert name in message and name in available_datasets()


# ----------------------------------------------------------------------------- keras.datasets

def test_keras_dataset_download_failure_says_what_to_do(monkeypatch):
    keras = pytest.importorskip("keras")

    def offline():
        raise Exception("URL fetch failure on https://storage.googleapis.com/...: None -- [Errno -3]")

    monkeypatch.setattr(keras.datasets.fashion_mnist, "load_data", offline)
    with pytest.raises(DataError) as info:
        load_data({"name": "fashion_mnist", "validation_split": 0.1, "seed": 0})
    message = str(info.value)
    assert "internet" in message and "data=shapes" in message and "data=npz" in message


def test_keras_dataset_scaling_channel_axis_and_max_samples(monkeypatch):
    keras = pytest.importorskip("keras")
    rng = np.random.default_rng(0)
    train = (rng.integers(0, 256, (50, 32, 32, 3), dtype=np.uint8), rng.integers(0, 10, (50, 1)))
    monkeypatch.setattr(keras.datasets.cifar10, "load_data", lambda: (train, (train[0][:1], train[1][:1])))
    # the loader itself: 20 random labels of 10 classes leave a validation class unseen in training,
    # which load_data's checks refuse (tests/test_data_checks.py)
    s = keras_datasets.load({"name": "cifar10", "validation_split": 0.2, "max_samples": 20, "seed": 0})
    assert s.x_train.shape == (16, 32, 32, 3) and s.x_val.shape == (4, 32, 32, 3)
    assert s.x_train.max() <= 1.0 and s.y_train.ndim == 1 and s.class_names[0] == "airplane"
    gray = (rng.integers(0, 256, (30, 28, 28), dtype=np.uint8), rng.integers(0, 10, 30))
    monkeypatch.setattr(keras.datasets.mnist, "load_data", lambda: (gray, gray))
    assert keras_datasets.load({"name": "mnist", "validation_split": 0.1}).input_shape == (28, 28, 1)


# ----------------------------------------------------------------------------- npz

def _cfg(path, **extra):
    return {"name": "npz", "path": str(path), "x_key": "x", "y_key": "y", "validation_split": 0.25, "seed": 0, **extra}


def test_npz_classification_from_uint8_grayscale(tmp_path):
    rng = np.random.default_rng(0)
    path = tmp_path / "arrays.npz"
    np.savez(path, x=rng.integers(0, 256, (40, 12, 12), dtype=np.uint8), y=rng.integers(0, 3, 40))
    s = load_data(_cfg(path))
    assert s.task == "classification" and s.num_classes == 3
    assert s.x_train.shape == (30, 12, 12, 1) and s.x_train.dtype == np.float32
    assert 0.0 <= s.x_train.min() and s.x_train.max() <= 1.0


def test_npz_own_validation_and_custom_keys(tmp_path):
    path = tmp_path / "arrays.npz"
    np.savez(path, images=np.zeros((10, 5), np.float32), labels=np.arange(10) % 2,
             x_val=np.ones((4, 5), np.float32), y_val=np.array([0, 1, 1, 0]))
    s = npz.load(_cfg(path, x_key="images", y_key="labels"))
    assert len(s.x_train) == 10 and len(s.x_val) == 4 and s.input_shape == (5,)


def test_npz_segmentation_masks(tmp_path):
    rng = np.random.default_rng(1)
    ids = rng.integers(0, 3, (8, 6, 6))  # 0 = background, classes 1 and 2
    path = tmp_path / "seg.npz"
    np.savez(path, x=rng.random((8, 6, 6, 3)).astype(np.float32), y=ids)
    s = npz.load(_cfg(path))
    assert s.task == "segmentation" and s.num_classes == 2
    assert s.y_train.shape == (6, 6, 6, 2) and s.y_train.dtype == np.float32
    both = np.concatenate([s.y_train, s.y_val])
    assert both.sum() == (ids > 0).sum()  # one channel per non-background class
    with_bg = npz.load(_cfg(path, include_background=True))
    assert with_bg.num_classes == 3 and np.all(with_bg.y_train.sum(-1) == 1.0)
    onehot = tmp_path / "onehot.npz"
    np.savez(onehot, x=rng.random((8, 6, 6)).astype(np.float32), y=rng.random((8, 6, 6, 4)).astype(np.float32))
    kept = npz.load(_cfg(onehot))
    assert kept.num_classes == 4 and kept.input_shape == (6, 6, 1) and kept.y_train.shape[-1] == 4


def test_npz_missing_path_file_and_keys(tmp_path):
    with pytest.raises(ConfigError, match="data.path"):
        load_data({"name": "npz", "path": "???"})
    missing = tmp_path / "nope.npz"
    with pytest.raises(DataError) as info:
        load_data(_cfg(missing))
    assert str(missing) in str(info.value) and "data.path=" in str(info.value)
    path = tmp_path / "arrays.npz"
    np.savez(path, images=np.zeros((4, 3)), labels=np.zeros(4))
    with pytest.raises(DataError) as info:
        load_data(_cfg(path))
    assert "images" in str(info.value) and "labels" in str(info.value) and "x_key" in str(info.value)


@pytest.mark.parametrize(
    "arrays,match",
    [
        ({"x": np.zeros((5, 3)), "y": np.zeros(4, int)}, "5 samples"),
        ({"x": np.zeros((0, 3)), "y": np.zeros(0, int)}, "empty"),
        ({"x": np.zeros((4, 3)), "y": np.array([0.5, 1, 0, 1])}, "integer"),
        ({"x": np.zeros((4, 3)), "y": np.zeros((4, 2, 2))}, "cannot tell the task"),
        ({"x": np.zeros((4, 3)), "y": np.zeros(4, int), "x_val": np.zeros((2, 3))}, "only one of"),
    ],
)
def test_npz_bad_arrays_explain_themselves(tmp_path, arrays, match):
    path = tmp_path / "bad.npz"
    np.savez(path, **arrays)
    with pytest.raises(DataError, match=match):
        npz.load(_cfg(path))


def test_npz_not_an_archive(tmp_path):
    path = tmp_path / "broken.npz"
    path.write_text("not a zip")
    with pytest.raises(DataError, match="numpy.savez"):
        npz.load(_cfg(path))


# ----------------------------------------------------------------------------- pipeline

def _arrays(n=10):
    x = np.arange(n * 4 * 4, dtype=np.float32).reshape(n, 4, 4, 1)
    return x, np.arange(n, dtype=np.int64)


def _flip(xb, yb, rng):
    return xb[:, ::-1] + 1000.0, yb


def _batches(dataset):
    items = (dataset[i] for i in range(len(dataset))) if hasattr(dataset, "__getitem__") else dataset
    return [(np.asarray(xb), np.asarray(yb)) for xb, yb in items]


def test_tf_pipeline_batches_shuffles_and_augments():
    pytest.importorskip("tensorflow")
    x, y = _arrays()
    plain = _batches(pipeline.make_dataset(x, y, batch_size=4, shuffle=False, seed=0))
    assert [b[0].shape for b in plain] == [(4, 4, 4, 1), (4, 4, 4, 1), (2, 4, 4, 1)]
    np.testing.assert_array_equal(np.concatenate([b[1] for b in plain]), y)
    shuffled = _batches(pipeline.make_dataset(x, y, batch_size=4, shuffle=True, seed=0))
    order = np.concatenate([b[1] for b in shuffled])
    assert sorted(order) == list(y) and list(order) != list(y)
    ds = pipeline.make_dataset(x, y, batch_size=4, shuffle=False, seed=0, augment=_flip)
    assert tuple(ds.element_spec[0].shape) == (None, 4, 4, 1)  # static shape kept for Keras
    augmented = _batches(ds)
    np.testing.assert_array_equal(augmented[0][0], x[:4, ::-1] + 1000.0)
    np.testing.assert_array_equal(augmented[0][1], y[:4])
    keras = pytest.importorskip("keras")
    model = keras.Sequential([keras.Input((4, 4, 1)), keras.layers.Flatten(), keras.layers.Dense(10, "softmax")])
    model.compile(optimizer="sgd", loss="sparse_categorical_crossentropy")
    history = model.fit(ds, epochs=1, verbose=0, shuffle=False)  # Keras accepts the augmented batches
    assert np.isfinite(history.history["loss"][0])


def test_pipeline_without_tensorflow_uses_a_py_dataset(monkeypatch):
    keras = pytest.importorskip("keras")
    monkeypatch.setitem(sys.modules, "tensorflow", None)  # `import tensorflow` now fails
    x, y = _arrays()
    ds = pipeline.make_dataset(x, y, batch_size=4, shuffle=True, seed=0, augment=_flip)
    assert isinstance(ds, keras.utils.PyDataset) and len(ds) == 3
    batches = _batches(ds)
    assert [b[0].shape for b in batches] == [(4, 4, 4, 1), (4, 4, 4, 1), (2, 4, 4, 1)]
    ids = np.concatenate([b[1] for b in batches])
    assert sorted(ids) == list(y) and list(ids) != list(y)
    np.testing.assert_array_equal(batches[0][0], x[batches[0][1]][:, ::-1] + 1000.0)


def test_pipeline_rejects_bad_batch_size():
    x, y = _arrays()
    with pytest.raises(ConfigError, match="batch_size"):
        pipeline.make_dataset(x, y, batch_size=0, shuffle=False, seed=0)
