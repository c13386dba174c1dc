"""Data checks before the first trial: NaN/Inf, unscaled images, broken labels, unreadable files."""

from __future__ import annotations

import sqlite3

import numpy as np
import pytest

from archsearch.datasets import DataSplits, load_data
from archsearch.datasets.checks import check_splits
from archsearch.errors import DataError


def _images(n: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).random((n, 4, 4, 1)).astype(np.float32)


def _classification(y_train=None, y_val=None, x_train=None, x_val=None, **extra) -> DataSplits:
    y_train = np.arange(12) % 3 if y_train is None else np.asarray(y_train)
    y_val = np.arange(6) % 3 if y_val is None else np.asarray(y_val)
    x_train = _images(len(y_train)) if x_train is None else x_train
    x_val = _images(len(y_val), 1) if x_val is None else x_val
    num_classes = extra.pop("num_classes", max(2, int(max(y_train.max(), y_val.max())) + 1))
    return DataSplits("npz", "classification", x_train, y_train, x_val, y_val, num_classes, **extra)


def _segmentation(y_train=None, y_val=None, x_train=None) -> DataSplits:
    rng = np.random.default_rng(2)
    y_train = (rng.random((8, 4, 4, 2)) > 0.5).astype(np.float32) if y_train is None else y_train
    y_val = (rng.random((3, 4, 4, 2)) > 0.5).astype(np.float32) if y_val is None else y_val
    x_train = _images(len(y_train)) if x_train is None else x_train
    return DataSplits("folder", "segmentation", x_train, y_train, _images(len(y_val), 1), y_val, 2)


def _refused(splits: DataSplits) -> str:
    with pytest.raises(DataError) as info:
        check_splits(splits)
    return str(info.value)


# ----------------------------------------------------------------------------- clean data passes


def test_clean_data_passes():
    check_splits(_classification())
    check_splits(_classification(y_train=[0, 2, 0, 2], y_val=[2, 0]))  # a missing id is fine
    check_splits(_segmentation())


def test_flat_features_may_have_any_finite_range():
    x = np.random.default_rng(0).normal(0, 500, (12, 5)).astype(np.float32)
    check_splits(_classification(x_train=x, x_val=x[:6]))


def test_builtin_generated_datasets_pass():
    shapes = load_data({"name": "shapes", "num_samples": 40, "image_size": 16, "num_classes": 4,
                        "validation_split": 0.25, "seed": 0})
    assert shapes.num_classes == 4
    pages = load_data({"name": "documents", "num_samples": 5, "image_size": 32, "validation_split": 0.4, "seed": 0})
    assert pages.task == "segmentation"


# ----------------------------------------------------------------------------- 1. NaN / Inf


def test_nan_in_training_images_names_split_count_index_and_fix():
    x = _images(12)
    x[7, 1, 1, 0] = np.nan
    x[9, 0, 0, 0] = np.inf
    message = _refused(_classification(x_train=x))
    assert message == ("data 'npz': 2 of 12 training samples contain NaN or Inf values in x "
                       "(first at index 7); clean or drop them")


def test_inf_in_validation_masks_is_named():
    y_val = np.zeros((3, 4, 4, 2), np.float32)
    y_val[2, 0, 0, 1] = -np.inf
    message = _refused(_segmentation(y_val=y_val))
    assert "1 of 3 validation samples" in message and "in y" in message and "index 2" in message
    assert "clean or drop them" in message


def test_nan_in_float_labels_is_named():
    message = _refused(_classification(y_val=np.array([0, 1, np.nan, 2, 0, 1])))
    assert "1 of 6 validation samples contain NaN or Inf values in y (first at index 2)" in message


# ----------------------------------------------------------------------------- 2. image range


def test_float_images_in_0_255_are_refused_with_the_fix():
    x = _images(12) * 255.0
    message = _refused(_classification(x_train=x))
    assert "training images hold values up to 25" in message and "0..1" in message
    assert "divide them by 255" in message and "uint8" in message


