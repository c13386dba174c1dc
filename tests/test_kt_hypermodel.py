"""A HyperModel subclass whose build and fit are both used (issue 12): KerasTuner's way to tune
batch size, shuffling or preprocessing inside fit."""

from __future__ import annotations

import pytest

import archsearch as kt
from kt_helpers import build_mlp, tiny_data


class BatchSizeModel(kt.HyperModel):
    """The KerasTuner guide's example: tune the batch size (and shuffling) in fit."""

    def __init__(self) -> None:
        super().__init__()
        self.fit_calls: list[dict] = []

    def build(self, hp):
        return build_mlp(hp)

    def fit(self, hp, model, *args, **kwargs):
        batch_size = hp.Choice("batch_size", [16, 64])
        self.fit_calls.append({"batch_size": batch_size, "epochs": kwargs["epochs"],
                               "callbacks": len(kwargs["callbacks"])})
        return model.fit(*args, batch_size=batch_size, shuffle=hp.Boolean("shuffle"), **kwargs)


def test_hypermodel_fit_is_used_and_its_values_are_searched(tmp_path):
    hypermodel = BatchSizeModel()
    x, y = tiny_data(128)
    tuner = kt.RandomSearch(hypermodel, objective="val_accuracy", max_trials=4, seed=5, directory=tmp_path)
    tuner.search(x, y, epochs=2, validation_split=0.25, verbose=0)
    assert len(hypermodel.fit_calls) == 4
    assert {c["epochs"] for c in hypermodel.fit_calls} == {2}
    assert all(c["callbacks"] >= 1 for c in hypermodel.fit_calls)  # the search's epoch reporter is passed in
    rows = tuner.store.rows()
    assert all({"batch_size", "shuffle"} <= set(r["hparams"]) for r in rows)
    assert [r["hparams"]["batch_size"] for r in rows] == [c["batch_size"] for c in hypermodel.fit_calls]
    assert {"batch_size", "shuffle"} <= set(tuner.oracle.hyperparameters.space.keys())
    assert all(len(tuner.store.epochs(r["id"])) == 2 for r in rows)
    best = tuner.get_best_hyperparameters()[0]
    assert best.get("batch_size") in (16, 64)


