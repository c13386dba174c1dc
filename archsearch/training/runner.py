"""Train one trial: build, compile, fit, checkpoint, score, free memory.

One piece at about 440 lines: the training policy (mixed precision, compiled steps: which one, and building and
fitting under it), the build, the checks before training (objective names, constraints), the fit and the
measures after it are one trial's life, in the order it lives it; the policy's rules are in
:mod:`~archsearch.training.policy`.

The runner knows *how* to train, never *which* algorithm asked: it receives
a :class:`~archsearch.core.trial.Trial` (values, budget, where to resume
from) and a reporter to call after every epoch, and returns a
:class:`~archsearch.core.trial.TrialOutcome` (the
:class:`~archsearch.core.trial_runner.TrialRunner` protocol).  Two weight files per trial make resuming exact:
``checkpoint.weights.h5`` (last epoch, weights *and* optimizer state, so a
continued trial never repeats an epoch) and ``best.weights.h5`` (the best
epoch by the objective, for export and ``get_best_models``).  The settings are in
:mod:`~archsearch.training.settings`, the data in :mod:`~archsearch.training.fit_data`, the
per-epoch work in :mod:`~archsearch.training.callbacks`, a Tuner's own ``run_trial`` in
:mod:`~archsearch.training.custom_trial`.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import logging
import os
import time
import traceback
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import keras

from archsearch.core.checkpoints import MODEL_POLICY, TrialFiles, checkpoint_policy, restore_checkpoint
from archsearch.core.constraints import Constraint, Constraints
from archsearch.core.measures import AFTER_TRAINING, MEASURES, VIOLATION, is_measure
from archsearch.core.disk import as_disk_full, is_disk_full
from archsearch.core.objective import Objective
from archsearch.core.trial import COMPLETED, FAILED, PRUNED, Trial, TrialOutcome
from archsearch.core.trial_results import check_results, is_history, to_metrics
from archsearch.core.trial_runner import Reporter, RunnerNeeds
from archsearch.errors import BuilderError, DiskFullError, FatalError, ObjectiveError
from archsearch.space.hyperparameters import HyperParameters
from archsearch.training.callbacks import EpochTracker, epoch_figures, parameter_count, per_trial_log_dir
from archsearch.training.custom_trial import CustomRunTrial
from archsearch.training.failures import TrialFailed, check_is_model, describe_failure
from archsearch.training.fit_data import FitArguments, FitData, is_tf_dataset
from archsearch.training.measures import measure_after_training, measure_before_training
from archsearch.training.metric_names import compiled_metric_names
from archsearch.training.policy import (MIXED_POLICIES, TrainingPolicy, align_steps_per_execution, compile_options,
                                        detect_device, dtype_policy_scope, float32_outputs, recorded, resolve_policy,
                                        unsaid_notes, visible_device)
from archsearch.training.settings import CompileSettings, TrainerSettings

log = logging.getLogger("archsearch")


class _RetracingNoise(logging.Filter):
    """Every trial builds a new model, so TensorFlow traces new functions by design; its advice to
    avoid retracing (printed from the fifth trial on) is noise in a search and is dropped."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "triggered tf.function retracing" not in record.getMessage()


logging.getLogger("tensorflow").addFilter(_RetracingNoise())


