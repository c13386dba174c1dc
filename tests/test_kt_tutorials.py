"""KerasTuner's own tutorials, shrunk to tiny data, run unchanged apart from the import (issue 12)."""

from __future__ import annotations

import numpy as np
import pytest

import archsearch as kt


def fashion_like(n: int = 160, seed: int = 0):
    """28x28 "images" of 10 classes, a stand-in for Fashion-MNIST: class k brightens row band k."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 10, size=n)
    images = rng.random((n, 28, 28)).astype("float32") * 0.3
    for i, k in enumerate(labels):
        images[i, 2 * k:2 * k + 4] += 0.7
    return images, labels


def test_the_getting_started_tutorial_with_hyperband_early_stopping_and_the_winner_retrained(tmp_path):
    import keras
    import tensorflow as tf

    (img_train, label_train), (img_test, label_test) = fashion_like(160), fashion_like(40, seed=1)

    def model_builder(hp):
        model = keras.Sequential()
        model.add(keras.layers.Flatten(input_shape=(28, 28)))
        hp_units = hp.Int("units", min_value=8, max_value=32, step=8)
        model.add(keras.layers.Dense(units=hp_units, activation="relu"))
        model.add(keras.layers.Dense(10))
        hp_learning_rate = hp.Choice("learning_rate", values=[1e-2, 1e-3])
        model.compile(optimizer=keras.optimizers.Adam(learning_rate=hp_learning_rate),
                      loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                      metrics=["accuracy"])
        return model

    tuner = kt.Hyperband(model_builder, objective="val_accuracy", max_epochs=3, factor=3,
                         directory=str(tmp_path), project_name="intro_to_kt")
    stop_early = tf.keras.callbacks.EarlyStopping(monitor="val_loss", patience=5)
    tuner.search(img_train, label_train, epochs=50, validation_split=0.2, callbacks=[stop_early])
    best_hps = tuner.get_best_hyperparameters(num_trials=1)[0]
    assert best_hps.get("units") in (8, 16, 24, 32) and best_hps.get("learning_rate") in (1e-2, 1e-3)

    model = tuner.hypermodel.build(best_hps)
    history = model.fit(img_train, label_train, epochs=3, validation_split=0.2, verbose=0)
    val_acc_per_epoch = history.history["val_accuracy"]
    best_epoch = val_acc_per_epoch.index(max(val_acc_per_epoch)) + 1
    hypermodel = tuner.hypermodel.build(best_hps)
    hypermodel.fit(img_train, label_train, epochs=best_epoch, validation_split=0.2, verbose=0)
    eval_result = hypermodel.evaluate(img_test, label_test, verbose=0)
    assert len(eval_result) == 2 and 0.0 <= eval_result[1] <= 1.0

    tuner.results_summary()
    best_trial = tuner.oracle.get_best_trials(1)[0]
    assert best_trial.hyperparameters.values == best_hps.values
    assert tuner.get_best_models(1)[0].evaluate(img_test, label_test, verbose=0)[1] >= 0.0


def test_the_cnn_tutorial_with_a_tuned_filter_count_and_bayesian_optimization(tmp_path):
    import keras

    images, labels = fashion_like(96)
    images = images[..., None]

    def build(hp):
        model = keras.Sequential([
            keras.Input((28, 28, 1)),
            keras.layers.Conv2D(hp.Int("filters", 4, 8, step=4), 3, activation="relu"),
            keras.layers.MaxPooling2D(4),
            keras.layers.Flatten(),
            keras.layers.Dropout(hp.Float("dropout", 0.0, 0.5, step=0.25)),
            keras.layers.Dense(10, activation="softmax"),
        ])
        model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
        return model

    tuner = kt.BayesianOptimization(build, objective=kt.Objective("val_accuracy", direction="max"), max_trials=3,
                                    num_initial_points=2, directory=str(tmp_path), project_name="cnn", overwrite=True)
    tuner.search_space_summary()
    tuner.search(images, labels, epochs=1, validation_split=0.25)
    assert len(tuner.oracle.get_best_trials(3)) == 3
    assert tuner.get_best_hyperparameters()[0].get("filters") in (4, 8)


def test_the_unet_segmentation_tutorial_s_function_metrics_name_its_objective_val_f1(tmp_path):
    """The document-segmentation tutorial (the project's seed): ``metrics=[f1, precision, recall, iou]``,
    plain functions, and ``objective=kt.Objective("val_f1", direction="max")``.  Keras logs a function
    metric under its ``__name__``, so the objective must be found before and during the search (issue 24)."""
    import keras
    from keras import ops

    def recall(y_true, y_pred):
        true_positives = ops.sum(ops.round(ops.clip(y_true * y_pred, 0, 1)))
        possible_positives = ops.sum(ops.round(ops.clip(y_true, 0, 1)))
        return true_positives / (possible_positives + keras.backend.epsilon())

    def precision(y_true, y_pred):
        true_positives = ops.sum(ops.round(ops.clip(y_true * y_pred, 0, 1)))
        predicted_positives = ops.sum(ops.round(ops.clip(y_pred, 0, 1)))
        return true_positives / (predicted_positives + keras.backend.epsilon())

    def f1(y_true, y_pred):
        p, r = precision(y_true, y_pred), recall(y_true, y_pred)
        return 2 * ((p * r) / (p + r + keras.backend.epsilon()))

    def iou(y_true, y_pred):
        intersection = ops.sum(y_true * y_pred)
        return intersection / (ops.sum(y_true) + ops.sum(y_pred) - intersection + keras.backend.epsilon())

    def weighted_cross_entropy(y_true, y_pred):
        return ops.mean(keras.losses.binary_crossentropy(y_true, y_pred))

    def model_builder(hp):
        start_neurons = hp.Int(name="start_neurons", min_value=2, max_value=4, step=2)
        activation = hp.Choice(name="activation", values=["elu", "relu"], ordered=False)
        inputs = keras.Input((16, 16, 3))
        down = keras.layers.Conv2D(start_neurons, 3, padding="same", activation=activation)(inputs)
        pooled = keras.layers.MaxPooling2D(2)(down)
        up = keras.layers.UpSampling2D(2)(keras.layers.Conv2D(start_neurons, 3, padding="same")(pooled))
        merged = keras.layers.Concatenate()([down, up])
        outputs = keras.layers.Conv2D(2, 1, activation="sigmoid")(merged)
        model = keras.Model(inputs, outputs)
        model.compile(optimizer=keras.optimizers.Adam(learning_rate=1e-3), loss=weighted_cross_entropy,
                      metrics=[f1, precision, recall, iou])
        return model

    rng = np.random.default_rng(0)
    images = rng.random((24, 16, 16, 3)).astype("float32")
    masks = np.stack([images[..., 0] > 0.5, images[..., 0] <= 0.5], axis=-1).astype("float32")
    tuner = kt.Hyperband(hypermodel=model_builder, objective=kt.Objective("val_f1", direction="max"), max_epochs=2,
                         directory=str(tmp_path), project_name="hyperband_tuner")
    tuner.search(images[:16], masks[:16], validation_data=(images[16:], masks[16:]), batch_size=8, verbose=0)
    trials = tuner.oracle.get_best_trials(num_trials=10)
    assert trials and all(t.status == "COMPLETED" for t in trials)
    best = trials[0]
    assert {"val_f1", "val_precision", "val_recall", "val_iou", "f1"} <= set(best.metrics)
    assert best.score == best.metrics["val_f1"]


class EpochCount:
    """Epochs trained in all trials (a class attribute: each trial trains with a copy of the callback)."""

    epochs = 0


def test_hyperband_runs_keras_tuner_s_budget_10_trials_26_epochs_and_continues_models_without_an_input(tmp_path,
                                                                                                       capsys):
    """kt.Hyperband(max_epochs=4, factor=3) trains what KerasTuner's does (issue 24): 5 trials to 2
    epochs, the best 2 continued to 4 (2 more each), then 3 trials to 4; each trial's values hold
    KerasTuner's tuner/epochs, tuner/initial_epoch, tuner/bracket, tuner/round (tuner/trial_id if continued).

    Its models are Sequentials without an Input (KerasTuner's tests build them so): the continued trials and
    get_best_models build them from the recorded input shape before loading weights."""
    import keras

    class Count(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            EpochCount.epochs += 1

    def build(hp):
        model = keras.Sequential([keras.layers.Dense(hp.Int("units", 1, 16), activation="relu"),
                                  keras.layers.Dense(1)])
        model.compile("sgd", "mse")
        return model

    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(8, 3)).astype("float32"), rng.normal(size=(8, 1)).astype("float32")
    EpochCount.epochs = 0
    tuner = kt.Hyperband(build, objective="val_loss", max_epochs=4, factor=3, seed=1, directory=tmp_path,
                         project_name="budget")
    tuner.search(x, y, validation_data=(x, y), callbacks=[Count()], verbose=0)
    trials = sorted(tuner.oracle.trials.values(), key=lambda t: t.id)
    assert (len(trials), EpochCount.epochs) == (10, 26)
    assert [t.budget for t in trials] == [2] * 5 + [4] * 5
    assert sum(len(tuner.store.epochs(t.id)) for t in trials) == 26  # the record agrees
    continued = [t for t in trials if t.resume_from is not None]
    assert len(continued) == 2
    for trial in continued:
        values = trial.hyperparameters.values
        assert values["tuner/trial_id"] == str(trial.resume_from)
        assert (values["tuner/initial_epoch"], values["tuner/epochs"], values["tuner/bracket"],
                values["tuner/round"]) == (2, 4, 1, 1)
        assert tuner.oracle.get_trial(values["tuner/trial_id"]).budget == 2

    assert all(t.status == "completed" for t in trials)
    best_hps = tuner.get_best_hyperparameters(1)[0]
    best = tuner.oracle.get_best_trials(1)[0]
    model = tuner.get_best_models(1)[0]
    assert model.built and model.evaluate(x, y, verbose=0) == pytest.approx(best.score, rel=1e-5)
    assert best_hps.get("tuner/epochs") == best.budget  # the tutorial's retrain reads it
    assert best_hps.get("units") == best.hparams["units"]
    assert "tuner/epochs" not in best.hparams  # not a searched value: never proposed or stored as one
    capsys.readouterr()
    tuner.results_summary()
    summary = capsys.readouterr().out
    assert "tuner/epochs" in summary and "tuner/initial_epoch" in summary and "tuner/round" in summary
