"""``HyperResNet``: KerasTuner's tunable ResNet (v1, v2 pre-activation, ResNeXt), built with Keras 3 layers.

The searched architecture is the ResNet-50 layout with a tunable depth of its third and fourth
stages (``conv3_depth`` 4 or 8, ``conv4_depth`` 6, 23 or 36: ResNet-50, -101 and -152) and of its
version; the top is global pooling and a softmax, compiled with the tuned optimizer and learning
rate.  :func:`resnet_features` is the body alone, which the CLI's ``model=resnet`` family
(``hypermodels/resnet.py``) builds with its own, smaller, search space.
"""

from __future__ import annotations

import math

from archsearch.keras_tuner.applications._common import (BN_EPSILON, ImageHyperModel, compile_one_hot, global_pool,
                                             model_inputs)
from archsearch.errors import ConfigError

VERSIONS = ("v1", "v2", "next")
POOLINGS = ("avg", "max")


class HyperResNet(ImageHyperModel):
    """A ResNet hypermodel, as ``keras_tuner.applications.HyperResNet``.

    Args:
        include_top: add the softmax classifier (and compile); False gives the pooled features.
        input_shape: e.g. ``(224, 224, 3)``; or give ``input_tensor`` (a ``keras.Input``).
        classes: the number of classes; needed when ``include_top``.
        **kwargs: ``name``, ``tunable`` (False: parameters not declared beforehand keep their defaults).
    """

    def build(self, hp):
        import keras

        version = hp.Choice("version", list(VERSIONS), default="v2")
        conv3_depth = hp.Choice("conv3_depth", [4, 8])
        conv4_depth = hp.Choice("conv4_depth", [6, 23, 36])
        inputs, x = model_inputs(self.input_shape, self.input_tensor)
        x = resnet_features(x, version, int(conv3_depth), int(conv4_depth))
        x = global_pool(x, hp.Choice("pooling", list(POOLINGS), default="avg"))
        if not self.include_top:
            return keras.Model(inputs, x, name="ResNet")
        outputs = keras.layers.Dense(int(self.classes), activation="softmax", dtype="float32", name="probs")(x)
        model = keras.Model(inputs, outputs, name="ResNet")
        optimizer = hp.Choice("optimizer", ["adam", "rmsprop", "sgd"], default="adam")
        compile_one_hot(model, optimizer, hp.Choice("learning_rate", [0.1, 0.01, 0.001], default=0.01))
        return model


