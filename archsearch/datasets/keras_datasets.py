"""MNIST, Fashion-MNIST and CIFAR-10 through ``keras.datasets``.

Keras downloads each set once into ``~/.keras/datasets``; later runs work
offline.  The official training split is divided into training and validation;
the official test split is the test set, kept out of the search so it stays an
honest final check (``mode=retrain``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from archsearch.datasets.base import DataSplits, split_validation
from archsearch.errors import ConfigError, DataError

CLASS_NAMES: dict[str, list[str]] = {
    "mnist": [str(i) for i in range(10)],
    "fashion_mnist": ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                      "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"],
    "cifar10": ["airplane", "automobile", "bird", "cat", "deer",
                "dog", "frog", "horse", "ship", "truck"],
}


def _download(name: str) -> tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]:
    """The official training and test splits, fetched by Keras (cached after the first call)."""
    import keras

    module = getattr(keras.datasets, name)
    try:
        (x, y), (x_test, y_test) = module.load_data()
    except Exception as exc:  # Keras raises plain Exception/OSError/URLError on network failures
        raise DataError(
            f"data.name={name}: could not load the dataset ({exc}); it is downloaded from the internet "
            "once and cached in ~/.keras/datasets, so run once with internet access, "
            "or use the offline data=shapes or your own arrays with data=npz data.path=..."
        ) from exc
    return (np.asarray(x), np.asarray(y).reshape(-1)), (np.asarray(x_test), np.asarray(y_test).reshape(-1))


def _scaled(x: np.ndarray) -> np.ndarray:
    images = x.astype(np.float32) / 255.0
    return images[..., None] if images.ndim == 3 else images


def load(cfg: Mapping[str, Any]) -> DataSplits:
    """The dataset named by ``cfg["name"]`` (mnist, fashion_mnist or cifar10)."""
    name = str(cfg.get("name"))
    if name not in CLASS_NAMES:
        raise ConfigError("data.name", f"{name!r} is not a keras dataset", f"use one of: {', '.join(CLASS_NAMES)}")
    seed = int(cfg.get("seed") or 0)
    (x, y), (x_test, y_test) = _download(name)
    max_samples = cfg.get("max_samples")
    if max_samples is not None:
        if int(max_samples) < 2:
            raise ConfigError("data.max_samples", f"{max_samples} samples", "use at least 2, or null for all")
        if int(max_samples) < len(x):
            keep = np.sort(np.random.default_rng(seed).permutation(len(x))[: int(max_samples)])
            x, y = x[keep], y[keep]
    images = _scaled(x)  # subsample first: full CIFAR-10 as float32 is 600 MB
    x_train, y_train, x_val, y_val = split_validation(
        images, y.astype(np.int64), float(cfg.get("validation_split", 0.1)), seed
    )
    return DataSplits(name, "classification", x_train, y_train, x_val, y_val, 10, list(CLASS_NAMES[name]),
                      _scaled(x_test), y_test.astype(np.int64))
