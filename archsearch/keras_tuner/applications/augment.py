"""``HyperImageAugment``: KerasTuner's image augmentation hypermodel, built with Keras 3 preprocessing layers.

The same arguments, hyperparameters and defaults as ``keras_tuner.applications.HyperImageAugment``
(KerasTuner 1.4.8): each of ``rotate``, ``translate_x``, ``translate_y`` and ``contrast`` is a factor
range (a number ``x`` for ``[0, x]``, a pair, or None to leave the transform out), tuned as
``factor_<transform>``.  With ``augment_layers=0`` every transform is applied in turn (factors in steps
of 0.05); otherwise ``augment_layers`` (tuned between 1 and the number given, or the pair's bounds)
layers of a simple RandAugment each apply, to every image, one transform drawn at random.

The model maps images to images of the same shape; it is meant as a first block of a larger model
(``HyperEfficientNet(augmentation_model=HyperImageAugment(...))``).  As Keras's random layers, it
changes images only in training.  One difference from KerasTuner's code: ``translate_x`` moves
images horizontally (a fraction of the width) and ``translate_y`` vertically, as KerasTuner
documents them (its code passes them to ``RandomTranslation`` the other way round).
"""

from __future__ import annotations

from typing import Any

from archsearch.errors import ConfigError, ConfigTypeError
from archsearch.training.hypermodel import HyperModel

TRANSFORMS = ("rotate", "translate_x", "translate_y", "contrast")


class HyperImageAugment(HyperModel):
    """An image augmentation hypermodel, as ``keras_tuner.applications.HyperImageAugment``.

    Args:
        input_shape: e.g. ``(32, 32, 3)``; or give ``input_tensor`` (a ``keras.Input``).
        rotate: the rotation factor's range (a fraction of pi each way), default ``0.5`` (``[0, 0.5]``).
        translate_x: the horizontal shift's range (a fraction of the width), default ``0.4``.
        translate_y: the vertical shift's range (a fraction of the height), default ``0.4``.
        contrast: the contrast change's range, default ``0.3``.
        augment_layers: ``0``: every transform in turn; an int ``n`` or a pair: RandAugment with
            ``augment_layers`` tuned in ``[1, n]`` or between the pair's bounds. Default ``3``.
        **kwargs: ``name``, ``tunable``.
    """

    def __init__(self, input_shape: tuple | None = None, input_tensor: Any = None, rotate: Any = 0.5,
                 translate_x: Any = 0.4, translate_y: Any = 0.4, contrast: Any = 0.3, augment_layers: Any = 3,
                 **kwargs: Any) -> None:
        if input_shape is None and input_tensor is None:
            raise ConfigError("input_shape", "is not given: you must specify either input_shape or input_tensor",
                              "pass input_shape=(height, width, channels) or input_tensor=keras.Input(...)")
        self.transforms: list[tuple[str, tuple[float, float]]] = []
        for name, given in zip(TRANSFORMS, (rotate, translate_x, translate_y, contrast)):
            bounds = _factor_range(name, given)
            if bounds is not None:
                self.transforms.append((name, bounds))
        self.input_shape = input_shape
        self.input_tensor = input_tensor
        if augment_layers:
            self.model_name = "image_rand_augment"
            self.augment_layers_min, self.augment_layers_max = _layer_range(augment_layers)
        else:
            self.model_name = "image_augment"
        super().__init__(**kwargs)

    def build(self, hp):
        import keras

        if self.input_tensor is not None:
            sources = keras.utils.get_source_inputs(self.input_tensor)
            inputs, x = sources[0] if len(sources) == 1 else sources, self.input_tensor
        else:
            inputs = x = keras.Input(shape=tuple(self.input_shape))
        if self.model_name == "image_rand_augment":
            x = self._rand_augment(x, hp)
        else:
            x = self._every_transform(x, hp)
        return keras.Model(inputs, x, name=self.model_name)

    def _rand_augment(self, x, hp):
        from archsearch.training.augment_layers import RandAugment

        count = hp.Int("augment_layers", self.augment_layers_min, self.augment_layers_max,
                       default=self.augment_layers_min)
        for _ in range(count):
            factors = [hp.Float(f"factor_{name}", low, high, default=low) for name, (low, high) in self.transforms]
            x = RandAugment([name for name, _ in self.transforms], factors)(x)
        return x

    def _every_transform(self, x, hp):
        from archsearch.training.augment_layers import transform_layer

        for name, (low, high) in self.transforms:
            factor = hp.Float(f"factor_{name}", low, high, step=0.05, default=low)
            if factor:
                x = transform_layer(name, factor)(x)
        return x


def _factor_range(name: str, given: Any) -> tuple[float, float] | None:
    """KerasTuner's reading of a transform argument: None/0 leaves it out, ``x`` is ``[0, x]``, a pair is itself."""
    if not given:
        return None
    if isinstance(given, (list, tuple)):
        if len(given) != 2:
            raise ConfigError(name, f"has {len(given)} values ({list(given)}); its length must not exceed 2",
                              "give one number or two: [min, max]")
        low, high = given
    else:
        low, high = 0, given
    if not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in (low, high)):
        raise ConfigTypeError(name, f"must be int or float, but received {given!r}", "e.g. 0.2 or [0.1, 0.3]")
    if not 0 <= low <= high <= 1:
        raise ConfigError(name, f"range [{low}, {high}] is not within [0, 1] in increasing order",
                          "give factors between 0 and 1, e.g. [0.1, 0.3]")
    return float(low), float(high)


def _layer_range(given: Any) -> tuple[int, int]:
    """``augment_layers``: an int ``n`` is ``[1, n]``, a pair is itself."""
    low, high = (given[0], given[1]) if isinstance(given, (list, tuple)) else (1, given)
    if not all(isinstance(v, int) and not isinstance(v, bool) for v in (low, high)):
        raise ConfigTypeError("augment_layers", f"must be int, but received {given!r}", "e.g. 2 or [1, 3]")
    if not 0 <= low <= high:
        raise ConfigError("augment_layers", f"range [{low}, {high}] is empty or negative", "e.g. 2 or [1, 3]")
    return low, high
