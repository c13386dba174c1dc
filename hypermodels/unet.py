"""U-Net family (Ronneberger et al., 2015) for multi-class page segmentation.

The search space follows the original project (segmenting table ordering
numbers and stamps on scanned paper, tuned with Hyperband on ``val_f1``):
``start_neurons``, ``net_depth``, ``dropout``, ``bn_after_act`` and
``activation`` change the architecture.

Layout for ``net_depth = d`` (d convolution cascades including the middle
one, so d - 1 poolings; filters double per level)::

    enc1 -> pool1 -> enc2 -> pool2 ... enc{d-1} -> pool{d-1} -> mid
    mid -> dec{d-1}_up + enc{d-1} -> dec{d-1} ... dec1_up + enc1 -> dec1 -> mask

Each cascade is two 3x3 convolutions, each followed by BatchNormalization and
the activation (``bn_after_act`` swaps their order).  Layer names carry the
stage: ``enc1_conv1``, ``enc1_bn1``, ``enc1_act1``, ``pool1``, ``mid_conv1``,
``dec1_up``, ``dec1_concat``, ``dec1_conv1`` ... ``mask``.

Because every pooling halves the image, height and width must be divisible
by ``2 ** (net_depth - 1)``; :func:`validate_config` checks that for every
depth the search space can sample before any trial starts.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import keras

from archsearch.errors import ConfigError
from archsearch.training.layers import get_activation

OUTPUT_ACTIVATIONS = ("sigmoid", "softmax")

# Builder arguments and their defaults; a searched value (hp) wins over a param.
DEFAULTS: dict[str, Any] = {
    "start_neurons": 16,
    "net_depth": 4,
    "dropout": False,
    "dropout_rate": 0.25,
    "bn_after_act": False,
    "activation": "relu",
    "output_activation": "sigmoid",
    "pretrained_weights": None,
}


def build(hp, *, input_shape: tuple[int, ...], num_classes: int, **params: Any) -> keras.Model:
    """Build an uncompiled U-Net from the trial's values, falling back to ``params``."""
    _check_params(params)

    def value(name: str) -> Any:
        v = hp.get(name, None) if hp is not None else None
        return params.get(name, DEFAULTS[name]) if v is None else v

    return unet(
        tuple(input_shape),
        start_neurons=int(value("start_neurons")),
        net_depth=int(value("net_depth")),
        output_classes=int(num_classes),
        dropout=bool(value("dropout")),
        bn_after_act=bool(value("bn_after_act")),
        activation=str(value("activation")),
        output_activation=str(value("output_activation")),
        pretrained_weights=value("pretrained_weights"),
        dropout_rate=float(value("dropout_rate")),
    )


