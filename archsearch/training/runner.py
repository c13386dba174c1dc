"""Train one trial: build, compile, fit, checkpoint, score, free memory.

The runner knows *how* to train, never *which* algorithm asked: it receives
a :class:`~archsearch.oracles.base.Trial` (values, budget, where to resume
from) and a reporter to call after every epoch, and returns a
:class:`TrialOutcome`.  Two weight files per trial make resuming exact:
``checkpoint.weights.h5`` (last epoch, weights *and* optimizer state, so a
continued trial never repeats an epoch) and ``best.weights.h5`` (the best
epoch by the objective, for export and ``get_best_models``).
"""

from __future__ import annotations

import copy
import logging
import math
import os
import time
import traceback
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import keras

from archsearch.core.checkpoints import CHECKPOINT, TrialFiles, link_best, restore_checkpoint, save_checkpoint
from archsearch.core.disk import as_disk_full, ensure_space, file_size, is_disk_full
from archsearch.errors import (
    ArchsearchError,
    BuilderError,
    DiskFullError,
    FailedTrialError,
    FatalError,
    NotAModelError,
    ObjectiveError,
)
from archsearch.space.hyperparameters import HyperParameters
from archsearch.core.interrupts import raise_if_requested
from archsearch.training.metric_names import compiled_metric_names
from archsearch.core.objective import Objective, is_finite
from archsearch.core.trial import COMPLETED, FAILED, PRUNED, Trial, TrialOutcome
from archsearch.core.trial_results import check_results, is_history, to_metrics

log = logging.getLogger("archsearch")


class _RetracingNoise(logging.Filter):
    """Every trial builds a new model, so TensorFlow traces new functions by design; its advice to
    avoid retracing (printed from the fifth trial on) is noise in a search and is dropped."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "triggered tf.function retracing" not in record.getMessage()


logging.getLogger("tensorflow").addFilter(_RetracingNoise())



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


class Reporter(Protocol):
    """Receives every epoch's metrics; returning True stops (prunes) the trial."""

    def on_epoch(self, trial: Trial, epoch: int, metrics: Mapping[str, float], value: float | None) -> bool: ...


@dataclass
class CompileSettings:
    """How to compile a model the builder returned uncompiled.

    Values named ``optimizer`` and ``learning_rate`` in the trial's
    hyperparameters win over these defaults, so either can be searched.
    """

    loss: Any = None
    metrics: Sequence[Any] = ()
    optimizer: Any = "adam"
    learning_rate: float | None = 1e-3
    loss_options: Mapping[str, Any] = field(default_factory=dict)
    # KerasTuner's Tuner(optimizer=, loss=, metrics=): these replace what the builder compiled with
    # (what is not given keeps the builder's own choice).
    overrides: Mapping[str, Any] = field(default_factory=dict)

    def recompile(self, model) -> None:
        """Compile a model again with ``overrides`` in place of the builder's own arguments."""
        config = dict(getattr(getattr(model, "_compile_config", None), "config", None) or {})
        given = {k: copy.deepcopy(v) if k == "optimizer" and not isinstance(v, str) else v
                 for k, v in self.overrides.items() if v is not None}
        if "optimizer" not in given and getattr(model, "optimizer", None) is not None:
            given["optimizer"] = type(model.optimizer).from_config(model.optimizer.get_config())
        kept = {k: v for k, v in config.items() if k in ("loss", "metrics", "loss_weights", "weighted_metrics")}
        model.compile(**{**kept, **given})

    def compile(self, model, hp: HyperParameters) -> None:
        from archsearch.training import metrics as metric_lib
        from archsearch.training.optimizers import make_optimizer

        if self.loss is None:
            raise ArchsearchError(
                "the model builder returned an uncompiled model and no loss is configured: "
                "compile the model in the builder or set model.loss (e.g. loss=sparse_categorical_crossentropy)"
            )
        optimizer_name = hp.get("optimizer", self.optimizer)
        field_name = "hyperparameter 'optimizer'" if "optimizer" in hp else "trainer.optimizer"
        optimizer = make_optimizer(optimizer_name, hp.get("learning_rate", self.learning_rate), field=field_name)
        loss = metric_lib.get_loss(self.loss, **dict(self.loss_options)) if isinstance(self.loss, str) else self.loss
        metrics = [metric_lib.get_metric(m) if isinstance(m, str) else m for m in self.metrics]
        model.compile(optimizer=optimizer, loss=loss, metrics=metrics)