class Runner(CustomRunTrial):
    """Trains trials for a search.  Stateless between trials apart from its settings.

    The first :class:`~archsearch.core.trial_runner.TrialRunner`: its trials may use a GPU, and each
    worker process starts Keras' backend its way (threads, quiet start-up) before unpickling it.
    """

    needs = RunnerNeeds(gpu=True, worker_setup="archsearch.training.process_setup:prepare_worker")

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
        constraints: Constraints | Sequence[str] | None = None,
        measures: Sequence[str] = (),
    ) -> None:
        """``fit_model(hp, model, **fit_kwargs)`` replaces ``model.fit`` (a HyperModel's own ``fit``);
        ``run_trial(trial, *args, **kwargs)`` replaces the whole training of a trial (a Tuner
        subclass's own ``run_trial``), which gets ``callbacks`` among its arguments when they were given
        (an empty list too, as KerasTuner passes them), and ``epochs`` when the search was given them
        (``epochs_given``) or the oracle sets a budget; ``trial_callbacks(trial)`` adds callbacks to each fit.
        ``constraints``: those on a measure known before training refuse a trial right after its build
        (infeasible, not trained); ``measures``: the model measures to record (archsearch.core.measures;
        those the objective and the constraints name are recorded anyway)."""
        self.fit_model = fit_model
        self.run_trial = run_trial
        self.trial_callbacks = trial_callbacks
        self.distribution_strategy = distribution_strategy
        self._nested: dict[str, Any] | None = None  # the trial a custom run_trial is training
        self.build_model = build_model
        self.data = data
        self.objective = objective
        self.files = TrialFiles(workdir)
        self.trainer = trainer or TrainerSettings()
        self.compile_settings = compile_settings or CompileSettings()
        self.callbacks = list(callbacks or ())
        self.callbacks_given = callbacks is not None
        self.epochs_given = epochs_given
        self.constraints = Constraints.parse(constraints)
        named = [*objective.metric_names, *self.constraints.names, *measures]
        self.measures: tuple[str, ...] = tuple(dict.fromkeys(n for n in named if is_measure(n)))
        self._objective_checked = False
        self._policy: tuple[int, TrainingPolicy] | None = None  # this process's (pid, policy)
        self._home = os.getpid()  # the search's process, which says the policy's notes (a worker only logs them)
        # A mixed dtype policy the caller set globally (keras.mixed_precision.set_global_policy) is what
        # trainer.mixed_precision=auto trains with: each trial sets its own policy, which would otherwise drop it.
        caller = keras.config.dtype_policy().name
        self._caller_dtype_policy = caller if caller in MIXED_POLICIES else None

    # ------------------------------------------------------------ paths (owned by archsearch.core.checkpoints)
    @property
    def workdir(self) -> Path:
        """The folder holding ``trials/``: ``files``' own, so an executor that moves the files moves it too."""
        return self.files.workdir

    def trial_dir(self, trial_id: int) -> Path:
        return self.files.trial_dir(trial_id)

    def checkpoint_path(self, trial_id: int) -> Path:
        return self.files.checkpoint(trial_id)

    def best_weights_path(self, trial_id: int) -> Path:
        return self.files.best_weights(trial_id)

    # ------------------------------------------------------------ the training policy
    def training_policy(self, weights: Path | None = None) -> TrainingPolicy:
        """The policy (archsearch.training.policy) a trial trains under: the one ``weights`` recorded (a
        resumed trial, a best model: its weights load into the dtypes they were trained in), else this
        process's, resolved once from the trainer's settings, the backend and the device it trains on."""
        if weights is not None:
            stored = checkpoint_policy(weights)
            if stored is not None:
                return TrainingPolicy.from_dict(stored)
        if self._policy is None or self._policy[0] != os.getpid():  # a worker resolves its own device
            backend = keras.backend.backend()
            # The search's process asks without starting JAX's or torch's GPU client (JAX would take most of
            # the GPU's memory there); a worker asks its backend, which it starts anyway.
            home = os.getpid() == self._home
            settings = self.trainer
            if settings.mixed_precision == "auto" and self._caller_dtype_policy:
                settings = dataclasses.replace(settings, mixed_precision=self._caller_dtype_policy)
            policy = resolve_policy(settings, backend, (visible_device if home else detect_device)(backend))
            for note in unsaid_notes(policy):
                log.log(logging.WARNING if home else logging.DEBUG, "Note: %s", note)
            self._policy = (os.getpid(), policy)
        return self._policy[1]

    # ------------------------------------------------------------ building
    def build(self, hp: HyperParameters, policy: TrainingPolicy | None = None):
        """Build (and compile, if the builder did not) the model for ``hp``, under ``policy`` (None: this
        process's): its layers take the dtype policy, its compile the policy's jit_compile and steps."""
        policy = policy or self.training_policy()
        with dtype_policy_scope(policy.dtype_policy):
            if self.distribution_strategy is not None:
                keras.backend.clear_session(free_memory=False)  # before the scope: clearing inside would leave it
                with self.distribution_strategy.scope():  # variables made under the strategy, as KerasTuner does
                    return self._build(hp, policy)
            return self._build(hp, policy)

    def _build(self, hp: HyperParameters, policy: TrainingPolicy):
        built = self.build_model(hp)
        check_is_model(built)
        model, note = float32_outputs(built) if policy.mixed else (built, None)
        if note:
            log.warning("Note: %s", note)
        compiled = getattr(built, "compiled", False) or getattr(built, "optimizer", None) is not None
        # A HyperModel's own fit trains the model itself (KerasTuner compiles nothing for it): with no
        # loss configured, an uncompiled model is handed to that fit as built.
        own_fit = self.fit_model is not None and self.compile_settings.loss is None
        if not compiled and not own_fit:
            self.compile_settings.compile(model, hp, compile_options(policy))
        elif compiled:
            builder_config = getattr(getattr(built, "_compile_config", None), "config", None) or {}
            options = compile_options(policy, dict(builder_config))
            if self.compile_settings.overrides or options or model is not built:
                self.compile_settings.recompile(model, options, source=built)
        setattr(model, MODEL_POLICY, json.dumps(recorded(policy, model).as_dict()))  # its weight files keep it
        return model

    def check_size(self, model, hp: HyperParameters, measured: Mapping[str, float] | None = None) -> None:
        """Refuse, before training, a model that breaks ``max_model_size`` or a constraint on a measure known
        now (``measured``): infeasible is the configuration's own result.  The refusal keeps the measures
        and the ``constraint_violation`` (``max_model_size`` counts as ``params <= max_model_size`` there)."""
        limit = self.trainer.max_model_size
        values = dict(measured or {})
        judged = self.constraints.before_training()
        if limit is not None:
            values.setdefault("params", float(parameter_count(model)))
            judged = Constraints([*judged, Constraint("params", "<=", float(int(limit)))])
        broken = judged.violations(values)
        if not broken:
            return
        refused = {**values, VIOLATION: Constraints.total(broken)}
        size = int(values.get("params", 0))
        if limit is not None and size > int(limit):
            raise TrialFailed(f"the model has {size:,} parameters, more than max_model_size={int(limit):,}; "
                              "not trained", kind="infeasible", metrics=refused)
        raise TrialFailed(f"{Constraints.message(broken)}; not trained", kind="infeasible", metrics=refused)

    def load_best_model(self, trial: Trial, hp: HyperParameters):
        """Rebuild a finished trial's architecture and load its best-epoch weights."""
        path = self.best_weights_path(trial.id)
        model = self.build(hp, self.training_policy(path if path.exists() else None))
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
        measured: dict[str, float] = {}  # the model's measures (archsearch.training.measures)
        # A resumed trial keeps the policy its checkpoint was trained under; a setting the backend cannot
        # follow is the search's error, not this trial's.
        policy = self.training_policy(resume_checkpoint)
        try:
            for execution in range(executions):
                if self.trainer.seed is not None:
                    keras.utils.set_random_seed(int(self.trainer.seed) + 1000 * trial.id + execution)
                model = self.build(hp, policy)
                outcome.hparams = dict(hp.values)  # define-by-run builders may have added values
                if execution == 0:
                    measured = measure_before_training(model, self.measures)
                self.check_size(model, hp, measured)
                if resume_checkpoint is not None:
                    restore_checkpoint(model, resume_checkpoint)
                if strict and not self._objective_checked:
                    self._check_objective(model, hp)
                tracker = EpochTracker(self, trial, reporter, primary=execution == 0, initial_epoch=initial_epoch,
                                        history=history if execution == 0 else (), execution=execution,
                                        strict=strict, measures=measured)
                if self.fit_model is not None and isinstance(data, FitArguments):
                    # A HyperModel's own fit gets search()'s arguments as given (it may batch, shuffle or
                    # preprocess them itself, as KerasTuner documents).
                    fit_kwargs = data.as_given()
                else:
                    fit_kwargs = data.fit_kwargs(hp.get("batch_size", self.trainer.batch_size), trial_id=trial.id,
                                                 initial_epoch=initial_epoch, epochs=epochs, execution=execution)
                # The speed and GPU figures first: the tracker records them with the epoch's metrics.
                figures = epoch_figures(hp.get("batch_size", self.trainer.batch_size), fit_kwargs, data)
                callbacks = [figures, tracker, *self._user_callbacks(
                    fit_kwargs.pop("callbacks", None), search_callbacks, trial.id, execution if executions > 1 else None)]
                if self.trial_callbacks is not None:
                    callbacks += list(self.trial_callbacks(trial))
                if self.trainer.early_stopping:
                    callbacks.append(self._early_stopping())
                fit_kwargs.setdefault("verbose", self.trainer.verbose)
                if is_tf_dataset(fit_kwargs.get("x")) or isinstance(fit_kwargs.get("x"), keras.utils.PyDataset):
                    fit_kwargs.setdefault("shuffle", False)  # a pipeline orders itself; Keras warns otherwise
                align_steps_per_execution(model, fit_kwargs.get("steps_per_epoch"))
                fit_start = time.perf_counter()
                with dtype_policy_scope(policy.dtype_policy):  # layers a model makes while it trains take it too
                    if self.fit_model is not None:
                        result = self.fit_model(hp, model, epochs=epochs, initial_epoch=initial_epoch,
                                                callbacks=callbacks, **fit_kwargs)
                    else:
                        result = model.fit(epochs=epochs, initial_epoch=initial_epoch, callbacks=callbacks,
                                           **fit_kwargs)
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
                    raise TrialFailed(f"no epoch produced the objective {self.objective.monitor}")
                if outcome.status == PRUNED:
                    break
                if execution + 1 < executions:
                    _free(model)
                    model = None
            measured = self._measure_trained(model, measured, hp.get("batch_size", self.trainer.batch_size))
        except KeyboardInterrupt:
            raise
        except (ObjectiveError, BuilderError, DiskFullError, FatalError):
            raise  # not this trial's fault: the search stops with one message
        except Exception as exc:  # a trial's failure must not stop the search
            self._fail(outcome, exc, trial, hp)
            if isinstance(exc, TrialFailed) and exc.metrics:
                outcome.metrics = dict(exc.metrics)  # an infeasible model's measures and violation
        finally:
            if model is not None:
                _free(model)
            outcome.duration = time.perf_counter() - start
        if per_execution and outcome.status != FAILED:
            outcome.value = sum(v for v, _, _ in per_execution) / len(per_execution)
            outcome.metrics = {**measured, **_mean_metrics([m for _, m, _ in per_execution])}
            outcome.best_epoch = per_execution[0][2]
        return outcome, returned

    def _measure_trained(self, model, measured: Mapping[str, float], batch_size: int | None) -> dict[str, float]:
        """The measures of the trained model: latency (on the device it trained on; the batch one at the
        batch size it trained with), and those a model built only by its first call (a subclassed one)
        could not give before training."""
        if model is None or not self.measures:
            return dict(measured)
        late = measure_before_training(model, [n for n in self.measures if n not in measured])
        after = [n for n in self.measures if n in AFTER_TRAINING]
        return {**measured, **late, **measure_after_training(model, after, batch_size)}

    def _fail(self, outcome: TrialOutcome, exc: Exception, trial: Trial, hp: HyperParameters) -> None:
        """Record a trial's own failure in ``outcome``; a full disk is not the trial's fault and is raised."""
        if is_disk_full(exc):
            raise as_disk_full(exc, self.trial_dir(trial.id), self.workdir) from exc
        outcome.status = FAILED
        outcome.error, outcome.failure_kind = describe_failure(exc, hp.values)
        log.debug("trial %s failed:\n%s", trial.id, traceback.format_exc())

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
            monitor=self.objective.monitor,
            mode=self.objective.direction,
            patience=int(self.trainer.patience),
            min_delta=float(self.trainer.min_delta),
            verbose=0,
        )

    def _check_epoch_value(self) -> None:
        """Each epoch is scored by the objective (a Pareto search's main one) to keep the best epoch's
        weights: a measure taken only after training (latency) cannot do that, and is refused by name."""
        per_epoch = [self.objective.monitor] if self.objective.is_pareto else self.objective.metric_names
        late = [n for n in per_epoch if n in AFTER_TRAINING]
        if late:
            raise ObjectiveError(
                "objective", f"{late[0]} is measured after training, so no epoch has it to pick the best epoch by",
                "add a metric that training produces, e.g. objective=[val_accuracy:max,latency_ms:min] search.mode=pareto, "
                f"or bound it with a constraint ('constraints=[\"{late[0]} <= 5\"]')")

    def _check_objective(self, model, hp: HyperParameters) -> None:
        """Fail before any training if the model cannot produce the objective metric."""
        self._objective_checked = True
        self._check_epoch_value()
        produced = compiled_metric_names(model)
        if not produced:
            return  # names only known after the first epoch; checked there instead
        offered = sorted({*produced, *(f"val_{p}" for p in produced)})
        for name in self.objective.metric_names:
            if _produced(name, produced):
                continue
            raise ObjectiveError(
                "objective",
                f"the model does not produce the metric {name!r}; it produces {', '.join(offered)}",
                f"set objective= to one of those, to a model measure ({', '.join(MEASURES)}), "
                "or add the metric to model.metrics",
            )
        for name in self.constraints.names:
            if not _produced(name, produced):
                raise ObjectiveError(
                    "constraints",
                    f"{name!r} is neither a model measure ({', '.join(MEASURES)}) nor a metric the model produces "
                    f"({', '.join(offered)})",
                    "constrain one of those, or add the metric to model.metrics",
                )


def _produced(name: str, produced: Sequence[str]) -> bool:
    """Whether a trial will have ``name``: a model measure archsearch computes, or a compiled metric."""
    return is_measure(name) or (name[4:] if name.startswith("val_") else name) in produced


def _mean_metrics(all_metrics: list[dict[str, float]]) -> dict[str, float]:
    keys = set().union(*all_metrics) if all_metrics else set()
    return {k: sum(m[k] for m in all_metrics if k in m) / sum(1 for m in all_metrics if k in m) for k in sorted(keys)}


def _free(model) -> None:
    """Drop a model and Keras' global state, so memory does not grow across trials."""
    del model
    keras.backend.clear_session()  # also runs gc.collect(); a second collection would only cost time
