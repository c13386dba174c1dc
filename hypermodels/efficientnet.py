"""EfficientNet family for the CLI (``model=efficientnet``): KerasTuner's HyperEfficientNet on the data.

A Keras ``EfficientNet<version>`` backbone (no top) on the images resized to ``image_size``, then
global pooling, dropout ``top_dropout_rate`` and a softmax; returned uncompiled (the config's loss,
the trainer's optimizer at the searched ``learning_rate``).  Fixed params: ``weights`` (null: from
scratch, works offline and on grayscale images; ``imagenet``: downloaded once, needs 3 channels)
and ``image_size`` (null: each version's own, 224 for B0, which is slow on a CPU).
"""

from __future__ import annotations

from typing import Any

from archsearch.keras_tuner.applications.efficientnet import POOLINGS, VERSIONS
from archsearch.core.checks import whole_number
from archsearch.errors import ConfigError
from hypermodels.image_families import check_family, image_shape
from hypermodels.mlp import value

DEFAULTS = {"version": "B0", "pooling": "avg", "top_dropout_rate": 0.2}
ALLOWED = {"version": VERSIONS, "pooling": POOLINGS, "top_dropout_rate": None}


def validate_config(space: Any, input_shape: tuple[int, ...], num_classes: int, params: dict) -> None:
    image_shape(input_shape, "efficientnet")
    check_family(space, params, "efficientnet", ALLOWED, extra_params=("weights", "image_size"))
    whole_number(params.get("image_size"), "model.params.image_size", 16, allow_none=True)
    shape = image_shape(input_shape, "efficientnet")
    channels = shape[2] if len(shape) == 3 else 1
    if params.get("weights") == "imagenet" and channels != 3:
        raise ConfigError("model.params.weights", f"ImageNet weights need 3-channel images, the data has {channels}",
                          "use model.params.weights=null (from scratch) or RGB data such as data=cifar10")


def build(hp: Any, *, input_shape: tuple[int, ...], num_classes: int, **params: Any):
    """An uncompiled EfficientNet classifier for ``num_classes`` classes."""
    import keras

    from archsearch.keras_tuner.applications._common import global_pool, model_inputs
    from archsearch.keras_tuner.applications.efficientnet import efficientnet_features
    from hypermodels.mlp import dropout_rate

    get = {name: value(hp, params, name, default) for name, default in DEFAULTS.items()}
    inputs, x = model_inputs(image_shape(input_shape, "efficientnet"), None)
    x = efficientnet_features(x, str(get["version"]), params.get("weights"), params.get("image_size"))
    x = global_pool(x, str(get["pooling"]))
    x = keras.layers.Dropout(dropout_rate(get["top_dropout_rate"], "top_dropout_rate"), name="top_dropout")(x)
    outputs = keras.layers.Dense(int(num_classes), activation="softmax", dtype="float32", name="probs")(x)
    return keras.Model(inputs, outputs, name="efficientnet")
