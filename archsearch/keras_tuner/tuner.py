"""KerasTuner's ``Tuner`` and ``BaseTuner`` over the engine's one assembly (archsearch/engine/assembly.py).

``RandomSearch(model_builder, objective="val_accuracy", max_trials=10)``,
``tuner.search(x, y, epochs=5, validation_split=0.2)``,
``tuner.get_best_hyperparameters()[0]`` and ``tuner.hypermodel.build(best)``
mean what they mean in KerasTuner, so existing tutorials run unchanged.  The
CLI drives the same class, so both paths share one engine.

KerasTuner's extension points work as documented: a ``Tuner`` subclass may override
``run_trial(trial, *args, **kwargs)`` (returning a number, a dict of metrics or a ``History``)
and the ``on_search_begin``/``on_trial_begin``/``on_epoch_end``/... hooks; a ``HyperModel`` may
override ``fit``; an oracle may be given ready-made (``oracle=RandomSearchOracle(...)``).

One piece over 400 lines on purpose: ``Tuner`` is KerasTuner's public class, whose methods (search,
the hooks, the results API, reload) are its documented surface; the assembly, the runner, the hooks'
plumbing (keras_tuner/hooks.py) and the results table (keras_tuner/results.py) live elsewhere.
"""

from __future__ import annotations

import contextlib
import copy
import logging
import warnings
import weakref
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import keras

from archsearch.training.backend_logs import settle_backend_notices
from archsearch.errors import (ArchsearchError, BuilderError, ConfigError, FatalValueError,
                               describe_exception)
from archsearch.training.hypermodel import as_hypermodel, custom_fit
from archsearch.space.hyperparameters import HyperParameters
from archsearch.core.console import say
from archsearch.core.objective import Objective
from archsearch.oracles import Oracle, Trial
from archsearch.training.fit_data import FitArguments, FitData
from archsearch.training.runner import Runner
from archsearch.training.policy import policy_settings
from archsearch.training.settings import CompileSettings, TrainerSettings
from archsearch.engine.assembly import Assembly, create_search_oracle
from archsearch.engine.settings import ExecutorSettings, ObjectiveSettings, SearchSettings, TunerSettings
from archsearch.keras_tuner.hooks import KerasTunerLogger, TunerHooks, hooks_callback
from archsearch.keras_tuner.results import pruning_line, results_table, status_labels

# fit() arguments of KerasTuner tutorials written for Keras 2 that cannot be passed on: Keras 3 removed
# the first three, and the runner sets each trial's initial_epoch (promoted Hyperband trials resume).
IGNORED_FIT_ARGS = ("use_multiprocessing", "workers", "max_queue_size", "initial_epoch")


def _trial_values(space: HyperParameters, trial: Any) -> HyperParameters:
    """A trial's values over the search space; a trial made by hand with its own ``HyperParameters``
    (KerasTuner's ``Trial(hyperparameters=hp)``) whose names the space lacks keeps its own."""
    own = getattr(trial, "hyperparameters", None)
    if own is not None and any(name not in space.space for name in trial.hparams):
        return own.copy()
    return space.with_values(trial.hparams)


def discover_space(hypermodel: Any, hp: HyperParameters | None = None, keras_model: bool = True,
                   given: bool = False, check_model: bool = True) -> HyperParameters:
    """Run a define-by-run builder once with defaults, as KerasTuner does, to learn its space.

    ``hp``: a space to start from (the user's ``hyperparameters=``); the builder adds to it.
    ``keras_model``: the builder must return a Keras model (not so for scikit-learn estimators).
    ``given``: the user gave a space, so a builder that raises here only leaves it as given (its
    trials fail, and the search stops after max_consecutive_failed_trials, as without this build).
    ``check_model``: refuse now a builder that returns no Keras model (with ``keras_model``).  A
    Python-API tuner checks when ``search()`` starts instead, as KerasTuner builds such tuners (a
    ``run_trial`` override may never need the model).
    """
    from archsearch.training.failures import check_is_model

    hp = HyperParameters() if hp is None else hp
    try:
        model = as_hypermodel(hypermodel).build(hp)
    except ArchsearchError:
        raise
    except Exception as exc:
        if given:
            log.debug("the model builder failed on the given space's defaults (%s); its trials will say so",
                      describe_exception(exc))
            return hp
        raise BuilderError(
            f"the model builder failed when run once with default values to learn its search space: "
            f"{describe_exception(exc)}; fix the builder (calling it with archsearch.HyperParameters() "
            "shows the full traceback)"
        ) from exc
    finally:
        if keras_model:
            keras.backend.clear_session()
    if keras_model and check_model:
        check_is_model(model)
    return hp


