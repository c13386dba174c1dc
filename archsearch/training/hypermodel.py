"""A search space that builds models: KerasTuner's ``HyperModel``, and plain ``build(hp)`` functions.

Subclass :class:`HyperModel` and implement ``build(hp)``; override ``fit(hp, model, *args, **kwargs)``
to tune what happens around ``model.fit`` (batch size, shuffling, preprocessing, a custom loop), as
KerasTuner documents.  The runner calls ``fit`` with the trial's ``epochs``, ``initial_epoch`` and
callbacks (which report each epoch to the search); whatever it returns — a ``History``, a dict of
metrics, or a single number — is the trial's result (see :mod:`archsearch.core.trial_results`).
No Keras import here: this module defines protocols, the runner brings the models.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from archsearch.errors import ConfigError


class HyperModel:
    """A buildable search space, as in KerasTuner: subclass it and implement ``build(hp)``.

    ``tunable=False``, as in KerasTuner: ``build`` gets a copy of the hyperparameters, so what it
    declares is not added to the search space and takes its default value; only what was declared
    beforehand (``hyperparameters=`` of the tuner) is searched.
    """

    def __init__(self, name: str | None = None, tunable: bool = True) -> None:
        self.name = name
        self.tunable = tunable

    def __init_subclass__(cls, **kwargs: Any) -> None:
        # Each subclass's own build honours ``tunable``, wherever it is called from (the runner, the
        # space discovery, a user's ``tuner.hypermodel.build(best_hp)``), as KerasTuner's wrapper does.
        super().__init_subclass__(**kwargs)
        build = cls.__dict__.get("build")
        if build is None or getattr(build, "_honours_tunable", False):
            return

        @functools.wraps(build)
        def honouring_tunable(self, hp, *args: Any, **kwargs: Any):
            if not getattr(self, "tunable", True) and hasattr(hp, "copy"):
                hp = hp.copy()
            return build(self, hp, *args, **kwargs)

        honouring_tunable._honours_tunable = True  # type: ignore[attr-defined]
        cls.build = honouring_tunable  # type: ignore[method-assign]

    def build(self, hp):
        raise NotImplementedError("a HyperModel subclass implements build(hp) and returns a Keras model")

    def declare_hyperparameters(self, hp) -> None:
        """Declare values up front (KerasTuner's hook); the search also learns them from ``build``."""

    def fit(self, hp, model, *args: Any, **kwargs: Any):
        """Train ``model``; the default is ``model.fit(*args, **kwargs)``."""
        return model.fit(*args, **kwargs)


class DefaultHyperModel(HyperModel):
    """Wraps a plain ``model_builder(hp)`` function."""

    def __init__(self, build_fn: Callable[[Any], Any]) -> None:
        super().__init__(getattr(build_fn, "__name__", None))
        self._build_fn = build_fn

    def build(self, hp):
        # A fresh naming scope, as KerasTuner's trials get: builders that name one layer
        # "dense_1" must not clash with Keras' auto-generated names from earlier builds.
        # No garbage collection here: the runner already freed the last model (a collection costs ~0.15 s).
        import keras

        if not _in_distribution_scope():  # clearing the session would leave a strategy's scope
            keras.backend.clear_session(free_memory=False)
        return self._build_fn(hp)


def _in_distribution_scope() -> bool:
    import sys

    tf = sys.modules.get("tensorflow")
    return tf is not None and keras_backend() == "tensorflow" and tf.distribute.has_strategy()


def keras_backend() -> str:
    import keras

    return keras.backend.backend()


def as_hypermodel(hypermodel: Any) -> HyperModel:
    """A HyperModel (or anything with ``build``) as is; a function wrapped."""
    if isinstance(hypermodel, HyperModel) or hasattr(hypermodel, "build"):
        return hypermodel
    if callable(hypermodel):
        return DefaultHyperModel(hypermodel)
    raise ConfigError("hypermodel", f"{hypermodel!r} is neither a build(hp) function nor a HyperModel (the "
                      "`hypermodel` argument should be either a callable with signature `build(hp)` returning a "
                      "model, or an instance of `HyperModel`)",
                      "pass a model_builder(hp) function or a HyperModel subclass")


def custom_fit(hypermodel: Any) -> Callable[..., Any] | None:
    """The hypermodel's own ``fit(hp, model, ...)`` when it overrides the default, else None."""
    fit = getattr(type(hypermodel), "fit", None)
    if fit is None or fit is HyperModel.fit:
        return None
    return getattr(hypermodel, "fit")
