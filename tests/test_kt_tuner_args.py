"""KerasTuner's Tuner arguments and results API (issue 12): max_model_size, optimizer/loss/metrics,
verbose, reload, logger, distribution_strategy, the errors module."""

from __future__ import annotations

import keras
import pytest

import archsearch as kt
from kt_helpers import build_mlp, tiny_data


def uncompiled_builder(hp):
    # Grid: 8, 16 fit under max_model_size=200, 24, 32 do not (two of each; every model trained costs seconds).
    return keras.Sequential([keras.Input((6,)), keras.layers.Dense(hp.Int("units", 8, 32, step=8)),
                             keras.layers.Dense(2, activation="softmax")])


def test_max_model_size_skips_big_models_before_training_as_infeasible(tmp_path):
    x, y = tiny_data()
    tuner = kt.GridSearch(uncompiled_builder, objective="val_accuracy", directory=tmp_path, max_model_size=200,
                          loss="sparse_categorical_crossentropy", metrics=["accuracy"], max_consecutive_failed_trials=1)
    tuner.search(x, y, epochs=1, validation_split=0.25, verbose=0)
    rows = {r["hparams"]["units"]: r for r in tuner.store.rows()}
    # units u: 6u + u + 2u + 2 parameters; at most 200 means u <= 22
    small = [u for u in rows if 9 * u + 2 <= 200]
    big = [u for u in rows if 9 * u + 2 > 200]
    assert small and big
    assert all(rows[u]["status"] == "completed" for u in small)
    assert all(rows[u]["status"] == "failed" and rows[u]["failure_kind"] == "infeasible" for u in big)
    assert all(rows[u]["epochs_done"] == 0 for u in big)
    assert "more than max_model_size=200" in rows[big[0]]["error"]


def test_optimizer_loss_and_metrics_compile_every_model(tmp_path):
    seen = []

    class Check(keras.callbacks.Callback):
        def on_train_begin(self, logs=None):
            seen.append((type(self.model.optimizer).__name__, float(self.model.optimizer.learning_rate)))

    x, y = tiny_data()
    tuner = kt.RandomSearch(build_mlp, objective="val_auc", max_trials=2, directory=tmp_path,
                            optimizer=keras.optimizers.SGD(0.05),
                            metrics=[keras.metrics.AUC(name="auc")], loss="sparse_categorical_crossentropy")
    with pytest.raises(kt.ConfigError, match="val_auc"):  # AUC on sparse labels would need one-hot: not produced
        tuner2 = kt.RandomSearch(build_mlp, objective="val_auc", max_trials=1, directory=tmp_path / "b")
        tuner2.search(x, y, epochs=1, validation_split=0.25, verbose=0)
    y2 = keras.utils.to_categorical(y, 2)
    tuner = kt.RandomSearch(build_mlp, objective="val_auc", max_trials=2, directory=tmp_path / "c",
                            optimizer=keras.optimizers.SGD(0.05), loss="categorical_crossentropy",
                            metrics=[keras.metrics.AUC(name="auc")])
    tuner.search(x, y2, epochs=1, validation_split=0.25, verbose=0, callbacks=[Check()])
    assert seen == [("SGD", pytest.approx(0.05))] * 2  # the builder's Adam was replaced
    assert all(r["status"] == "completed" and 0 <= r["value"] <= 1 for r in tuner.store.rows())


def test_search_verbose_0_is_silent(tmp_path, capsys):
    x, y = tiny_data(64)
    tuner = kt.RandomSearch(build_mlp, objective="val_accuracy", max_trials=1, directory=tmp_path)
    tuner.search(x, y, epochs=1, validation_split=0.25, verbose=0)
    assert capsys.readouterr().out == ""
    tuner = kt.RandomSearch(build_mlp, objective="val_accuracy", max_trials=1, directory=tmp_path, project_name="b")
    tuner.search(x, y, epochs=1, validation_split=0.25)  # the default verbose: one trial says it is there
    assert "Trial 0" in capsys.readouterr().out


def test_reload_reads_the_store_again(tmp_path):
    x, y = tiny_data(64)
    tuner = kt.RandomSearch(build_mlp, objective="val_accuracy", max_trials=2, directory=tmp_path, seed=4)
    tuner.search(x, y, epochs=1, validation_split=0.25, verbose=0)
    best = tuner.get_best_hyperparameters()[0].values
    tuner.oracle.trials.clear()
    tuner.reload()
    assert len(tuner.oracle.trials) == 2
    assert tuner.get_best_hyperparameters()[0].values == best


