"""Data loaders by name: ``load_data(cfg)`` picks the loader named by ``cfg["name"]``.

Loaders are imported only when used, so reading a small npz never imports
keras.datasets, and the package imports without TensorFlow.  Every dataset
passes ``checks.check_splits`` right after loading, before any training.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from typing import Any

from archsearch.datasets.base import DataSplits, split_validation
from archsearch.datasets.checks import check_splits
from archsearch.errors import ConfigError

__all__ = ["DataSplits", "LOADERS", "available_datasets", "load_data", "split_validation"]

# name -> "module:function"; each function takes the data config and returns DataSplits.
LOADERS: dict[str, str] = {
    "shapes": "archsearch.datasets.shapes:load",
    "mnist": "archsearch.datasets.keras_datasets:load",
    "fashion_mnist": "archsearch.datasets.keras_datasets:load",
    "cifar10": "archsearch.datasets.keras_datasets:load",
    "npz": "archsearch.datasets.npz:load",
    "documents": "archsearch.datasets.documents:load",
    "folder": "archsearch.datasets.folder:load",
}


def available_datasets() -> list[str]:
    return list(LOADERS)


def load_data(cfg: Mapping[str, Any]) -> DataSplits:
    """Load the dataset described by the ``data`` config group, refusing data that cannot train."""
    name = cfg.get("name")
    if name not in LOADERS:
        raise ConfigError(
            "data.name", f"unknown dataset {name!r}", f"choose one of: {', '.join(LOADERS)}, e.g. data=shapes"
        )
    module_name, _, function = LOADERS[str(name)].partition(":")
    loader = getattr(importlib.import_module(module_name), function)
    splits = loader(dict(cfg))
    check_splits(splits)
    return splits
