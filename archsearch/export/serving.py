"""Exports beside ``best/model.keras`` for serving outside Keras (``export.format``).

* ``keras`` (the default): ``model.keras`` only, which every Keras 3 backend loads;
* ``savedmodel``: also ``saved_model/``, a TensorFlow SavedModel made by Keras' ``model.export``
  (served by TF Serving, loaded by ``tf.saved_model.load``; TensorFlow backend only);
* ``onnx``: also ``model.onnx``, by Keras' ``model.export(format="onnx")``, which on the TensorFlow
  backend converts with ``tf2onnx`` (an optional install: ``pip install ".[onnx]"``).

The format is checked before the search starts, so a missing converter never costs a search.
"""

from __future__ import annotations

import logging
import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from archsearch.engine.settings import ExportSettings
from archsearch.errors import ConfigError

SAVED_MODEL_DIR = "saved_model"
ONNX_FILE = "model.onnx"


def check_export_format(value: Any) -> str:
    """The ``export.format`` setting, refused by name when unknown or when its converter is missing."""
    fmt = ExportSettings.from_config({"format": value}).format  # known formats and the default: the settings'
    if fmt in ("savedmodel", "onnx"):
        backend = _backend()
        if backend != "tensorflow":
            raise ConfigError("export.format", f"{fmt} needs the TensorFlow backend, but KERAS_BACKEND is {backend}",
                              "use export.format=keras, or run with KERAS_BACKEND=tensorflow")
    if fmt == "onnx":
        import importlib.util

        missing = [m for m in ("tf2onnx", "onnx") if importlib.util.find_spec(m) is None]
        if missing:
            raise ConfigError("export.format", f"onnx needs the {' and '.join(missing)} package(s), not installed",
                              'pip install ".[onnx]" (tf2onnx, onnx), or use export.format=savedmodel')
    return fmt


def _backend() -> str:
    from archsearch.training.backend_logs import configured_backend

    return configured_backend()  # without importing Keras: the check runs before TensorFlow's import


def export_for_serving(model, best_dir: Path, fmt: str) -> Path | None:
    """Write the extra export of ``fmt`` into ``best_dir``; returns its path (None for ``keras``)."""
    if fmt == "savedmodel":
        target = best_dir / SAVED_MODEL_DIR
        with _quiet_logger("tensorflow"):  # its "Assets written to: <temporary folder>" line means nothing to a user
            return _replace_folder(target, lambda tmp: model.export(str(tmp), format="tf_saved_model", verbose=False))
    if fmt == "onnx":
        import numpy as np

        # Keras converts only a model that has been called; a rebuilt, reloaded model has not.
        model.predict(np.zeros((1, *model.input_shape[1:]), "float32"), verbose=0)
        target = best_dir / ONNX_FILE
        tmp = target.with_name(f".{target.stem}.tmp-{os.getpid()}{target.suffix}")
        try:
            model.export(str(tmp), format="onnx", verbose=False)
            os.replace(tmp, target)
        finally:
            tmp.unlink(missing_ok=True)
        return target
    return None


@contextmanager
def _quiet_logger(name: str, level: int = logging.WARNING) -> Iterator[None]:
    """Hold a library's logger at ``level`` in the block (its INFO lines reach Hydra's console otherwise)."""
    logger = logging.getLogger(name)
    previous = logger.level
    logger.setLevel(max(level, logger.getEffectiveLevel()))
    try:
        yield
    finally:
        logger.setLevel(previous)


def _replace_folder(target: Path, write) -> Path:
    """Write a folder under a temporary name, then swap it in: a kill leaves the old or the new one whole."""
    tmp = target.with_name(f".{target.name}.tmp-{os.getpid()}")
    old = target.with_name(f".{target.name}.old-{os.getpid()}")
    for stale in target.parent.glob(f".{target.name}.*-*"):  # what a killed export left (one writer: the lock)
        shutil.rmtree(stale, ignore_errors=True)
    try:
        write(tmp)
        if target.exists():
            os.replace(target, old)
        os.replace(tmp, target)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
        shutil.rmtree(old, ignore_errors=True)
    return target
