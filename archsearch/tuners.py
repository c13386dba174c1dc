"""KerasTuner-style facade over the search engine.

``RandomSearch(model_builder, objective="val_accuracy", max_trials=10)``,
``tuner.search(x, y, epochs=5, validation_split=0.2)``,
``tuner.get_best_hyperparameters()[0]`` and ``tuner.hypermodel.build(best)``
mean what they mean in KerasTuner, so existing tutorials run unchanged.  The
CLI drives the same class, so both paths share one engine.
"""

from __future__ import annotations

import json
import shutil
import weakref
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import keras

from archsearch.errors import ArchsearchError, BuilderError, ConfigError, describe_exception
from archsearch.hyperparameters import HyperParameters
from archsearch.lock import LOCK_FILE, RunFolderLock
from archsearch.objective import Objective
from archsearch.oracles import Oracle, Trial, create_oracle
from archsearch.runner import CompileSettings, FitArguments, FitData, Runner, TrainerSettings
from archsearch.search import Search
from archsearch.store import TrialStore

STORE_FILE = "trials.db"
# What Hydra writes into the CLI's run folder before the search starts: overwrite=true keeps it.
HYDRA_OUTPUTS = (".hydra", "archsearch.log")
# fit() arguments of KerasTuner tutorials written for Keras 2 that cannot be passed on: Keras 3 removed
# the first three, and the runner sets each trial's initial_epoch (promoted Hyperband trials resume).
IGNORED_FIT_ARGS = ("use_multiprocessing", "workers", "max_queue_size", "initial_epoch")


class HyperModel:
    """A buildable search space, as in KerasTuner: subclass it and implement ``build(hp)``."""

    def __init__(self, name: str | None = None) -> None:
        self.name = name

    def build(self, hp: HyperParameters):
        raise NotImplementedError


class _FunctionHyperModel(HyperModel):
    """Wraps a plain ``model_builder(hp)`` function."""

    def __init__(self, build_fn: Callable[[HyperParameters], Any]) -> None:
        super().__init__(getattr(build_fn, "__name__", None))
        self._build_fn = build_fn

    def build(self, hp: HyperParameters):
        # A fresh naming scope, as KerasTuner's trials get: builders that name one layer
        # "dense_1" must not clash with Keras' auto-generated names from earlier builds.
        # No garbage collection here: the runner already freed the last model (a collection costs ~0.15 s).
        keras.backend.clear_session(free_memory=False)
        return self._build_fn(hp)


def clear_folder(folder: Path, keep: Sequence[str] = ()) -> None:
    """``overwrite=True``: delete what a folder holds, except ``keep`` (the lock this process holds)."""
    if not folder.exists():
        return
    for entry in folder.iterdir():
        if entry.name in keep:
            continue
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry)
        else:
            entry.unlink()


def as_hypermodel(hypermodel: Any) -> HyperModel:
    if isinstance(hypermodel, HyperModel) or hasattr(hypermodel, "build"):
        return hypermodel
    if callable(hypermodel):
        return _FunctionHyperModel(hypermodel)
    raise ConfigError("hypermodel", f"{hypermodel!r} is neither a build(hp) function nor a HyperModel")


def discover_space(hypermodel: Any) -> HyperParameters:
    """Run a define-by-run builder once with defaults, as KerasTuner does, to learn its space."""
    from archsearch.runner import check_is_model

    hp = HyperParameters()
    try:
        model = as_hypermodel(hypermodel).build(hp)
    except ArchsearchError:
        raise
    except Exception as exc:
        raise BuilderError(
            f"the model builder failed when run once with default values to learn its search space: "
            f"{describe_exception(exc)}; fix the builder (calling it with archsearch.HyperParameters() "
            "shows the full traceback)"
        ) from exc
    finally:
        keras.backend.clear_session()
    check_is_model(model)
    return hp


