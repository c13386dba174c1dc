"""A Tuner subclass's hooks and a KerasTuner ``Logger``, fed by the search's events.

The trial hooks (``on_trial_begin``/``on_trial_end``) run in the driver, as listeners of the search;
the epoch and batch hooks run where the model trains, as a Keras callback of each fit.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import keras

from archsearch.core.events import SearchEvents
from archsearch.oracles import Trial


class TunerHooks(SearchEvents):
    """A Tuner subclass's ``on_trial_begin``/``on_trial_end``, fed by the search's events."""

    def __init__(self, tuner: Any) -> None:
        self.tuner = tuner

    def on_trial_begin(self, trial, spec, worker) -> None:
        self.tuner.on_trial_begin(self.tuner.oracle._attach(trial))

    def on_trial_end(self, trial, outcome) -> None:
        self.tuner.on_trial_end(self.tuner.oracle._attach(trial))


class KerasTunerLogger(SearchEvents):
    """A KerasTuner ``Logger`` (``register_tuner``, ``register_trial``, ``report_trial_state``, ``exit``)
    fed by the search's events."""

    def __init__(self, logger: Any) -> None:
        self.logger = logger

    def on_search_begin(self, search) -> None:
        if hasattr(self.logger, "register_tuner"):
            self.logger.register_tuner({"objective": search.oracle.objective.describe(),
                                        "space": search.oracle.hyperparameters.get_config()})

    def on_trial_begin(self, trial, spec, worker) -> None:
        self.logger.register_trial(trial.trial_id, trial_state(trial))

    def on_trial_end(self, trial, outcome) -> None:
        self.logger.report_trial_state(trial.trial_id, trial_state(trial))

    def on_search_end(self, search) -> None:
        if hasattr(self.logger, "exit"):
            self.logger.exit()


def trial_state(trial: Trial) -> dict[str, Any]:
    return {"trial_id": trial.trial_id, "hyperparameters": dict(trial.hparams), "status": trial.status,
            "score": trial.value, "metrics": dict(trial.metrics), "error": trial.error}


def hooks_callback(tuner: Any, trial: Trial, hooks: Sequence[str]):
    """A Keras callback calling the tuner's epoch and batch hooks (only those it overrides)."""

    class EpochHooks(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            if "on_epoch_begin" in hooks:
                tuner.on_epoch_begin(trial, self.model, epoch, logs)

        def on_epoch_end(self, epoch, logs=None):
            if "on_epoch_end" in hooks:
                tuner.on_epoch_end(trial, self.model, epoch, logs)

        def on_train_batch_begin(self, batch, logs=None):
            if "on_batch_begin" in hooks:
                tuner.on_batch_begin(trial, self.model, batch, logs)

        def on_train_batch_end(self, batch, logs=None):
            if "on_batch_end" in hooks:
                tuner.on_batch_end(trial, self.model, batch, logs)

    return EpochHooks()
