"""A Tuner subclass's own run_trial and hooks, KerasTuner's extension points (issue 12).

run_trial may return a number, a dict, a History or a list of those; it may call
super().run_trial with changed fit arguments; errors follow KerasTuner's contract.
"""

from __future__ import annotations

import numpy as np
import pytest

import archsearch as kt
from kt_helpers import build_mlp, tiny_data


def quadratic_tuner(result_kind: str):
    class Quadratic(kt.Tuner):
        def run_trial(self, trial, *args, **kwargs):
            x = trial.hyperparameters.Float("x", -1.0, 1.0)
            loss = (x - 0.3) ** 2
            if result_kind == "float":
                return loss
            if result_kind == "dict":
                return {"loss": loss, "extra": 1.0}
            return [{"loss": loss}, {"loss": loss + 0.2}]  # two executions, averaged

    return Quadratic


@pytest.mark.parametrize("result_kind", ["float", "dict", "list"])
def test_run_trial_without_a_hypermodel_returns_what_it_measured(tmp_path, result_kind):
    objective = None if result_kind == "float" else kt.Objective("loss", "min")
    tuner = quadratic_tuner(result_kind)(
        oracle=kt.oracles.RandomSearchOracle(objective=objective, max_trials=6, seed=2),
        directory=tmp_path, project_name="q")
    tuner.search()
    trials = list(tuner.oracle.trials.values())
    assert len(trials) == 6 and all(t.status == "completed" for t in trials)
    for t in trials:
        expected = (t.hparams["x"] - 0.3) ** 2 + (0.1 if result_kind == "list" else 0.0)
        assert t.score == pytest.approx(expected)
    best = tuner.get_best_hyperparameters()[0]
    assert best.get("x") == min(trials, key=lambda t: t.score).hparams["x"]
    if result_kind == "dict":
        assert tuner.store.rows()[0]["metrics"]["extra"] == 1.0  # every value it reported is kept
    with pytest.raises(kt.ConfigError, match="hypermodel"):
        tuner.get_best_models()


def test_super_run_trial_trains_the_default_way_with_the_changed_arguments(tmp_path):
    seen = []

    class BatchSizeTuner(kt.Tuner):
        def run_trial(self, trial, *args, **kwargs):
            kwargs["batch_size"] = trial.hyperparameters.Choice("batch_size", [16, 48])
            seen.append((kwargs["batch_size"], kwargs["epochs"]))
            return super().run_trial(trial, *args, **kwargs)

    x, y = tiny_data()
    tuner = BatchSizeTuner(hypermodel=build_mlp, directory=tmp_path, seed=1,
                           oracle=kt.oracles.RandomSearchOracle(objective="val_accuracy", max_trials=3, seed=1))
    tuner.search(x, y, epochs=2, validation_split=0.25, verbose=0)
    rows = tuner.store.rows()
    assert [r["status"] for r in rows] == ["completed"] * 3
    assert all(len(tuner.store.epochs(r["id"])) == 2 for r in rows)  # the default run_trial reports epochs
    assert all("batch_size" in r["hparams"] for r in rows)
    assert [e for _, e in seen] == [2, 2, 2]
    model = tuner.get_best_models()[0]  # checkpoints written by the default run_trial
    assert model.predict(x[:2], verbose=0).shape == (2, 2)


def test_run_trial_returning_a_history_scores_its_best_epoch(tmp_path):
    class OwnFit(kt.Tuner):
        def run_trial(self, trial, x, y, **kwargs):
            model = self.hypermodel.build(trial.hyperparameters)
            return model.fit(x, y, validation_split=0.25, epochs=kwargs["epochs"], verbose=0)

    x, y = tiny_data()
    tuner = OwnFit(hypermodel=build_mlp, directory=tmp_path,
                   oracle=kt.oracles.RandomSearchOracle(objective="val_accuracy", max_trials=2))
    tuner.search(x, y, epochs=3)
    for t in tuner.oracle.trials.values():
        assert t.status == "completed" and 0.0 <= t.score <= 1.0
        assert "val_loss" in t.metrics