def test_grayscale_images_without_channel_axis_are_checked_too():
    message = _refused(_classification(x_val=_images(6)[..., 0] * 100.0, x_train=_images(12)[..., 0]))
    assert "validation images" in message and "divide them by 255" in message


def test_standardised_images_are_refused_with_a_rescale_fix():
    x = _images(12) * 4.0 - 2.0
    message = _refused(_classification(x_train=x))
    assert "training images hold values from -" in message and "rescale them" in message


def test_tiny_overshoot_is_tolerated():
    x = _images(12)
    x[0, 0, 0, 0] = 1.004
    check_splits(_classification(x_train=x))


# ----------------------------------------------------------------------------- 3. one class


def test_a_single_training_class_is_refused():
    message = _refused(_classification(y_train=np.full(12, 1), y_val=[1, 1, 0]))
    assert "all 12 training samples have class 1" in message and "at least 2 classes" in message


def test_a_single_class_uses_the_class_name():
    splits = _classification(y_train=np.zeros(12, int), y_val=[0, 0], num_classes=2, class_names=["cat", "dog"])
    assert "class 'cat' (id 0)" in _refused(splits)


# ----------------------------------------------------------------------------- 4. class ids


def test_a_stray_huge_class_id_is_refused():
    y = np.arange(12) % 3
    y[5] = 999
    message = _refused(_classification(y_train=y))
    assert "class id 999 (1 sample) is far above the other class ids (0..2)" in message
    assert "1000-way output for 4 classes" in message and "0..K-1" in message and "remap" in message


def test_negative_class_ids_are_refused():
    message = _refused(_classification(y_val=np.array([0, 1, -1, 2, -1, 0])))
    assert "2 of 6 validation labels are negative class ids (min -1)" in message and "0..K-1" in message


def test_fractional_class_ids_are_refused():
    message = _refused(_classification(y_train=np.array([0, 1, 2, 1.5] * 3)))
    assert "3 of 12 training labels are not whole numbers (e.g. 1.5 at index 3)" in message
    assert "integer class ids" in message


def test_class_ids_beyond_num_classes_are_refused():
    message = _refused(_classification(y_train=np.arange(12) % 4, y_val=np.arange(4), num_classes=3))
    assert "class id 3 is out of range for the 3 classes" in message


# ----------------------------------------------------------------------------- 5. unseen classes


def test_validation_classes_never_seen_in_training_are_named_with_counts():
    message = _refused(_classification(y_train=np.arange(12) % 3, y_val=[0, 3, 3, 4, 1]))
    assert "validation labels hold 2 classes never seen in the training labels: 3 (2 samples), 4 (1 sample)" \
        in message
    assert "add training samples" in message


def test_unseen_class_uses_the_class_name():
    splits = _classification(y_train=np.arange(12) % 2, y_val=[0, 2], num_classes=3,
                             class_names=["circle", "square", "star"])
    assert "a class never seen in the training labels: 'star' (id 2, 1 sample)" in _refused(splits)


# ----------------------------------------------------------------------------- segmentation


def test_mask_values_outside_0_1_are_refused():
    message = _refused(_segmentation(y_train=np.full((8, 4, 4, 2), 255.0, np.float32)))
    assert "training masks hold values from 255 to 255" in message and "divide 0..255 masks by 255" in message


def test_label_checks_do_not_apply_to_masks():
    check_splits(_segmentation(y_train=np.zeros((8, 4, 4, 2), np.float32)))  # one "class", no ids


# ----------------------------------------------------------------------------- through load_data (npz)


def _npz(tmp_path, **arrays) -> dict:
    path = tmp_path / "x.npz"
    np.savez(path, **arrays)
    return {"name": "npz", "path": str(path), "x_key": "x", "y_key": "y", "validation_split": 0.2, "seed": 0}


