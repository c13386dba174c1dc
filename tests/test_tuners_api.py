"""The KerasTuner-style Python API on real (tiny) Keras models."""

from __future__ import annotations

import math

import keras
import numpy as np
import pytest

import archsearch
from archsearch.errors import ConfigError
from archsearch.engine.search import SearchAborted


def make_data(n: int = 240, seed: int = 0):
    rng = np.random.default_rng(seed)
    x = rng.random((n, 6, 6)).astype("float32")
    y = (x[:, :3].mean(axis=(1, 2)) > 0.5).astype("int32")
    return x, y


def model_builder(hp):
    """The official KerasTuner tutorial's builder, shrunk: it must run unchanged."""
    model = keras.Sequential()
    model.add(keras.Input((6, 6)))
    model.add(keras.layers.Flatten())
    model.add(keras.layers.Dense(units=hp.Int("units", min_value=4, max_value=32, step=4), activation="relu",
                                 name="dense_1"))
    if hp.Boolean("extra_layer"):
        with hp.conditional_scope("extra_layer", [True]):
            model.add(keras.layers.Dense(hp.Int("extra_units", 2, 8, step=2), activation="relu", name="extra"))
    model.add(keras.layers.Dense(2, activation="softmax", name="output"))
    lr = hp.Choice("learning_rate", values=[1e-2, 1e-3])
    model.compile(optimizer=keras.optimizers.Adam(learning_rate=lr),
                  loss=keras.losses.SparseCategoricalCrossentropy(), metrics=["accuracy"])
    return model


def test_random_search_end_to_end(tmp_path, capsys):
    x, y = make_data()
    tuner = archsearch.RandomSearch(model_builder, objective="val_accuracy", max_trials=3, seed=3,
                                    directory=tmp_path, project_name="p")
    tuner.search_space_summary()
    assert "units (int)" in capsys.readouterr().out
    tuner.search(x, y, epochs=2, validation_split=0.25, verbose=2)  # Keras's epoch lines, and the search's own
    lines = capsys.readouterr().out.splitlines()
    assert len([ln for ln in lines if ln.startswith("Trial ")]) == 3
    rows = tuner.store.rows()
    assert [r["status"] for r in rows] == ["completed"] * 3
    assert all(r["epochs_done"] == 2 for r in rows)
    assert all(len(tuner.store.epochs(r["id"])) == 2 for r in rows)

    best = tuner.get_best_hyperparameters(num_trials=1)[0]
    best_trial = tuner.best_trials(1)[0]
    assert best.values == best_trial.hparams
    assert best.get("units") == best_trial.hparams["units"]
    assert math.isclose(best_trial.value, max(r["value"] for r in rows))

    model = tuner.get_best_models(num_models=1)[0]
    _, accuracy = model.evaluate(x[-60:], y[-60:], verbose=0)
    assert accuracy == pytest.approx(best_trial.value, abs=1e-5)  # the best epoch's weights, not fresh ones

    rebuilt = tuner.hypermodel.build(best)  # the tutorial's retraining idiom
    assert rebuilt.get_layer("dense_1").units == best.get("units")

    capsys.readouterr()
    tuner.results_summary(2)
    summary = capsys.readouterr().out  # the table, one text
    assert "rank" in summary and "units" in summary


def test_grid_search_covers_space_and_inactive_values_are_dropped(tmp_path):
    x, y = make_data(120)

    def builder(hp):
        model = keras.Sequential([keras.Input((6, 6)), keras.layers.Flatten()])
        if hp.Boolean("hidden"):
            model.add(keras.layers.Dense(hp.Choice("units", [4, 8], parent_name="hidden", parent_values=[True])))
        model.add(keras.layers.Dense(2, activation="softmax"))
        model.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
        return model

    tuner = archsearch.GridSearch(builder, objective="val_loss", directory=tmp_path, project_name="g")
    tuner.search(x, y, epochs=1, validation_split=0.25, verbose=0)
    seen = sorted(tuple(sorted(t.hparams.items())) for t in tuner.oracle.trials.values())
    assert seen == sorted([(("hidden", False),), (("hidden", True), ("units", 4)), (("hidden", True), ("units", 8))])
    assert tuner.oracle.finished


