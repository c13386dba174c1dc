"""Activations shared by the model families (hypermodels/), serialisable by name.

``mish`` (Misra, 2019) is the activation the original U-Net project tuned
for; it is registered with Keras under the ``archsearch`` package so a model
that uses it reloads with ``keras.saving.load_model`` once this module has
been imported (``import archsearch.training.custom_objects`` does that).

Families ask :func:`get_activation` for a *layer*, so every activation gets a
stage name in the graph ("enc1_act1") and a searched ``activation`` choice
maps to one place.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import keras
from keras import ops

from archsearch.errors import ConfigError
from archsearch.training.measures import flops_rule


@keras.saving.register_keras_serializable(package="archsearch", name="mish")
def mish(x):
    """``x * tanh(softplus(x))``: smooth and non-monotonic, unbounded above."""
    return x * ops.tanh(ops.softplus(x))


@keras.saving.register_keras_serializable(package="archsearch", name="Mish")
class Mish(keras.layers.Layer):
    """The mish activation as a layer (no weights), so it can carry a stage name."""

    def call(self, inputs):
        return mish(inputs)

    def compute_output_shape(self, input_shape):
        return input_shape


# The ``flops`` measure counts an activation as 1 FLOP per element (archsearch.training.measures).
flops_rule(Mish)(lambda layer, ins, outs: math.prod(outs[0]))


def _leaky_relu(name: str | None) -> keras.layers.Layer:
    return keras.layers.LeakyReLU(negative_slope=0.1, name=name)


# name -> factory(layer_name) -> layer
_ACTIVATIONS: dict[str, Callable[[str | None], keras.layers.Layer]] = {
    "mish": lambda name: Mish(name=name),
    "elu": lambda name: keras.layers.ELU(name=name),
    "relu": lambda name: keras.layers.ReLU(name=name),
    "lrelu": _leaky_relu,
    "leaky_relu": _leaky_relu,
    "gelu": lambda name: keras.layers.Activation("gelu", name=name),
    "swish": lambda name: keras.layers.Activation("swish", name=name),
}

ACTIVATIONS = tuple(_ACTIVATIONS)


def get_activation(name: str, layer_name: str | None = None, *, field: str = "activation") -> keras.layers.Layer:
    """A fresh activation layer for ``name`` (mish, elu, relu, lrelu, gelu, swish).

    ``lrelu`` is LeakyReLU with slope 0.1, as in the original project.
    ``field`` names the config setting in the error raised for an unknown name.
    """
    key = str(name).lower()
    if key not in _ACTIVATIONS:
        raise ConfigError(field, f"unknown activation {name!r}", f"choose one of: {', '.join(ACTIVATIONS)}")
    return _ACTIVATIONS[key](layer_name)