log = logging.getLogger("archsearch")

_GIVEN = object()  # tells "objective not passed" from any value a user may pass
# Tuner methods that run inside the training process (so they need executor="inline").
_TRAINING_HOOKS = ("run_trial", "on_epoch_begin", "on_epoch_end", "on_batch_begin", "on_batch_end")


class Tuner:
    """Base tuner: an oracle (the algorithm), a runner (training) and a store (the record).

    Subclass it and override :meth:`run_trial` to tune anything that is not one ``model.fit``
    (a custom training loop, a scikit-learn model, preprocessing); override the ``on_*`` hooks
    to watch trials.  ``optimizer``/``loss``/``metrics`` compile every model with these instead
    of the builder's own; ``max_model_size`` skips (as infeasible) models with more parameters.
    ``constraints=["params <= 2e6", "latency_ms <= 5"]`` bound model measures or metrics (a trial that
    breaks one is infeasible; one on params, flops or model_size_mb is checked before any training);
    ``measures=["flops", ...]`` records model measures besides those the objective and constraints name
    (archsearch.core.measures lists them).
    """

    oracle_name: str | None = None
    # A Pareto search's hypervolume reference point, each objective's value ({name: value} or a list in objective
    # order; the CLI's search.reference_point); None derives it from the trials (archsearch.core.pareto).
    reference_point: Mapping[str, float] | Sequence[float] | None = None
    default_max_trials: int | None = None  # when max_trials is not given (None: until the algorithm ends)
    builds_keras_models = True  # the hypermodel returns Keras models (checked when the space is learned)

    def __init__(
        self,
        hypermodel: Any = None,
        objective: Any = _GIVEN,
        max_trials: int | None = None,
        seed: int | None = None,
        hyperparameters: HyperParameters | None = None,
        directory: str | Path | None = None,
        project_name: str | None = None,
        overwrite: bool = False,
        executions_per_trial: int | None = None,
        max_consecutive_failed_trials: int | None = None,
        oracle: Oracle | None = None,
        trainer: TrainerSettings | None = None,
        compile_settings: CompileSettings | None = None,
        keep_top_models: int | None = SearchSettings.keep_top_models,
        config: Mapping[str, Any] | None = None,
        executor: str | None = None,
        parallel_trials: int | str = 1,  # one at a time, as KerasTuner; the command line's auto: one per GPU
        executor_options: Mapping[str, Any] | None = None,
        listeners: Sequence[Any] = (),
        optimizer: Any = None,
        loss: Any = None,
        metrics: Any = None,
        max_model_size: int | None = None,
        distribution_strategy: Any = None,
        logger: Any = None,
        tuner_id: str | None = None,
        verbose_backend: bool = False,
        constraints: Sequence[str] | None = None,
        measures: Sequence[str] | None = None,
        **oracle_options: Any,
    ) -> None:
        settle_backend_notices(verbose_backend)  # TensorFlow's start-up notices: off stderr unless asked for
        overridden = [name for name in _TRAINING_HOOKS if _overrides(self, name)]
        if hypermodel is None and "run_trial" not in overridden:
            raise ConfigError("hypermodel", "is required (Received `hypermodel=None`)",
                              "pass your model_builder(hp) function, or override Tuner.run_trial")
        self.hypermodel = None if hypermodel is None else as_hypermodel(hypermodel)
        self.objective = _objective_beside(oracle, objective, dict(oracle_options, max_trials=max_trials))
        self.goal = _goal(self.objective, constraints, measures)
        self.tuner_id = tuner_id or "tuner0"
        # KerasTuner's default project name; "" puts the store straight into ``directory`` (the CLI's run folder).
        self.directory = directory or "."  # KerasTuner's attributes, as given
        self.project_name = "untitled_project" if project_name is None else project_name
        self.project_dir = Path(self.directory) / self.project_name
        # The run folder is this tuner's for as long as it lives (the assembly holds its lock).
        self._assembly = Assembly(self.project_dir, overwrite)
        self._lock = self._assembly.lock
        weakref.finalize(self, self._lock.release_when_collected)
        self.trainer = _trainer_from_arguments(trainer, executions_per_trial, max_model_size, seed)
        self.compile_settings = _compile_from_arguments(compile_settings, optimizer, loss, metrics)
        self.distribution_strategy = distribution_strategy
        in_process = [*overridden, *(["distribution_strategy"] if distribution_strategy is not None else [])]
        self.parallel_trials, self.executor_settings = _where_trials_train(executor, parallel_trials,
                                                                           executor_options, in_process)
        self.executor_name = self.executor_settings.name
        self.listeners = list(listeners)
        if logger is not None:
            warnings.warn("The `logger` argument is deprecated in KerasTuner (it ignores it); archsearch still "
                          "sends it each trial's state, and logger=[tensorboard, mlflow] in the configuration "
                          "tracks a search", DeprecationWarning, stacklevel=2)
            self.listeners.append(KerasTunerLogger(logger))
        self.keep_top_models = keep_top_models
        self.oracle = self._oracle_for(oracle, hyperparameters, max_trials, seed, oracle_options)
        self.max_consecutive_failed_trials = _failures_in_a_row(max_consecutive_failed_trials, self.oracle)
        self.max_failed_trials: int | None = SearchSettings.max_failed_trials  # the CLI's max_failed_trials
        try:
            self._pristine_oracle: Oracle | None = copy.deepcopy(self.oracle)  # what reload() replays the store into
        except Exception:  # an oracle holding something uncopyable: reload() then says so
            self._pristine_oracle = None
        self.store = self._assembly.open(self.oracle, config, training=policy_settings(self.trainer))
        self._restore()
        self._runner: Runner | None = None

    def _oracle_for(self, oracle: Oracle | None, hyperparameters: HyperParameters | None, max_trials: int | None,
                    seed: int | None, options: Mapping[str, Any]) -> Oracle:
        """The given oracle, or this tuner class's over ``hyperparameters``; then the builder, run once with
        defaults, declares its space (growing the given one, if any, as KerasTuner's first build does)."""
        oracle_given = oracle is not None
        if oracle is None:
            if self.oracle_name is None:
                raise ConfigError("oracle", "the base Tuner needs an oracle",
                                  "pass oracle=archsearch.oracles.RandomSearchOracle(...) or use RandomSearch, ...")
            chosen = self.default_max_trials if max_trials is None else max_trials
            oracle = create_search_oracle(TunerSettings(self.oracle_name, {"max_trials": chosen, "seed": seed,
                                                                           **options}),
                                          hyperparameters, self.objective)
        elif hyperparameters is not None:
            oracle.update_space(hyperparameters)
        if self.hypermodel is not None and (hyperparameters is None or not oracle_given
                                            or not oracle.allow_new_entries):
            # The space grows further while trials build, as a define-by-run builder declares.  Given both a
            # space and an oracle (the command line, which learned the space already), trials alone grow it.
            oracle.update_space(discover_space(self.hypermodel, oracle.hyperparameters.copy(),
                                               keras_model=self.builds_keras_models,
                                               given=hyperparameters is not None, check_model=False))
        return oracle

    def _restore(self, oracle: Oracle | None = None) -> None:
        said = self._assembly.restore(oracle)
        if said:
            say(said)

    # ------------------------------------------------------------ KerasTuner API
    def search(self, *fit_args: Any, **fit_kwargs: Any) -> None:
        """Run the search; arguments are those of ``model.fit`` (``epochs`` is per trial).

        ``verbose=0`` also silences the search's own lines (its plan, one line per trial), as in KerasTuner;
        they go to the ``archsearch.console`` logger (archsearch/core/console.py) otherwise.
        In the main thread, Ctrl-C stops the search at the next safe point (before a batch, between
        trials): the running trial is recorded as interrupted, so a new tuner on the same folder
        continues it, and ``KeyboardInterrupt`` is raised; a second Ctrl-C stops at once.
        """
        self._epochs_given = "epochs" in fit_kwargs
        if "epochs" in fit_kwargs:
            self.trainer.epochs = int(fit_kwargs.pop("epochs"))
            if getattr(self.oracle, "total_epochs", None):
                say(f"Note: {self.oracle.name} trains each trial to its own budget (at most max_epochs="
                          f"{self.oracle.max_epochs}); search(epochs={self.trainer.epochs}) is not used.")
        dropped = [name for name in IGNORED_FIT_ARGS if fit_kwargs.pop(name, None) is not None]
        if dropped:
            say(f"Note: search() ignores {', '.join(dropped)}: Keras 3's fit has no use_multiprocessing, "
                      "workers or max_queue_size, and every trial starts at its own initial epoch.")
        callbacks = fit_kwargs.pop("callbacks", None)
        _check_deep_copyable(callbacks)
        data = FitArguments(tuple(fit_args), dict(fit_kwargs), seed=int(self.trainer.seed or 0))
        if "batch_size" in fit_kwargs:
            self.trainer.batch_size = fit_kwargs["batch_size"]
        quiet = fit_kwargs.get("verbose", 1) == 0
        from archsearch.core.interrupts import stop_at_safe_points

        # Ctrl-C stops at a safe point, with the running trial recorded to continue (archsearch.core.interrupts).
        with stop_at_safe_points():
            self.on_search_begin()
            self.run_search(data, callbacks, quiet=quiet)
            self.on_search_end()

    def run_search(self, data: FitData, callbacks: Sequence[Any] | None = None, *, quiet: bool = False) -> None:
        """Run the search on any :class:`~archsearch.training.fit_data.FitData` (the CLI's datasets, ...);
        ``quiet``: without the search's own console lines (``search(verbose=0)``)."""
        with self._lock.searching():  # one search per folder in this process too, whatever the thread
            self._run_search(data, callbacks, quiet)

    def _run_search(self, data: FitData, callbacks: Sequence[Any] | None, quiet: bool) -> None:
        from archsearch.core.console import ConsoleEvents

        self.oracle.set_reference_point(self.reference_point)  # the Pareto acquisition improves up to it
        self._runner = self._make_runner(data, callbacks)
        self._runner.training_policy()  # a setting the backend cannot follow is refused now; its notes said once
        self._check_objective_before_training(self._runner)
        slots, note = self._assembly.slots_for_the_trials_left(self.parallel_trials)
        if note and not quiet:
            say(note)
        hooks = [TunerHooks(self)] if any(_overrides(self, n) for n in ("on_trial_begin", "on_trial_end")) else []
        settings = SearchSettings(max_consecutive_failed_trials=self.max_consecutive_failed_trials,
                                  max_failed_trials=self.max_failed_trials,
                                  keep_top_models=self.keep_top_models)
        self._assembly.search(self._runner, self.executor_settings, slots, settings,
                              [*([] if quiet else [ConsoleEvents()]), *hooks, *self.listeners],
                              constraints=self.goal.constraints).run()

    def run_trial(self, trial: Trial, *fit_args: Any, **fit_kwargs: Any) -> Any:
        """Train one trial and return its result: KerasTuner's extension point.

        The default builds ``trial.hyperparameters``' model and fits it with these arguments, with
        checkpoints and per-epoch reports (so pruning and Hyperband work), and returns each
        execution's ``History``.  An override may return a number (the objective's value), a dict
        of metrics, a ``History``, or a list of those; ``super().run_trial(trial, *args, **kwargs)``
        trains the default way with changed arguments (e.g. a tuned ``batch_size``).
        """
        if self.hypermodel is None:
            raise ConfigError("hypermodel", "is required by the default run_trial",
                              "pass a hypermodel, or do not call super().run_trial")
        return self.runner.default_run_trial(trial, fit_args, fit_kwargs)

    # Hooks, as in KerasTuner: override what you need (trial hooks run in the driver; the epoch and
    # batch hooks run where the model trains, so they need executor="inline").
    def on_search_begin(self) -> None:
        """Called once when ``search()`` starts."""

    def on_search_end(self) -> None:
        """Called once when ``search()`` ends normally."""

    def on_trial_begin(self, trial: Trial) -> None:
        """Called as a trial starts training; ``trial.hyperparameters`` holds its values."""

    def on_trial_end(self, trial: Trial) -> None:
        """Called when a trial ended (``trial.status``, ``trial.score``, ``trial.metrics``)."""

    def on_epoch_begin(self, trial: Trial, model: Any, epoch: int, logs: Mapping[str, Any] | None = None) -> None:
        """Called before each epoch of a trial's ``fit`` (0-based ``epoch``, as Keras counts)."""

    def on_epoch_end(self, trial: Trial, model: Any, epoch: int, logs: Mapping[str, Any] | None = None) -> None:
        """Called after each epoch of a trial's ``fit``."""

    def on_batch_begin(self, trial: Trial, model: Any, batch: int, logs: Mapping[str, Any] | None = None) -> None:
        """Called before each training batch."""

    def on_batch_end(self, trial: Trial, model: Any, batch: int, logs: Mapping[str, Any] | None = None) -> None:
        """Called after each training batch."""

    def save(self) -> None:
        """Keep the search's state now (KerasTuner's ``Tuner.save``): the oracle's, in trials.db
        (:meth:`archsearch.oracles.base.Oracle.save`); the trials are kept there as they end."""
        self.oracle.save()

    def reload(self) -> None:
        """Read the search's state from its store again (KerasTuner's ``reload``)."""
        if self._pristine_oracle is None:
            raise ConfigError("oracle", "cannot be copied, so reload() cannot rebuild it",
                              "create a new tuner on the same directory instead (it resumes from the store)")
        self.oracle = copy.deepcopy(self._pristine_oracle)
        self._restore(self.oracle)

    def get_trial_dir(self, trial_id: int | str) -> str:
        """The trial's folder, created if need be: a ``run_trial`` may write its own files there (KerasTuner's)."""
        folder = self.runner.trial_dir(int(trial_id))
        folder.mkdir(parents=True, exist_ok=True)
        return str(folder)

    def load_model(self, trial: Trial) -> Any:
        """A trial's model, rebuilt and loaded with its best-epoch weights."""
        return self.runner.load_best_model(trial, self.oracle.hyperparameters.with_values(trial.hparams))

    def _check_objective_before_training(self, runner: Runner) -> None:
        """Build one model with default values, so a metric the model never produces is reported
        before the first trial is recorded (a resumed search was checked when it started).  Not when
        a custom ``run_trial`` or ``HyperModel.fit`` computes the result itself."""
        if (self.store.count() > 0 or self.hypermodel is None or _overrides(self, "run_trial")
                or custom_fit(self.hypermodel) is not None):
            return
        hp = self.oracle.hyperparameters.with_values({})
        try:
            model = runner.build(hp)
        except ArchsearchError:
            raise
        except Exception:  # a builder that fails here fails its trials, which are recorded as failed
            keras.backend.clear_session()
            return
        try:
            runner._check_objective(model, hp)
        finally:
            del model
            keras.backend.clear_session()

    def _make_runner(self, data: FitData | None, callbacks: Sequence[Any] | None = None) -> Runner:
        per_epoch = [n for n in _TRAINING_HOOKS[1:] if _overrides(self, n)]
        return Runner(
            self.hypermodel.build if self.hypermodel is not None else _no_hypermodel,
            data or FitArguments(),
            self.objective,
            self.project_dir,
            trainer=self.trainer,
            compile_settings=self.compile_settings,
            callbacks=callbacks,
            fit_model=None if self.hypermodel is None else custom_fit(self.hypermodel),
            run_trial=self.run_trial if _overrides(self, "run_trial") else None,
            trial_callbacks=(lambda trial: [hooks_callback(self, trial, per_epoch)]) if per_epoch else None,
            distribution_strategy=self.distribution_strategy,
            epochs_given=getattr(self, "_epochs_given", True),
            constraints=self.goal.constraints,
            measures=self.goal.recorded_measures,
        )

    # KerasTuner's attributes, over the settings that hold them here.
    @property
    def executions_per_trial(self) -> int:
        return int(self.trainer.executions_per_trial)

    @executions_per_trial.setter
    def executions_per_trial(self, value: int) -> None:
        from archsearch.core.checks import whole_number

        self.trainer.executions_per_trial = whole_number(value, "executions_per_trial", 1)

    @property
    def optimizer(self) -> Any:
        return self.compile_settings.overrides.get("optimizer")

    @property
    def loss(self) -> Any:
        return self.compile_settings.overrides.get("loss")

    @property
    def metrics(self) -> Any:
        return self.compile_settings.overrides.get("metrics")

    @property
    def remaining_trials(self) -> int | None:
        """Trials still to start (None when the tuner has no ``max_trials``), as in KerasTuner."""
        return self.oracle.remaining_trials()

    @property
    def runner(self) -> Runner:
        if self._runner is None:
            self._runner = self._make_runner(None)
        return self._runner

    # search_space_summary and results_summary show text on purpose: they are KerasTuner's console API.  Through
    # the console channel, so the CLI's results table lands in the run's log file too.
    def search_space_summary(self) -> None:
        say(self.oracle.hyperparameters.summary())

    # In a Pareto search (objective=archsearch.ParetoObjective.of([...]), search.mode=pareto) "the best trials" are
    # the front, ordered by the first objective: with no number the whole front (KerasTuner's default of 1 would
    # hide it), with a number at most that many.  A single objective keeps KerasTuner's default: the best one.
    def best_trials(self, num_trials: int | None = None) -> list[Trial]:
        return self.oracle.best_trials(num_trials)

    def get_best_trials(self, num_trials: int | None = None) -> list[Trial]:
        """The best trials (KerasTuner's ``oracle.get_best_trials``); a Pareto search's whole front by default."""
        return self.oracle.get_best_trials(num_trials)

    def get_best_hyperparameters(self, num_trials: int | None = None) -> list[HyperParameters]:
        """The best trials' values as ``HyperParameters`` (``.values``, ``.get(name)``); a Pareto search's
        front by default (see :meth:`best_trials`)."""
        space = self.oracle.hyperparameters
        best = [(_trial_values(space, t), self.oracle.keras_tuner_values(t)) for t in self.best_trials(num_trials)]
        for hp, extra in best:
            hp.values.update(extra)  # Hyperband's tuner/epochs, ...: KerasTuner's tutorial retrains for that long
        return [hp for hp, _ in best]

    def get_best_models(self, num_models: int | None = None) -> list[Any]:
        """The best trials' models, rebuilt and loaded with their best-epoch weights; a Pareto search's front
        by default (see :meth:`best_trials`)."""
        if self.hypermodel is None:
            raise ConfigError("hypermodel", "is needed to rebuild models (this tuner's run_trial trains without one)",
                              "rebuild the model from get_best_hyperparameters() in your own code")
        return [self.load_model(t) for t in self.best_trials(num_models)]

    def results_summary(self, num_trials: int | None = 10) -> None:
        """The results table: the ``num_trials`` best (KerasTuner's 10), or a Pareto search's front with its knee
        and hypervolume (against :attr:`reference_point`): at most ``num_trials`` rows, the table saying how
        many more there are (None: the whole front)."""
        # Statuses as recorded: after Ctrl-C the store says "interrupted" where the oracle still says "running".
        rows = self.store.rows()
        say(results_table(self.oracle, num_trials, self.project_dir, status_labels(rows) or None,
                          self.reference_point))
        pruning = pruning_line(rows)
        if pruning:
            say(pruning)

    def retrain(self, x: Any, y: Any, **kwargs: Any) -> dict[str, Any]:
        """Retrain the best trials and a baseline, scored on ``x_test``/``y_test`` (``archsearch.training.retrain.retrain``)."""
        from archsearch.training.retrain import retrain

        return retrain(self, x, y, **kwargs)