def test_steps_per_epoch_show_the_tuned_batch_size_took_effect(tmp_path):
    steps: list[int] = []

    class CountSteps(kt.HyperModel):
        def build(self, hp):
            return build_mlp(hp)

        def fit(self, hp, model, x, y, **kwargs):
            import keras

            class Count(keras.callbacks.Callback):
                def on_train_begin(self, logs=None):
                    self.n = 0

                def on_train_batch_end(self, batch, logs=None):
                    self.n += 1

                def on_train_end(self, logs=None):
                    steps.append(self.n)

            kwargs["callbacks"] = [*kwargs["callbacks"], Count()]
            return model.fit(x, y, batch_size=hp.Fixed("batch_size", 32), **kwargs)

    x, y = tiny_data(96)
    tuner = kt.RandomSearch(CountSteps(), objective="val_accuracy", max_trials=1, directory=tmp_path)
    tuner.search(x, y, epochs=1, validation_split=0.25, verbose=0)
    assert steps == [72 // 32 + 1]  # 72 training samples in batches of 32: 3 steps, not our default batching


@pytest.mark.parametrize("returned", ["float", "dict"])
def test_hypermodel_fit_may_return_its_own_score(tmp_path, returned):
    class Evaluated(kt.HyperModel):
        def build(self, hp):
            return build_mlp(hp)

        def fit(self, hp, model, x, y, validation_data=None, **kwargs):
            model.fit(x, y, **kwargs)
            loss, accuracy = model.evaluate(*validation_data, verbose=0)
            return accuracy if returned == "float" else {"my_accuracy": accuracy, "my_loss": loss}

    x, y = tiny_data(128)
    objective = "val_accuracy" if returned == "float" else kt.Objective("my_accuracy", "max")
    tuner = kt.RandomSearch(Evaluated(), objective=objective, max_trials=2, directory=tmp_path)
    tuner.search(x[:96], y[:96], epochs=1, validation_data=(x[96:], y[96:]), verbose=0)
    for trial in tuner.oracle.trials.values():
        assert trial.status == "completed" and 0.0 <= trial.score <= 1.0
        if returned == "dict":
            assert set(trial.metrics) == {"my_accuracy", "my_loss"}


def test_hypermodel_is_a_top_level_name_and_has_keras_tuner_s_signature():
    assert kt.HyperModel is kt.hypermodel.HyperModel
    model = kt.HyperModel(name="m", tunable=False)
    assert model.name == "m" and model.tunable is False
    with pytest.raises(NotImplementedError):
        model.build(kt.HyperParameters())


class Untunable(kt.HyperModel):
    def __init__(self) -> None:
        super().__init__(tunable=False)
        self.units: list[int] = []

    def build(self, hp):
        self.units.append(hp.Int("units", 4, 64, step=4, default=8))
        return build_mlp(hp)


def test_an_untunable_hypermodel_searches_only_what_was_declared_beforehand(tmp_path):
    # KerasTuner: tunable=False keeps build's own declarations out of the space (they take their defaults).
    hypermodel = Untunable()
    hp = kt.HyperParameters()
    hp.Float("learning_rate", 1e-3, 1e-1, sampling="log")
    tuner = kt.RandomSearch(hypermodel, objective="val_accuracy", max_trials=2, seed=1, directory=tmp_path,
                            hyperparameters=hp)
    x, y = tiny_data()
    tuner.search(x, y, validation_data=(x, y), epochs=1, verbose=0)
    assert list(tuner.oracle.hyperparameters.space.keys()) == ["learning_rate"]
    assert set(hypermodel.units) == {8}
    rates = {t.hparams["learning_rate"] for t in tuner.oracle.trials.values()}
    assert len(rates) == 2  # what was declared beforehand is searched
    hypermodel.tunable = True
    fresh = kt.HyperParameters()
    hypermodel.build(fresh)
    assert "units" in fresh.space  # tunable again: build declares into the space it is given


def test_grid_search_also_tries_the_values_of_a_parameter_declared_in_fit(tmp_path):
    import keras

    class InFit(kt.HyperModel):
        def build(self, hp):
            hp.Fixed("fixed", 3)
            model = keras.Sequential([keras.Input((6,)), keras.layers.Dense(2)])
            model.compile("sgd", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
            return model

        def fit(self, hp, model, *args, **kwargs):
            return float(hp.Choice("choice", [0, 1, 2]))

    tuner = kt.GridSearch(hypermodel=InFit(), objective="loss", directory=tmp_path, project_name="p")
    tuner.search(verbose=0)
    assert sorted(t.hparams["choice"] for t in tuner.oracle.trials.values()) == [0, 1, 2]
    assert tuner.oracle.get_best_trials(1)[0].score == 0.0


def test_an_uncompiled_model_goes_to_the_hypermodel_s_own_fit_as_built(tmp_path):
    """KerasTuner compiles nothing for a HyperModel whose fit trains (or scores) the model itself."""
    import keras

    compiled = []

    class OwnTraining(kt.HyperModel):
        def build(self, hp):
            hp.Boolean("wide")
            return keras.Sequential([keras.Input((6,)), keras.layers.Dense(2)])

        def fit(self, hp, model, *args, **kwargs):
            compiled.append(getattr(model, "optimizer", None) is not None or bool(getattr(model, "compiled", False)))
            return 1.0 if hp.get("wide") else 2.0

    tuner = kt.GridSearch(hypermodel=OwnTraining(), directory=tmp_path, project_name="p")
    tuner.search(verbose=0)
    assert compiled == [False, False]
    assert tuner.oracle.get_best_trials(1)[0].hparams == {"wide": True}