def test_a_custom_training_loop_in_run_trial(tmp_path):
    """The KerasTuner guide's pattern: build the model, train it batch by batch, return a metric."""
    import keras

    class LoopTuner(kt.Tuner):
        def run_trial(self, trial, x, y, x_val, y_val, epochs=1):
            hp = trial.hyperparameters
            model = self.hypermodel.build(hp)
            batch = hp.Int("batch_size", 16, 32, step=16)
            for _ in range(epochs):
                for start in range(0, len(x), batch):
                    model.train_on_batch(x[start:start + batch], y[start:start + batch])
            accuracy = keras.metrics.SparseCategoricalAccuracy()
            accuracy.update_state(y_val, model.predict(x_val, verbose=0))
            return {"val_accuracy": float(accuracy.result())}

    x, y = tiny_data(128)
    tuner = LoopTuner(hypermodel=build_mlp, directory=tmp_path,
                      oracle=kt.oracles.RandomSearchOracle(objective=kt.Objective("val_accuracy", "max"), max_trials=2))
    tuner.search(x[:96], y[:96], x[96:], y[96:], epochs=2)
    scores = [t.score for t in tuner.oracle.trials.values()]
    assert len(scores) == 2 and all(0.0 <= s <= 1.0 for s in scores)
    assert all("batch_size" in t.hparams for t in tuner.oracle.trials.values())


@pytest.mark.parametrize("returned, error, words", [
    (None, kt.errors.FatalTypeError, "returned None"),
    ({"acc": 1.0}, kt.errors.FatalValueError, "without the objective 'loss'"),
    ("high", kt.errors.FatalTypeError, "to be one of.*returned str"),
])
def test_unreadable_results_stop_the_search_with_kerastuner_s_fatal_errors(tmp_path, returned, error, words):
    class Broken(kt.Tuner):
        def run_trial(self, trial, *args, **kwargs):
            trial.hyperparameters.Int("n", 1, 3)
            return returned

    tuner = Broken(oracle=kt.oracles.RandomSearchOracle(objective="loss", max_trials=3), directory=tmp_path)
    with pytest.raises(error, match=words):
        tuner.search()
    assert tuner.store.count() == 0  # nothing was measured: nothing recorded


def test_failed_trial_error_fails_one_trial_and_the_search_goes_on(tmp_path):
    class Picky(kt.Tuner):
        def run_trial(self, trial, *args, **kwargs):
            n = trial.hyperparameters.Int("n", 0, 5)
            if n % 2:
                raise kt.errors.FailedTrialError(f"odd n={n} is not supported")
            return float(n)

    tuner = Picky(oracle=kt.oracles.GridSearchOracle(objective="loss"), directory=tmp_path,
                  max_consecutive_failed_trials=5)
    tuner.search()
    by_n = {t.hparams["n"]: t for t in tuner.oracle.trials.values()}
    assert sorted(by_n) == [0, 1, 2, 3, 4, 5]
    assert [by_n[n].status for n in (1, 3, 5)] == ["failed"] * 3
    assert "odd n=3 is not supported" in by_n[3].error
    assert tuner.get_best_hyperparameters()[0].get("n") == 0


def test_max_retries_per_trial_runs_a_failing_trial_again(tmp_path, capsys):
    calls: dict[int, int] = {}

    class Flaky(kt.Tuner):
        def run_trial(self, trial, *args, **kwargs):
            trial.hyperparameters.Int("n", 0, 9)
            calls[trial.id] = calls.get(trial.id, 0) + 1
            if calls[trial.id] == 1:
                raise RuntimeError("flaky")
            return 1.0

    tuner = Flaky(oracle=kt.oracles.RandomSearchOracle(objective="loss", max_trials=2, max_retries_per_trial=1),
                  directory=tmp_path)
    tuner.search()
    lines = capsys.readouterr().out.splitlines()
    assert calls == {0: 2, 1: 2}
    assert all(t.status == "completed" for t in tuner.oracle.trials.values())
    assert any("failed (RuntimeError: flaky); training it again (run 2" in line for line in lines)


