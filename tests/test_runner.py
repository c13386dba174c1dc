"""The runner alone, with a tiny real Keras model: resuming a promoted trial is exact."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from archsearch.space.hyperparameters import HyperParameters
from archsearch.core.objective import Objective
from archsearch.oracles.base import COMPLETED, PRUNED, Trial
from archsearch.core.checkpoints import CHECKPOINT
from archsearch.training.fit_data import FitArguments
from archsearch.training.runner import Runner
from archsearch.training.settings import TrainerSettings

SAMPLES, BATCH = 64, 16
STEPS = SAMPLES // BATCH  # optimizer steps per epoch


def _data():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(SAMPLES, 8)).astype("float32")
    y = (x[:, :4].sum(axis=1) > 0).astype("int32")
    # shuffle=False: every run sees the batches in the same order, so losses can be compared exactly.
    return FitArguments((x, y), {"validation_data": (x[:16], y[:16]), "shuffle": False})


def _build(hp):
    keras.backend.clear_session()
    keras.utils.set_random_seed(int(hp.get("seed", 0)))
    model = keras.Sequential([keras.Input((8,)), keras.layers.Dense(16, activation="relu"),
                              keras.layers.Dense(2, activation="softmax")])
    model.compile(keras.optimizers.Adam(1e-2), "sparse_categorical_crossentropy", metrics=["accuracy"])
    return model


class _Recorder:
    """Reporter: every epoch the runner reports, per trial."""

    def __init__(self, prune_at: int | None = None) -> None:
        self.epochs: dict[int, list[tuple[int, dict]]] = {}
        self.prune_at = prune_at

    def on_epoch(self, trial, epoch, metrics, value):
        self.epochs.setdefault(trial.id, []).append((epoch, dict(metrics)))
        return self.prune_at is not None and epoch >= self.prune_at


class _Iterations(keras.callbacks.Callback):
    """The optimizer's step counter when training starts and ends (shared across deep copies)."""

    seen: list[tuple[str, int]] = []

    def __deepcopy__(self, memo):
        return self

    def on_train_begin(self, logs=None):
        self.seen.append(("begin", int(self.model.optimizer.iterations.numpy())))

    def on_train_end(self, logs=None):
        self.seen.append(("end", int(self.model.optimizer.iterations.numpy())))


@pytest.fixture
def runner(tmp_path):
    _Iterations.seen = []
    return Runner(_build, _data(), Objective.create("val_loss"), tmp_path,
                  trainer=TrainerSettings(epochs=4, batch_size=BATCH), callbacks=[_Iterations()])


def test_a_promoted_trial_continues_weights_and_optimizer_state_exactly(runner):
    hp = HyperParameters()
    reporter = _Recorder()

    straight = runner.run(Trial(0, {}, budget=4), hp, reporter)
    assert straight.status == COMPLETED and straight.epochs_done == 4

    parent = runner.run(Trial(1, {}, budget=2), hp, reporter)
    assert parent.epochs_done == 2
    checkpoint = runner.checkpoint_path(1)
    assert checkpoint.name == CHECKPOINT and checkpoint.exists()

    child_trial = Trial(2, {}, budget=4, resume_from=1, initial_budget=2)
    child = runner.run(child_trial, hp, reporter, resume_checkpoint=checkpoint, initial_epoch=2)
    assert child.status == COMPLETED
    assert child.epochs_done == 4

    # Only the extra epochs are trained and reported: 3 and 4, never 1 or 2 again.
    assert [e for e, _ in reporter.epochs[2]] == [3, 4]
    # The optimizer's step counter continues from the parent's instead of restarting at 0.
    assert _Iterations.seen == [("begin", 0), ("end", 4 * STEPS),
                                ("begin", 0), ("end", 2 * STEPS),
                                ("begin", 2 * STEPS), ("end", 4 * STEPS)]
    # Weights *and* Adam's moments were restored: epochs 3-4 of the resumed trial are those of a
    # trial trained 4 epochs straight (the same seed, the same batches), not a restart.
    straight_losses = [m["loss"] for _, m in reporter.epochs[0]]
    parent_losses = [m["loss"] for _, m in reporter.epochs[1]]
    child_losses = [m["loss"] for _, m in reporter.epochs[2]]
    assert parent_losses == pytest.approx(straight_losses[:2], rel=1e-4)
    assert child_losses == pytest.approx(straight_losses[2:], rel=1e-4)
    assert child_losses[0] < parent_losses[0]
    # The best epoch is counted on the whole budget (3 or 4), not from 1.
    assert child.best_epoch in (3, 4)


