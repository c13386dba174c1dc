"""Your own arrays from a NumPy ``.npz`` file (``np.savez(path, x=..., y=...)``).

Optional ``x_val``/``y_val`` are the validation set and ``x_test``/``y_test`` the test set
(else ``validation_split`` and ``test_split`` hold samples out).  The keras.datasets layout
(``x_train``, ``y_train``, ``x_test``, ``y_test``, as in keras' own ``mnist.npz``) is read
as such when the file has no ``x`` and ``data.x_key`` keeps its default.

The task is read from the targets: 1-D integer labels mean classification,
masks with the images' height and width mean segmentation (class-id masks
follow the folder loader: 0 = background, 1..K one channel each).  Integer images
are scaled to 0..1 (float images must already be); grayscale images ``(n, h, w)``
get a channel axis.  NaN or Inf is refused here, by index in the file; the
other checks (``checks.check_splits``) run in ``load_data``.
See data/README.md for the accepted shapes.
"""

from __future__ import annotations

import zipfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from archsearch.datasets.base import DataSplits, split_test, split_validation
from archsearch.datasets.checks import check_finite, mask_class_ids
from archsearch.errors import ConfigError, DataError


# The first bytes of a zip archive (what numpy.savez writes; an empty archive too) and of a single .npy array.
ZIP_MAGIC = (b"PK\x03\x04", b"PK\x05\x06")
NPY_MAGIC = b"\x93NUMPY"
SAVEZ = "write it with numpy.savez(path, x=..., y=...)"
DEFAULT_KEYS = {"x": "x", "y": "y", "x_val": "x_val", "y_val": "y_val", "x_test": "x_test", "y_test": "y_test"}
# keras.datasets' own files (mnist.npz) name the training arrays so.
KERAS_LAYOUT = {"x": "x_train", "y": "y_train"}


def _read(path: Path) -> dict[str, np.ndarray]:
    if not path.is_file():
        raise DataError(f"data.path: {path} does not exist (point data.path= at an .npz file, e.g. "
                        "data=npz data.path=data/my_arrays.npz)")
    # Check the header first: numpy treats any unknown file as a pickle and calls it "pickled data".
    try:
        with open(path, "rb") as file:
            head = file.read(6)
    except OSError as exc:
        raise DataError(f"data.path: cannot read {path} ({exc})") from exc
    if head.startswith(NPY_MAGIC):
        raise DataError(f"data.path: cannot read {path}: it is a single .npy array, not an .npz archive of "
                        f"named arrays; {SAVEZ}")
    if not head.startswith(ZIP_MAGIC):
        raise DataError(f"data.path: cannot read {path}: it is not a valid .npz (NumPy archive) file; {SAVEZ}")
    key = None
    try:
        with np.load(path, allow_pickle=False) as archive:
            arrays = {}
            for key in archive.files:
                arrays[key] = archive[key]
            return arrays
    except ValueError as exc:
        if key is not None and "allow_pickle" in str(exc):
            raise DataError(f"data.path: array '{key}' in {path} contains pickled (object) data (Python "
                            "objects), which is not loaded for safety; store numeric arrays (e.g. "
                            f"x.astype('float32')) with numpy.savez(path, x=..., y=...)") from exc
        raise DataError(f"data.path: cannot read {path} as an .npz archive ({exc}); {SAVEZ}") from exc
    except (OSError, EOFError, zipfile.BadZipFile) as exc:
        raise DataError(f"data.path: cannot read {path}: it is not a valid .npz (NumPy archive) file ({exc}); "
                        f"{SAVEZ}") from exc


def _scale_images(x: np.ndarray, key: str) -> np.ndarray:
    """float32 in 0..1 with a channel axis for grayscale images."""
    if x.dtype.kind not in "uifb":
        raise DataError(f"data: array '{key}' has dtype {x.dtype}; expected numbers (uint8 images or floats)")
    if x.dtype == np.uint8 or (x.dtype.kind in "ui" and x.size and x.min() >= 0 and x.max() <= 255):
        x = x.astype(np.float32) / 255.0
    elif x.dtype == np.uint16:
        x = x.astype(np.float32) / 65535.0
    else:
        x = x.astype(np.float32)
    return x[..., None] if x.ndim == 3 else x