class Tuner:
    """Base tuner: an oracle (the algorithm), a runner (training) and a store (the record)."""

    oracle_name: str | None = None

    def __init__(
        self,
        hypermodel: Any = None,
        objective: Any = "val_loss",
        max_trials: int | None = None,
        seed: int | None = None,
        hyperparameters: HyperParameters | None = None,
        directory: str | Path | None = None,
        project_name: str | None = None,
        overwrite: bool = False,
        executions_per_trial: int | None = None,
        max_consecutive_failed_trials: int = 3,
        oracle: Oracle | None = None,
        trainer: TrainerSettings | None = None,
        compile_settings: CompileSettings | None = None,
        keep_top_models: int | None = 5,
        echo: Callable[[str], None] = print,
        config: Mapping[str, Any] | None = None,
        executor: str | None = None,
        parallel_trials: int | str = 1,
        executor_options: Mapping[str, Any] | None = None,
        listeners: Sequence[Any] = (),
        **oracle_options: Any,
    ) -> None:
        if hypermodel is None:
            raise ConfigError("hypermodel", "is required", "pass your model_builder(hp) function")
        self.hypermodel = as_hypermodel(hypermodel)
        self.objective = Objective.create(objective)
        # KerasTuner's default project name; "" puts the store straight into ``directory`` (the CLI's run folder).
        self.project_dir = Path(directory or ".") / ("untitled_project" if project_name is None else project_name)
        # The folder is this process's for as long as the tuner lives: a second search is refused by name.
        self._lock = RunFolderLock(self.project_dir).acquire()
        weakref.finalize(self, self._lock.release)
        if overwrite:
            clear_folder(self.project_dir, keep=(LOCK_FILE, *HYDRA_OUTPUTS))
        self.trainer = trainer or TrainerSettings()
        if executions_per_trial is not None:  # else the trainer's own setting (the CLI's trainer.executions_per_trial)
            self.trainer.executions_per_trial = int(executions_per_trial)
        if seed is not None and self.trainer.seed is None:
            self.trainer.seed = int(seed)  # one seed makes the whole search repeatable: values and weights
        self.compile_settings = compile_settings or CompileSettings()
        self.max_consecutive_failed_trials = max_consecutive_failed_trials
        # Where trials train: in this process by default (notebooks, closures); several at a time need
        # worker processes, whose builder and data must then be picklable.
        from archsearch.executors.process import parallel_trials as slots_of

        self.parallel_trials = slots_of(parallel_trials, "parallel_trials")
        self.executor_name = executor or ("process" if self.parallel_trials > 1 else "inline")
        self.executor_options = dict(executor_options or {})
        self.listeners = list(listeners)
        self.keep_top_models = keep_top_models
        self.echo = echo
        if hyperparameters is None:
            hyperparameters = discover_space(self.hypermodel)
        if oracle is None:
            if self.oracle_name is None:
                raise ConfigError("oracle", "the base Tuner needs an oracle", "use RandomSearch, Hyperband, ...")
            oracle = create_oracle(
                self.oracle_name, hyperparameters, self.objective, max_trials=max_trials, seed=seed, **oracle_options
            )
        self.oracle = oracle
        self.store = TrialStore(self.project_dir / STORE_FILE)
        self._check_or_write_fingerprint(config)
        self._restore()
        self._runner: Runner | None = None

    # ------------------------------------------------------------ set-up
    def _fingerprint(self) -> dict[str, Any]:
        return {
            "oracle": self.oracle.name,
            "objective": [self.objective.name, self.objective.direction],
            "space": json.loads(json.dumps(self.oracle.hyperparameters.get_config(), default=str)),
        }

    def _check_or_write_fingerprint(self, config: Mapping[str, Any] | None = None) -> None:
        """Refuse to mix a different search into an existing folder (resume it or overwrite it instead).

        A new search stores its fingerprint and its config (the CLI's) in one transaction, before
        anything else: a kill in the first milliseconds leaves both or neither, never a store that
        a resume would run with defaults.
        """
        mine = self._fingerprint()
        stored = self.store.get_meta("fingerprint")
        if stored is None or self.store.count() == 0:
            self.store.set_meta_many({"fingerprint": mine, **({"config": dict(config)} if config is not None else {})})
            return
        changed = [key for key in ("oracle", "objective") if stored.get(key) != mine[key]]
        stored_space, my_space = stored.get("space", {}), mine["space"]
        changed += [f"space.{n}" for n in sorted(set(stored_space) & set(my_space)) if stored_space[n] != my_space[n]]
        changed += [f"space.{n} (removed)" for n in sorted(set(stored_space) - set(my_space))]
        if changed:
            raise ConfigError(
                str(self.project_dir),
                f"holds a different search (changed: {', '.join(changed)})",
                "resume it with the same settings, choose another directory/project_name, or pass overwrite=True",
            )
        if stored != mine:  # a define-by-run space that grew: remember the larger one
            self.store.set_meta("fingerprint", mine)

    def _restore(self) -> None:
        self.store.reopen_retryable()
        events = self.store.events()
        if events:
            self.oracle.restore(events)
            done = sum(1 for t in self.oracle.trials.values() if t.done)
            running = [t.id for t in self.oracle.running]
            limit = self.oracle.max_trials
            self.echo(f"Resuming the search in {self.project_dir}: {done} trials already done"
                      + (f" of max_trials={limit}" if limit else "")
                      + (f", trial {running[0]} to continue" if len(running) == 1 else
                         f", trials {running} to continue" if running else "") + ".")

    # ------------------------------------------------------------ KerasTuner API
    def search(self, *fit_args: Any, **fit_kwargs: Any) -> None:
        """Run the search; arguments are those of ``model.fit`` (``epochs`` is per trial)."""
        if "epochs" in fit_kwargs:
            self.trainer.epochs = int(fit_kwargs.pop("epochs"))
            if getattr(self.oracle, "total_epochs", None):
                self.echo(f"Note: {self.oracle.name} trains each trial to its own budget (at most max_epochs="
                          f"{self.oracle.max_epochs}); search(epochs={self.trainer.epochs}) is not used.")
        dropped = [name for name in IGNORED_FIT_ARGS if fit_kwargs.pop(name, None) is not None]
        if dropped:
            self.echo(f"Note: search() ignores {', '.join(dropped)}: Keras 3's fit has no use_multiprocessing, "
                      "workers or max_queue_size, and every trial starts at its own initial epoch.")
        callbacks = fit_kwargs.pop("callbacks", None) or []
        data = FitArguments(tuple(fit_args), dict(fit_kwargs), seed=int(self.trainer.seed or 0))
        if "batch_size" in fit_kwargs:
            self.trainer.batch_size = fit_kwargs["batch_size"]
        self.run_search(data, callbacks)

    def run_search(self, data: FitData, callbacks: Sequence[Any] = ()) -> None:
        """Run the search on any :class:`~archsearch.runner.FitData` (the CLI's datasets, ...)."""
        from archsearch.events import ConsoleEvents
        from archsearch.executors import create_executor
        from archsearch.search import DEFAULT_MAX_RETRIES

        self._runner = self._make_runner(data, callbacks)
        self._check_objective_before_training(self._runner)
        options = dict(self.executor_options)
        max_retries = options.pop("max_retries", DEFAULT_MAX_RETRIES)
        executor = create_executor(self.executor_name, self._runner, self.parallel_trials, options)
        Search(
            self.oracle,
            executor,
            self.store,
            getattr(executor, "files", self._runner.files),  # a Ray cluster may keep trial files elsewhere
            max_consecutive_failed_trials=self.max_consecutive_failed_trials,
            keep_top_models=self.keep_top_models,
            max_retries=max_retries,
            listeners=[ConsoleEvents(self.echo), *self.listeners],
        ).run()

    def _check_objective_before_training(self, runner: Runner) -> None:
        """Build one model with default values, so a metric the model never produces is reported
        before the first trial is recorded (a resumed search was checked when it started)."""
        if self.store.count() > 0:
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

    def _make_runner(self, data: FitData | None, callbacks: Sequence[Any] = ()) -> Runner:
        return Runner(
            self.hypermodel.build,
            data or FitArguments(),
            self.objective,
            self.project_dir,
            trainer=self.trainer,
            compile_settings=self.compile_settings,
            callbacks=callbacks,
        )

    @property
    def runner(self) -> Runner:
        if self._runner is None:
            self._runner = self._make_runner(None)
        return self._runner

    def search_space_summary(self) -> None:
        self.echo(self.oracle.hyperparameters.summary())

    def best_trials(self, num_trials: int = 1) -> list[Trial]:
        return self.oracle.best_trials(num_trials)

    def get_best_hyperparameters(self, num_trials: int = 1) -> list[HyperParameters]:
        """The best trials' values as ``HyperParameters`` (``.values``, ``.get(name)``)."""
        space = self.oracle.hyperparameters
        return [space.with_values(t.hparams) for t in self.best_trials(num_trials)]

    def get_best_models(self, num_models: int = 1) -> list[Any]:
        """The best trials' models, rebuilt and loaded with their best-epoch weights."""
        return [self.runner.load_best_model(t, self.oracle.hyperparameters.with_values(t.hparams))
                for t in self.best_trials(num_models)]

    def results_summary(self, num_trials: int = 10) -> None:
        # Statuses as recorded: after Ctrl-C the store says "interrupted" where the oracle still says "running".
        statuses = [r["status"] for r in self.store.rows()]
        self.echo(results_table(self.oracle, num_trials, self.project_dir, statuses or None))

    def retrain(self, x: Any, y: Any, **kwargs: Any) -> dict[str, Any]:
        """Retrain the best trials and a baseline, scored on ``x_test``/``y_test`` (``archsearch.retrain.retrain``)."""
        from archsearch.retrain import retrain

        return retrain(self, x, y, **kwargs)