def test_resume_keeps_trials_and_refuses_a_different_search(tmp_path):
    x, y = make_data(120)
    kwargs = dict(objective="val_accuracy", seed=1, directory=tmp_path, project_name="r")
    first = archsearch.RandomSearch(model_builder, max_trials=2, **kwargs)
    first.search(x, y, epochs=1, validation_split=0.25, verbose=0)
    first_values = [t.hparams for t in first.oracle.trials.values()]

    again = archsearch.RandomSearch(model_builder, max_trials=3, **kwargs)
    assert [t.hparams for t in again.oracle.trials.values()] == first_values
    again.search(x, y, epochs=1, validation_split=0.25, verbose=0)
    assert again.store.count("completed") == 3

    with pytest.raises(ConfigError, match="different search.*pass `overwrite=True`") as info:
        archsearch.RandomSearch(model_builder, max_trials=3, **{**kwargs, "objective": "val_loss"})
    assert isinstance(info.value, RuntimeError)  # what KerasTuner raises there
    fresh = archsearch.RandomSearch(model_builder, max_trials=1, overwrite=True, **kwargs)
    assert fresh.store.count() == 0


def test_failing_builder_is_recorded_and_the_search_goes_on(tmp_path):
    x, y = make_data(120)

    def flaky(hp):
        units = hp.Int("units", 4, 12, step=4)
        if units == 8:
            raise RuntimeError("units=8 is broken")
        model = keras.Sequential([keras.Input((6, 6)), keras.layers.Flatten(), keras.layers.Dense(units),
                                  keras.layers.Dense(2, activation="softmax")])
        model.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
        return model

    tuner = archsearch.GridSearch(flaky, objective="val_accuracy", directory=tmp_path, project_name="f")
    tuner.search(x, y, epochs=1, validation_split=0.25, verbose=0)
    by_units = {}
    for r in tuner.store.rows():
        by_units.setdefault(r["hparams"]["units"], set()).add(r["status"])
    assert by_units[8] == {"failed"}
    assert by_units[4] == {"completed"} and by_units[12] == {"completed"}
    failed = tuner.store.trials("failed")[0]
    assert "units=8 is broken" in failed.error


def test_trials_left_without_files_leave_no_empty_folder(tmp_path):
    x, y = make_data(120)
    tuner = archsearch.RandomSearch(model_builder, objective="val_accuracy", max_trials=3, seed=3, directory=tmp_path,
                                    project_name="p", keep_top_models=1)
    tuner.search(x, y, epochs=1, validation_split=0.25, verbose=0)
    best = tuner.best_trials(1)[0].id
    folders = sorted(p.name for p in (tmp_path / "p" / "trials").iterdir())
    assert folders == [f"trial_{best:04d}"]  # the two lower-ranked trials' weights were deleted, and their folders
    assert [p.name for p in (tmp_path / "p" / "trials" / folders[0]).iterdir()] == ["best.weights.h5"]


def test_consecutive_failures_stop_the_search(tmp_path):
    x, y = make_data(60)

    def broken(hp):
        hp.Int("units", 1, 50)
        raise ValueError("always broken")

    tuner = archsearch.RandomSearch(broken, objective="val_accuracy", max_trials=10, directory=tmp_path,
                                    project_name="b", max_consecutive_failed_trials=3, hyperparameters=
                                    archsearch.HyperParameters.from_config({"units": {"type": "int", "min": 1, "max": 50}}))
    with pytest.raises(SearchAborted, match="3 trials failed in a row.*always broken"):
        tuner.search(x, y, epochs=1, validation_split=0.25, verbose=0)
    assert tuner.store.count("failed") == 3