DEFAULT_BATCH_SIZE = 32


@dataclass
class TrainerSettings:
    """What every trial's ``fit`` uses unless the trial's budget says otherwise.

    The defaults are conf/trainer/default.yaml's (tests/test_defaults.py keeps them equal); where one
    differs on purpose, the field says why.
    """

    epochs: int = 5  # search(epochs=...) sets it, as in KerasTuner; without it, conf's 5, not Keras fit's 1
    batch_size: int | None = DEFAULT_BATCH_SIZE
    verbose: int = 0
    early_stopping: bool = False
    patience: int = 3
    min_delta: float = 0.0
    executions_per_trial: int = 1
    checkpoints: bool = True
    # A configuration whose model has more parameters is not trained: it fails as "infeasible".
    max_model_size: int | None = None
    # Seeds weight initialisation and dropout of each fit (seed + 1000 * trial id + execution), so a
    # search can be repeated and two trials differ only by their values; None leaves them unseeded.
    # None on purpose (conf says 0): the Python API mirrors KerasTuner, whose weights are unseeded unless
    # Tuner(seed=...) is given (which then seeds them too); the command line is reproducible by default.
    seed: int | None = None


class FitData(Protocol):
    """Supplies ``fit`` arguments for one fit: its batch size, and which trial, execution and
    epochs it trains (so the data order can be a function of them alone)."""

    def fit_kwargs(self, batch_size: int | None, *, trial_id: int = 0, initial_epoch: int = 0, epochs: int = 1,
                   execution: int = 0) -> dict[str, Any]: ...


@dataclass
class FitArguments:
    """The arguments a user passed to ``tuner.search(...)``, handed to every ``fit``.

    NumPy arrays that Keras would shuffle are batched here instead, with each epoch's order a
    function of (``seed``, trial, epoch) alone (``validation_split`` takes the last samples, as
    Keras does), so a resumed trial sees the batches of an uninterrupted run.  Anything else
    (datasets, generators, sample weights, ``shuffle=False``) goes to ``fit`` unchanged.
    """

    args: tuple = ()
    kwargs: dict[str, Any] = field(default_factory=dict)
    seed: int = 0

    def fit_kwargs(self, batch_size: int | None, *, trial_id: int = 0, initial_epoch: int = 0, epochs: int = 1,
                   execution: int = 0) -> dict[str, Any]:
        kwargs = dict(self.kwargs)
        names = ("x", "y")
        for name, value in zip(names, self.args):
            kwargs[name] = value
        if _orders_arrays_itself(kwargs):
            return self._epoch_ordered(kwargs, int(batch_size or kwargs.get("batch_size") or DEFAULT_BATCH_SIZE),
                                       trial_id, initial_epoch, epochs, execution)
        if batch_size is not None and _is_array_like(kwargs.get("x")):
            kwargs["batch_size"] = batch_size
        return kwargs

    def as_given(self) -> dict[str, Any]:
        """The arguments exactly as passed to ``search()`` (positional ones named ``x`` and ``y``)."""
        kwargs = dict(self.kwargs)
        kwargs.update(zip(("x", "y"), self.args))
        return kwargs

    def _epoch_ordered(self, kwargs: dict[str, Any], batch_size: int, trial_id: int, initial_epoch: int,
                       epochs: int, execution: int) -> dict[str, Any]:
        import numpy as np

        from archsearch.datasets.pipeline import epoch_batches, make_dataset

        x, y = kwargs.pop("x"), kwargs.pop("y")
        split = float(kwargs.pop("validation_split", 0.0) or 0.0)
        kwargs.pop("batch_size", None)
        kwargs.pop("shuffle", None)
        if split > 0 and "validation_data" not in kwargs:
            cut = int(math.floor(len(x) * (1.0 - split)))  # Keras' rule: the last samples validate
            x, y, x_val, y_val = x[:cut], y[:cut], x[cut:], y[cut:]
            kwargs["validation_data"] = make_dataset(np.asarray(x_val), np.asarray(y_val), batch_size=batch_size,
                                                     shuffle=False)
        train, steps = epoch_batches(x, y, batch_size=batch_size, seed=self.seed, trial_id=trial_id,
                                     initial_epoch=initial_epoch, epochs=epochs, execution=execution)
        return {**kwargs, "x": train, "steps_per_epoch": steps, "shuffle": False}