def resnet_features(x, version: str, conv3_depth: int, conv4_depth: int, base_filters: int = 64):
    """The ResNet body on image tensor ``x``: stem, four stages (32x downsampling in all), final activation.

    ``base_filters`` (64 in ResNet) sets every width: the stem and first stage have it, later stages
    double it (ResNeXt: x4, x8, x16, with ``base_filters // 2`` groups, i.e. 32 for 64).
    """
    from keras import layers

    if version not in VERSIONS:
        raise ConfigError("version", f"unknown ResNet version {version!r}", f"use one of {', '.join(VERSIONS)}")
    for name, depth in (("conv3_depth", conv3_depth), ("conv4_depth", conv4_depth)):
        if depth < 1:
            raise ConfigError(name, f"{depth} blocks", "use at least 1")
    b = int(base_filters)
    preact = version == "v2"
    x = layers.ZeroPadding2D(3, name="conv1_pad")(x)
    x = layers.Conv2D(b, 7, strides=2, use_bias=version != "next", name="conv1_conv")(x)
    if not preact:
        x = _bn_relu(x, "conv1")
    x = layers.ZeroPadding2D(1, name="pool1_pad")(x)
    x = layers.MaxPooling2D(3, strides=2, name="pool1_pool")(x)
    depths = (3, conv3_depth, conv4_depth, 3)
    if version == "next":
        widths, block = (b, 4 * b, 8 * b, 16 * b), _next_block
    else:
        widths, block = (b, 2 * b, 4 * b, 8 * b), _v2_block if preact else _v1_block
    groups = max(1, b // 2)
    for stage, (filters, depth) in enumerate(zip(widths, depths), start=2):
        for i in range(1, depth + 1):
            if preact:  # v2 downsamples in the last block of a stage (not in the last stage)
                stride = 2 if i == depth and stage < 5 else 1
            else:  # v1 and ResNeXt in the first block (not in the first stage, after the stem's pooling)
                stride = 2 if i == 1 and stage > 2 else 1
            x = block(x, filters, stride, project=i == 1, name=f"conv{stage}_block{i}", groups=groups)
    if preact:
        x = _bn_relu(x, "post")
    return x


def _bn(x, name: str):
    from keras import layers

    return layers.BatchNormalization(epsilon=BN_EPSILON, name=f"{name}_bn")(x)


def _bn_relu(x, name: str):
    from keras import layers

    return layers.Activation("relu", name=f"{name}_relu")(_bn(x, name))


def _v1_block(x, filters: int, stride: int, project: bool, name: str, groups: int):
    """Bottleneck (1x1, 3x3, 1x1 to 4x the width), batch norm after each conv, ReLU after the sum."""
    from keras import layers

    shortcut = _bn(layers.Conv2D(4 * filters, 1, strides=stride, name=f"{name}_0_conv")(x), f"{name}_0") \
        if project else x
    y = _bn_relu(layers.Conv2D(filters, 1, strides=stride, name=f"{name}_1_conv")(x), f"{name}_1")
    y = _bn_relu(layers.Conv2D(filters, 3, padding="same", name=f"{name}_2_conv")(y), f"{name}_2")
    y = _bn(layers.Conv2D(4 * filters, 1, name=f"{name}_3_conv")(y), f"{name}_3")
    return layers.Activation("relu", name=f"{name}_out")(layers.Add(name=f"{name}_add")([shortcut, y]))


def _v2_block(x, filters: int, stride: int, project: bool, name: str, groups: int):
    """Pre-activation bottleneck: batch norm and ReLU before the convolutions, a plain sum at the end."""
    from keras import layers

    pre = _bn_relu(x, f"{name}_preact")
    if project:
        shortcut = layers.Conv2D(4 * filters, 1, strides=stride, name=f"{name}_0_conv")(pre)
    elif stride > 1:
        shortcut = layers.MaxPooling2D(1, strides=stride, name=f"{name}_0_pool")(x)
    else:
        shortcut = x
    y = _bn_relu(layers.Conv2D(filters, 1, use_bias=False, name=f"{name}_1_conv")(pre), f"{name}_1")
    y = layers.ZeroPadding2D(1, name=f"{name}_2_pad")(y)
    y = _bn_relu(layers.Conv2D(filters, 3, strides=stride, use_bias=False, name=f"{name}_2_conv")(y), f"{name}_2")
    y = layers.Conv2D(4 * filters, 1, name=f"{name}_3_conv")(y)
    return layers.Add(name=f"{name}_out")([shortcut, y])


def _next_block(x, filters: int, stride: int, project: bool, name: str, groups: int):
    """ResNeXt bottleneck: a grouped 3x3 convolution, output 2x the width."""
    from keras import layers

    shortcut = x
    if project:
        shortcut = _bn(layers.Conv2D(2 * filters, 1, strides=stride, use_bias=False, name=f"{name}_0_conv")(x),
                       f"{name}_0")
    y = _bn_relu(layers.Conv2D(filters, 1, use_bias=False, name=f"{name}_1_conv")(x), f"{name}_1")
    y = layers.ZeroPadding2D(1, name=f"{name}_2_pad")(y)
    y = layers.Conv2D(filters, 3, strides=stride, groups=math.gcd(groups, filters), use_bias=False,
                      name=f"{name}_2_conv")(y)
    y = _bn_relu(y, f"{name}_2")
    y = _bn(layers.Conv2D(2 * filters, 1, use_bias=False, name=f"{name}_3_conv")(y), f"{name}_3")
    return layers.Activation("relu", name=f"{name}_out")(layers.Add(name=f"{name}_add")([shortcut, y]))