def results_table(oracle: Oracle, num_trials: int = 10, where: Path | None = None,
                  statuses: Sequence[str] | None = None) -> str:
    """The best ``num_trials`` trials as a text table (KerasTuner's ``results_summary``)."""
    best = oracle.best_trials(num_trials)
    counts: dict[str, int] = {}
    for status in statuses if statuses is not None else [t.status for t in oracle.trials.values()]:
        counts[status] = counts.get(status, 0) + 1
    header = f"Results summary{f' ({where})' if where else ''}"
    lines = [header, f"Objective: {oracle.objective}", "Trials: " + ", ".join(f"{n} {s}" for s, n in sorted(counts.items()))]
    if not best:
        lines.append("No completed trial yet.")
        return "\n".join(lines)
    shown = {k for t in best for k in t.hparams}
    names = [k for k in oracle.hyperparameters.space if k in shown]  # declaration order: units_1, units_2, ...
    names += sorted(shown - set(names))
    extra = ["epochs"] if any(t.budget is not None for t in best) else []
    columns = ["rank", "trial", "score", *extra, *names]
    rows = []
    for rank, t in enumerate(best, 1):
        row = [str(rank), str(t.id), f"{t.value:.4f}"]
        if extra:
            row.append(budget_text(t))
        row += [_fmt(t.hparams.get(n, "")) for n in names]
        rows.append(row)
    widths = [max(len(c), *(len(r[i]) for r in rows)) for i, c in enumerate(columns)]
    lines.append("  ".join(c.ljust(w) for c, w in zip(columns, widths)))
    lines.append("  ".join("-" * w for w in widths))
    lines += ["  ".join(v.ljust(w) for v, w in zip(r, widths)) for r in rows]
    return "\n".join(lines)