# fit() arguments that tie samples to positions or steps: with them, Keras keeps batching the arrays.
_POSITIONAL_FIT_ARGS = ("sample_weight", "class_weight", "steps_per_epoch", "validation_steps")


def _orders_arrays_itself(kwargs: Mapping[str, Any]) -> bool:
    import numpy as np

    x, y = kwargs.get("x"), kwargs.get("y")
    return (isinstance(x, np.ndarray) and isinstance(y, np.ndarray) and len(x) == len(y) and len(x) > 0
            and kwargs.get("shuffle", True) is True and not any(k in kwargs for k in _POSITIONAL_FIT_ARGS))


def _is_array_like(x: Any) -> bool:
    return hasattr(x, "shape") and hasattr(x, "dtype") or isinstance(x, (list, tuple, dict))


def _is_tf_dataset(x: Any) -> bool:
    return type(x).__module__.startswith("tensorflow") and hasattr(x, "element_spec")


class TrialFailed(FailedTrialError):
    """A trial cannot go on (NaN loss, ...): recorded as failed, the search continues.

    ``kind`` says why (:data:`archsearch.core.trial.FAILURE_KINDS`), and so whether it may run again.
    """

    def __init__(self, message: str, kind: str = "error") -> None:
        super().__init__(message)
        self.kind = kind


