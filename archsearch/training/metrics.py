"""Segmentation metrics and losses, written in ``keras.ops`` (any backend).

Metrics
-------
``f1`` (= Dice), ``iou``, ``precision`` and ``recall`` are pixel-wise and
macro-averaged over the mask channels (classes).  They are stateful: they
accumulate true positives, false positives and false negatives per class over
every batch of an epoch, so ``val_f1`` is the exact F1 of the whole
validation set, not a mean of per-batch scores.  Their Keras names are exactly
``f1``, ``iou``, ``precision``, ``recall``, so the logs hold ``val_f1`` etc.

Binarising predictions (``mode``):

* ``"threshold"`` (default; sigmoid outputs, one independent mask per class):
  a pixel is positive for a class when its score is ``>= threshold`` (0.5).
* ``"argmax"`` (softmax outputs): each pixel is positive for its arg-max
  class only.  ``y_true`` must then be one-hot (include a background channel).

``y_true`` masks are binarised at 0.5 in both modes (resized masks may be soft).

Empty masks: for each class, if the ground truth and the prediction are both
empty (TP = FP = FN = 0) every metric scores 1.0 for that class; any other
ratio with a zero denominator scores 0.0 (e.g. precision when nothing was
predicted but something was there, recall when a class is absent but was
predicted).  Then the per-class values are averaged.

Losses
------
``weighted_bce`` (per-class weights on positive pixels, from the config or
from :func:`class_weights_from_masks`), ``dice_loss`` (soft Dice per sample)
and ``bce_dice`` (their weighted sum).  All return one value per sample so
Keras' sample weights and reductions apply as usual.

``get_metric`` / ``get_loss`` resolve config names; any other name is returned
unchanged for Keras to resolve ("accuracy", "sparse_categorical_crossentropy").
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import keras
import numpy as np
from keras import ops

from archsearch.errors import ConfigError

SEGMENTATION_METRICS = ("f1", "iou", "precision", "recall")
SEGMENTATION_LOSSES = ("weighted_bce", "dice_loss", "bce_dice")
MODES = ("threshold", "argmax")
_EPSILON = 1e-7


# --------------------------------------------------------------------------- metrics


class _ConfusionMetric(keras.metrics.Metric):
    """Accumulates per-class TP/FP/FN over an epoch; subclasses turn them into a score."""

    default_name = ""

    def __init__(self, name: str | None = None, threshold: float = 0.5, mode: str = "threshold",
                 dtype: Any = "float32", **kwargs: Any) -> None:
        super().__init__(name=name or self.default_name, dtype=dtype, **kwargs)
        if mode not in MODES:
            raise ConfigError(f"metric {self.name!r} mode", f"unknown mode {mode!r}",
                              f"choose one of: {', '.join(MODES)}")
        if not 0.0 < float(threshold) < 1.0:
            raise ConfigError(f"metric {self.name!r} threshold", f"must be in (0, 1), got {threshold}")
        self.threshold = float(threshold)
        self.mode = mode
        self._num_classes: int | None = None

    def _build(self, num_classes: int) -> None:
        # Variables are created on the first batch, when the number of classes is known
        # (the pattern of keras.metrics.F1Score; compile builds metrics symbolically first).
        self._num_classes = int(num_classes)
        shape = (self._num_classes,)
        self.tp = self.add_variable(shape=shape, initializer="zeros", dtype=self.dtype, name="true_positives")
        self.fp = self.add_variable(shape=shape, initializer="zeros", dtype=self.dtype, name="false_positives")
        self.fn = self.add_variable(shape=shape, initializer="zeros", dtype=self.dtype, name="false_negatives")

    def update_state(self, y_true, y_pred, sample_weight=None):
        y_pred = ops.convert_to_tensor(y_pred, dtype=self.dtype)
        y_true = ops.convert_to_tensor(y_true, dtype=self.dtype)
        if len(y_true.shape) == len(y_pred.shape) - 1:
            y_true = ops.expand_dims(y_true, -1)  # (n, h, w) masks of a one-class model
        num_classes = y_pred.shape[-1]
        if num_classes is None:
            raise ValueError(f"metric {self.name!r}: the model output needs a known number of channels")
        if self._num_classes is None:
            self._build(num_classes)
        elif num_classes != self._num_classes:
            raise ValueError(f"metric {self.name!r} was built for {self._num_classes} classes, got {num_classes}")

        truth = ops.cast(y_true >= 0.5, self.dtype)
        if self.mode == "argmax":
            pred = ops.one_hot(ops.argmax(y_pred, axis=-1), num_classes, dtype=self.dtype)
        else:
            pred = ops.cast(y_pred >= self.threshold, self.dtype)

        if sample_weight is not None:
            weight = ops.convert_to_tensor(sample_weight, dtype=self.dtype)
            while len(weight.shape) < len(pred.shape):
                weight = ops.expand_dims(weight, -1)
            truth_w, pred_w = truth * weight, pred * weight
        else:
            truth_w, pred_w = truth, pred
        axes = tuple(range(len(pred.shape) - 1))
        self.tp.assign_add(ops.sum(pred_w * truth, axis=axes))
        self.fp.assign_add(ops.sum(pred_w * (1.0 - truth), axis=axes))
        self.fn.assign_add(ops.sum((1.0 - pred) * truth_w, axis=axes))

    def result(self):
        if self._num_classes is None:
            return ops.convert_to_tensor(0.0, dtype=self.dtype)
        both_empty = ops.equal(self.tp + self.fp + self.fn, 0.0)
        numerator, denominator = self._ratio(self.tp, self.fp, self.fn)
        safe = ops.where(denominator > 0, denominator, 1.0)
        per_class = ops.where(denominator > 0, numerator / safe, 0.0)
        per_class = ops.where(both_empty, 1.0, per_class)
        return ops.mean(per_class)

    def _ratio(self, tp, fp, fn):
        raise NotImplementedError

    def reset_state(self):
        if self._num_classes is None:
            return
        for v in (self.tp, self.fp, self.fn):
            v.assign(ops.zeros(v.shape, dtype=v.dtype))

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "threshold": self.threshold, "mode": self.mode}


@keras.saving.register_keras_serializable(package="archsearch")
class F1(_ConfusionMetric):
    """Pixel-wise F1 = Dice = 2 TP / (2 TP + FP + FN), averaged over classes."""

    default_name = "f1"

    def _ratio(self, tp, fp, fn):
        return 2.0 * tp, 2.0 * tp + fp + fn


@keras.saving.register_keras_serializable(package="archsearch")
class IoU(_ConfusionMetric):
    """Pixel-wise intersection over union = TP / (TP + FP + FN), averaged over classes."""

    default_name = "iou"

    def _ratio(self, tp, fp, fn):
        return tp, tp + fp + fn


@keras.saving.register_keras_serializable(package="archsearch")
class Precision(_ConfusionMetric):
    """Pixel-wise precision = TP / (TP + FP), averaged over classes."""

    default_name = "precision"

    def _ratio(self, tp, fp, fn):
        return tp, tp + fp


@keras.saving.register_keras_serializable(package="archsearch")
class Recall(_ConfusionMetric):
    """Pixel-wise recall = TP / (TP + FN), averaged over classes."""

    default_name = "recall"

    def _ratio(self, tp, fp, fn):
        return tp, tp + fn


_METRICS: dict[str, type[_ConfusionMetric]] = {"f1": F1, "dice": F1, "iou": IoU, "precision": Precision,
                                               "recall": Recall}


def get_metric(name: str | Mapping[str, Any], **kwargs: Any) -> Any:
    """A fresh metric for a segmentation metric name, else ``name`` unchanged for Keras.

    ``name`` may also be a mapping such as ``{name: f1, mode: argmax}``.
    ``dice`` is F1 logged under the name "dice".
    """
    if isinstance(name, Mapping):
        options = dict(name)
        if "name" not in options:
            raise ConfigError("model.metrics", f"a metric given as a mapping needs a 'name' key, got {options}")
        base = str(options.pop("name"))
        return get_metric(base, **{**options, **kwargs})
    key = str(name)
    if key in _METRICS:
        kwargs.setdefault("name", key)
        try:
            return _METRICS[key](**kwargs)
        except TypeError as exc:
            raise ConfigError(f"model.metrics: {key}", str(exc), "options are threshold and mode") from None
    if kwargs:
        raise ConfigError(f"model.metrics: {key}", f"options {sorted(kwargs)} are only supported for "
                          f"{', '.join(SEGMENTATION_METRICS)}")
    return name


# --------------------------------------------------------------------------- losses


def class_weights_from_masks(y: np.ndarray, max_weight: float = 100.0) -> list[float]:
    """Per-class weights for positive pixels: background/foreground pixel ratio, clipped to [1, max_weight].

    Small objects (the project's ordering numbers cover ~1 % of a page) are
    otherwise drowned by the background.  A class with no positive pixel gets 1.
    """
    y = np.asarray(y)
    if y.ndim < 2:
        raise ValueError(f"class_weights_from_masks expects masks (..., classes), got shape {y.shape}")
    flat = (y.reshape(-1, y.shape[-1]) >= 0.5)
    positives = flat.sum(axis=0).astype(np.float64)
    negatives = flat.shape[0] - positives
    weights = np.where(positives > 0, negatives / np.maximum(positives, 1.0), 1.0)
    return [float(w) for w in np.clip(weights, 1.0, max_weight)]


def _as_weights(class_weights: Sequence[float] | float | None) -> list[float] | float | None:
    if class_weights is None:
        return None
    if isinstance(class_weights, (int, float)):
        return float(class_weights)
    weights = [float(w) for w in class_weights]
    if any(w <= 0 for w in weights):
        raise ConfigError("model.loss_options.class_weights", f"weights must be > 0, got {weights}")
    return weights


def _bce_per_sample(y_true, y_pred, class_weights):
    y_pred = ops.clip(y_pred, _EPSILON, 1.0 - _EPSILON)
    positive = y_true * ops.log(y_pred)
    if class_weights is not None:
        positive = positive * ops.convert_to_tensor(class_weights, dtype=y_pred.dtype)
    bce = -(positive + (1.0 - y_true) * ops.log(1.0 - y_pred))
    return ops.mean(bce, axis=tuple(range(1, len(bce.shape))))


def _dice_per_sample(y_true, y_pred, smooth):
    axes = tuple(range(1, len(y_pred.shape) - 1))
    intersection = ops.sum(y_true * y_pred, axis=axes)
    total = ops.sum(y_true, axis=axes) + ops.sum(y_pred, axis=axes)
    dice = (2.0 * intersection + smooth) / (total + smooth)  # (n, classes); empty & empty -> 1
    return 1.0 - ops.mean(dice, axis=-1)


def _prepare(y_true, y_pred):
    y_pred = ops.convert_to_tensor(y_pred)
    y_true = ops.cast(y_true, y_pred.dtype)
    if len(y_true.shape) == len(y_pred.shape) - 1:
        y_true = ops.expand_dims(y_true, -1)
    return y_true, y_pred


@keras.saving.register_keras_serializable(package="archsearch")
class WeightedBCE(keras.losses.Loss):
    """Binary cross-entropy per pixel and class, positive pixels of class c weighted by ``class_weights[c]``.

    ``class_weights``: a list (one per class), a single float for all, or None
    (plain BCE).  Compute them from the training masks with
    :func:`class_weights_from_masks`.
    """

    def __init__(self, class_weights: Sequence[float] | float | None = None, name: str = "weighted_bce",
                 **kwargs: Any) -> None:
        super().__init__(name=name, **kwargs)
        self.class_weights = _as_weights(class_weights)

    def call(self, y_true, y_pred):
        y_true, y_pred = _prepare(y_true, y_pred)
        return _bce_per_sample(y_true, y_pred, self.class_weights)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "class_weights": self.class_weights}


@keras.saving.register_keras_serializable(package="archsearch")
class DiceLoss(keras.losses.Loss):
    """1 - soft Dice per sample, averaged over classes; ``smooth`` makes empty-vs-empty score 0 loss."""

    def __init__(self, smooth: float = 1.0, name: str = "dice_loss", **kwargs: Any) -> None:
        super().__init__(name=name, **kwargs)
        self.smooth = float(smooth)

    def call(self, y_true, y_pred):
        y_true, y_pred = _prepare(y_true, y_pred)
        return _dice_per_sample(y_true, y_pred, self.smooth)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "smooth": self.smooth}


@keras.saving.register_keras_serializable(package="archsearch")
class BCEDice(keras.losses.Loss):
    """``bce_weight * weighted_bce + dice_weight * dice_loss``: pixel accuracy plus overlap of small objects."""

    def __init__(self, class_weights: Sequence[float] | float | None = None, smooth: float = 1.0,
                 bce_weight: float = 1.0, dice_weight: float = 1.0, name: str = "bce_dice", **kwargs: Any) -> None:
        super().__init__(name=name, **kwargs)
        self.class_weights = _as_weights(class_weights)
        self.smooth = float(smooth)
        self.bce_weight = float(bce_weight)
        self.dice_weight = float(dice_weight)

    def call(self, y_true, y_pred):
        y_true, y_pred = _prepare(y_true, y_pred)
        return (self.bce_weight * _bce_per_sample(y_true, y_pred, self.class_weights)
                + self.dice_weight * _dice_per_sample(y_true, y_pred, self.smooth))

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "class_weights": self.class_weights, "smooth": self.smooth,
                "bce_weight": self.bce_weight, "dice_weight": self.dice_weight}


_LOSSES: dict[str, type[keras.losses.Loss]] = {"weighted_bce": WeightedBCE, "dice_loss": DiceLoss,
                                               "dice": DiceLoss, "bce_dice": BCEDice}


def get_loss(name: str, **kwargs: Any) -> Any:
    """A fresh loss for a segmentation loss name (options from ``model.loss_options``), else ``name`` for Keras."""
    key = str(name)
    if key in _LOSSES:
        try:
            return _LOSSES[key](**kwargs)
        except TypeError as exc:
            raise ConfigError("model.loss_options", f"{exc}", f"check the options of loss {key!r}") from None
    if kwargs:
        raise ConfigError("model.loss_options", f"options {sorted(kwargs)} are only supported for "
                          f"{', '.join(SEGMENTATION_LOSSES)}", f"remove them for loss {key!r}")
    return name


# Function aliases for code that prefers ``loss=metrics.bce_dice`` style names.
def weighted_bce(class_weights: Sequence[float] | float | None = None) -> WeightedBCE:
    return WeightedBCE(class_weights)


def dice_loss(smooth: float = 1.0) -> DiceLoss:
    return DiceLoss(smooth)


def bce_dice(class_weights: Sequence[float] | float | None = None, smooth: float = 1.0) -> BCEDice:
    return BCEDice(class_weights, smooth)
