"""Users' own segmentation data from a folder of images and masks.

Expected layout (file stems match; any of .png .jpg .jpeg .bmp .tif .tiff)::

    <path>/images/page1.jpg           <path>/images/page1.jpg
    <path>/masks/page1.png     or     <path>/masks/number/page1.png
                                      <path>/masks/stamp/page1.png

* One mask per image: a single-channel PNG of class ids, 0 = background and
  1..K the classes, giving K mask channels (channel k-1 is class k).  A mask
  set holding 0 and one other value (0/255 from image tools) is binary: one
  class.  Ids with gaps or far above the others (a stray 200 among 1..2) are
  refused, naming the masks, unless ``classes``/``output_classes`` declares them.
* One sub-folder per class: binary masks (any non-zero pixel of a 0/1 mask, or
  a value >= 128 of a 0/255 mask, is the object).  An image may lack a mask in
  some class folders (that class is absent there) but not in all of them.

Images are resized to ``image_size`` with INTER_AREA, masks with
INTER_NEAREST (so class ids never blend).  ``include_background: true`` adds
a background channel first, for softmax models.

A test set in ``<path>/test/`` (the same layout: ``test/images``, ``test/masks``) is
read as the test split; without it ``test_split`` holds pages out (default 0).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from archsearch.datasets.base import DataSplits, image_size, split_test, split_validation
from archsearch.datasets.checks import MaskIds, mask_class_ids
from archsearch.errors import ConfigError, DataError

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff")
DEFAULTS: dict[str, Any] = {
    "image_size": [128, 128],
    "channels": 3,
    "classes": None,
    "output_classes": None,
    "include_background": False,
    "validation_split": 0.2,
    "test_split": 0.0,
    "seed": 0,
}
TEST_FOLDER = "test"
LAYOUT = (
    "expected <path>/images/<name>.png with masks either as <path>/masks/<name>.png "
    "(class ids 0 = background, 1..K) or as <path>/masks/<class>/<name>.png (binary, one folder per class)"
)


def load(cfg: Mapping[str, Any]) -> DataSplits:
    """Read, resize and split the folder named by ``data.path`` (and its ``test/`` folder, if any)."""
    options = {**DEFAULTS, **{k: v for k, v in dict(cfg).items() if v is not None}}
    root = _root(options.get("path"))
    size = image_size(options["image_size"])
    channels = int(options["channels"])
    if channels not in (1, 3):
        raise ConfigError("data.channels", f"must be 1 or 3, got {channels}")
    names, x, y, ids = _read_folder(root, options, size, channels)
    seed = int(options["seed"])
    test_root = root / TEST_FOLDER
    if (test_root / "images").is_dir():
        test_names, x_test, y_test, _ = _read_folder(test_root, options, size, channels, like=ids)
        if test_names != names:
            raise DataError(f"data.path: the classes of {test_root} ({', '.join(test_names)}) differ from those of "
                            f"{root} ({', '.join(names)}); give the test masks the same classes")
    else:
        x, y, x_test, y_test = split_test(x, y, options["test_split"], seed)
    x_train, y_train, x_val, y_val = split_validation(x, y, float(options["validation_split"]), seed)
    return DataSplits("folder", "segmentation", x_train, y_train, x_val, y_val,
                      num_classes=len(names), class_names=names, x_test=x_test, y_test=y_test)


def _read_folder(root: Path, options: Mapping[str, Any], size: tuple[int, int], channels: int,
                 like: MaskIds | None = None) -> tuple[list[str], np.ndarray, np.ndarray, MaskIds | None]:
    """Class names, images, masks and (for class-id masks) how their ids were read, of one folder
    with ``images/`` and ``masks/``; ``like`` is the training folder's reading, for the test folder."""
    h, w = size
    images = _files(root / "images")
    if not images:
        raise DataError(f"data.path: no images found in {root / 'images'} ({LAYOUT})")
    masks_dir = root / "masks"
    if not masks_dir.is_dir():
        raise DataError(f"data.path: {masks_dir} does not exist ({LAYOUT})")

    class_dirs = sorted(p for p in masks_dir.iterdir() if p.is_dir())
    _check_every_image_has_a_mask(images, masks_dir, class_dirs)  # before the slow reading
    originals: dict[str, tuple[int, int]] = {}
    x = np.stack([_read_image(path, channels, (h, w), originals) for path in images.values()])
    ids = None
    if class_dirs:
        names, y = _read_class_folders(images, masks_dir, class_dirs, options, (h, w), originals)
    else:
        names, y, ids = _read_index_masks(images, masks_dir, options, (h, w), originals, like)
    if options["include_background"]:
        background = 1.0 - y.max(axis=-1, keepdims=True)
        y = np.concatenate([background, y], axis=-1)
        names = ["background", *names]
    return names, x, y, ids