def _is_integral(a: np.ndarray) -> bool:
    return a.dtype.kind in "uib" or bool(np.all(np.mod(a, 1) == 0))


def _task(x: np.ndarray, y: np.ndarray) -> str:
    if y.ndim == 1 or (y.ndim == 2 and y.shape[1] == 1):
        return "classification"
    if x.ndim == 4 and y.ndim in (3, 4) and y.shape[1:3] == x.shape[1:3]:
        return "segmentation"
    raise DataError(
        f"data: cannot tell the task from y of shape {y.shape} and x of shape {x.shape}; use class ids "
        "y of shape (n,) for classification or masks (n, h, w) / (n, h, w, classes) matching x for segmentation"
    )


def _labels(y: np.ndarray, key: str) -> np.ndarray:
    y = y.reshape(-1)
    if not _is_integral(y):
        raise DataError(f"data: '{key}' holds non-integer values; classification needs integer class ids 0..k-1")
    y = y.astype(np.int64)
    if y.size and y.min() < 0:
        raise DataError(f"data: '{key}' holds negative class ids (min {y.min()}); use ids 0..k-1")
    return y


def _masks(ys: list[np.ndarray], include_background: bool,
           keys: list[str]) -> tuple[list[str], list[np.ndarray]]:
    """float32 masks (n, h, w, classes), the convention of the folder and documents loaders.

    Multi-channel masks are kept (uint8 0/255 scaled to 0..1).  Single-channel
    masks hold class ids, 0 = background and 1..K the classes: they become K
    channels (channel k-1 is class k), plus a background channel first when
    ``include_background`` (for softmax models).
    """
    if ys[0].ndim == 4 and ys[0].shape[-1] > 1:
        if ys[0].shape[-1] != ys[-1].shape[-1]:
            raise DataError("data: training and validation masks have different numbers of channels")
        scaled = [y.astype(np.float32) / (255.0 if y.dtype == np.uint8 and y.max() > 1 else 1.0) for y in ys]
        return [str(i) for i in range(ys[0].shape[-1])], scaled
    ids = [y.reshape(y.shape[:3]) for y in ys]
    if not all(_is_integral(y) for y in ids):
        raise DataError("data: single-channel masks must hold integer class ids (0 = background, 1..K); "
                        "store soft masks with one channel per class instead")
    # 0/255 masks are binary; stray or gapped ids are refused, as the folder loader does
    reading = mask_class_ids("data", {f"'{key}'": np.unique(y) for key, y in zip(keys, ids)}, noun="array")
    k = reading.classes
    first = 0 if include_background else 1
    eye = np.eye(k + 1, dtype=np.float32)[:, first:]
    names = (["background"] if include_background else []) + [str(i) for i in range(1, k + 1)]
    return names, [eye[reading.apply(y)] for y in ids]


def _keys(cfg: Mapping[str, Any], arrays: Mapping[str, np.ndarray]) -> dict[str, str]:
    """Array names by role: ``data.<role>_key`` overrides, else the defaults (or the keras.datasets layout)."""
    keys = {role: str(cfg.get(f"{role}_key") or name) for role, name in DEFAULT_KEYS.items()}
    untouched = all(keys[r] == DEFAULT_KEYS[r] for r in KERAS_LAYOUT)
    if untouched and not any(keys[r] in arrays for r in KERAS_LAYOUT) and all(k in arrays for k in KERAS_LAYOUT.values()):
        keys.update(KERAS_LAYOUT)
    return keys


