"""``HyperXception``: KerasTuner's tunable Xception-style network, built with Keras 3 layers.

A strided stem convolution, ``num_residual_blocks`` residual blocks of two separable convolutions,
an exit block that doubles the width and halves the resolution, pooling, then ``num_dense_layers``
dense layers (as wide as there are classes, as KerasTuner makes them) and a softmax.  With
``activation="selu"`` the network is self-normalising (LeCun-normal initialisation, no batch norm);
with ``relu`` every convolution is followed by batch norm.  :func:`xception_features` and
:func:`xception_top` are shared with the CLI's ``model=xception`` family (``hypermodels/xception.py``).
"""

from __future__ import annotations


from archsearch.keras_tuner.applications._common import ImageHyperModel, compile_one_hot, global_pool, model_inputs
from archsearch.errors import ConfigError

ACTIVATIONS = ("relu", "selu")
POOLINGS = ("avg", "flatten", "max")


class HyperXception(ImageHyperModel):
    """An Xception hypermodel, as ``keras_tuner.applications.HyperXception``.

    Args:
        include_top: add the dense layers and the softmax (and compile); False gives the pooled features.
        input_shape: e.g. ``(224, 224, 3)``; or give ``input_tensor`` (a ``keras.Input``).
        classes: the number of classes; needed when ``include_top``.
        **kwargs: ``name``, ``tunable`` (False: parameters not declared beforehand keep their defaults).
    """

    def build(self, hp):
        import keras

        activation = hp.Choice("activation", list(ACTIVATIONS))
        inputs, x = model_inputs(self.input_shape, self.input_tensor)
        x = xception_features(
            x, activation,
            conv2d_num_filters=hp.Choice("conv2d_num_filters", [32, 64, 128], default=64),
            kernel_size=hp.Choice("kernel_size", [3, 5]),
            initial_strides=hp.Choice("initial_strides", [2]),
            sep_num_filters=hp.Int("sep_num_filters", 128, 768, step=128, default=256),
            num_residual_blocks=hp.Int("num_residual_blocks", 2, 8, default=4),
        )
        x = global_pool(x, hp.Choice("pooling", list(POOLINGS)))
        if not self.include_top:
            return keras.Model(inputs, x, name="Xception")
        outputs = xception_top(
            x, int(self.classes), activation,
            num_dense_layers=hp.Int("num_dense_layers", 1, 3),
            dropout_rate=hp.Float("dropout_rate", 0.0, 0.6, step=0.1, default=0.5),
            dense_use_bn=hp.Choice("dense_use_bn", [True, False]),
        )
        model = keras.Model(inputs, outputs, name="Xception")
        compile_one_hot(model, "adam", hp.Choice("learning_rate", [1e-3, 1e-4, 1e-5]))
        return model


def xception_features(x, activation: str, *, conv2d_num_filters: int, kernel_size: int, initial_strides: int,
                      sep_num_filters: int, num_residual_blocks: int):
    """Stem, residual blocks and the exit block on image tensor ``x`` (before pooling)."""
    from keras import layers

    if activation not in ACTIVATIONS:
        raise ConfigError("activation", f"unknown activation {activation!r}", f"use one of {', '.join(ACTIVATIONS)}")
    k, s = int(kernel_size), int(initial_strides)
    if activation == "selu":
        x = layers.Conv2D(int(conv2d_num_filters), k, strides=s, padding="same", activation="selu",
                          kernel_initializer="lecun_normal", name="stem_conv")(x)
    else:
        x = layers.Conv2D(int(conv2d_num_filters), k, strides=s, padding="same", use_bias=False, name="stem_conv")(x)
        x = layers.Activation("relu", name="stem_relu")(layers.BatchNormalization(name="stem_bn")(x))
    for i in range(1, int(num_residual_blocks) + 1):
        x = _residual(x, int(sep_num_filters), activation, downsample=False, name=f"block{i}")
    return _residual(x, 2 * int(sep_num_filters), activation, downsample=True, name="exit")


def xception_top(x, classes: int, activation: str, *, num_dense_layers: int, dropout_rate: float,
                 dense_use_bn: bool, dense_units: int | None = None):
    """Dense layers (``dense_units`` wide; KerasTuner: as many as classes) and the softmax."""
    from keras import layers

    units = int(dense_units or classes)
    rate = float(dropout_rate)
    for i in range(1, int(num_dense_layers) + 1):
        if activation == "selu":  # self-normalising: no batch norm
            x = layers.Dense(units, activation="selu", kernel_initializer="lecun_normal", name=f"dense{i}")(x)
        else:
            x = layers.Dense(units, activation="relu", name=f"dense{i}")(x)
            if dense_use_bn:
                x = layers.BatchNormalization(name=f"dense{i}_bn")(x)
        if rate > 0:
            x = layers.Dropout(rate, name=f"dense{i}_dropout")(x)
    return layers.Dense(int(classes), activation="softmax", dtype="float32", name="probs")(x)


def _sep_conv(x, filters: int, activation: str, name: str):
    from keras import layers

    if activation == "selu":
        return layers.SeparableConv2D(filters, 3, padding="same", activation="selu",
                                      depthwise_initializer="lecun_normal", pointwise_initializer="lecun_normal",
                                      name=name)(x)
    x = layers.SeparableConv2D(filters, 3, padding="same", use_bias=False, name=name)(x)
    return layers.Activation("relu", name=f"{name}_relu")(layers.BatchNormalization(name=f"{name}_bn")(x))


def _residual(x, filters: int, activation: str, downsample: bool, name: str):
    """Two separable convolutions plus a shortcut (a 1x1 convolution where the shape changes)."""
    from keras import layers

    if downsample:
        shortcut = layers.Conv2D(filters, 1, strides=2, padding="same", name=f"{name}_shortcut")(x)
    elif x.shape[-1] != filters:
        shortcut = layers.Conv2D(filters, 1, padding="same", name=f"{name}_shortcut")(x)
    else:
        shortcut = x
    y = _sep_conv(x, filters, activation, f"{name}_sep1")
    y = _sep_conv(y, filters, activation, f"{name}_sep2")
    if downsample:
        y = layers.MaxPooling2D(3, strides=2, padding="same", name=f"{name}_pool")(y)
    return layers.Add(name=f"{name}_add")([y, shortcut])