def budget_text(trial: Trial) -> str:
    """``1->3 b1r1 from 4``: epochs trained, Hyperband bracket and round, and the trial it continued."""
    text = f"{trial.initial_budget}->{trial.budget}"
    if "bracket" in trial.info:
        text += f" b{trial.info['bracket']}r{trial.info['round']}"
    if trial.resume_from is not None:
        text += f" from {trial.resume_from}"
    return text


def _fmt(v: Any) -> str:
    return f"{v:.4g}" if isinstance(v, float) else str(v)


class RandomSearch(Tuner):
    """Random (or Sobol, ``sampler="sobol"``) search."""

    oracle_name = "random"


class GridSearch(Tuner):
    """Every combination of the space."""

    oracle_name = "grid"


class Hyperband(Tuner):
    """Hyperband with checkpoint resume: ``max_epochs``, ``factor``, ``min_epochs``, ``hyperband_iterations``."""

    oracle_name = "hyperband"


class BayesianOptimization(Tuner):
    """Gaussian-process Bayesian optimisation over a mixed space."""

    oracle_name = "bayesian"


class BOHB(Tuner):
    """Hyperband's budgets with model-based proposals (Falkner et al., 2018)."""

    oracle_name = "bohb"


class ASHA(Tuner):
    """Asynchronous successive halving with promotions (Li et al., 2020): no worker waits for a rung."""

    oracle_name = "asha"


