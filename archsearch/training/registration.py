"""Register archsearch's Keras objects (losses, metrics, layers) whenever Keras is imported.

An exported ``model.keras`` names objects such as ``archsearch>BCEDice`` and ``archsearch>Mish``;
``keras.saving.load_model`` finds them only once their modules ran.  ``import archsearch`` stays
cheap (no TensorFlow), so instead of importing Keras it registers the objects at once if Keras is
already loaded, else right after Keras' own import finishes: a process that imported ``keras``
and ``archsearch``, in either order, loads every export with plain ``keras.saving.load_model``.
"""

from __future__ import annotations

import importlib.abc
import importlib.util
import sys

WATCHED = "keras"


def register_when_keras_loads() -> None:
    """Register now if Keras is loaded, else once ``import keras`` completes."""
    if WATCHED in sys.modules:
        register()
    elif not any(isinstance(finder, _KerasImportWatcher) for finder in sys.meta_path):
        sys.meta_path.insert(0, _KerasImportWatcher())


def register() -> None:
    import archsearch.training.custom_objects  # noqa: F401  (its imports run the register_keras_serializable decorators)


class _KerasImportWatcher(importlib.abc.MetaPathFinder):
    """Finds ``keras`` as the other finders would, and makes its loader register our objects after it.

    It stays in ``sys.meta_path`` until Keras actually loaded: libraries probe with
    ``importlib.util.find_spec("keras")`` without importing (TensorFlow does).
    """

    def __init__(self) -> None:
        self._searching = False

    def find_spec(self, fullname, path=None, target=None):
        if fullname != WATCHED or self._searching:
            return None
        self._searching = True
        try:
            spec = importlib.util.find_spec(fullname)
        finally:
            self._searching = False
        loader = getattr(spec, "loader", None)
        if loader is None or not hasattr(loader, "exec_module"):
            return spec
        run_keras = loader.exec_module

        def exec_module(module) -> None:
            run_keras(module)
            if self in sys.meta_path:
                sys.meta_path.remove(self)
            register()

        loader.exec_module = exec_module
        return spec