def test_weights_alone_would_not_reproduce_the_straight_run(runner):
    """Guards the test above: with the weights but a fresh optimizer, epochs 3-4 differ."""
    from archsearch.core.checkpoints import restore_checkpoint

    hp = HyperParameters()
    reporter = _Recorder()
    runner.run(Trial(0, {}, budget=4), hp, reporter)
    runner.run(Trial(1, {}, budget=2), hp, reporter)
    restored = _build(hp)
    restore_checkpoint(restored, runner.checkpoint_path(1))
    assert int(restored.optimizer.iterations.numpy()) == 2 * STEPS  # the checkpoint holds the optimizer
    fresh = _build(hp)
    fresh.set_weights(restored.get_weights())
    assert int(fresh.optimizer.iterations.numpy()) == 0
    x, y = runner.data.args
    history = fresh.fit(x, y, epochs=4, initial_epoch=2, batch_size=BATCH, shuffle=False, verbose=0)
    straight_losses = [m["loss"] for _, m in reporter.epochs[0]]
    assert history.history["loss"] != pytest.approx(straight_losses[2:], rel=1e-4)


def test_a_pruned_trial_stops_at_the_epoch_it_reached(runner):
    reporter = _Recorder(prune_at=2)
    outcome = runner.run(Trial(0, {}, budget=4), HyperParameters(), reporter)
    assert outcome.status == PRUNED
    assert outcome.epochs_done == 2
    assert [e for e, _ in reporter.epochs[0]] == [1, 2]
    assert outcome.value is not None and np.isfinite(outcome.value)


def f1(y_true, y_pred):  # a metric given as a plain function, as in the U-Net tutorial
    return keras.ops.mean(keras.ops.cast(y_true, y_pred.dtype) * y_pred)


def _fit_log_names(model, x, y) -> list[str]:
    history = model.fit(x, y, validation_data=(x, y), epochs=1, verbose=0)
    return sorted(name for name in history.history if not name.startswith("val_"))


def _single_output_model():
    inputs = keras.Input((4,))
    model = keras.Model(inputs, keras.layers.Dense(1, activation="sigmoid")(inputs))
    model.compile("adam", "binary_crossentropy",
                  metrics=[f1, "acc", "mse", keras.metrics.AUC(name="my_auc"), keras.metrics.Precision()])
    return model, np.zeros((8, 4), "float32"), np.zeros((8, 1), "float32")


def _two_output_model(as_dict: bool):
    inputs = keras.Input((4,))
    outputs = [keras.layers.Dense(1, name="size")(inputs),
               keras.layers.Dense(3, activation="softmax", name="kind")(inputs)]
    y = [np.zeros((8, 1), "float32"), np.zeros((8,), "int32")]
    if as_dict:
        model = keras.Model(inputs, dict(zip(["size", "kind"], outputs)))
        model.compile("adam", {"size": "mse", "kind": "sparse_categorical_crossentropy"},
                      metrics={"size": ["mae", f1], "kind": ["accuracy"]})
        return model, np.zeros((8, 4), "float32"), dict(zip(["size", "kind"], y))
    model = keras.Model(inputs, outputs)
    model.compile("adam", ["mse", "sparse_categorical_crossentropy"], metrics=[["mae"], ["accuracy"]])
    return model, np.zeros((8, 4), "float32"), y