def test_a_keras_tuner_logger_hears_every_trial(tmp_path):
    class Recorder:
        def __init__(self):
            self.calls = []

        def register_tuner(self, state):
            self.calls.append(("tuner", state["objective"]["name"]))

        def register_trial(self, trial_id, state):
            self.calls.append(("begin", trial_id))

        def report_trial_state(self, trial_id, state):
            self.calls.append(("end", trial_id, state["status"], state["score"] is not None))

        def exit(self):
            self.calls.append(("exit",))

    logger = Recorder()
    x, y = tiny_data(64)
    with pytest.deprecated_call(match="logger"):  # as KerasTuner warns; archsearch still calls it
        tuner = kt.RandomSearch(build_mlp, objective="val_accuracy", max_trials=2, directory=tmp_path, logger=logger)
    tuner.search(x, y, epochs=1, validation_split=0.25, verbose=0)
    assert logger.calls == [("tuner", "val_accuracy"), ("begin", "0"), ("end", "0", "completed", True),
                            ("begin", "1"), ("end", "1", "completed", True), ("exit",)]


def test_distribution_strategy_builds_models_in_its_scope(tmp_path):
    import tensorflow as tf

    if keras.backend.backend() != "tensorflow":
        pytest.skip("tf.distribute strategies need the TensorFlow backend")
    strategy = tf.distribute.OneDeviceStrategy("/cpu:0")
    built_in_scope = []

    def builder(hp):
        built_in_scope.append(tf.distribute.has_strategy())
        return build_mlp(hp)

    x, y = tiny_data(64)
    tuner = kt.RandomSearch(builder, objective="val_accuracy", max_trials=1, directory=tmp_path,
                            distribution_strategy=strategy)
    tuner.search(x, y, epochs=1, validation_split=0.25, verbose=0)
    assert built_in_scope[0] is False and built_in_scope[-1] is True, built_in_scope
    assert tuner.store.rows()[0]["status"] == "completed"


def test_random_search_runs_ten_trials_by_default_as_keras_tuner_does(tmp_path):
    hp_calls = []

    class Count(kt.Tuner):
        def run_trial(self, trial, *args, **kwargs):
            hp_calls.append(trial.hyperparameters.Float("x", 0, 1))
            return 0.0

    tuner = Count(oracle=kt.oracles.RandomSearchOracle(objective="loss", max_trials=10), directory=tmp_path)
    tuner.search()
    assert len(hp_calls) == 10
    assert kt.RandomSearch.default_max_trials == 10 and kt.BayesianOptimization.default_max_trials == 10


def test_the_errors_module_has_keras_tuner_s_names():
    from archsearch import errors

    assert issubclass(errors.FatalValueError, errors.FatalError) and issubclass(errors.FatalValueError, ValueError)
    assert issubclass(errors.FatalTypeError, TypeError) and issubclass(errors.FatalRuntimeError, RuntimeError)
    assert not issubclass(errors.FailedTrialError, errors.FatalError)
    assert kt.errors is errors


def test_kerastuner_attributes_of_a_tuner(tmp_path):
    tuner = kt.RandomSearch(build_mlp, objective="val_accuracy", max_trials=3, directory=tmp_path,
                            executions_per_trial=2, optimizer="sgd", loss="sparse_categorical_crossentropy")
    assert tuner.executions_per_trial == 2
    assert tuner.directory == tmp_path and tuner.project_name == "untitled_project"
    tuner.executions_per_trial = 1
    assert tuner.trainer.executions_per_trial == 1
    assert tuner.optimizer == "sgd" and tuner.loss == "sparse_categorical_crossentropy" and tuner.metrics is None
    assert tuner.remaining_trials == 3
    x, y = tiny_data()
    tuner.search(x, y, validation_data=(x, y), epochs=1, verbose=0, callbacks=[])
    assert tuner.remaining_trials == 0
    assert kt.oracles.RandomSearchOracle(objective="val_loss").remaining_trials() is None


def test_keras_tuner_s_error_phrases_and_classes_come_with_ours(tmp_path):
    """KerasTuner code matches these with pytest.raises(..., match=...) or catches RuntimeError."""
    with pytest.raises(ValueError, match="Received `hypermodel=None`") as info:
        kt.RandomSearch(max_trials=2, directory=tmp_path / "a")
    assert str(info.value).startswith("hypermodel: is required")
    with pytest.raises(ValueError, match="Expected `oracle` argument to be an instance of `Oracle`"):
        kt.Tuner(oracle="invalid", hypermodel=build_mlp, directory=tmp_path / "b")
    with pytest.raises(ValueError, match="`hypermodel` argument should be either") as info:
        kt.Tuner(oracle=kt.oracles.RandomSearchOracle(objective="val_accuracy", max_trials=3),
                 hypermodel="build_mlp", directory=tmp_path / "c")
    assert "'build_mlp' is neither" in str(info.value)

    hp = kt.HyperParameters()
    hp.Int("units", 4, 16, step=4)
    with pytest.raises(RuntimeError, match="`allow_new_entries` is `False`") as info:
        kt.RandomSearch(build_mlp, objective="val_accuracy", hyperparameters=hp, allow_new_entries=False,
                        max_trials=2, directory=tmp_path / "d")
    assert isinstance(info.value, kt.ConfigError) and "'learning_rate'" in str(info.value)