class Runner:
    """Trains trials for a search.  Stateless between trials apart from its settings."""

    def __init__(
        self,
        build_model: Callable[[HyperParameters], Any],
        data: FitData,
        objective: Objective,
        workdir: str | Path,
        trainer: TrainerSettings | None = None,
        compile_settings: CompileSettings | None = None,
        callbacks: Sequence[Any] | None = None,
        fit_model: Callable[..., Any] | None = None,
        run_trial: Callable[..., Any] | None = None,
        trial_callbacks: Callable[[Trial], Sequence[Any]] | None = None,
        distribution_strategy: Any = None,
        epochs_given: bool = True,
    ) -> None:
        """``fit_model(hp, model, **fit_kwargs)`` replaces ``model.fit`` (a HyperModel's own ``fit``);
        ``run_trial(trial, *args, **kwargs)`` replaces the whole training of a trial (a Tuner
        subclass's own ``run_trial``), which gets ``callbacks`` among its arguments when they were given
        (an empty list too, as KerasTuner passes them), and ``epochs`` when the search was given them
        (``epochs_given``) or the oracle sets a budget; ``trial_callbacks(trial)`` adds callbacks to each fit."""
        self.fit_model = fit_model
        self.run_trial = run_trial
        self.trial_callbacks = trial_callbacks
        self.distribution_strategy = distribution_strategy
        self._nested: dict[str, Any] | None = None  # the trial a custom run_trial is training
        self.build_model = build_model
        self.data = data
        self.objective = objective
        self.workdir = Path(workdir)
        self.files = TrialFiles(self.workdir)
        self.trainer = trainer or TrainerSettings()
        self.compile_settings = compile_settings or CompileSettings()
        self.callbacks = list(callbacks or ())
        self.callbacks_given = callbacks is not None
        self.epochs_given = epochs_given
        self._objective_checked = False

    # ------------------------------------------------------------ paths (owned by archsearch.core.checkpoints)
    def trial_dir(self, trial_id: int) -> Path:
        return self.files.trial_dir(trial_id)

    def checkpoint_path(self, trial_id: int) -> Path:
        return self.files.checkpoint(trial_id)

    def best_weights_path(self, trial_id: int) -> Path:
        return self.files.best_weights(trial_id)

    # ------------------------------------------------------------ building
    def build(self, hp: HyperParameters):
        """Build (and compile, if the builder did not) the model for ``hp``."""
        if self.distribution_strategy is not None:
            keras.backend.clear_session(free_memory=False)  # before the scope: clearing inside would leave it
            with self.distribution_strategy.scope():  # variables made under the strategy, as KerasTuner does
                return self._build(hp)
        return self._build(hp)

    def _build(self, hp: HyperParameters):
        model = self.build_model(hp)
        check_is_model(model)
        compiled = getattr(model, "compiled", False) or getattr(model, "optimizer", None) is not None
        # A HyperModel's own fit trains the model itself (KerasTuner compiles nothing for it): with no
        # loss configured, an uncompiled model is handed to that fit as built.
        own_fit = self.fit_model is not None and self.compile_settings.loss is None
        if not compiled and not own_fit:
            self.compile_settings.compile(model, hp)
        if self.compile_settings.overrides:
            self.compile_settings.recompile(model)
        return model

    def check_size(self, model, hp: HyperParameters) -> None:
        """``max_model_size``: too many parameters is the configuration's own result, found before training."""
        limit = self.trainer.max_model_size
        if limit is None:
            return
        size = parameter_count(model)
        if size > int(limit):
            raise TrialFailed(f"the model has {size:,} parameters, more than max_model_size={int(limit):,}; "
                              "not trained", kind="infeasible")

    def load_best_model(self, trial: Trial, hp: HyperParameters):
        """Rebuild a finished trial's architecture and load its best-epoch weights."""
        model = self.build(hp)
        path = self.best_weights_path(trial.id)
        if path.exists():
            restore_checkpoint(model, path)
        else:
            log.warning("trial %s has no saved weights; returning a freshly initialised model", trial.id)
        return model

    # ------------------------------------------------------------ training
    def run(
        self,
        trial: Trial,
        hp: HyperParameters,
        reporter: Reporter | None = None,
        resume_checkpoint: Path | None = None,
        initial_epoch: int = 0,
        history: Sequence[Mapping[str, float]] = (),
    ) -> TrialOutcome:
        """Train ``trial`` to its budget; ``resume_checkpoint`` continues from saved weights and optimizer state.

        ``history`` holds the metrics of the epochs this trial already trained before a crash or
        interrupt (from the store), so its best epoch still counts when it continues.
        """
        if self.run_trial is not None:
            return self._run_custom(trial, hp, reporter, resume_checkpoint, initial_epoch, history)
        outcome, _ = self._train(trial, hp, self.data, reporter, resume_checkpoint, initial_epoch, history)
        return outcome

    def _train(
        self,
        trial: Trial,
        hp: HyperParameters,
        data: FitData,
        reporter: Reporter | None,
        resume_checkpoint: Path | None,
        initial_epoch: int,
        history: Sequence[Mapping[str, float]],
        epochs: int | None = None,
        strict: bool = True,
        search_callbacks: bool = True,
    ) -> tuple[TrialOutcome, list[Any]]:
        """Build, fit (``executions_per_trial`` times) and score; also returns what each fit returned.

        ``strict``: the model's own metrics must hold the objective (checked before training).  Not so
        when a custom ``fit`` or ``run_trial`` computes the result itself.  ``search_callbacks``: add
        ``search(callbacks=...)`` (a custom ``run_trial`` already received them in its arguments).
        """
        strict = strict and self.fit_model is None
        start = time.perf_counter()
        outcome = TrialOutcome(status=COMPLETED, hparams=dict(hp.values))
        if epochs is None:
            epochs = int(trial.budget if trial.budget is not None else self.trainer.epochs)
        executions = max(1, int(self.trainer.executions_per_trial))
        per_execution: list[tuple[float, dict[str, float], int | None]] = []
        returned: list[Any] = []
        model = None
        try:
            for execution in range(executions):
                if self.trainer.seed is not None:
                    keras.utils.set_random_seed(int(self.trainer.seed) + 1000 * trial.id + execution)
                model = self.build(hp)
                outcome.hparams = dict(hp.values)  # define-by-run builders may have added values
                self.check_size(model, hp)
                if resume_checkpoint is not None:
                    restore_checkpoint(model, resume_checkpoint)
                if strict and not self._objective_checked:
                    self._check_objective(model, hp)
                tracker = _EpochTracker(self, trial, reporter, primary=execution == 0, initial_epoch=initial_epoch,
                                        history=history if execution == 0 else (), execution=execution,
                                        strict=strict)
                if self.fit_model is not None and isinstance(data, FitArguments):
                    # A HyperModel's own fit gets search()'s arguments as given (it may batch, shuffle or
                    # preprocess them itself, as KerasTuner documents).
                    fit_kwargs = data.as_given()
                else:
                    fit_kwargs = data.fit_kwargs(hp.get("batch_size", self.trainer.batch_size), trial_id=trial.id,
                                                 initial_epoch=initial_epoch, epochs=epochs, execution=execution)
                callbacks = [tracker, *self._user_callbacks(fit_kwargs.pop("callbacks", None), search_callbacks,
                                                            trial.id, execution if executions > 1 else None)]
                if self.trial_callbacks is not None:
                    callbacks += list(self.trial_callbacks(trial))
                if self.trainer.early_stopping:
                    callbacks.append(self._early_stopping())
                fit_kwargs.setdefault("verbose", self.trainer.verbose)
                if _is_tf_dataset(fit_kwargs.get("x")) or isinstance(fit_kwargs.get("x"), keras.utils.PyDataset):
                    fit_kwargs.setdefault("shuffle", False)  # a pipeline orders itself; Keras warns otherwise
                fit_start = time.perf_counter()
                if self.fit_model is not None:
                    result = self.fit_model(hp, model, epochs=epochs, initial_epoch=initial_epoch,
                                            callbacks=callbacks, **fit_kwargs)
                else:
                    result = model.fit(epochs=epochs, initial_epoch=initial_epoch, callbacks=callbacks, **fit_kwargs)
                returned.append(result)
                outcome.hparams = dict(hp.values)  # a custom fit may declare values too (e.g. batch_size)
                outcome.fit_seconds += time.perf_counter() - fit_start
                outcome.epochs_done = max(outcome.epochs_done, tracker.last_epoch)
                if tracker.failure:
                    raise TrialFailed(tracker.failure, kind="nan")
                if tracker.pruned:
                    outcome.status = PRUNED
                if self.fit_model is not None and not is_history(result):
                    # HyperModel.fit returned its own result (a number, a dict): that is the trial's score.
                    check_results(result, self.objective, "HyperModel.fit()")
                    metrics, _ = to_metrics(result, self.objective)
                    value = self.objective.value_from(metrics)
                    per_execution.append((value, metrics, tracker.best_epoch))
                    outcome.epochs_done = max(outcome.epochs_done, epochs)
                elif tracker.best_value is not None:
                    per_execution.append((tracker.best_value, tracker.best_metrics, tracker.best_epoch))
                elif strict:
                    raise TrialFailed(f"no epoch produced the objective {self.objective.name}")
                if outcome.status == PRUNED:
                    break
                if execution + 1 < executions:
                    _free(model)
                    model = None
        except KeyboardInterrupt:
            raise
        except (ObjectiveError, BuilderError, DiskFullError, FatalError):
            raise  # not this trial's fault: the search stops with one message
        except Exception as exc:  # a trial's failure must not stop the search
            self._fail(outcome, exc, trial, hp)
        finally:
            if model is not None:
                _free(model)
            outcome.duration = time.perf_counter() - start
        if per_execution and outcome.status != FAILED:
            outcome.value = sum(v for v, _, _ in per_execution) / len(per_execution)
            outcome.metrics = _mean_metrics([m for _, m, _ in per_execution])
            outcome.best_epoch = per_execution[0][2]
        return outcome, returned

    # ------------------------------------------------------------ a Tuner subclass's own run_trial
    def _run_custom(self, trial: Trial, hp: HyperParameters, reporter: Reporter | None,
                    resume_checkpoint: Path | None, initial_epoch: int,
                    history: Sequence[Mapping[str, float]]) -> TrialOutcome:
        """Hand the trial to the user's ``run_trial``; what it returns is the result (KerasTuner's contract).

        Its ``fit`` arguments are those given to ``search()``, with the trial's ``epochs`` (and, for a
        continued trial, ``initial_epoch``) as KerasTuner's Hyperband passes them.  When it calls the
        default ``Tuner.run_trial`` (``super().run_trial(...)``), that trains with checkpoints and
        per-epoch reports, and returning its result keeps them.
        """
        start = time.perf_counter()
        trial.hyperparameters = hp
        args = tuple(getattr(self.data, "args", ()))
        kwargs = dict(getattr(self.data, "kwargs", {}))
        if trial.budget is not None or self.epochs_given:  # as KerasTuner: search(epochs=...) or Hyperband's budget
            kwargs["epochs"] = int(trial.budget if trial.budget is not None else self.trainer.epochs)
        if initial_epoch:
            kwargs["initial_epoch"] = int(initial_epoch)
        if self.callbacks_given:  # search(callbacks=...) reach run_trial among its fit arguments, as in KerasTuner
            kwargs["callbacks"] = self._user_callbacks(None, trial_id=trial.id)
        self._nested = {"reporter": reporter, "resume": resume_checkpoint, "initial_epoch": initial_epoch,
                        "history": history, "trained": []}
        outcome = TrialOutcome(status=COMPLETED, hparams=dict(hp.values))
        try:
            if self.trainer.seed is not None:
                keras.utils.set_random_seed(int(self.trainer.seed) + 1000 * trial.id)
            result = self.run_trial(trial, *args, **kwargs)
            trained = self._nested["trained"]
            inner = next((o for o, r in trained if r is result), None)
            if inner is not None:  # the default run_trial's result, returned as is: its outcome stands
                outcome = inner
            elif result is None and self.objective.value_from(trial.metrics or {}) is not None:
                # KerasTuner's old way: run_trial reported with self.oracle.update_trial(...) and returned nothing.
                warnings.warn("Calling self.oracle.update_trial(trial_id, metrics) in Tuner.run_trial() to report "
                              "the metrics is deprecated. Please remove the call and do 'return metrics' in "
                              "Tuner.run_trial() instead.", DeprecationWarning, stacklevel=2)
                outcome.metrics = dict(trial.metrics)
                outcome.value = self.objective.value_from(trial.metrics)
                outcome.epochs_done = kwargs.get("epochs", 0)
                outcome.hparams = dict(hp.values)
            else:
                check_results(result, self.objective, "Tuner.run_trial()")
                metrics, best_epoch = to_metrics(result, self.objective)
                outcome.metrics, outcome.value = metrics, self.objective.value_from(metrics)
                outcome.best_epoch = best_epoch
                outcome.epochs_done = max([kwargs.get("epochs", 0), *(o.epochs_done for o, _ in trained)])
                outcome.hparams = dict(hp.values)
                if trained and all(o.status == PRUNED for o, _ in trained):
                    outcome.status = PRUNED
        except KeyboardInterrupt:
            raise
        except (ObjectiveError, BuilderError, DiskFullError, FatalError):
            raise
        except Exception as exc:
            self._fail(outcome, exc, trial, hp)
        finally:
            self._nested = None
        outcome.duration = time.perf_counter() - start
        return outcome

    def _fail(self, outcome: TrialOutcome, exc: Exception, trial: Trial, hp: HyperParameters) -> None:
        """Record a trial's own failure in ``outcome``; a full disk is not the trial's fault and is raised."""
        if is_disk_full(exc):
            raise as_disk_full(exc, self.trial_dir(trial.id), self.workdir) from exc
        outcome.status = FAILED
        outcome.error, outcome.failure_kind = _describe_failure(exc, hp.values)
        log.debug("trial %s failed:\n%s", trial.id, traceback.format_exc())

    def default_run_trial(self, trial: Trial, args: tuple, kwargs: Mapping[str, Any]) -> Any:
        """``Tuner.run_trial``'s default: build and fit the trial's model with these ``fit`` arguments.

        Returns what KerasTuner's returns: the list of each execution's ``History``.  Inside a custom
        ``run_trial`` it trains with the search's reporter (pruning, epochs in the store) and checkpoints.
        """
        nested = self._nested or {"reporter": None, "resume": None, "initial_epoch": 0, "history": (), "trained": []}
        kwargs = dict(kwargs)
        epochs = int(kwargs.pop("epochs", trial.budget if trial.budget is not None else self.trainer.epochs))
        initial_epoch = int(kwargs.pop("initial_epoch", nested["initial_epoch"]))
        hp = trial.hyperparameters if trial.hyperparameters is not None else HyperParameters().with_values(trial.hparams)
        data = FitArguments(tuple(args), kwargs, seed=int(getattr(self.data, "seed", 0) or 0))
        outcome, returned = self._train(trial, hp, data, nested["reporter"], nested["resume"], initial_epoch,
                                        nested["history"], epochs=epochs, strict=False,
                                        search_callbacks=self._nested is None)
        if outcome.status == FAILED:
            raise TrialFailed(outcome.error or "the trial failed", kind=outcome.failure_kind or "error")
        histories = list(returned)
        nested["trained"].append((outcome, histories))
        return histories

    def _user_callbacks(self, extra, search_callbacks: bool = True, trial_id: int | None = None,
                        execution: int | None = None) -> list:
        # Deep copies, as KerasTuner does: a callback's state must not leak between trials.
        callbacks = (list(self.callbacks) if search_callbacks else []) + list(extra or [])
        copies = []
        for cb in callbacks:
            try:
                cb = copy.deepcopy(cb)
            except Exception:
                pass
            if trial_id is not None:
                per_trial_log_dir(cb, trial_id, execution)
            copies.append(cb)
        return copies

    def _early_stopping(self):
        return keras.callbacks.EarlyStopping(
            monitor=self.objective.name,
            mode=self.objective.direction,
            patience=int(self.trainer.patience),
            min_delta=float(self.trainer.min_delta),
            verbose=0,
        )

    def _check_objective(self, model, hp: HyperParameters) -> None:
        """Fail before any training if the model cannot produce the objective metric."""
        self._objective_checked = True
        produced = compiled_metric_names(model)
        if not produced:
            return  # names only known after the first epoch; checked there instead
        for name in self.objective.metric_names:
            base = name[4:] if name.startswith("val_") else name
            if base not in produced:
                offered = sorted({*produced, *(f"val_{p}" for p in produced)})
                raise ObjectiveError(
                    "objective",
                    f"the model does not produce the metric {name!r}; it produces {', '.join(offered)}",
                    "set objective= to one of those or add the metric to model.metrics",
                )


