"""MNIST, Fashion-MNIST and CIFAR-10 through ``keras.datasets``.

Keras downloads each set once into ``~/.keras/datasets``; later runs work
offline.  The official training split is divided into training and validation
(the test split is kept out of the search, so it stays an honest final check).
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


def _download(name: str) -> tuple[np.ndarray, np.ndarray]:
    """The official training split, fetched by Keras (cached after the first call)."""
    import keras

    module = getattr(keras.datasets, name)
    try:
        (x, y), _ = module.load_data()
    except Exception as exc:  # Keras raises plain Exception/OSError/URLError on network failures
        raise DataError(
            f"data.name={name}: could not load the dataset ({exc}); it is downloaded from the internet "
            "once and cached in ~/.keras/datasets, so run once with internet access, "
            "or use the offline data=shapes or your own arrays with data=npz data.path=..."
        ) from exc
    return np.asarray(x), np.asarray(y).reshape(-1)


def load(cfg: Mapping[str, Any]) -> DataSplits:
    """The dataset named by ``cfg["name"]`` (mnist, fashion_mnist or cifar10)."""
    name = str(cfg.get("name"))
    if name not in CLASS_NAMES:
        raise ConfigError("data.name", f"{name!r} is not a keras dataset", f"use one of: {', '.join(CLASS_NAMES)}")
    seed = int(cfg.get("seed") or 0)
    x, y = _download(name)
    max_samples = cfg.get("max_samples")
    if max_samples is not None:
        if int(max_samples) < 2:
            raise ConfigError("data.max_samples", f"{max_samples} samples", "use at least 2, or null for all")
        if int(max_samples) < len(x):
            keep = np.sort(np.random.default_rng(seed).permutation(len(x))[: int(max_samples)])
            x, y = x[keep], y[keep]
    images = x.astype(np.float32) / 255.0  # subsample first: full CIFAR-10 as float32 is 600 MB
    if images.ndim == 3:
        images = images[..., None]
    x_train, y_train, x_val, y_val = split_validation(
        images, y.astype(np.int64), float(cfg.get("validation_split", 0.1)), seed
    )
    return DataSplits(name, "classification", x_train, y_train, x_val, y_val, 10, list(CLASS_NAMES[name]))