def augment_batch(x: np.ndarray, y: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Random flips, 90-degree turns (square images only) and brightness jitter, per sample.

    Geometry applies to images and masks alike, so they stay aligned;
    brightness changes the image only.  Returns new float32 arrays.
    """
    x = np.array(x, dtype=np.float32, copy=True)
    y = np.array(y, dtype=np.float32, copy=True)
    square = x.shape[1] == x.shape[2]
    for i in range(len(x)):
        xi, yi = x[i], y[i]
        if rng.random() < 0.5:
            xi, yi = xi[:, ::-1], yi[:, ::-1]
        if rng.random() < 0.5:
            xi, yi = xi[::-1], yi[::-1]
        if square:
            k = int(rng.integers(0, 4))
            xi, yi = np.rot90(xi, k, axes=(0, 1)), np.rot90(yi, k, axes=(0, 1))
        gain, shift = rng.uniform(0.85, 1.15), rng.uniform(-0.08, 0.08)
        x[i] = np.clip(xi * gain + shift, 0.0, 1.0)
        y[i] = yi
    return x, y


# --------------------------------------------------------------------------- reading


def _root(path: Any) -> Path:
    if path in (None, "", "???"):
        raise ConfigError("data.path", "is not set", f"pass data.path=/your/dataset ({LAYOUT})")
    root = Path(str(path)).expanduser()
    if not root.is_dir():
        raise DataError(f"data.path: folder {root} does not exist ({LAYOUT})")
    if not (root / "images").is_dir():
        raise DataError(f"data.path: {root} has no images/ folder ({LAYOUT})")
    return root


def _files(folder: Path) -> dict[str, Path]:
    """Image files by stem, sorted; a stem present twice (a.png, a.jpg) is ambiguous."""
    found: dict[str, Path] = {}
    if not folder.is_dir():
        return found
    for path in sorted(folder.iterdir()):
        if path.is_file() and path.suffix.lower() in IMAGE_SUFFIXES:
            if path.stem in found:
                raise DataError(f"data.path: {found[path.stem].name} and {path.name} in {folder} have the same "
                                "name; keep one file per name")
            found[path.stem] = path
    return found


def _decode(path: Path, flags: int) -> np.ndarray:
    """Read with imdecode (works with non-ASCII paths); a file OpenCV cannot decode is a DataError."""
    try:
        data = np.fromfile(str(path), dtype=np.uint8)
        image = cv2.imdecode(data, flags) if data.size else None
    except (OSError, cv2.error):
        image = None
    if image is None:
        raise DataError(f"data.path: cannot read {path} (not an image OpenCV can decode, or an empty file)")
    return image


def _read_image(path: Path, channels: int, size: tuple[int, int], originals: dict) -> np.ndarray:
    flags = cv2.IMREAD_GRAYSCALE if channels == 1 else cv2.IMREAD_COLOR
    image = _decode(path, flags)
    originals[path.stem] = image.shape[:2]
    if channels == 3:
        image = cv2.cvtColor(image, cv2.COLOR_BGR2RGB)
    if image.shape[:2] != size:
        image = cv2.resize(image, (size[1], size[0]), interpolation=cv2.INTER_AREA)
    image = image.astype(np.float32) / 255.0
    return image[..., None] if image.ndim == 2 else image


def _read_mask(path: Path, image_hw: tuple[int, int]) -> np.ndarray:
    mask = _decode(path, cv2.IMREAD_UNCHANGED)
    if mask.shape[:2] != tuple(image_hw):
        raise DataError(
            f"data.path: mask {path} is {mask.shape[1]}x{mask.shape[0]} pixels but its image is "
            f"{image_hw[1]}x{image_hw[0]}; a mask must match its image's size"
        )
    if mask.ndim == 3:
        if mask.shape[2] == 4:
            mask = mask[..., :3]
        if not (np.all(mask == mask[..., :1])):
            raise DataError(
                f"data.path: mask {path} is a colour image; save masks as single-channel PNGs of class ids "
                "(0 = background, 1..K) or binary masks"
            )
        mask = mask[..., 0]
    return mask


def _resize_nearest(mask: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    if mask.shape[:2] == size:
        return mask
    return cv2.resize(mask, (size[1], size[0]), interpolation=cv2.INTER_NEAREST)


def _read_index_masks(images: dict[str, Path], masks_dir: Path, options: Mapping[str, Any],
                      size: tuple[int, int], originals: dict,
                      like: MaskIds | None = None) -> tuple[list[str], np.ndarray, MaskIds]:
    """Masks of class ids, checked as the npz loader checks its masks (``checks.mask_class_ids``)."""
    masks = _files(masks_dir)
    values, resized = {}, []  # each mask's distinct values before resizing; the resized masks
    for stem in images:
        mask = _read_mask(masks[stem], originals[stem])
        values[masks[stem].name] = np.unique(mask)
        resized.append(_resize_nearest(mask, size))
    classes, setting = _declared_classes(options)
    ids = mask_class_ids(f"data.path ({masks_dir})", values, declared=len(classes) or None, setting=setting,
                         like=like)
    k = ids.classes
    for name, found in values.items():
        top = int(found.max())
        if ids.binary is None and top > k:
            fix = (f"raise {setting} to {top}" if setting == "data.output_classes"
                   else f"list {top} class names in {setting}")
            raise DataError(
                f"data.path: mask {name} holds class id {top} but {setting} allows ids 1..{k}; "
                f"{fix} or fix the mask"
            )
    names = list(classes) if classes else [str(i) for i in range(1, k + 1)]
    y = np.stack([(ids.apply(mask)[..., None] == np.arange(1, k + 1)).astype(np.float32) for mask in resized])
    return names, y, ids


def _read_class_folders(images: dict[str, Path], masks_dir: Path, class_dirs: list[Path],
                        options: Mapping[str, Any], size: tuple[int, int],
                        originals: dict) -> tuple[list[str], np.ndarray]:
    available = {p.name: _files(p) for p in class_dirs}
    classes, _ = _declared_classes(options)
    if options.get("classes"):
        names = list(classes)
    else:
        names = sorted(available)
        count = options.get("output_classes")
        if count is not None and int(count) != len(names):
            raise ConfigError(
                "data.output_classes",
                f"is {count} but {masks_dir} has {len(names)} class folders ({', '.join(names)})",
                f"set data.output_classes={len(names)}, leave it unset, or pick folders with data.classes",
            )
    missing = [c for c in names if c not in available]
    if missing:
        raise DataError(f"data.classes: no mask folder {masks_dir / missing[0]} (found: {', '.join(available)})")
    y = np.zeros((len(images), size[0], size[1], len(names)), np.float32)
    for i, stem in enumerate(images):
        for c, name in enumerate(names):
            path = available[name].get(stem)
            if path is not None:  # no file in a class folder: the class is absent from that image
                mask = _resize_nearest(_read_mask(path, originals[stem]), size)
                y[i, ..., c] = mask >= (128 if mask.max() > 1 else 1)
    return names, y


def _check_every_image_has_a_mask(images: dict[str, Path], masks_dir: Path, class_dirs: list[Path]) -> None:
    if not class_dirs:
        masks = _files(masks_dir)
        for stem, image_path in images.items():
            if stem not in masks:
                raise DataError(f"data.path: image {image_path.name} has no mask {masks_dir / stem}.png ({LAYOUT})")
        return
    labelled = set().union(*(_files(d) for d in class_dirs))
    for stem, image_path in images.items():
        if stem not in labelled:
            raise DataError(
                f"data.path: image {image_path.name} has no mask in any class folder "
                f"(e.g. {class_dirs[0] / stem}.png; {LAYOUT})"
            )


def _declared_classes(options: Mapping[str, Any]) -> tuple[list[str], str]:
    """The classes the config names (``classes`` list or ``output_classes`` count) and the setting's name."""
    classes = options.get("classes")
    count = options.get("output_classes")
    if isinstance(classes, str):
        classes = [classes]
    if classes:
        classes = [str(c) for c in classes]
        if count is not None and int(count) != len(classes):
            raise ConfigError("data.output_classes", f"is {count} but data.classes lists {len(classes)} classes",
                              "set one of them, or make them agree")
        return classes, "data.classes"
    if count is not None:
        if int(count) < 1:
            raise ConfigError("data.output_classes", f"must be >= 1, got {count}")
        return [str(i) for i in range(1, int(count) + 1)], "data.output_classes"
    return [], "data.output_classes"
