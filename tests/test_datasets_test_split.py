"""Every dataset has a test split, disjoint from training and validation, that the search never sees."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from archsearch.datasets import load_data
from archsearch.errors import ConfigError, DataError


def _rows(x: np.ndarray) -> set[bytes]:
    return {sample.tobytes() for sample in np.ascontiguousarray(x)}


def assert_disjoint_test(splits, expected: int) -> None:
    """``expected`` test samples, none of them equal to a training or validation sample."""
    assert len(splits.x_test) == expected == len(splits.y_test)
    assert splits.x_test.shape[1:] == splits.x_train.shape[1:]
    assert splits.x_test.dtype == splits.x_train.dtype
    seen = _rows(splits.x_train) | _rows(splits.x_val)
    assert not _rows(splits.x_test) & seen


def test_shapes_test_set_comes_from_another_stream():
    cfg = {"name": "shapes", "num_samples": 120, "test_samples": 40, "image_size": 16, "num_classes": 4,
           "validation_split": 0.25, "seed": 3}
    splits = load_data(cfg)
    assert_disjoint_test(splits, 40)
    assert set(np.unique(splits.y_test)) == {0, 1, 2, 3}
    # more test images never change what the search trains and validates on
    more = load_data({**cfg, "test_samples": 80})
    np.testing.assert_array_equal(more.x_train, splits.x_train)
    np.testing.assert_array_equal(more.x_val, splits.x_val)
    assert load_data({**cfg, "test_samples": 0}).has_test is False


def test_documents_test_pages_come_from_another_stream():
    splits = load_data({"name": "documents", "num_samples": 10, "test_samples": 4, "image_size": 32})
    assert_disjoint_test(splits, 4)
    assert splits.y_test.shape[1:] == splits.y_train.shape[1:]


@pytest.mark.parametrize("name", ["mnist", "fashion_mnist", "cifar10"])
def test_keras_datasets_keep_the_official_test_split(monkeypatch, name):
    keras = pytest.importorskip("keras")
    rng = np.random.default_rng(0)
    shape = (32, 32, 3) if name == "cifar10" else (28, 28)
    train = (rng.integers(0, 256, (200, *shape), dtype=np.uint8), np.arange(200) % 10)
    test = (rng.integers(0, 256, (30, *shape), dtype=np.uint8), np.arange(30) % 10)
    monkeypatch.setattr(getattr(keras.datasets, name), "load_data", lambda: (train, test))
    splits = load_data({"name": name, "validation_split": 0.1, "max_samples": 100, "seed": 0})
    assert_disjoint_test(splits, 30)  # max_samples subsamples the training split only
    np.testing.assert_allclose(splits.x_test[..., 0] if name != "cifar10" else splits.x_test,
                               test[0].astype(np.float32) / 255.0)
    np.testing.assert_array_equal(splits.y_test, test[1])


def _classes(rng: np.random.Generator, n: int, size: int = 6) -> tuple[np.ndarray, np.ndarray]:
    return rng.integers(0, 256, (n, size, size), dtype=np.uint8), np.arange(n) % 3


def test_npz_in_the_keras_datasets_layout_needs_no_key_overrides(tmp_path):
    rng = np.random.default_rng(0)
    (x_train, y_train), (x_test, y_test) = _classes(rng, 40), _classes(rng, 12)
    path = tmp_path / "mnist.npz"
    np.savez(path, x_train=x_train, y_train=y_train, x_test=x_test, y_test=y_test)
    # the values conf/data/npz.yaml gives, as the CLI passes them
    splits = load_data({"name": "npz", "path": str(path), "x_key": "x", "y_key": "y", "validation_split": 0.25,
                        "test_split": 0.0, "seed": 0})
    assert len(splits.x_train) == 30 and len(splits.x_val) == 10
    assert_disjoint_test(splits, 12)
    np.testing.assert_array_equal(splits.y_test, y_test)


def test_npz_test_split_holds_samples_out_and_explicit_keys_still_win(tmp_path):
    rng = np.random.default_rng(1)
    x, y = _classes(rng, 60)
    path = tmp_path / "arrays.npz"
    np.savez(path, x=x, y=y, x_train=x[:10], y_train=y[:10])
    base = {"name": "npz", "path": str(path), "validation_split": 0.25, "seed": 0}
    none = load_data(base)
    assert not none.has_test and len(none.x_train) + len(none.x_val) == 60  # the default: nothing held out
    splits = load_data({**base, "test_split": 0.2})
    assert len(splits.x_train) + len(splits.x_val) == 48
    assert_disjoint_test(splits, 12)
    chosen = load_data({**base, "x_key": "x_train", "y_key": "y_train"})  # typed keys beat the keras layout
    assert len(chosen.x_train) + len(chosen.x_val) == 10
    with pytest.raises(ConfigError, match=r"data.test_split: 1.5 is outside"):
        load_data({**base, "test_split": 1.5})


def test_npz_with_only_one_test_array_is_refused(tmp_path):
    rng = np.random.default_rng(2)
    x, y = _classes(rng, 20)
    path = tmp_path / "arrays.npz"
    np.savez(path, x=x, y=y, x_test=x[:3])
    with pytest.raises(DataError, match="x_test'/'y_test'.*data.test_split"):
        load_data({"name": "npz", "path": str(path), "validation_split": 0.25})


def _pages(root: Path, n: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    for i in range(n):
        mask = np.zeros((16, 16), np.uint8)
        r, c = rng.integers(0, 8, 2)
        mask[r:r + 8, c:c + 8] = 1
        image = rng.integers(150, 256, (16, 16, 3), dtype=np.uint8)
        image[mask == 1] = 20
        for sub, picture in (("images", image), ("masks", mask)):
            (root / sub).mkdir(parents=True, exist_ok=True)
            assert cv2.imwrite(str(root / sub / f"p{i}.png"), picture)


def test_folder_reads_its_test_folder(tmp_path):
    _pages(tmp_path, 10, seed=0)
    _pages(tmp_path / "test", 4, seed=1)
    cfg = {"name": "folder", "path": str(tmp_path), "image_size": 16, "validation_split": 0.2}
    splits = load_data(cfg)
    assert len(splits.x_train) + len(splits.x_val) == 10
    assert_disjoint_test(splits, 4)


def test_folder_without_test_folder_uses_test_split(tmp_path):
    _pages(tmp_path, 10, seed=0)
    cfg = {"name": "folder", "path": str(tmp_path), "image_size": 16, "validation_split": 0.25}
    assert not load_data(cfg).has_test
    splits = load_data({**cfg, "test_split": 0.2})
    assert len(splits.x_train) + len(splits.x_val) == 8
    assert_disjoint_test(splits, 2)


def test_the_search_data_holds_no_test_samples(tmp_path, monkeypatch):
    from omegaconf import OmegaConf

    from archsearch.cli.app import prepare

    cfg = OmegaConf.create({
        "data": {"name": "shapes", "num_samples": 40, "test_samples": 8, "image_size": 16, "num_classes": 2,
                 "validation_split": 0.25, "seed": 0},
        "model": {"name": "mlp", "builder": "hypermodels.mlp:build", "loss": "sparse_categorical_crossentropy",
                  "metrics": ["accuracy"], "space": {"units_1": {"type": "fixed", "value": 8}}},
        "tuner": {"name": "random", "max_trials": 1, "seed": 0},
        "trainer": {"epochs": 1}, "executor": {"name": "inline"}, "objective": "val_accuracy",
        "overwrite": True,
    })
    monkeypatch.chdir(tmp_path)  # outside @hydra.main the run folder is outputs/archsearch
    tuner, data, splits, _ = prepare(cfg)
    try:
        assert splits.has_test and len(splits.x_test) == 8
        assert not data.splits.has_test and len(data.splits.x_train) == len(splits.x_train)
    finally:
        tuner._lock.release()
