"""The names Keras will log for a compiled model's loss and metrics, known before the first epoch.

The objective is checked against them before any trial trains, so they must be exactly Keras's:
a function metric is logged under its ``__name__`` (``f1`` -> ``val_f1``), a string as written
(``"acc"`` stays ``acc``), a ``Metric`` under its ``name``, and the metrics of a model with several
outputs are prefixed with the output's name (``mask_iou``).  Rather than restate those rules, the
names are read from Keras itself: a copy of the model's ``CompileMetrics``/``CompileLoss`` is built
on symbolic tensors shaped like the model's outputs, which runs Keras's own naming.
"""

from __future__ import annotations

import logging
from typing import Any

import keras

log = logging.getLogger("archsearch")


def compiled_metric_names(model: Any) -> list[str]:
    """What ``model.fit`` will log (without the ``val_`` prefix); [] when not knowable before training.

    Unknown means: a subclassed model not built yet (no symbolic outputs), a model whose class
    logs metrics of its own (a custom ``train_step``, ``metrics``, ...), or a compile configuration
    Keras itself would only resolve on data.  The objective is then checked after
    the first epoch, against the logs themselves.
    """
    y_pred = _symbolic_outputs(model)
    if y_pred is None or _logs_its_own_metrics(model):
        return []
    try:
        names = ["loss", *_loss_names(model, y_pred), *_metric_names(model, y_pred)]
    except Exception as exc:  # noqa: BLE001 - Keras raises many kinds; the epoch check still runs
        log.debug("metric names unknown before training (%s: %s)", type(exc).__name__, exc)
        return []
    return sorted(set(names))


# Overriding any of these lets a model log other names than its compiled ones (Keras's "customizing fit").
_LOGGING_METHODS = ("train_step", "test_step", "compute_metrics", "compute_loss", "get_metrics_result", "metrics")


def _logs_its_own_metrics(model: Any) -> bool:
    """Whether the model's class changes what ``fit`` logs (then only the logs can tell)."""
    return any(getattr(type(model), name, None) is not getattr(keras.Model, name, None) for name in _LOGGING_METHODS)


def _symbolic_outputs(model: Any) -> Any:
    """The model's output structure as symbolic tensors (a functional or built Sequential model), or None."""
    try:
        outputs = getattr(model, "_outputs_struct", None)
        outputs = model.outputs if outputs is None else outputs
    except (AttributeError, ValueError):  # a subclassed model has no symbolic outputs
        return None
    if outputs is None or (isinstance(outputs, (list, tuple, dict)) and not outputs):
        return None
    return keras.tree.map_structure(lambda t: keras.KerasTensor(t.shape, dtype=t.dtype), outputs)


def _metric_names(model: Any, y_pred: Any) -> list[str]:
    compiled = getattr(model, "_compile_metrics", None)
    if compiled is None:
        return []
    from keras.src.trainers.compile_utils import CompileMetrics

    copy = CompileMetrics(compiled._user_metrics, compiled._user_weighted_metrics,
                          output_names=compiled.output_names)
    copy.build(y_pred, y_pred)  # y_true shaped as y_pred: only "accuracy"'s class depends on it, not its name
    return list(copy.result())  # Keras's own naming: output prefixes and de-duplication included


def _loss_names(model: Any, y_pred: Any) -> list[str]:
    """The per-output losses (``<output>_loss``) Keras logs for a model with several outputs."""
    compiled = getattr(model, "_compile_loss", None)
    if compiled is None:
        return []
    from keras.src.trainers.compile_utils import CompileLoss

    copy = CompileLoss(compiled._user_loss, compiled._user_loss_weights, output_names=compiled.output_names)
    copy.build(y_pred, y_pred)
    return [metric.name for metric in copy.metrics]
