"""A Tuner subclass's own ``run_trial``: KerasTuner's extension point, inside archsearch's runner.

KerasTuner lets a ``Tuner`` subclass replace the training of a trial (``run_trial``) and call the
default back (``super().run_trial(...)``).  :class:`CustomRunTrial` is the part of
:class:`~archsearch.training.runner.Runner` that hands a trial to such an override and reads what it
returns as the result, while the default it may call still trains with checkpoints and per-epoch
reports (pruning, Hyperband).  Kept apart from the runner's own training: it is compatibility, not
how archsearch trains.
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import keras

from archsearch.core.trial import COMPLETED, FAILED, PRUNED, Trial, TrialOutcome
from archsearch.core.trial_results import check_results, to_metrics
from archsearch.core.trial_runner import Reporter
from archsearch.errors import BuilderError, DiskFullError, FatalError, ObjectiveError
from archsearch.space.hyperparameters import HyperParameters
from archsearch.training.failures import TrialFailed
from archsearch.training.fit_data import FitArguments


class CustomRunTrial:
    """Mixed into the runner: ``run_trial`` (the override, or None) and ``_nested`` (the trial it trains)."""

    run_trial: Any
    _nested: dict[str, Any] | None
    measures: tuple[str, ...]

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
            if outcome is not inner:
                outcome.metrics = {**_measures_of(trained, self.measures), **outcome.metrics}
        except KeyboardInterrupt:
            raise
        except (ObjectiveError, BuilderError, DiskFullError, FatalError):
            raise
        except Exception as exc:
            self._fail(outcome, exc, trial, hp)
            if isinstance(exc, TrialFailed) and exc.metrics:
                outcome.metrics = dict(exc.metrics)  # an infeasible model's measures and violation
        finally:
            self._nested = None
        outcome.duration = time.perf_counter() - start
        return outcome

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
            raise TrialFailed(outcome.error or "the trial failed", kind=outcome.failure_kind or "error",
                              metrics=outcome.metrics)
        histories = list(returned)
        nested["trained"].append((outcome, histories))
        return histories


def _measures_of(trained: Sequence[tuple[TrialOutcome, Any]], names: Sequence[str]) -> dict[str, float]:
    """The model measures the default ``run_trial`` took, for a custom result that does not carry them."""
    found: dict[str, float] = {}
    for inner, _ in trained:
        found.update({n: inner.metrics[n] for n in names if n in inner.metrics})
    return found
