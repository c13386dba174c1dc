"""The Keras layers of :class:`~archsearch.keras_tuner.applications.augment.HyperImageAugment` (imported when it builds)."""

from __future__ import annotations

from collections.abc import Sequence

import keras
from keras import ops


def transform_layer(name: str, factor: float) -> keras.layers.Layer:
    """Keras's random layer for a transform of HyperImageAugment, at ``factor``."""
    if name == "rotate":
        return keras.layers.RandomRotation(factor)
    if name == "translate_x":  # horizontal: a fraction of the width
        return keras.layers.RandomTranslation(0.0, factor)
    if name == "translate_y":
        return keras.layers.RandomTranslation(factor, 0.0)
    if name == "contrast":
        return keras.layers.RandomContrast(factor)
    raise ValueError(f"unknown transform {name!r}; expected rotate, translate_x, translate_y or contrast")


@keras.saving.register_keras_serializable(package="archsearch")
class RandAugment(keras.layers.Layer):
    """One RandAugment layer: each image gets one of the transforms, drawn at random (in training only).

    Every transform runs on the whole batch and a per-image draw picks which result each image keeps,
    as KerasTuner's layer does; an image that draws a transform whose factor is 0 stays as it is.
    """

    def __init__(self, transforms: Sequence[str], factors: Sequence[float], seed: int | None = None,
                 **kwargs) -> None:
        super().__init__(**kwargs)
        self.transforms = list(transforms)
        self.factors = [float(f) for f in factors]
        self.seed = seed
        # The transforms that change an image (factor > 0), and the draw that selects each.
        self._draws = [index for index, factor in enumerate(self.factors) if factor]
        self._layers = [transform_layer(self.transforms[index], self.factors[index]) for index in self._draws]
        self._seed_generator = keras.random.SeedGenerator(seed)

    def build(self, input_shape) -> None:
        for layer in self._layers:
            layer.build(input_shape)

    def call(self, inputs, training=None):
        if not training or not self.transforms:
            return inputs
        draw = keras.random.uniform((ops.shape(inputs)[0], 1, 1, 1), maxval=len(self.transforms),
                                    seed=self._seed_generator)
        selection = ops.cast(draw, "int32")
        x = inputs
        for index, layer in zip(self._draws, self._layers):
            x = ops.where(ops.equal(selection, index), layer(x, training=True), x)
        return x

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self) -> dict:
        return {**super().get_config(), "transforms": self.transforms, "factors": self.factors, "seed": self.seed}
