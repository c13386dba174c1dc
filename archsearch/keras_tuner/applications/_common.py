"""What the ready-made image hypermodels share: their arguments, their inputs, their top and compile.

KerasTuner's applications take ``input_shape`` or ``input_tensor`` and ``classes`` and refuse a
missing one when constructed (before any search starts), so these checks raise there, as
:class:`~archsearch.errors.ConfigError` (a ``ValueError``, as KerasTuner's are).
Keras is imported inside the functions: ``import archsearch.keras_tuner.applications`` stays cheap.
"""

from __future__ import annotations

from typing import Any

from archsearch.errors import ConfigError
from archsearch.training.hypermodel import HyperModel

BN_EPSILON = 1.001e-5


def check_arguments(include_top: bool, input_shape: Any, input_tensor: Any, classes: Any) -> None:
    """KerasTuner's constructor checks: ``classes`` for a top, and an input of some kind."""
    if include_top and not classes:
        raise ConfigError("classes", f"is {classes!r} but include_top=True needs the number of classes",
                          "pass classes=<number of classes>, or include_top=False for the features alone")
    if input_shape is None and input_tensor is None:
        raise ConfigError("input_shape", "neither input_shape nor input_tensor is given",
                          "pass input_shape=(height, width, channels) or input_tensor=keras.Input(...)")


class ImageHyperModel(HyperModel):
    """KerasTuner's constructor of HyperResNet and HyperXception: checked at once, kept for ``build``."""

    def __init__(self, include_top: bool = True, input_shape: tuple | None = None, input_tensor: Any = None,
                 classes: int | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        check_arguments(include_top, input_shape, input_tensor, classes)
        self.include_top = include_top
        self.input_shape = input_shape
        self.input_tensor = input_tensor
        self.classes = classes


def model_inputs(input_shape: Any, input_tensor: Any):
    """``(inputs of the model, the image tensor to build on)``; a grayscale ``(h, w)`` gets a channel axis."""
    import keras

    if input_tensor is not None:
        inputs = keras.utils.get_source_inputs(input_tensor)
        x = input_tensor
    else:
        inputs = keras.Input(shape=tuple(input_shape))
        x = inputs
    if len(x.shape) == 3:
        x = keras.layers.Reshape((*x.shape[1:], 1), name="add_channel")(x)
    return inputs, x


def global_pool(x, pooling: str):
    """KerasTuner's ``pooling`` choice: ``avg``, ``max`` or ``flatten``."""
    import keras

    if pooling == "avg":
        return keras.layers.GlobalAveragePooling2D(name="avg_pool")(x)
    if pooling == "max":
        return keras.layers.GlobalMaxPooling2D(name="max_pool")(x)
    if pooling == "flatten":
        return keras.layers.Flatten(name="flatten")(x)
    raise ConfigError("pooling", f"unknown pooling {pooling!r}", "use avg, max or flatten")


def compile_one_hot(model, optimizer: str | Any, learning_rate: float) -> None:
    """Compile as KerasTuner's applications do: one-hot labels (``categorical_crossentropy``), accuracy."""
    from archsearch.training.optimizers import make_optimizer

    model.compile(optimizer=make_optimizer(optimizer, learning_rate, field="hyperparameter 'optimizer'"),
                  loss="categorical_crossentropy", metrics=["accuracy"])