def test_nan_loss_fails_the_trial_only(tmp_path):
    x, y = make_data(120)

    def builder(hp):
        model = keras.Sequential([keras.Input((6, 6)), keras.layers.Flatten(), keras.layers.Dense(2)])
        if hp.Boolean("poison"):
            model.add(keras.layers.Lambda(lambda t: t * float("nan")))
        model.compile("adam", keras.losses.SparseCategoricalCrossentropy(from_logits=True), metrics=["accuracy"])
        return model

    tuner = archsearch.GridSearch(builder, objective="val_accuracy", directory=tmp_path, project_name="n")
    tuner.search(x, y, epochs=3, validation_split=0.25, verbose=0)
    trials = {t.hparams["poison"]: t for t in tuner.oracle.trials.values()}
    assert trials[False].status == "completed"
    assert trials[True].status == "failed"
    assert "loss became nan at epoch 1" in trials[True].error


def test_executions_per_trial_average(tmp_path):
    x, y = make_data(120)
    tuner = archsearch.RandomSearch(model_builder, objective="val_accuracy", max_trials=1, executions_per_trial=2,
                                    directory=tmp_path, project_name="e")
    tuner.search(x, y, epochs=1, validation_split=0.25, verbose=0)
    trial = tuner.best_trials(1)[0]
    assert trial.status == "completed" and 0.0 <= trial.value <= 1.0


def test_missing_objective_metric_is_a_clear_error(tmp_path):
    x, y = make_data(60)
    tuner = archsearch.RandomSearch(model_builder, objective="val_f1", max_trials=2, directory=tmp_path,
                                    project_name="o")
    with pytest.raises(archsearch.ConfigError, match="val_f1.*accuracy"):
        tuner.search(x, y, epochs=1, validation_split=0.25, verbose=0)
    assert tuner.store.count("completed") == 0


def test_keras2_fit_arguments_of_tutorials_are_dropped_with_a_note(tmp_path, capsys):
    """The U-Net tutorial calls search(..., initial_epoch=0, use_multiprocessing=True, workers=6)."""
    x, y = make_data(n=80)
    tuner = archsearch.RandomSearch(model_builder, objective="val_accuracy", max_trials=1, seed=0,
                                    directory=tmp_path, project_name="legacy")
    tuner.search(x, y, epochs=1, validation_split=0.25, verbose=0, shuffle=True, initial_epoch=0,
                 use_multiprocessing=True, workers=6, max_queue_size=10)
    assert [r["status"] for r in tuner.store.rows()] == ["completed"]
    lines = capsys.readouterr().out.splitlines()
    assert not [line for line in lines if line.startswith("Trial ")]  # verbose=0 silences the search's lines,
    note = next(line for line in lines if line.startswith("Note: search() ignores"))  # not what it tells of the call
    for name in ("use_multiprocessing", "workers", "max_queue_size", "initial_epoch"):
        assert name in note


def test_a_seeded_search_repeats_exactly_and_trials_differ(tmp_path):
    """seed= fixes the values *and* each trial's initial weights and dropout (seed + trial id)."""
    x, y = make_data(n=80)

    def scores(folder):
        tuner = archsearch.RandomSearch(model_builder, objective="val_accuracy", max_trials=2, seed=5,
                                        directory=tmp_path, project_name=folder)
        tuner.search(x, y, epochs=2, validation_split=0.25, verbose=0, shuffle=False)
        return [(r["hparams"], r["intermediate"], tuner.store.epochs(r["id"])[-1]["loss"]) for r in tuner.store.rows()]

    first, again = scores("first"), scores("again")
    assert [(h, i) for h, i, _ in first] == [(h, i) for h, i, _ in again]
    assert [loss for *_, loss in first] == pytest.approx([loss for *_, loss in again], rel=1e-5)


def test_search_without_epochs_trains_the_command_line_s_default_epochs(tmp_path):
    """One default for both faces (issue 25): search() without epochs trains conf/trainer/default.yaml's."""
    import yaml

    from conftest import REPO

    x, y = make_data(48)
    tuner = archsearch.RandomSearch(model_builder, objective="val_accuracy", max_trials=1, seed=0,
                                    directory=tmp_path, project_name="p")
    tuner.search(x, y, validation_split=0.25, batch_size=16, verbose=0)
    expected = yaml.safe_load((REPO / "conf" / "trainer" / "default.yaml").read_text())["epochs"]
    assert [r["epochs_done"] for r in tuner.store.rows()] == [expected]
