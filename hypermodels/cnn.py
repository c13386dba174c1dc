"""Small convolutional network: the Fashion-MNIST CNN family tuned in the source tutorials.

``num_blocks`` blocks of Conv2D(``filters_<i>``, 3x3, ``padding``) + MaxPool(2)
+ Dropout(``dropout``), then Flatten, Dense(``dense_units``) and a softmax.

Small images are guarded rather than crashing: a later block is not added when
its 'valid' convolution would shrink the feature map below 3 pixels, and a
block skips its pooling when pooling would do so.  The first block always
exists; on an image too small for a 'valid' convolution it pads 'same'.
Grayscale inputs of shape ``(h, w)`` get a channel axis from a Reshape layer.
"""

from __future__ import annotations

from typing import Any

from archsearch.errors import ConfigError
from hypermodels.mlp import dropout_rate, value

KERNEL = 3
POOL = 2
MIN_SIZE = 3  # smallest feature map a block may leave behind


def _image_shape(input_shape: tuple[int, ...]) -> tuple[int, int, int]:
    shape = tuple(int(d) for d in input_shape)
    if len(shape) == 2:
        return shape[0], shape[1], 1
    if len(shape) == 3:
        return shape  # type: ignore[return-value]
    raise ConfigError(
        "model",
        f"the cnn family needs images of shape (h, w) or (h, w, channels), the data has inputs of shape {shape}",
        "use model=mlp for flat feature vectors",
    )


def validate_config(space: Any, input_shape: tuple[int, ...], num_classes: int, params: dict) -> None:
    """Fail before any training when the data cannot feed a CNN."""
    _image_shape(input_shape)


def _conv_size(size: int, padding: str) -> int:
    return size - (KERNEL - 1) if padding == "valid" else size


def build(hp: Any, *, input_shape: tuple[int, ...], num_classes: int, **params: Any):
    """An uncompiled CNN for ``num_classes`` classes (see the module docstring for the parameters)."""
    import keras

    h, w, c = _image_shape(input_shape)
    num_blocks = int(value(hp, params, "num_blocks", 1))
    if num_blocks < 1:
        raise ConfigError("num_blocks", f"{num_blocks} blocks", "use at least 1 (the space uses 1-3)")
    padding = str(value(hp, params, "padding", "valid")).lower()
    if padding not in ("valid", "same"):
        raise ConfigError("padding", f"unknown padding {padding!r}", "use valid or same")
    activation = str(value(hp, params, "activation", "relu"))
    rate = dropout_rate(value(hp, params, "dropout", 0.0))
    fallback_filters = int(value(hp, params, "filters", 32))
    dense_units = int(value(hp, params, "dense_units", 100))

    inputs = keras.Input(shape=tuple(int(d) for d in input_shape), name="input")
    x = inputs
    if len(input_shape) == 2:
        x = keras.layers.Reshape((h, w, 1), name="add_channel")(x)
    size = min(h, w)
    for i in range(1, num_blocks + 1):
        block_padding = padding
        if _conv_size(size, padding) < MIN_SIZE:
            if i > 1:
                break  # a further block would shrink the map below the kernel
            block_padding = "same"  # the first block always exists
        filters = int(value(hp, params, f"filters_{i}", fallback_filters))
        x = keras.layers.Conv2D(filters, KERNEL, padding=block_padding, activation=activation,
                                name=f"block{i}_conv")(x)
        size = _conv_size(size, block_padding)
        if size // POOL >= MIN_SIZE:
            x = keras.layers.MaxPooling2D(POOL, name=f"block{i}_pool")(x)
            size //= POOL
        if rate > 0:
            x = keras.layers.Dropout(rate, name=f"block{i}_dropout")(x)
    x = keras.layers.Flatten(name="flatten")(x)
    x = keras.layers.Dense(dense_units, activation=activation, name="dense")(x)
    outputs = keras.layers.Dense(int(num_classes), activation="softmax", dtype="float32", name="output")(x)
    return keras.Model(inputs, outputs, name="cnn")