def _objective_beside(oracle: Any, objective: Any, oracle_options: Mapping[str, Any]) -> Objective:
    """The tuner's objective: the given oracle's (which then takes no other objective or oracle setting),
    else ``objective`` (KerasTuner's default val_loss; the command line's, conf/config.yaml, is val_accuracy)."""
    if oracle is None:
        return Objective.create("val_loss" if objective is _GIVEN else objective)
    if not isinstance(oracle, Oracle):
        raise ConfigError("oracle", f"is {oracle!r}, not an Oracle (Expected `oracle` argument to be an instance "
                          "of `Oracle`)",
                          "pass an oracle instance, e.g. archsearch.oracles.RandomSearchOracle(objective=..., "
                          "max_trials=...)")
    never_called = oracle.hand_driven_overrides()
    if never_called:
        raise ConfigError("oracle", f"{type(oracle).__name__} overrides {', '.join(never_called)}, which a "
                          "tuner's search never calls (it drives its oracle with ask() and tell())",
                          "put that logic in populate_space / score_trial (or _propose / _on_result), "
                          "which the search calls")
    if objective is not _GIVEN and Objective.create(objective) != oracle.objective:
        raise ConfigError("objective", f"{objective!r} differs from the oracle's {oracle.objective.label}",
                          "give the objective to the oracle only")
    unused = {k: v for k, v in oracle_options.items() if v is not None}
    if unused:
        raise ConfigError(f"{next(iter(unused))}", "is an oracle setting, but an oracle was given",
                          "pass it to the oracle instead")
    return oracle.objective