def unet(
    input_size: Sequence[int] = (128, 128, 1),
    start_neurons: int = 16,
    net_depth: int = 4,
    output_classes: int = 1,
    dropout: bool = False,
    bn_after_act: bool = False,
    activation: str = "relu",
    output_activation: str = "sigmoid",
    pretrained_weights: str | Path | None = None,
    dropout_rate: float = 0.25,
) -> keras.Model:
    """Generate a U-Net.

    input_size: (h, w, channels); h and w divisible by 2 ** (net_depth - 1).
    start_neurons: filters of the first cascade, doubled at every level.
    net_depth: convolution cascades including the middle one (>= 1).
    output_classes: mask channels.
    dropout: add Dropout(dropout_rate) after every pooling and skip concatenation.
    bn_after_act: BatchNormalization after the activation instead of before it.
    activation: mish, elu, relu, lrelu, gelu or swish.
    output_activation: "sigmoid" (one independent mask per class, multi-label)
        or "softmax" (classes exclusive per pixel; needs >= 2 classes, usually
        including a background class).
    pretrained_weights: path of a weights file to load (``model.save_weights``).
    """
    input_size = tuple(int(d) for d in input_size)
    if len(input_size) == 2:
        input_size = (*input_size, 1)
    if len(input_size) != 3:
        raise ConfigError("model.params.input_size", f"expected (height, width, channels), got {input_size}")
    if int(net_depth) < 1:
        raise ConfigError("net_depth", f"must be >= 1, got {net_depth}", "use 2..6 as in the default search space")
    if int(start_neurons) < 1:
        raise ConfigError("start_neurons", f"must be >= 1, got {start_neurons}")
    if output_activation not in OUTPUT_ACTIVATIONS:
        raise ConfigError(
            "model.params.output_activation",
            f"unknown output activation {output_activation!r}",
            f"choose one of: {', '.join(OUTPUT_ACTIVATIONS)}",
        )
    if output_activation == "softmax" and output_classes < 2:
        raise ConfigError(
            "model.params.output_activation",
            f"softmax over {output_classes} class is constant 1",
            "use sigmoid for a single mask, or add a background class (e.g. data.include_background=true)",
        )
    check_input_size(input_size, [net_depth], field="input_size")
    get_activation(activation, field="activation")  # fail early, before any layer is made

    def cascade(x, stage: str, filters: int):
        for k in (1, 2):
            x = keras.layers.Conv2D(filters, 3, padding="same", kernel_initializer="he_normal",
                                    name=f"{stage}_conv{k}")(x)
            bn = keras.layers.BatchNormalization(name=f"{stage}_bn{k}")
            act = get_activation(activation, f"{stage}_act{k}")
            x = bn(act(x)) if bn_after_act else act(bn(x))
        return x

    inputs = keras.Input(shape=input_size, name="image")
    x = inputs
    skips = []
    for level in range(1, net_depth):
        x = cascade(x, f"enc{level}", start_neurons * 2 ** (level - 1))
        skips.append(x)
        x = keras.layers.MaxPooling2D(2, name=f"pool{level}")(x)
        if dropout:
            x = keras.layers.Dropout(dropout_rate, name=f"pool{level}_dropout")(x)
    x = cascade(x, "mid", start_neurons * 2 ** (net_depth - 1))
    for level in range(net_depth - 1, 0, -1):
        filters = start_neurons * 2 ** (level - 1)
        x = keras.layers.Conv2DTranspose(filters, 3, strides=2, padding="same", name=f"dec{level}_up")(x)
        x = keras.layers.Concatenate(name=f"dec{level}_concat")([x, skips[level - 1]])
        if dropout:
            x = keras.layers.Dropout(dropout_rate, name=f"dec{level}_dropout")(x)
        x = cascade(x, f"dec{level}", filters)
    # float32 output keeps losses and metrics stable under mixed precision.
    outputs = keras.layers.Conv2D(output_classes, 1, activation=output_activation, dtype="float32",
                                  name="mask")(x)
    model = keras.Model(inputs, outputs, name=f"unet_d{net_depth}_n{start_neurons}")

    if pretrained_weights:
        path = Path(pretrained_weights)
        if not path.is_file():
            raise ConfigError("model.params.pretrained_weights", f"file not found: {path}",
                              "give the path of a file written by model.save_weights, or null")
        try:
            model.load_weights(str(path))
        except Exception as exc:  # wrong architecture or file type
            raise ConfigError(
                "model.params.pretrained_weights",
                f"cannot load {path} into this U-Net ({type(exc).__name__}: {exc})",
                "the weights must come from a U-Net with the same depth, width, classes and input channels",
            ) from exc
    return model


# --------------------------------------------------------------------------- input-size checks


def _hw(size: int | Sequence[int]) -> tuple[int, int]:
    if not hasattr(size, "__len__"):
        return int(size), int(size)
    dims = [int(d) for d in size]
    return (dims[0], dims[1]) if len(dims) > 1 else (dims[0], dims[0])


def valid_depths(size: int | Sequence[int], max_depth: int) -> list[int]:
    """The net depths in ``1..max_depth`` whose ``depth - 1`` poolings fit ``size`` (int, (h, w) or (h, w, c))."""
    h, w = _hw(size)
    return [d for d in range(1, int(max_depth) + 1) if h % 2 ** (d - 1) == 0 and w % 2 ** (d - 1) == 0]