def _load_refused(cfg: dict) -> str:
    with pytest.raises(DataError) as info:
        load_data(cfg)
    return str(info.value)


def test_npz_nan_images_are_counted_by_file_index(tmp_path):
    x = np.random.default_rng(0).random((120, 6, 6)).astype(np.float32)
    x[7, 2, 2] = np.nan
    x[80, 0, 1] = np.nan
    cfg = _npz(tmp_path, x=x, y=np.arange(120) % 3)
    message = _load_refused(cfg)
    assert message == (f"data 'npz': 2 of 120 samples in array 'x' of {cfg['path']} contain NaN or Inf values "
                       "(first at index 7); clean or drop them")


def test_npz_inf_in_own_validation_labels(tmp_path):
    cfg = _npz(tmp_path, x=_images(12), y=np.arange(12) % 3, x_val=_images(3), y_val=np.array([0.0, np.inf, 1.0]))
    message = _load_refused(cfg)
    assert "1 of 3 samples in array 'y_val'" in message and "(first at index 1)" in message


def test_npz_float_images_in_0_255(tmp_path):
    x = np.random.default_rng(0).random((20, 6, 6)).astype(np.float32) * 255.0
    message = _load_refused(_npz(tmp_path, x=x, y=np.arange(20) % 2))
    assert "data 'npz': the training images hold values up to" in message and "divide them by 255" in message


def test_npz_uint8_images_are_still_scaled(tmp_path):
    x = np.random.default_rng(0).integers(0, 256, (20, 6, 6), dtype=np.uint8)
    splits = load_data(_npz(tmp_path, x=x, y=np.arange(20) % 2))
    assert splits.x_train.max() <= 1.0


def test_npz_single_class(tmp_path):
    message = _load_refused(_npz(tmp_path, x=_images(20), y=np.zeros(20, int)))
    assert "all 16 training samples have class 0" in message and "at least 2 classes" in message


def test_npz_stray_label_999(tmp_path):
    y = np.arange(20) % 3
    y[4] = 999
    message = _load_refused(_npz(tmp_path, x=_images(20), y=y))
    assert "class id 999 (1 sample) is far above the other class ids (0..2)" in message and "remap" in message


def test_npz_labels_0_and_2_are_fine(tmp_path):
    assert load_data(_npz(tmp_path, x=_images(20), y=(np.arange(20) % 2) * 2)).num_classes == 3


def test_npz_negative_and_fractional_labels(tmp_path):
    y = np.arange(20) % 3 - 1
    assert "negative class ids" in _load_refused(_npz(tmp_path, x=_images(20), y=y))
    assert "integer class ids" in _load_refused(_npz(tmp_path, x=_images(20), y=np.arange(20) / 3))


def test_npz_validation_class_missing_from_training(tmp_path):
    cfg = _npz(tmp_path, x=_images(12), y=np.arange(12) % 2, x_val=_images(4), y_val=np.array([0, 1, 2, 2]))
    message = _load_refused(cfg)
    assert "a class never seen in the training labels: 2 (2 samples)" in message


def test_npz_segmentation_nan_masks(tmp_path):
    y = np.random.default_rng(0).random((10, 6, 6, 2)).astype(np.float32)
    y[3, 0, 0, 0] = np.nan
    x = np.random.default_rng(1).random((10, 6, 6, 1)).astype(np.float32)
    message = _load_refused(_npz(tmp_path, x=x, y=y))
    assert "1 of 10 samples in array 'y'" in message and "(first at index 3)" in message


def test_npz_segmentation_masks_in_0_255_floats(tmp_path):
    x = np.random.default_rng(1).random((10, 6, 6, 1)).astype(np.float32)
    y = (np.random.default_rng(0).random((10, 6, 6, 2)) > 0.5).astype(np.float32) * 255.0
    message = _load_refused(_npz(tmp_path, x=x, y=y))
    assert "masks hold values from 0 to 255" in message and "divide 0..255 masks by 255" in message