@pytest.mark.parametrize("make, expected", [
    # a function by its __name__, a string as written ("acc" stays acc), a Metric by its name
    (_single_output_model, ["acc", "f1", "loss", "mse", "my_auc", "precision"]),
    # per-output dict: every metric and loss prefixed with its output's name
    (lambda: _two_output_model(True), ["kind_accuracy", "kind_loss", "loss", "size_f1",
                                       "size_loss", "size_mae"]),
    # per-output list
    (lambda: _two_output_model(False), ["kind_accuracy", "kind_loss", "loss", "size_loss", "size_mae"]),
])
def test_the_objective_check_knows_keras_s_own_metric_names_before_training(make, expected):
    """The names checked before the first trial are those Keras logs (issue 24: a function metric
    was named ``<function f1 at 0x...>`` and every objective on it was refused)."""
    from archsearch.training.metric_names import compiled_metric_names

    model, x, y = make()
    names = compiled_metric_names(model)
    assert names == expected
    assert names == _fit_log_names(model, x, y)


def test_a_subclassed_model_s_metric_names_are_left_to_the_first_epoch():
    from archsearch.training.metric_names import compiled_metric_names

    class Subclassed(keras.Model):
        def __init__(self):
            super().__init__()
            self.dense = keras.layers.Dense(1)

        def call(self, x):
            return self.dense(x)

    model = Subclassed()
    model.compile("adam", "mse", metrics=[f1])
    assert compiled_metric_names(model) == []


def test_a_model_with_its_own_train_step_is_checked_on_its_logs():
    """Keras's "customizing fit": a functional model whose class logs its own metrics (here ``custom``);
    the compiled names do not say what it logs, so the objective is checked after the first epoch."""
    from archsearch.training.metric_names import compiled_metric_names

    class OwnLogs(keras.Model):
        def train_step(self, data):
            return {**super().train_step(data), "custom": 1.0}

    inputs = keras.Input((4,))
    model = OwnLogs(inputs, keras.layers.Dense(1)(inputs))
    model.compile("adam", "mse")
    assert compiled_metric_names(model) == []


def test_an_objective_on_a_function_metric_passes_the_check_and_a_wrong_one_names_the_right_one(runner):
    from archsearch.errors import ObjectiveError

    inputs = keras.Input((8,))
    model = keras.Model(inputs, keras.layers.Dense(1, activation="sigmoid")(inputs))
    model.compile("adam", "binary_crossentropy", metrics=[f1])
    runner.objective = Objective.create({"name": "val_f1", "direction": "max"})
    runner._check_objective(model, HyperParameters())
    runner.objective = Objective.create({"name": "val_f2", "direction": "max"})
    with pytest.raises(ObjectiveError, match="val_f1"):
        runner._check_objective(model, HyperParameters())


def test_the_keras_runner_is_the_first_trial_runner_and_says_how_a_worker_starts_keras(tmp_path):
    import importlib
    import pickle

    from archsearch.core.trial_runner import TrialRunner, needs_of

    runner = Runner(_build, _data(), Objective("val_loss"), tmp_path)
    assert isinstance(runner, TrialRunner)
    needs = needs_of(runner)
    assert needs.gpu  # one worker per visible GPU, as before the seam
    module, _, name = needs.worker_setup.partition(":")
    assert callable(getattr(importlib.import_module(module), name))  # what each worker calls before unpickling
    copy = pickle.loads(pickle.dumps(runner))  # what a worker receives
    assert copy.files.workdir == runner.workdir == tmp_path
    runner.files.workdir = tmp_path / "storage"  # Ray's executor.storage moves the trial files, and the runner's folder
    assert runner.workdir == tmp_path / "storage" and runner.checkpoint_path(3).is_relative_to(tmp_path / "storage")