def test_hooks_are_called_around_trials_epochs_and_the_search(tmp_path):
    calls: list[tuple] = []

    class Watched(kt.Tuner):
        def on_search_begin(self):
            calls.append(("search_begin",))

        def on_trial_begin(self, trial):
            calls.append(("trial_begin", trial.trial_id, sorted(trial.hyperparameters.values)))

        def on_epoch_end(self, trial, model, epoch, logs=None):
            calls.append(("epoch_end", trial.trial_id, epoch, "val_accuracy" in logs))

        def on_batch_end(self, trial, model, batch, logs=None):
            calls.append(("batch_end", trial.trial_id))

        def on_trial_end(self, trial):
            calls.append(("trial_end", trial.trial_id, trial.status))

        def on_search_end(self):
            calls.append(("search_end",))

    x, y = tiny_data(64)
    tuner = Watched(hypermodel=build_mlp, directory=tmp_path,
                    oracle=kt.oracles.RandomSearchOracle(objective="val_accuracy", max_trials=2))
    tuner.search(x, y, epochs=2, validation_split=0.25, batch_size=16, verbose=0)
    kinds = [c[0] for c in calls]
    assert kinds[0] == "search_begin" and kinds[-1] == "search_end"
    assert calls[1] == ("trial_begin", "0", ["learning_rate", "units"])
    assert ("epoch_end", "0", 0, True) in calls and ("epoch_end", "1", 1, True) in calls
    assert kinds.count("batch_end") == 2 * 2 * 3  # 2 trials x 2 epochs x 48/16 batches
    assert [c for c in calls if c[0] == "trial_end"] == [("trial_end", "0", "completed"), ("trial_end", "1", "completed")]


def test_in_process_extension_points_refuse_worker_processes(tmp_path):
    class Custom(kt.Tuner):
        def run_trial(self, trial, *args, **kwargs):
            return 1.0

    with pytest.raises(kt.ConfigError, match="executor.*run_trial must run in this one"):
        Custom(oracle=kt.oracles.RandomSearchOracle(objective="loss", max_trials=2), directory=tmp_path,
               parallel_trials=2)


def test_a_custom_run_trial_gets_the_hyperband_budget(tmp_path):
    budgets: list[tuple[int, int]] = []

    class Budgeted(kt.Tuner):
        def run_trial(self, trial, *args, **kwargs):
            trial.hyperparameters.Float("x", 0.0, 1.0)
            budgets.append((kwargs.get("initial_epoch", 0), kwargs["epochs"]))
            return float(np.abs(trial.hyperparameters.get("x") - 0.5))

    tuner = Budgeted(oracle=kt.oracles.HyperbandOracle(objective="loss", max_epochs=9, factor=3, seed=0),
                     directory=tmp_path)
    tuner.search()
    assert {e for _, e in budgets} == {1, 3, 9}


class CountEpochs:
    """A callback whose count survives the deep copies each trial gets (a class attribute)."""

    epochs = 0