def test_npz_stray_mask_class_id_is_refused(tmp_path):
    x = np.random.default_rng(1).random((10, 6, 6, 1)).astype(np.float32)
    y = np.random.default_rng(0).integers(0, 3, (10, 6, 6))
    y_val = y[:2].copy()
    y_val[1, 0, 0] = 200
    message = _load_refused(_npz(tmp_path, x=x, y=y, x_val=x[:2], y_val=y_val))
    assert "data: array 'y_val' holds class id 200, far above the other ids (1, 2)" in message


def test_npz_two_value_masks_are_binary(tmp_path):
    x = np.random.default_rng(1).random((10, 6, 6, 1)).astype(np.float32)
    y = (np.random.default_rng(0).random((10, 6, 6)) > 0.5).astype(np.uint8) * 255
    splits = load_data(_npz(tmp_path, x=x, y=y))
    assert splits.num_classes == 1 and splits.y_train.max() == 1.0


# ----------------------------------------------------------------------------- unreadable files


@pytest.mark.parametrize("content", [b"\x8f\x00garbage bytes\x13" * 20, b"just a text file\n", b""],
                         ids=["random-bytes", "text", "empty"])
def test_garbage_npz_is_not_called_pickled(tmp_path, content):
    path = tmp_path / "x.npz"
    path.write_bytes(content)
    message = _load_refused({"name": "npz", "path": str(path)})
    assert message == (f"data.path: cannot read {path}: it is not a valid .npz (NumPy archive) file; "
                       "write it with numpy.savez(path, x=..., y=...)")
    assert "pickle" not in message


def test_truncated_npz_is_not_valid(tmp_path):
    full = tmp_path / "full.npz"
    np.savez(full, x=_images(10), y=np.arange(10) % 2)
    path = tmp_path / "x.npz"
    path.write_bytes(full.read_bytes()[:60])
    message = _load_refused({"name": "npz", "path": str(path)})
    assert "not a valid .npz (NumPy archive) file" in message and "numpy.savez" in message


def test_npy_file_named_npz(tmp_path):
    path = tmp_path / "x.npz"
    with open(path, "wb") as file:
        np.save(file, _images(3))
    message = _load_refused({"name": "npz", "path": str(path)})
    assert "single .npy array, not an .npz archive" in message and "numpy.savez" in message


def test_real_object_arrays_keep_the_pickled_message(tmp_path):
    path = tmp_path / "x.npz"
    np.savez(path, x=np.array([1, "a", None], dtype=object), y=np.zeros(3))
    message = _load_refused({"name": "npz", "path": str(path)})
    assert "array 'x'" in message and "pickled (object) data" in message and "numeric arrays" in message


# ----------------------------------------------------------------------------- the command line


def test_cli_refuses_nan_data_before_any_trial(tmp_path):
    from cli_inprocess import run_cli_inprocess

    x = np.random.default_rng(0).random((120, 8, 8)).astype(np.float32)
    x[[7, 30]] = np.nan
    path = tmp_path / "nan.npz"
    np.savez(path, x=x, y=np.arange(120) % 3)
    run_dir = tmp_path / "run"
    result = run_cli_inprocess(["data=npz", f"data.path={path}", "tuner.max_trials=1", "trainer.epochs=1",
                                "executor=inline"], run_dir)
    shown = f"stdout:\n{result.stdout[-2000:]}\nstderr:\n{result.stderr[-3000:]}"
    assert result.returncode == 2, shown
    assert (f"archsearch: error: data 'npz': 2 of 120 samples in array 'x' of {path} contain NaN or Inf values "
            "(first at index 7); clean or drop them") in result.stderr, shown
    assert "Traceback" not in result.stderr and "Trial " not in result.stdout, shown
    db = run_dir / "trials.db"
    if db.exists():
        assert sqlite3.connect(db).execute("SELECT COUNT(*) FROM trials").fetchone()[0] == 0
    assert not (run_dir / "best").exists()
