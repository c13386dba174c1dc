"""The callbacks of a trial's ``fit``: the epoch tracker, the epoch's speed and GPU figures, and the user's own
placed per trial.

:class:`EpochTracker` is the runner's eyes inside ``fit``: after every epoch it records the metrics,
stops a trial whose loss or weights became NaN, writes the resume checkpoint (and the best epoch's
weights), and asks the reporter whether the trial goes on (pruning).  Each epoch reseeds the layers'
random state, so a resumed trial draws the dropout masks of an uninterrupted run.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import keras

from archsearch.core.checkpoints import CHECKPOINT, link_best, save_checkpoint
from archsearch.core.disk import ensure_space, file_size
from archsearch.core.interrupts import raise_if_requested
from archsearch.core.objective import Objective, is_finite
from archsearch.core.trial import Trial
from archsearch.core.trial_runner import Reporter
from archsearch.errors import ObjectiveError
from archsearch.training import gpu_stats

if TYPE_CHECKING:
    from archsearch.core.checkpoints import TrialFiles
    from archsearch.training.settings import TrainerSettings


class TrackedRunner(Protocol):
    """What the tracker reads of the runner that made it (the Keras ``Runner``), named here so this
    module does not import ``runner.py``, which imports it."""

    objective: Objective
    trainer: TrainerSettings
    files: TrialFiles

    @property
    def workdir(self) -> Path: ...

    def trial_dir(self, trial_id: int) -> Path: ...

TENSORBOARD_ROOT = "_archsearch_log_dir"  # the log_dir a user gave a TensorBoard callback, before per_trial_log_dir


def per_trial_log_dir(callback: Any, trial_id: int, execution: int | None = None) -> None:
    """A ``keras.callbacks.TensorBoard(log_dir)`` given to ``search()`` logs each trial apart, as in KerasTuner.

    It writes into ``<log_dir>/trial_NNNN`` (the trial's name in ``trials/`` and ``logger=tensorboard``),
    or ``<log_dir>/trial_NNNN/execution_K`` with ``executions_per_trial`` > 1, so TensorBoard shows
    one run per trial instead of every trial's curves in one.  The given folder is kept on the
    callback, so a copy that is placed again (a custom ``run_trial`` calling the default) is not nested.
    """
    if not (isinstance(callback, keras.callbacks.TensorBoard)
            or (type(callback).__name__ == "TensorBoard" and hasattr(callback, "log_dir"))):
        return
    root = getattr(callback, TENSORBOARD_ROOT, None) or str(callback.log_dir)
    setattr(callback, TENSORBOARD_ROOT, root)
    parts = [root, f"trial_{int(trial_id):04d}", *([f"execution_{execution}"] if execution is not None else [])]
    callback.log_dir = os.path.join(*parts)


class EpochFigures(keras.callbacks.Callback):
    """Adds each epoch's ``samples_per_second`` and, on a GPU NVML can read, ``gpu_utilization``,
    ``gpu_memory_mb`` and ``gpu_index`` to the epoch's logs (archsearch/training/gpu_stats.py).

    Placed before the :class:`EpochTracker`, which records the logs as the epoch's metrics: so the figures
    reach the store, ``epochs.csv``, the loggers and the live display like any metric.  Steps are counted at
    batch *begin* only (a batch-end hook would turn off Keras's asynchronous callbacks on JAX); with
    ``steps_per_execution`` > 1 a step count Keras does not know ahead is rounded up to whole executions.
    """

    def __init__(self, batch_size: int | None, samples_per_epoch: int | None = None,
                 sampler: gpu_stats.GpuSampler | None = None) -> None:
        """``batch_size``: the samples of one training batch; ``samples_per_epoch``: the training samples one
        epoch visits, when the data says (its last batch may be partial); ``sampler``: the GPU's, or None."""
        super().__init__()
        self.batch_size = batch_size
        self.samples_per_epoch = samples_per_epoch
        self.sampler = sampler
        self._window: gpu_stats.Window | None = None
        self._start = 0.0
        self._last_step = -1

    def on_epoch_begin(self, epoch: int, logs: Mapping[str, Any] | None = None) -> None:
        self._last_step = -1
        if self.sampler is not None:
            self._window = self.sampler.open()
        self._start = time.perf_counter()

    def on_train_batch_begin(self, batch: int, logs: Mapping[str, Any] | None = None) -> None:
        self._last_step = max(self._last_step, int(batch))

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        if logs is None:
            return
        logs.update(self.figures(time.perf_counter() - self._start))

    def on_train_end(self, logs: Mapping[str, Any] | None = None) -> None:
        if self._window is not None and self.sampler is not None:
            self.sampler.close(self._window)  # an epoch cut short: stop sampling it
            self._window = None

    def figures(self, seconds: float) -> dict[str, float]:
        """The epoch's figures after ``seconds`` of wall time; closes its GPU window."""
        out: dict[str, float] = {}
        steps = (self.params or {}).get("steps") or (self._last_step + _steps_per_execution(self.model))
        rate = gpu_stats.samples_per_second(int(steps or 0), self.batch_size, seconds, self.samples_per_epoch)
        if rate is not None:
            out[gpu_stats.SAMPLES_PER_SECOND] = rate
        if self._window is not None and self.sampler is not None:
            out.update(self.sampler.close(self._window))
            self._window = None
        return out


def _steps_per_execution(model) -> int:
    try:
        return max(1, int(getattr(model, "steps_per_execution", 1) or 1))
    except (TypeError, ValueError):
        return 1


def epoch_figures(batch_size: int | None, fit_kwargs: Mapping[str, Any], data: Any = None) -> EpochFigures:
    """The :class:`EpochFigures` of one fit: its batch size (given, or the batches' own), the samples an epoch
    visits when the data says (``data.samples_per_epoch``, or the arrays' length), and this process's GPU
    sampler (none without NVML or a GPU)."""
    return EpochFigures(fit_batch_size(batch_size, fit_kwargs), _samples_per_epoch(fit_kwargs, data),
                        gpu_stats.gpu_sampler())


def fit_batch_size(batch_size: int | None, fit_kwargs: Mapping[str, Any]) -> int | None:
    """The samples in one training batch: ``fit(batch_size=)``, a batched dataset's static batch dimension, a
    ``PyDataset``'s ``batch_size``, else the configured one."""
    if fit_kwargs.get("batch_size"):
        return int(fit_kwargs["batch_size"])
    x = fit_kwargs.get("x")
    spec = getattr(x, "element_spec", None)
    if spec is not None:
        first = spec[0] if isinstance(spec, (tuple, list)) else spec
        first = next(iter(first.values())) if isinstance(first, Mapping) else first
        shape = getattr(first, "shape", None)
        if shape is not None and len(shape) and shape[0] is not None:
            return int(shape[0])
    own = getattr(x, "batch_size", None)
    if isinstance(own, int) and own > 0:
        return own
    return int(batch_size) if batch_size else None


def _samples_per_epoch(fit_kwargs: Mapping[str, Any], data: Any) -> int | None:
    known = getattr(data, "samples_per_epoch", None)
    if isinstance(known, int) and known > 0:
        return known
    x = fit_kwargs.get("x")
    if hasattr(x, "shape") and getattr(x, "ndim", 0) and "steps_per_epoch" not in fit_kwargs:
        split = float(fit_kwargs.get("validation_split") or 0.0)
        return int(math.floor(len(x) * (1.0 - split))) or None
    return None


class EpochTracker(keras.callbacks.Callback):
    """Records each epoch, asks the reporter whether to stop, keeps best and last weights."""

    def __init__(self, runner: TrackedRunner, trial: Trial, reporter: Reporter | None, primary: bool,
                 initial_epoch: int | None = None, history: Sequence[Mapping[str, float]] = (),
                 execution: int = 0, strict: bool = True, measures: Mapping[str, float] | None = None) -> None:
        """``measures``: the model's measures known before training (params, flops, ...), reported with
        every epoch's metrics, so that a Pareto pruner or rung can compare trials on them mid-training."""
        super().__init__()
        self.measures = dict(measures or {})
        self.execution = execution
        self.strict = strict
        self.runner = runner
        self.trial = trial
        self.reporter = reporter
        self.primary = primary
        self.best_value: float | None = None
        self.best_metrics: dict[str, float] = {}
        self.best_epoch: int | None = None
        self.last_epoch = trial.initial_budget if initial_epoch is None else int(initial_epoch)
        self.pruned = False
        self.failure: str | None = None
        self._dir = runner.trial_dir(trial.id)
        for record in history:  # epochs trained before the trial was interrupted: its best so far
            metrics = {k: float(v) for k, v in record.items() if k != "epoch" and _is_scalar(v)}
            value = runner.objective.value_from(metrics)
            if objective_improves(runner.objective, value, self.best_value):
                self.best_value, self.best_metrics, self.best_epoch = value, metrics, int(record["epoch"])

    def on_train_batch_begin(self, batch: int, logs: Mapping[str, Any] | None = None) -> None:
        # A safe point for the Python API's first Ctrl-C (archsearch.core.interrupts).  Batch *begin*: an
        # on_train_batch_end override would turn off Keras's asynchronous callbacks (JAX).
        raise_if_requested()

    def on_epoch_begin(self, epoch: int, logs: Mapping[str, Any] | None = None) -> None:
        seed = self.runner.trainer.seed
        if seed is not None:
            reseed_layers(self.model, (int(seed), self.trial.id, self.execution, int(epoch)))

    def on_epoch_end(self, epoch: int, logs: Mapping[str, Any] | None = None) -> None:
        metrics = {**self.measures, **{k: float(v) for k, v in (logs or {}).items() if _is_scalar(v)}}
        epoch1 = epoch + 1
        self.last_epoch = epoch1
        objective = self.runner.objective
        value = objective.value_from(metrics)
        if objective.components and value is not None and logs is not None and objective.name not in logs:
            logs[objective.name] = value  # the combined score, for EarlyStopping and the user's callbacks after this one
        broken = [k for k, v in metrics.items() if not math.isfinite(v)]
        if broken:
            # A NaN metric or loss means NaN weights or predictions: such a model must never count as best.
            name = "loss" if "loss" in broken else broken[0]
            self.failure = f"{name} became {metrics[name]} at epoch {epoch1} (try a lower learning rate)"
            self.model.stop_training = True
            return
        if value is None and self.strict and epoch1 == self.trial.initial_budget + 1:
            self.model.stop_training = True
            missing = [n for n in objective.metric_names if n not in metrics]
            raise ObjectiveError(
                "objective",
                f"the model does not produce the metric {missing[0]!r}; it produces {', '.join(sorted(metrics))}",
                "set objective= to one of those or add the metric to model.metrics",
            )
        improved = objective_improves(objective, value, self.best_value)
        if improved and not weights_are_finite(self.model):
            self.failure = f"the weights became NaN or infinite at epoch {epoch1} (try a lower learning rate)"
            self.model.stop_training = True
            return
        if improved:
            self.best_value, self.best_metrics, self.best_epoch = value, metrics, epoch1
        # A subclassed model that fit never built has no weights to keep.
        if self.primary and self.runner.trainer.checkpoints and getattr(self.model, "built", True):
            self._dir.mkdir(parents=True, exist_ok=True)
            # Room for the new checkpoint first: HDF5 on a full disk can crash the whole process.
            needed = max(file_size(self._dir / CHECKPOINT), 12 * parameter_count(self.model))
            ensure_space(self._dir, needed, self.runner.workdir)
            save_checkpoint(self.model, self._dir / CHECKPOINT, epoch1)
            if improved:  # the same weights: a second name for the file costs nothing, a second save ~25 ms
                link_best(self._dir / CHECKPOINT, self.runner.files.best_weights(self.trial.id))
        if self.primary and self.reporter is not None:
            if self.reporter.on_epoch(self.trial, epoch1, metrics, value):
                self.pruned = True
                self.model.stop_training = True


def parameter_count(model) -> int:
    """The model's parameters; 0 for a subclassed model not built yet (it has no weights to save or count)."""
    try:
        return int(model.count_params())
    except ValueError:
        return 0


def reseed_layers(model, key: tuple[int, ...]) -> None:
    """Set every layer's random state (dropout masks, noise, augmentation) from ``key`` alone.

    A weights file does not hold these states, so without this a trial resumed at epoch k would
    draw other dropout masks than the uninterrupted run; seeded from (seed, trial, execution,
    epoch), every epoch draws the same masks however the trial got there.
    """
    import numpy as np

    generators = [g for layer in model._flatten_layers() for g in getattr(layer, "_seed_generators", ())]
    if not generators:
        return
    seeds = np.random.default_rng([k & 0xFFFFFFFF for k in key]).integers(1, 2**31 - 1, size=len(generators))
    for generator, value in zip(generators, seeds):
        state = generator.state
        state.assign(keras.ops.cast(keras.ops.convert_to_tensor([int(value), 0]), state.dtype))


def objective_improves(objective: Objective, value: float | None, best: float | None) -> bool:
    return objective.better(value, best) or (best is None and is_finite(value))


def _is_scalar(v: Any) -> bool:
    try:
        float(v)
        return True
    except (TypeError, ValueError):
        return False


def weights_are_finite(model) -> bool:
    """Whether every weight is a finite number (NaN weights can still give a finite accuracy)."""
    import numpy as np

    for variable in model.weights:
        if not np.isfinite(keras.ops.convert_to_numpy(variable)).all():
            return False
    return True