def _goal(objective: Objective, constraints: Any, measures: Any) -> ObjectiveSettings:
    """The objective with ``constraints=`` and ``measures=``, checked by the command line's rules
    (archsearch.engine.settings.ObjectiveSettings), each error naming its argument."""
    from archsearch.core.constraints import Constraints
    from archsearch.core.measures import MEASURES

    names = [measures] if isinstance(measures, str) else list(measures or ())
    for name in names:
        if name not in MEASURES:
            raise ConfigError("measures", f"{name!r} is not a measure archsearch computes",
                              f"use any of {', '.join(MEASURES)}")
    return ObjectiveSettings(objective=objective, mode="pareto" if objective.is_pareto else "single",
                             constraints=Constraints.parse(constraints, "constraints"), measures=tuple(names))


def _trainer_from_arguments(trainer: TrainerSettings | None, executions_per_trial: int | None,
                            max_model_size: int | None, seed: int | None) -> TrainerSettings:
    """The trainer's settings (the CLI's, or TrainerSettings' defaults) with the Tuner's own arguments."""
    from archsearch.core.checks import whole_number

    trainer = trainer or TrainerSettings()
    if executions_per_trial is not None:  # else the trainer's own setting (the CLI's trainer.executions_per_trial)
        trainer.executions_per_trial = int(executions_per_trial)
    if max_model_size is not None:
        trainer.max_model_size = whole_number(max_model_size, "max_model_size", 1)
    if seed is not None and trainer.seed is None:
        trainer.seed = int(seed)  # one seed makes the whole search repeatable: values and weights
    return trainer