def _optional_pair(keys: Mapping[str, str], arrays: Mapping[str, np.ndarray], x: str, y: str, path: Path,
                   fallback: str) -> bool:
    present = [keys[r] in arrays for r in (x, y)]
    if any(present) and not all(present):
        raise DataError(f"data: {path} has only one of '{keys[x]}'/'{keys[y]}' (arrays found: "
                        f"{', '.join(arrays)}); store both or neither (then {fallback} is used)")
    return all(present)


def load(cfg: Mapping[str, Any]) -> DataSplits:
    """Arrays from ``cfg["path"]``: ``x``/``y`` (or ``x_train``/``y_train``), optional ``x_val``/``y_val``
    and ``x_test``/``y_test``."""
    raw_path = cfg.get("path")
    if raw_path in (None, "", "???"):
        raise ConfigError("data.path", "is not set", "e.g. data=npz data.path=data/my_arrays.npz")
    path = Path(str(raw_path)).expanduser()
    arrays = _read(path)
    keys = _keys(cfg, arrays)
    found = ", ".join(arrays) or "none"
    for role in ("x", "y"):
        if keys[role] not in arrays:
            raise DataError(f"data.{role}_key: {path} has no array '{keys[role]}' (arrays found: {found}); "
                            f"set data.{role}_key= to one of them")
    has_val = _optional_pair(keys, arrays, "x_val", "y_val", path, "data.validation_split")
    has_test = _optional_pair(keys, arrays, "x_test", "y_test", path, "data.test_split")
    pairs = ([("x", "y")] + ([("x_val", "y_val")] if has_val else [])
             + ([("x_test", "y_test")] if has_test else []))
    for xr, yr in pairs:
        x, y = arrays[keys[xr]], arrays[keys[yr]]
        if x.ndim == 0 or len(x) == 0:
            raise DataError(f"data: array '{keys[xr]}' in {path} is empty")
        if y.ndim == 0 or len(x) != len(y):
            raise DataError(f"data: '{keys[xr]}' has {len(x)} samples but '{keys[yr]}' has "
                            f"{0 if y.ndim == 0 else len(y)}; they must match one to one")

    name = str(cfg.get("name") or "npz")
    for role in (r for pair in pairs for r in pair):  # before the split shuffles: indices are the file's
        check_finite(name, f"samples in array '{keys[role]}' of {path}", arrays[keys[role]])

    xs = [_scale_images(arrays[keys[xr]], keys[xr]) for xr, _ in pairs]
    ys = [arrays[keys[yr]] for _, yr in pairs]
    task = _task(xs[0], ys[0])
    for (xr, yr), x, y in list(zip(pairs, xs, ys))[1:]:
        if x.shape[1:] != xs[0].shape[1:] or _task(x, y) != task:
            raise DataError(f"data: '{keys[xr]}'/'{keys[yr]}' do not have the shapes of "
                            f"'{keys['x']}'/'{keys['y']}' ({x.shape} vs {xs[0].shape})")
    if task == "classification":
        ys = [_labels(y, keys[yr]) for y, (_, yr) in zip(ys, pairs)]
        names = [str(i) for i in range(max(2, max(int(y.max()) for y in ys) + 1))]
    else:
        names, ys = _masks(ys, bool(cfg.get("include_background", False)), [keys[yr] for _, yr in pairs])

    seed = int(cfg.get("seed") or 0)
    split = dict(zip((xr for xr, _ in pairs), zip(xs, ys)))
    x_train, y_train = split["x"]
    if "x_test" in split:
        x_test, y_test = split["x_test"]
    else:
        x_train, y_train, x_test, y_test = split_test(x_train, y_train, cfg.get("test_split", 0.0), seed)
    if "x_val" in split:
        x_val, y_val = split["x_val"]
    else:
        x_train, y_train, x_val, y_val = split_validation(x_train, y_train, float(cfg.get("validation_split", 0.2)),
                                                          seed)
    return DataSplits(name, task, x_train, y_train, x_val, y_val, len(names), names, x_test, y_test)