def test_another_search_in_a_used_folder_is_a_runtime_error_naming_overwrite(tmp_path):
    x, y = tiny_data(48)
    kt.RandomSearch(build_mlp, objective="val_accuracy", max_trials=1, directory=tmp_path).search(
        x, y, epochs=1, validation_split=0.25, verbose=0)
    with pytest.raises(RuntimeError, match="pass `overwrite=True`") as info:
        kt.BayesianOptimization(build_mlp, objective="val_accuracy", max_trials=1, directory=tmp_path)
    assert "holds a different search (changed: oracle" in str(info.value)


def test_given_hyperparameters_grow_with_the_builder_s_first_build(tmp_path):
    hp = kt.HyperParameters()
    hp.Int("units", 4, 8, step=4, default=8)
    tuner = kt.RandomSearch(build_mlp, objective="val_accuracy", hyperparameters=hp, max_trials=2,
                            directory=tmp_path)
    space = tuner.oracle.hyperparameters.space
    assert list(space.keys()) == ["units", "learning_rate"]  # learning_rate learned before any trial runs
    assert space["units"].max_value == 8  # the given declaration wins over the builder's


def test_best_hyperparameters_of_trials_made_by_hand_keep_their_own_values(tmp_path):
    from archsearch.core.trial import Trial

    trials = []
    for value, score in ((1, 10.0), (2, 9.0)):
        hp = kt.HyperParameters()
        hp.Fixed("a", value)
        trial = Trial(hyperparameters=hp)
        trial.status, trial.score = "COMPLETED", score
        trials.append(trial)
    tuner = kt.RandomSearch(build_mlp, objective="val_accuracy", max_trials=2, directory=tmp_path)
    tuner.oracle.trials = {t.trial_id: t for t in trials}
    assert tuner.get_best_hyperparameters()[0]["a"] == 1


def test_an_unknown_tuner_argument_names_it_and_says_keras_tuner_s_phrase(tmp_path):
    with pytest.raises(ValueError, match="Unrecognized arguments") as info:
        kt.GridSearch(build_mlp, objective="val_accuracy", directory=tmp_path, unrecognized=3)
    assert "tuner.unrecognized: is not an option of the 'grid' tuner" in str(info.value)
    assert "float_points" in str(info.value)  # the fix lists the valid options


def test_a_builder_that_returns_no_model_is_refused_when_the_search_starts_not_when_the_tuner_is_built(tmp_path):
    def declares_only(hp):  # KerasTuner builds such a tuner (its tests, a run_trial that never builds)
        hp.Boolean("a")

    tuner = kt.RandomSearch(declares_only, objective="val_accuracy", max_trials=2, directory=tmp_path)
    assert [p.name for p in tuner.oracle.hyperparameters.space] == ["a"]
    x, y = tiny_data(32)
    with pytest.raises(kt.errors.FatalTypeError, match="the model builder returned NoneType None, not a Keras model"):
        tuner.search(x, y, epochs=1, validation_split=0.25, verbose=0)
    assert tuner.oracle.trials == {}  # refused before any trial started

    class OwnLoop(kt.RandomSearch):  # needs no model: the search runs
        def run_trial(self, trial, *args, **kwargs):
            return 1.0 if trial.hyperparameters["a"] else 0.0

    own = OwnLoop(declares_only, objective=kt.Objective("score", "max"), max_trials=2, directory=tmp_path / "own")
    own.search(verbose=0)
    assert len(own.oracle.trials) == 2


def test_the_removed_echo_argument_is_refused_not_ignored(tmp_path):
    """``echo=`` was an undocumented archsearch argument; the console channel replaced it (core/console.py):
    passing it now fails loudly instead of silently dropping the user's callable."""
    with pytest.raises(ValueError, match="tuner.echo: is not an option of the 'random' tuner"):
        kt.RandomSearch(build_mlp, objective="val_accuracy", directory=tmp_path, echo=print)