def _compile_from_arguments(compile_settings: CompileSettings | None, optimizer: Any, loss: Any,
                            metrics: Any) -> CompileSettings:
    """KerasTuner's ``Tuner(optimizer=, loss=, metrics=)``: these replace what the builder compiled with."""
    compile_settings = compile_settings or CompileSettings()
    overrides = {k: v for k, v in (("optimizer", optimizer), ("loss", loss), ("metrics", metrics)) if v is not None}
    if overrides:
        compile_settings.overrides = overrides
        if loss is not None:  # also what an uncompiled model is compiled with
            compile_settings.loss = loss
        if metrics is not None:
            compile_settings.metrics = list(metrics) if isinstance(metrics, (list, tuple)) else [metrics]
    return compile_settings


def _where_trials_train(executor: str | None, parallel_trials: int | str, executor_options: Mapping[str, Any] | None,
                        in_process: Sequence[str]) -> tuple[int, ExecutorSettings]:
    """(trials at a time, the executor): in this process by default (notebooks, closures); several at a time
    need worker processes, whose builder and data must then be picklable."""
    from archsearch.executors.process import parallel_trials as slots_of

    slots = slots_of(parallel_trials, "parallel_trials", executor_options)
    name = executor or ("process" if slots > 1 else "inline")
    if in_process and name != "inline":
        raise ConfigError("executor", f"{name!r} trains in other processes, but "
                          f"{', '.join(in_process)} must run in this one (it belongs to this tuner)",
                          "use parallel_trials=1 (executor='inline'), or move the logic into a HyperModel.fit")
    options = dict(executor_options or {})
    return slots, ExecutorSettings(name, int(options.pop("max_retries", ExecutorSettings.max_retries)), options)


