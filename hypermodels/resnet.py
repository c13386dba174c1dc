"""ResNet family for the CLI (``model=resnet``): KerasTuner's HyperResNet body on the data's images.

The network is :func:`archsearch.keras_tuner.applications.resnet.resnet_features` (v1, v2 or ResNeXt, tunable
third and fourth stage depths), global pooling and a softmax over ``num_classes``.  Unlike
``kt.applications.HyperResNet`` it is returned uncompiled, so the config's loss (integer labels)
and the searched ``optimizer``/``learning_rate`` apply.  ``base_filters`` (a fixed param, 64 as in
ResNet) scales every width: 16 trains about 16 times faster on a CPU.
"""

from __future__ import annotations

from typing import Any

from archsearch.keras_tuner.applications.resnet import POOLINGS, VERSIONS
from archsearch.core.checks import whole_number
from hypermodels.image_families import check_family, image_shape
from hypermodels.mlp import value

DEFAULTS = {"version": "v2", "conv3_depth": 4, "conv4_depth": 6, "pooling": "avg"}
ALLOWED = {"version": VERSIONS, "conv3_depth": None, "conv4_depth": None, "pooling": POOLINGS}


def validate_config(space: Any, input_shape: tuple[int, ...], num_classes: int, params: dict) -> None:
    image_shape(input_shape, "resnet")
    check_family(space, params, "resnet", ALLOWED, extra_params=("base_filters",))
    whole_number(params.get("base_filters", 64), "model.params.base_filters", 1)


def build(hp: Any, *, input_shape: tuple[int, ...], num_classes: int, **params: Any):
    """An uncompiled ResNet classifier for ``num_classes`` classes."""
    import keras

    from archsearch.keras_tuner.applications._common import global_pool, model_inputs
    from archsearch.keras_tuner.applications.resnet import resnet_features

    get = {name: value(hp, params, name, default) for name, default in DEFAULTS.items()}
    inputs, x = model_inputs(image_shape(input_shape, "resnet"), None)
    x = resnet_features(x, str(get["version"]), int(get["conv3_depth"]), int(get["conv4_depth"]),
                        base_filters=int(params.get("base_filters", 64)))
    x = global_pool(x, str(get["pooling"]))
    outputs = keras.layers.Dense(int(num_classes), activation="softmax", dtype="float32", name="probs")(x)
    return keras.Model(inputs, outputs, name="resnet")
