"""``HyperEfficientNet``: one of Keras' EfficientNetB0-B7 as a tuned feature extractor, as in KerasTuner.

The searched ``version`` picks the backbone (``keras.applications.EfficientNetB<n>``, without its
top); inputs are resized to that version's native size, an optional augmentation model (a Keras
model, or a hypermodel whose values are searched with the rest) runs first, and a new top (global
pooling, dropout ``top_dropout_rate``, softmax) is trained with SGD at the tuned learning rate.
Override ``_compile(model, hp)`` to compile differently, as KerasTuner documents.

``weights="imagenet"`` (KerasTuner's, the default) downloads the backbone's weights on first use
(Keras caches them in ``~/.keras/models``); ``weights=None`` trains the backbone from scratch.
"""

from __future__ import annotations

from typing import Any

from archsearch.keras_tuner.applications._common import check_arguments, global_pool, model_inputs
from archsearch.errors import ConfigError
from archsearch.training.hypermodel import HyperModel

# version -> the image size it was designed for
IMAGE_SIZES = {"B0": 224, "B1": 240, "B2": 260, "B3": 300, "B4": 380, "B5": 456, "B6": 528, "B7": 600}
VERSIONS = tuple(IMAGE_SIZES)
POOLINGS = ("avg", "max")


class HyperEfficientNet(HyperModel):
    """An EfficientNet hypermodel, as ``keras_tuner.applications.HyperEfficientNet``.

    Args:
        input_shape: e.g. ``(224, 224, 3)``; or give ``input_tensor`` (a ``keras.Input``).
        classes: the number of classes (required).
        augmentation_model: None, a Keras model, or a HyperModel built with the trial's values.
        weights: the backbone's initial weights: ``"imagenet"`` (downloaded once), None, or a file path.
        **kwargs: ``name``, ``tunable`` (False: parameters not declared beforehand keep their defaults).
    """

    def __init__(self, input_shape: tuple | None = None, input_tensor: Any = None, classes: int | None = None,
                 augmentation_model: Any = None, weights: str | None = "imagenet", **kwargs: Any) -> None:
        if augmentation_model is not None and not isinstance(augmentation_model, HyperModel) \
                and not _is_keras_model(augmentation_model):
            raise ConfigError("augmentation_model", f"{augmentation_model!r} is neither a HyperModel nor a Keras Model",
                              "pass a keras.Model (e.g. keras.Sequential of Random* layers), a HyperModel, or None")
        check_arguments(True, input_shape, input_tensor, classes)
        super().__init__(**kwargs)
        self.input_shape = input_shape
        self.input_tensor = input_tensor
        self.classes = classes
        self.augmentation_model = augmentation_model
        self.weights = weights

    def build(self, hp):
        import keras

        inputs, x = model_inputs(self.input_shape, self.input_tensor)
        if isinstance(self.augmentation_model, HyperModel):
            x = self.augmentation_model.build(hp)(x)
        elif self.augmentation_model is not None:
            x = self.augmentation_model(x)
        version = hp.Choice("version", list(VERSIONS), default="B0")
        x = efficientnet_features(x, version, self.weights)
        x = global_pool(x, hp.Choice("pooling", list(POOLINGS), default="avg"))
        rate = hp.Float("top_dropout_rate", 0.2, 0.8, step=0.2, default=0.2)
        x = keras.layers.Dropout(rate, name="top_dropout")(x)
        outputs = keras.layers.Dense(int(self.classes), activation="softmax", dtype="float32", name="probs")(x)
        model = keras.Model(inputs, outputs, name="EfficientNet")
        self._compile(model, hp)
        return model

    def _compile(self, model, hp) -> None:
        """SGD (momentum 0.1) at the tuned learning rate, one-hot labels; override to compile otherwise."""
        import keras

        learning_rate = hp.Choice("learning_rate", [0.1, 0.01, 0.001], default=0.01)
        model.compile(optimizer=keras.optimizers.SGD(learning_rate=learning_rate, momentum=0.1),
                      loss="categorical_crossentropy", metrics=["accuracy"])


def efficientnet_features(x, version: str, weights: str | None = "imagenet", image_size: int | None = None):
    """``x`` resized to ``image_size`` (default: the version's own) through EfficientNet<version>, unpooled."""
    import keras

    if version not in IMAGE_SIZES:
        raise ConfigError("version", f"unknown EfficientNet version {version!r}", f"use one of {', '.join(VERSIONS)}")
    size = int(image_size or IMAGE_SIZES[version])
    x = keras.layers.Resizing(size, size, interpolation="bilinear", name="resize")(x)
    backbone = getattr(keras.applications, f"EfficientNet{version}")
    try:
        return backbone(include_top=False, weights=weights, input_tensor=x).output
    except Exception as exc:
        if weights != "imagenet" or "fetch failure" not in str(exc).lower():
            raise
        raise ConfigError("weights", f"the ImageNet weights of EfficientNet{version} could not be downloaded ({exc})",
                          "connect once to the internet (Keras caches them in ~/.keras/models), "
                          "or pass weights=None to train the backbone from scratch") from exc


def _is_keras_model(value: Any) -> bool:
    import keras

    return isinstance(value, keras.Model)