def _failures_in_a_row(given: int | None, oracle: Oracle) -> int:
    """``max_consecutive_failed_trials``, the tuner's or its oracle's (set in one place), else the default."""
    from_oracle = oracle.max_consecutive_failed_trials
    if given is not None and from_oracle is not None and int(given) != int(from_oracle):
        raise ConfigError("max_consecutive_failed_trials", f"is {given} for the tuner but {from_oracle} for its oracle",
                          "set it in one place (the tuner's or the oracle's argument)")
    return int(given if given is not None else from_oracle if from_oracle is not None
               else SearchSettings.max_consecutive_failed_trials)


def _overrides(tuner: Tuner, name: str) -> bool:
    """Whether a Tuner subclass defines its own ``name`` (a hook or ``run_trial``)."""
    return getattr(type(tuner), name, None) is not getattr(Tuner, name, None)


def _no_hypermodel(hp: HyperParameters):
    raise ConfigError("hypermodel", "is required to build models", "pass a hypermodel to the tuner")


class BaseTuner(Tuner):
    """KerasTuner's tuner for anything that is not a Keras model: ``run_trial`` does all the work.

    The hypermodel may build any object (a scikit-learn pipeline, a function, ...); the tuner only
    asks its oracle for values, calls the subclass's ``run_trial(trial, *args, **kwargs)`` and keeps
    what it returns (a number or a dict of metrics), with the same store, resume and results API.
    """

    builds_keras_models = False

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        if not _overrides(self, "run_trial"):
            raise ConfigError("run_trial", f"{type(self).__name__} is a BaseTuner without its own run_trial",
                              "override run_trial(self, trial, *args, **kwargs) to train and score a trial, "
                              "or use archsearch.Tuner for Keras models")
        super().__init__(*args, **kwargs)


@contextlib.contextmanager
def maybe_distribute(distribution_strategy: Any = None) -> Iterator[None]:
    """KerasTuner's ``engine.tuner.maybe_distribute``: run the block in the strategy's scope, if one is given."""
    if distribution_strategy is None:
        yield
        return
    with distribution_strategy.scope():
        yield


def _check_deep_copyable(callbacks: Sequence[Any] | None) -> None:
    """Each trial trains with its own copy of every callback, so that no state leaks between trials:
    refuse, before any trial, a callback that cannot be copied (as KerasTuner does)."""
    for cb in callbacks or ():
        try:
            copy.deepcopy(cb)
        except Exception as e:  # noqa: BLE001 - any failure to copy means the same thing
            raise FatalValueError(
                f"callbacks: {cb!r} cannot be deep-copied ({type(e).__name__}: {e}). All callbacks used during "
                "a search should be deep-copyable, since each trial gets its own copy: pass a keras.callbacks."
                "Callback whose attributes can be copied, or create what cannot (a file, a lock) in on_train_begin"
            ) from e
