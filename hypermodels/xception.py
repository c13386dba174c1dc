"""Xception family for the CLI (``model=xception``): KerasTuner's HyperXception on the data's images.

The network is :func:`archsearch.keras_tuner.applications.xception.xception_features` and ``xception_top``
with the searched values; returned uncompiled, so the config's loss (integer labels) and the
trainer's optimizer at the searched ``learning_rate`` apply (KerasTuner's HyperXception uses Adam,
the trainer's default).  ``dense_units`` (a fixed param) sets the dense layers' width; by default
they are as wide as there are classes, as in KerasTuner.
"""

from __future__ import annotations

from typing import Any

from archsearch.keras_tuner.applications.xception import ACTIVATIONS, POOLINGS
from archsearch.core.checks import whole_number
from hypermodels.image_families import check_family, image_shape
from hypermodels.mlp import value

DEFAULTS = {"activation": "relu", "conv2d_num_filters": 64, "kernel_size": 3, "initial_strides": 2,
            "sep_num_filters": 256, "num_residual_blocks": 4, "pooling": "avg", "num_dense_layers": 1,
            "dropout_rate": 0.5, "dense_use_bn": True}
ALLOWED = {**{name: None for name in DEFAULTS}, "activation": ACTIVATIONS, "pooling": POOLINGS,
           "dense_use_bn": (True, False)}


def validate_config(space: Any, input_shape: tuple[int, ...], num_classes: int, params: dict) -> None:
    image_shape(input_shape, "xception")
    check_family(space, params, "xception", ALLOWED, extra_params=("dense_units",))
    whole_number(params.get("dense_units"), "model.params.dense_units", 1, allow_none=True)


def build(hp: Any, *, input_shape: tuple[int, ...], num_classes: int, **params: Any):
    """An uncompiled Xception classifier for ``num_classes`` classes."""
    import keras

    from archsearch.keras_tuner.applications._common import global_pool, model_inputs
    from archsearch.keras_tuner.applications.xception import xception_features, xception_top

    get = {name: value(hp, params, name, default) for name, default in DEFAULTS.items()}
    inputs, x = model_inputs(image_shape(input_shape, "xception"), None)
    activation = str(get["activation"])
    x = xception_features(x, activation, conv2d_num_filters=get["conv2d_num_filters"],
                          kernel_size=get["kernel_size"], initial_strides=get["initial_strides"],
                          sep_num_filters=get["sep_num_filters"], num_residual_blocks=get["num_residual_blocks"])
    x = global_pool(x, str(get["pooling"]))
    outputs = xception_top(x, int(num_classes), activation, num_dense_layers=get["num_dense_layers"],
                           dropout_rate=get["dropout_rate"], dense_use_bn=bool(get["dense_use_bn"]),
                           dense_units=params.get("dense_units"))
    return keras.Model(inputs, outputs, name="xception")