def check_input_size(input_shape: int | Sequence[int], depths: Iterable[int], field: str = "data.image_size",
                     depth_setting: str = "model.space.net_depth.max") -> None:
    """Raise ConfigError naming ``field`` unless h and w are divisible by ``2**(d-1)`` for every depth ``d``.

    The message lists which depths need which multiples, which depths the size
    fits, and suggests a size or a lower ``depth_setting``.
    """
    h, w = _hw(input_shape)
    depths = sorted({int(d) for d in depths})
    bad = [d for d in depths if h % 2 ** (d - 1) or w % 2 ** (d - 1)]
    if not bad:
        return
    need = 2 ** (max(depths) - 1)
    fits_all = valid_depths((h, w), max(depths))
    fits = [d for d in fits_all if d >= min(depths)]
    needs = ", ".join(f"net_depth {d} needs multiples of {2 ** (d - 1)}" for d in bad)
    suggestion = (-(-h // need) * need, -(-w // need) * need)
    fix = f"use an image size divisible by {need} (e.g. {suggestion[0]}x{suggestion[1]})"
    fix += f" or limit {depth_setting} to {fits_all[-1]}"
    fitting = f"fits net_depth {_ranges(fits)}" if fits else f"fits only net_depth {_ranges(fits_all)}"
    raise ConfigError(
        field,
        f"{h}x{w} cannot be halved net_depth-1 times for every depth searched: {needs}; "
        f"{h}x{w} {fitting}",
        fix,
    )


def _ranges(values: list[int]) -> str:
    if not values:
        return "none"
    if values == list(range(values[0], values[-1] + 1)):
        return str(values[0]) if len(values) == 1 else f"{values[0]}..{values[-1]}"
    return ", ".join(map(str, values))


def space_depths(space, params: Mapping[str, Any]) -> list[int]:
    """Every net depth a search can build: the space's ``net_depth`` values, else the fixed param."""
    return [int(d) for d in _candidates(space, params, "net_depth")]


def validate_config(space, input_shape: tuple[int, ...], num_classes: int, params: Mapping[str, Any]) -> None:
    """Checked once before the search (``archsearch.cli.app.prepare``): fail before any trial trains."""
    _check_params(params)
    depth_setting = "model.space.net_depth.max" if _field(space, "net_depth").startswith("model.space") \
        else "model.params.net_depth"
    check_input_size(input_shape, space_depths(space, params), field="data.image_size", depth_setting=depth_setting)
    for name in _candidates(space, params, "activation"):
        get_activation(name, field=_field(space, "activation"))
    for activation in _candidates(space, params, "output_activation"):
        if activation not in OUTPUT_ACTIVATIONS:
            raise ConfigError(_field(space, "output_activation"), f"unknown output activation {activation!r}",
                              f"choose one of: {', '.join(OUTPUT_ACTIVATIONS)}")
        if activation == "softmax" and num_classes < 2:
            raise ConfigError(
                "model.params.output_activation",
                f"softmax over {num_classes} class is constant 1",
                "use sigmoid for a single mask, or add a background class (e.g. data.include_background=true)",
            )


def _candidates(space, params: Mapping[str, Any], name: str) -> list[Any]:
    """The values ``name`` can take in a search: the space's choices, else the param or default."""
    parameter = getattr(space, "space", {}).get(name) if space is not None else None
    if parameter is not None:
        return list(parameter.grid())
    return [params.get(name, DEFAULTS[name])]


def _field(space, name: str) -> str:
    searched = space is not None and name in getattr(space, "space", {})
    return f"model.space.{name}" if searched else f"model.params.{name}"


def _check_params(params: Mapping[str, Any]) -> None:
    unknown = sorted(set(params) - set(DEFAULTS))
    if unknown:
        raise ConfigError(f"model.params.{unknown[0]}", "is not a U-Net parameter", f"use one of: {', '.join(DEFAULTS)}")
