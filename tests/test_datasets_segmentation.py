"""Segmentation data: the synthetic documents and the users' folder loader."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from archsearch.datasets import documents, folder
from archsearch.errors import ArchsearchError, ConfigError, DataError

# --------------------------------------------------------------------------- documents


def _docs(**cfg):
    return documents.load({"name": "documents", "num_samples": 12, "image_size": 64, **cfg})


def test_documents_shapes_and_metadata():
    splits = _docs()
    assert splits.task == "segmentation"
    assert splits.num_classes == 2 and splits.class_names == ["number", "stamp"]
    assert splits.x_train.shape[1:] == (64, 64, 1) and splits.y_train.shape[1:] == (64, 64, 2)
    assert len(splits.x_train) + len(splits.x_val) == 12 and len(splits.x_val) == 2
    assert splits.x_train.dtype == np.float32 and splits.y_train.dtype == np.float32
    assert 0.0 <= splits.x_train.min() and splits.x_train.max() <= 1.0
    assert set(np.unique(splits.y_train)) <= {0.0, 1.0}


def test_documents_options():
    colour = _docs(channels=3, image_size=[48, 80], classes=["stamp", "table", "text"])
    assert colour.x_train.shape[1:] == (48, 80, 3) and colour.y_train.shape[1:] == (48, 80, 3)
    assert colour.class_names == ["stamp", "table", "text"]
    with pytest.raises(ConfigError, match="data.classes.*'logo'"):
        _docs(classes=["number", "logo"])
    with pytest.raises(ConfigError, match="data.channels"):
        _docs(channels=2)
    with pytest.raises(ConfigError, match="data.image_size"):
        _docs(image_size="big")


def test_documents_deterministic_from_seed():
    a, b, c = _docs(seed=3), _docs(seed=3), _docs(seed=4)
    np.testing.assert_array_equal(a.x_train, b.x_train)
    np.testing.assert_array_equal(a.y_val, b.y_val)
    assert not np.array_equal(a.x_train, c.x_train)


def _border_contrast(gray: np.ndarray, mask: np.ndarray) -> float:
    """Mean of the 2-pixel ring just outside the mask minus the 2-pixel band just inside it."""
    kernel = np.ones((3, 3), np.uint8)
    m = mask.astype(np.uint8)
    inside = m & ~cv2.erode(m, kernel, iterations=2)
    outside = cv2.dilate(m, kernel, iterations=2) & ~m
    return float(gray[outside > 0].mean() - gray[inside > 0].mean())


def test_documents_masks_non_empty_and_aligned_with_ink():
    classes = ("number", "stamp", "table", "text")
    x, y = documents.make_pages(24, (128, 128), classes=classes, seed=0)
    gray, masks = x[..., 0], y > 0.5
    numbers, stamps, tables = masks[..., 0], masks[..., 1], masks[..., 2]
    assert numbers.reshape(24, -1).any(axis=1).all()  # every page has a table with numbers
    assert stamps.reshape(24, -1).any(axis=1).mean() > 0.5  # most pages have a stamp
    assert 0.002 < numbers.mean() < 0.1 and 0.005 < stamps.mean() < 0.2  # small objects
    paper = ~masks.any(axis=-1)
    for c in range(len(classes)):  # every object is darker than the bare paper
        assert gray[masks[..., c]].mean() < gray[paper].mean() - 0.1
    for i in range(24):
        assert gray[i][numbers[i]].min() < 0.5  # the number boxes hold ink
        # the stamp outline and the table frame lie exactly on the mask border, rotation included
        assert _border_contrast(gray[i], tables[i]) > 0.08
        if stamps[i].any():
            assert _border_contrast(gray[i], stamps[i]) > 0.08
    # the same check fails for masks not rotated with the page
    matrix = cv2.getRotationMatrix2D((64, 64), 4.0, 1.0)
    turned = [cv2.warpAffine(t.astype(np.uint8), matrix, (128, 128), flags=cv2.INTER_NEAREST) for t in tables]
    assert np.mean([_border_contrast(g, t) for g, t in zip(gray, turned)]) < 0.08


# --------------------------------------------------------------------------- folder


def _write(path: Path, image: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    assert cv2.imwrite(str(path), image)


def _index_dataset(root: Path, n: int = 5, size=(20, 24)) -> dict[str, np.ndarray]:
    """Images bright where background, dark where class 1, mid-gray where class 2; masks of ids."""
    rng = np.random.default_rng(0)
    ids = {}
    for i in range(n):
        mask = np.zeros(size, np.uint8)
        r, c = rng.integers(0, size[0] - 8), rng.integers(0, size[1] - 8)
        mask[r:r + 8, c:c + 8] = 1
        mask[size[0] - 4:, :6] = 2
        image = np.full((*size, 3), 230, np.uint8)
        image[mask == 1] = (20, 20, 20)
        image[mask == 2] = (120, 120, 120)
        _write(root / "images" / f"p{i}.png", image)
        _write(root / "masks" / f"p{i}.png", mask)
        ids[f"p{i}"] = mask
    return ids


def _all(splits):
    return np.concatenate([splits.x_train, splits.x_val]), np.concatenate([splits.y_train, splits.y_val])


def test_folder_index_masks(tmp_path):
    _index_dataset(tmp_path)
    splits = folder.load({"name": "folder", "path": str(tmp_path), "image_size": [16, 16], "channels": 1,
                          "validation_split": 0.2, "seed": 0})
    x, y = _all(splits)
    assert x.shape == (5, 16, 16, 1) and y.shape == (5, 16, 16, 2)
    assert splits.num_classes == 2 and splits.class_names == ["1", "2"]
    assert set(np.unique(y)) == {0.0, 1.0}  # nearest resize keeps masks binary
    assert not np.any((y[..., 0] > 0) & (y[..., 1] > 0))
    # images and masks stay aligned after resizing
    assert x[..., 0][y[..., 0] > 0].mean() < 0.25
    assert x[..., 0][(y[..., 0] == 0) & (y[..., 1] == 0)].mean() > 0.7


def test_folder_index_masks_named_classes_and_background(tmp_path):
    _index_dataset(tmp_path, n=4)
    splits = folder.load({"path": str(tmp_path), "image_size": 16, "classes": ["number", "stamp", "sign"],
                          "include_background": True, "validation_split": 0.25})
    x, y = _all(splits)
    assert splits.class_names == ["background", "number", "stamp", "sign"]
    assert y.shape == (4, 16, 16, 4) and x.shape == (4, 16, 16, 3)
    np.testing.assert_array_equal(y.sum(-1), 1.0)  # one-hot, ready for softmax
    assert y[..., 3].max() == 0.0  # class 3 declared but never present


def test_folder_class_subfolders(tmp_path):
    size = (16, 16)
    for i in range(4):
        image = np.full((*size, 3), 240, np.uint8)
        image[2:6, 2:6] = (255, 0, 0)  # pure blue in OpenCV's BGR
        number = np.zeros(size, np.uint8)
        number[2:6, 2:6] = 255
        _write(tmp_path / "images" / f"s{i}.jpg", image)
        _write(tmp_path / "masks" / "number" / f"s{i}.png", number)
        if i % 2 == 0:  # stamp folder only holds masks of pages with a stamp
            stamp = np.zeros(size, np.uint8)
            stamp[10:14, 10:14] = 1
            _write(tmp_path / "masks" / "stamp" / f"s{i}.png", stamp)
    splits = folder.load({"path": str(tmp_path), "image_size": [16, 16], "channels": 3, "validation_split": 0.25})
    x, y = _all(splits)
    assert splits.class_names == ["number", "stamp"]
    assert y[..., 0].sum() == 4 * 16
    assert y[..., 1].sum() == 2 * 16  # a 0/1 mask is read as binary too
    # RGB order: the blue square is blue in channel 2
    blue = y[..., 0] > 0
    assert x[..., 2][blue].mean() > x[..., 0][blue].mean() + 0.4  # jpeg blurs colours a little
    only_stamp = folder.load({"path": str(tmp_path), "image_size": 16, "classes": ["stamp"],
                              "validation_split": 0.25})
    assert only_stamp.class_names == ["stamp"] and only_stamp.y_train.shape[-1] == 1
    with pytest.raises(ConfigError, match="data.output_classes.*2 class folders"):
        folder.load({"path": str(tmp_path), "output_classes": 3})


def test_folder_missing_folder_explains_layout(tmp_path):
    with pytest.raises(DataError, match=r"does not exist.*images/.*masks/"):
        folder.load({"path": str(tmp_path / "nowhere")})
    with pytest.raises(DataError, match=r"no images/ folder.*masks"):
        folder.load({"path": str(tmp_path)})
    (tmp_path / "images").mkdir()
    _write(tmp_path / "images" / "a.png", np.zeros((8, 8), np.uint8))
    with pytest.raises(DataError, match=r"masks does not exist.*class ids"):
        folder.load({"path": str(tmp_path)})
    with pytest.raises(ConfigError, match="data.path.*not set"):
        folder.load({"path": "???"})


def test_folder_image_without_mask_is_named(tmp_path):
    _index_dataset(tmp_path, n=3)
    _write(tmp_path / "images" / "orphan.png", np.zeros((20, 24), np.uint8))
    with pytest.raises(DataError, match="orphan.png has no mask"):
        folder.load({"path": str(tmp_path)})


def test_folder_image_without_mask_in_any_class_folder(tmp_path):
    _write(tmp_path / "images" / "a.png", np.zeros((8, 8), np.uint8))
    _write(tmp_path / "images" / "b.png", np.zeros((8, 8), np.uint8))
    _write(tmp_path / "masks" / "stamp" / "a.png", np.zeros((8, 8), np.uint8))
    with pytest.raises(DataError, match="b.png has no mask in any class folder"):
        folder.load({"path": str(tmp_path)})


def test_folder_unreadable_file_is_named(tmp_path):
    _index_dataset(tmp_path, n=3)
    (tmp_path / "images" / "p1.png").write_bytes(b"not an image at all")
    with pytest.raises(DataError, match="cannot read .*p1.png"):
        folder.load({"path": str(tmp_path)})


def test_folder_class_id_beyond_output_classes(tmp_path):
    _index_dataset(tmp_path, n=3)
    expected = r"mask p0.png holds class id 2 .*data.output_classes allows ids 1..1.*raise data.output_classes to 2"
    with pytest.raises(DataError, match=expected):
        folder.load({"path": str(tmp_path), "output_classes": 1})
    with pytest.raises(DataError, match="holds class id 2 .*list 2 class names in data.classes"):
        folder.load({"path": str(tmp_path), "classes": ["number"]})


def _binary_dataset(root: Path, n: int = 4, on: int = 255) -> None:
    """Masks of 0 and ``on`` (255 as image tools save them): one class, not 255."""
    for i in range(n):
        mask = np.zeros((12, 12), np.uint8)
        mask[2:6, 2 + i:6 + i] = on
        _write(root / "images" / f"b{i}.png", np.full((12, 12), 200, np.uint8))
        _write(root / "masks" / f"b{i}.png", mask)


@pytest.mark.parametrize("on", [255, 1])
def test_folder_two_value_masks_are_binary(tmp_path, on):
    _binary_dataset(tmp_path, on=on)
    splits = folder.load({"path": str(tmp_path), "image_size": 12, "validation_split": 0.25})
    assert splits.num_classes == 1 and splits.class_names == ["1"]
    y = _all(splits)[1]
    assert y.shape == (4, 12, 12, 1) and set(np.unique(y)) == {0.0, 1.0} and y.sum() == 4 * 16


def test_folder_0_255_masks_with_one_declared_class(tmp_path):
    _binary_dataset(tmp_path)
    splits = folder.load({"path": str(tmp_path), "image_size": 12, "classes": ["text"], "validation_split": 0.25})
    assert splits.class_names == ["text"] and _all(splits)[1].sum() == 4 * 16


def test_folder_stray_class_id_is_refused_naming_the_mask(tmp_path):
    ids = _index_dataset(tmp_path, n=4)
    stray = ids["p2"].copy()
    stray[0, 0] = 200
    _write(tmp_path / "masks" / "p2.png", stray)
    with pytest.raises(DataError) as info:
        folder.load({"path": str(tmp_path)})
    message = str(info.value)
    assert "mask p2.png holds class id 200, far above the other ids (1, 2)" in message
    assert "200 mask channels for 3 classes" in message and "fix the stray pixels" in message


def test_folder_class_ids_with_gaps_are_refused_unless_declared(tmp_path):
    ids = _index_dataset(tmp_path, n=4)
    for stem, mask in ids.items():
        _write(tmp_path / "masks" / f"{stem}.png", np.where(mask == 2, 3, mask).astype(np.uint8))
    with pytest.raises(DataError) as info:
        folder.load({"path": str(tmp_path)})
    message = str(info.value)
    assert "the masks hold class ids 1, 3 but never 2" in message
    assert "without gaps" in message and "set data.output_classes=3" in message
    splits = folder.load({"path": str(tmp_path), "output_classes": 3, "validation_split": 0.25})
    assert splits.num_classes == 3 and _all(splits)[1][..., 1].max() == 0.0  # declared, absent class 2


def test_folder_test_masks_are_read_like_the_training_masks(tmp_path):
    _binary_dataset(tmp_path)
    _binary_dataset(tmp_path / "test", n=2)
    splits = folder.load({"path": str(tmp_path), "image_size": 12, "validation_split": 0.25})
    assert splits.y_test.shape == (2, 12, 12, 1) and splits.y_test.max() == 1.0
    _write(tmp_path / "test" / "masks" / "b1.png", np.full((12, 12), 2, np.uint8))
    expected = "mask b1.png holds value 2, but the training masks are binary masks of 0 and 255"
    with pytest.raises(DataError, match=expected):
        folder.load({"path": str(tmp_path), "image_size": 12})


def test_folder_mask_size_must_match_image(tmp_path):
    _write(tmp_path / "images" / "a.png", np.zeros((8, 10), np.uint8))
    _write(tmp_path / "masks" / "a.png", np.zeros((8, 8), np.uint8))
    with pytest.raises(DataError, match="mask .*a.png is 8x8 pixels but its image is 10x8"):
        folder.load({"path": str(tmp_path)})


def test_folder_colour_mask_rejected(tmp_path):
    _write(tmp_path / "images" / "a.png", np.zeros((8, 8), np.uint8))
    mask = np.zeros((8, 8, 3), np.uint8)
    mask[0, 0] = (0, 0, 255)
    _write(tmp_path / "masks" / "a.png", mask)
    with pytest.raises(DataError, match="a.png is a colour image"):
        folder.load({"path": str(tmp_path)})


def test_errors_are_user_errors():
    assert issubclass(DataError, ArchsearchError) and issubclass(ConfigError, ArchsearchError)


# --------------------------------------------------------------------------- augmentation


@pytest.mark.parametrize("shape", [(8, 12, 12, 1), (6, 10, 14, 3)])
def test_augment_batch_keeps_images_and_masks_aligned(shape):
    rng = np.random.default_rng(0)
    x = rng.uniform(0.3, 0.7, shape).astype(np.float32)  # away from 0 and 1: no clipping
    y = np.repeat(x[..., :1], 2, axis=-1)  # the masks are a copy of the first image channel
    x_before = x.copy()
    x_aug, y_aug = folder.augment_batch(x, y, np.random.default_rng(1))
    assert x_aug.shape == x.shape and y_aug.shape == y.shape and x_aug.dtype == np.float32
    moved = 0
    for i in range(len(x)):
        # brightness is affine on the image only: x' = gain * mask + shift, pixel by pixel
        a = np.stack([y_aug[i, ..., 0].ravel(), np.ones(y_aug[i, ..., 0].size)], axis=1)
        coef, *_ = np.linalg.lstsq(a, x_aug[i, ..., 0].ravel(), rcond=None)
        np.testing.assert_allclose(a @ coef, x_aug[i, ..., 0].ravel(), atol=1e-5)
        assert 0.8 < coef[0] < 1.2
        moved += not np.array_equal(y_aug[i], y[i])
        # geometry only permutes mask pixels
        np.testing.assert_allclose(np.sort(y_aug[i].ravel()), np.sort(y[i].ravel()))
    assert moved >= len(x) // 2
    np.testing.assert_array_equal(x, x_before)  # inputs untouched


def test_augment_batch_is_reproducible():
    x = np.random.default_rng(0).random((4, 8, 8, 1)).astype(np.float32)
    y = (x > 0.5).astype(np.float32)
    a = folder.augment_batch(x, y, np.random.default_rng(5))
    b = folder.augment_batch(x, y, np.random.default_rng(5))
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_array_equal(a[1], b[1])