def test_search_callbacks_reach_run_trial_and_run_once_through_super(tmp_path):
    import keras

    class Counter(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            CountEpochs.epochs += 1

    received = []

    class Passing(kt.Tuner):
        def run_trial(self, trial, *args, **kwargs):
            received.append(len(kwargs.get("callbacks", [])))
            return super().run_trial(trial, *args, **kwargs)

    CountEpochs.epochs = 0
    x, y = tiny_data(64)
    tuner = Passing(hypermodel=build_mlp, directory=tmp_path,
                    oracle=kt.oracles.RandomSearchOracle(objective="val_accuracy", max_trials=2))
    tuner.search(x, y, epochs=2, validation_split=0.25, callbacks=[Counter()], verbose=0)
    assert received == [1, 1]
    assert CountEpochs.epochs == 2 * 2  # once per epoch of each trial, not twice


def test_an_empty_callbacks_list_reaches_run_trial_as_given(tmp_path):
    seen = []

    class Seeing(kt.Tuner):
        def run_trial(self, trial, *args, **kwargs):
            seen.append(kwargs.get("callbacks", "absent"))
            return float(trial.hyperparameters.Float("x", 0.0, 1.0))

    tuner = Seeing(oracle=kt.oracles.RandomSearchOracle(objective="loss", max_trials=2, seed=0), directory=tmp_path)
    tuner.search(callbacks=[])
    tuner2 = Seeing(oracle=kt.oracles.RandomSearchOracle(objective="loss", max_trials=1, seed=0),
                    directory=tmp_path, project_name="other")
    tuner2.search()
    assert seen == [[], [], "absent"]


def test_a_callback_that_cannot_be_copied_is_refused_before_any_trial(tmp_path):
    """Every trial trains with its own copy of each callback; one that cannot be copied would share its
    state between trials, so the search refuses it up front (KerasTuner's FatalValueError)."""
    import threading

    class HoldsALock:
        def __init__(self):
            self.lock = threading.Lock()

    class Seeing(kt.Tuner):
        def run_trial(self, trial, *args, **kwargs):
            return float(trial.hyperparameters.Float("x", 0.0, 1.0))

    tuner = Seeing(oracle=kt.oracles.RandomSearchOracle(objective="loss", max_trials=2, seed=0), directory=tmp_path)
    with pytest.raises(kt.errors.FatalValueError, match="callbacks: .*HoldsALock.* cannot be deep-copied.*"
                                                        "should be deep-copyable"):
        tuner.search(callbacks=[HoldsALock()])
    assert not tuner.oracle.trials


def test_reporting_through_oracle_update_trial_and_returning_none_still_scores_the_trial(tmp_path):
    class OldStyle(kt.Tuner):
        def run_trial(self, trial, *args, **kwargs):
            x = trial.hyperparameters.Float("x", 0.0, 1.0)
            self.oracle.update_trial(trial.trial_id, {"loss": abs(x - 0.3)})

    tuner = OldStyle(oracle=kt.oracles.RandomSearchOracle(objective="loss", max_trials=2, seed=0), directory=tmp_path)
    with pytest.deprecated_call(match="Please remove the call"):
        tuner.search()
    best = tuner.oracle.get_best_trials(1)[0]
    assert best.status == "completed" and best.score == pytest.approx(abs(best.hparams["x"] - 0.3))


def test_a_subclassed_model_that_is_never_built_still_trains(tmp_path):
    """KerasTuner's MockModel: a keras.Model subclass whose fit drives the callbacks itself, with no weights."""
    import keras

    class Scripted(keras.Model):
        def fit(self, *args, callbacks=(), epochs=1, **kwargs):
            for cb in callbacks:
                cb.set_model(self)
            history = keras.callbacks.History()
            history.history = {"loss": []}
            for epoch in range(epochs):
                logs = {"loss": 5.0 - epoch}
                history.history["loss"].append(logs["loss"])
                for cb in callbacks:
                    cb.on_epoch_end(epoch, logs=logs)
            return history

    def build(hp):
        hp.Choice("mode", [0, 1])
        model = Scripted()
        model.compile(optimizer="sgd", loss="mse")
        return model

    tuner = kt.RandomSearch(hypermodel=build, objective="loss", max_trials=2, directory=tmp_path, seed=0)
    tuner.search(epochs=3, verbose=0)
    best = tuner.oracle.get_best_trials(1)[0]
    assert best.status == "completed" and best.score == 3.0


def test_a_subclassed_model_is_built_again_before_its_best_weights_load(tmp_path):
    """A keras.Model subclass has no weights until its first call: the checkpoint records how it was built,
    so get_best_models gives back the trained model (its score is the trial's)."""
    import keras

    class TwoLayers(keras.Model):
        def __init__(self, units):
            super().__init__()
            self.hidden = keras.layers.Dense(units, activation="relu")
            self.out = keras.layers.Dense(2, activation="softmax")

        def call(self, x):
            return self.out(self.hidden(x))

    def build(hp):
        model = TwoLayers(hp.Int("units", 4, 8, step=4))
        model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
        return model

    x, y = tiny_data()
    tuner = kt.RandomSearch(hypermodel=build, objective="val_accuracy", max_trials=2, directory=tmp_path, seed=0)
    tuner.search(x[:64], y[:64], validation_data=(x[64:], y[64:]), epochs=2, verbose=0)
    model = tuner.get_best_models(1)[0]
    assert model.built
    best = tuner.oracle.get_best_trials(1)[0]
    assert model.evaluate(x[64:], y[64:], verbose=0)[1] == pytest.approx(best.score)


def test_base_tuner_tunes_objects_that_are_not_keras_models(tmp_path):
    class Scale:
        def __init__(self, hp):
            self.factor = hp.Float("a", 0.0, 10.0)

        def __call__(self, x):
            return self.factor * x

    class Mine(kt.BaseTuner):
        def run_trial(self, trial, x):
            return {"score": self.hypermodel.build(trial.hyperparameters)(x)}

    tuner = Mine(oracle=kt.oracles.RandomSearchOracle(objective=kt.Objective("score", "max"), max_trials=4, seed=0),
                 hypermodel=Scale, directory=tmp_path)
    tuner.search(2.0)
    trials = list(tuner.oracle.trials.values())
    assert len(trials) == 4 and all(t.status == "completed" for t in trials)
    best = tuner.oracle.get_best_trials(1)[0]
    assert best.score == pytest.approx(2.0 * best.hparams["a"]) == max(t.score for t in trials)

    with pytest.raises(kt.ConfigError, match="without its own run_trial"):
        kt.BaseTuner(oracle=kt.oracles.RandomSearchOracle(objective="score", max_trials=1), hypermodel=Scale,
                     directory=tmp_path)


def test_run_trial_saves_its_own_models_in_the_trial_folder_and_load_model_reads_them(tmp_path):
    """KerasTuner's pattern for non-Keras models: pickle into get_trial_dir, override load_model."""
    import pickle
    from fractions import Fraction  # any picklable object stands for a scikit-learn model

    class Mine(kt.BaseTuner):
        def run_trial(self, trial, x):
            model = self.hypermodel.build(trial.hyperparameters)
            with open(f"{self.get_trial_dir(trial.trial_id)}/model.pickle", "wb") as f:
                pickle.dump(model, f)  # the folder exists before anything was written by the tuner
            return {"score": float(model) * x}

        def load_model(self, trial):
            with open(f"{self.get_trial_dir(trial.trial_id)}/model.pickle", "rb") as f:
                return pickle.load(f)

    tuner = Mine(oracle=kt.oracles.RandomSearchOracle(objective=kt.Objective("score", "max"), max_trials=3, seed=1),
                 hypermodel=lambda hp: Fraction(hp.Float("a", 0.0, 10.0)), directory=tmp_path)
    tuner.search(2.0)
    assert all(t.status == "completed" for t in tuner.oracle.trials.values())
    models = tuner.get_best_models(3)
    factors = [float(m) for m in models]
    assert factors == sorted((t.hparams["a"] for t in tuner.oracle.trials.values()), reverse=True)


def test_a_failed_trial_error_is_never_retried(tmp_path):
    runs: list[int] = []

    class Picky(kt.GridSearch):
        def run_trial(self, trial, *args, **kwargs):
            value = trial.hyperparameters.Int("value", 1, 5)
            runs.append(value)
            if value in (2, 3):
                raise kt.errors.FailedTrialError(f"wrong value {value}")
            return float(value)

    tuner = Picky(objective="loss", directory=tmp_path, max_retries_per_trial=2)
    tuner.search()
    assert sorted(runs) == [1, 2, 3, 4, 5]  # each once, the failed ones too
    failed = [t for t in tuner.oracle.trials.values() if t.status == "failed"]
    assert sorted(t.hparams["value"] for t in failed) == [2, 3]