class _EpochTracker(keras.callbacks.Callback):
    """Records each epoch, asks the reporter whether to stop, keeps best and last weights."""

    def __init__(self, runner: Runner, trial: Trial, reporter: Reporter | None, primary: bool,
                 initial_epoch: int | None = None, history: Sequence[Mapping[str, float]] = (),
                 execution: int = 0, strict: bool = True) -> None:
        super().__init__()
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
        metrics = {k: float(v) for k, v in (logs or {}).items() if _is_scalar(v)}
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


def _mean_metrics(all_metrics: list[dict[str, float]]) -> dict[str, float]:
    keys = set().union(*all_metrics) if all_metrics else set()
    return {k: sum(m[k] for m in all_metrics if k in m) / sum(1 for m in all_metrics if k in m) for k in sorted(keys)}


def _describe_failure(exc: BaseException, values: Mapping[str, Any]) -> tuple[str, str]:
    """The failure as one line for the store and the console, and its kind (error, nan, oom)."""
    text = f"{type(exc).__name__}: {str(exc).strip().splitlines()[0] if str(exc).strip() else ''}".strip()
    if isinstance(exc, TrialFailed):
        return str(exc)[:2000], exc.kind
    if isinstance(exc, FailedTrialError):  # the trial's own verdict: never retried (max_retries_per_trial)
        return text[:2000], "failed_trial"
    lowered = f"{type(exc).__name__} {exc}".lower()
    if "resourceexhausted" in lowered or "out of memory" in lowered or " oom" in lowered:
        text = (
            f"out of memory with hyperparameters {dict(values)}: try a smaller trainer.batch_size "
            f"or a smaller model ({text[:200]})"
        )
        return text[:2000], "oom"
    return text[:2000], "error"


def check_is_model(model: Any) -> None:
    """A builder must return a Keras model; anything else would fail every trial the same way."""
    if hasattr(model, "fit") and hasattr(model, "compile") and hasattr(model, "save_weights"):
        return
    shown = repr(model)
    shown = shown if len(shown) <= 60 else shown[:57] + "..."
    raise NotAModelError(
        f"the model builder returned {type(model).__name__} {shown}, not a Keras model (Expected the "
        "model-building function, or HyperModel.build() to return a valid Keras Model instance): "
        "return the model it builds (e.g. `return model`, a keras.Model)"
    )


def weights_are_finite(model) -> bool:
    """Whether every weight is a finite number (NaN weights can still give a finite accuracy)."""
    import numpy as np

    for variable in model.weights:
        if not np.isfinite(keras.ops.convert_to_numpy(variable)).all():
            return False
    return True


def _free(model) -> None:
    """Drop a model and Keras' global state, so memory does not grow across trials."""
    del model
    keras.backend.clear_session()  # also runs gc.collect(); a second collection would only cost time
