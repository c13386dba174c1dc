"""Model measures and constraints (issue 28): FLOPs against hand counts and TensorFlow's profiler,
parameters, size and latency; constraints refusing a trial before training, checked again on every
trial's final metrics by the driver, and never counted as failures."""

from __future__ import annotations

import csv
import importlib.util
import math

import keras
import pytest

from archsearch.core.checkpoints import TrialFiles
from archsearch.core.constraints import Constraints
from archsearch.core.objective import Objective, ParetoObjective
from archsearch.core.store import TrialStore
from archsearch.core.trial import COMPLETED, FAILED, PRUNED, Trial, TrialOutcome
from archsearch.engine.search import Search
from archsearch.errors import ConfigError, ObjectiveError
from archsearch.oracles import create_oracle
from archsearch.space.hyperparameters import HyperParameters
from archsearch.training import measures as M
from archsearch.training.fit_data import FitArguments
from archsearch.training.runner import Runner
from search_doubles import FakeExecutor, space

L = keras.layers


def one_layer(layer, shape) -> keras.Model:
    inputs = keras.Input(shape)
    return keras.Model(inputs, layer(inputs))


# ------------------------------------------------------------ FLOPs against hand counts
def test_dense_flops_are_two_per_multiply_add_plus_bias_and_activation():
    assert M.count_flops(one_layer(L.Dense(5), (7,))) == 2 * 7 * 5 + 5
    assert M.count_flops(one_layer(L.Dense(5, activation="relu"), (7,))) == 2 * 7 * 5 + 5 + 5
    # on a sequence: every one of the 3 positions, no bias
    assert M.count_flops(one_layer(L.Dense(5, use_bias=False), (3, 7))) == 3 * 2 * 7 * 5


def test_conv_flops_follow_stride_padding_and_groups():
    # 8x8x3, 3x3 kernel, stride 2, same padding: 4x4x4 outputs of 3*3*3 multiply-adds, plus a bias each
    assert M.count_flops(one_layer(L.Conv2D(4, 3, strides=2, padding="same"), (8, 8, 3))) == 2 * 27 * 64 + 64
    # valid padding: 6x6x4 outputs
    assert M.count_flops(one_layer(L.Conv2D(4, 3), (8, 8, 3))) == 2 * 27 * 144 + 144
    # two groups: each output sees 4 / 2 input channels
    assert M.count_flops(one_layer(L.Conv2D(6, 3, groups=2, padding="same", use_bias=False), (4, 4, 4))) \
        == 2 * 9 * 2 * (4 * 4 * 6)
    # Conv1D: 6 positions x 4 filters of 3 * 3 multiply-adds; Conv3D: 2x2x2x2 outputs of 2*2*2*1
    assert M.count_flops(one_layer(L.Conv1D(4, 3), (8, 3))) == 2 * 9 * 24 + 24
    assert M.count_flops(one_layer(L.Conv3D(2, 2, use_bias=False), (3, 3, 3, 1))) == 2 * 8 * 16
    # depthwise: each output element is one channel times the 3x3 kernel; separable adds the 1x1 mixing
    assert M.count_flops(one_layer(L.DepthwiseConv2D(3, padding="same"), (8, 8, 3))) == 2 * 9 * 192 + 192
    assert M.count_flops(one_layer(L.SeparableConv2D(4, 3), (8, 8, 3))) == 2 * (36 * 3 * 9 + 36 * 3 * 4) + 36 * 4


def test_conv_transpose_flops_multiply_every_input_by_the_whole_kernel():
    # 2x2x4 in, 3x3 kernel, 3 filters, stride 2 -> 4x4x3 out: 16 inputs x 9 x 3 multiply-adds, a bias per output
    assert M.count_flops(one_layer(L.Conv2DTranspose(3, 3, strides=2, padding="same"), (2, 2, 4))) \
        == 2 * 16 * 9 * 3 + 48


def test_pooling_and_batch_norm_flops():
    assert M.count_flops(one_layer(L.MaxPooling2D(2), (8, 8, 3))) == 4 * (4 * 4 * 3)
    assert M.count_flops(one_layer(L.AveragePooling2D(3, strides=1), (8, 8, 3))) == 9 * (6 * 6 * 3)
    assert M.count_flops(one_layer(L.GlobalAveragePooling2D(), (8, 8, 3))) == 8 * 8 * 3
    assert M.count_flops(one_layer(L.BatchNormalization(), (4, 4, 3))) == 2 * 48
    assert M.count_flops(one_layer(L.Dropout(0.5), (10,))) == 0
    assert M.count_flops(one_layer(L.UpSampling2D(2), (2, 2, 3))) == 0


def test_tiny_unet_flops_match_the_hand_count():
    from hypermodels.unet import unet

    model = unet((8, 8, 1), start_neurons=8, net_depth=2, output_classes=1, activation="relu")

    def conv(h, w, c_in, c_out, k=3):  # multiply-adds, bias
        return 2 * k * k * c_in * c_out * h * w + h * w * c_out

    def cascade(h, w, c_in, c_out):  # conv, BN (2 per element), ReLU (1 per element), twice
        n = h * w * c_out
        return conv(h, w, c_in, c_out) + 3 * n + conv(h, w, c_out, c_out) + 3 * n

    enc1 = cascade(8, 8, 1, 8)
    pool1 = 4 * (4 * 4 * 8)
    mid = cascade(4, 4, 8, 16)
    up = 2 * (4 * 4 * 16) * 9 * 8 + 8 * 8 * 8  # Conv2DTranspose: every input times the 3x3x8 kernel
    dec1 = cascade(8, 8, 16, 8)  # after concatenating the skip (free): 16 channels in
    mask = conv(8, 8, 8, 1, k=1) + 8 * 8  # 1x1 convolution and its sigmoid
    assert enc1 + pool1 + mid + up + dec1 + mask == 464000
    assert M.count_flops(model) == 464000


def test_the_unet_s_mish_counts_as_an_activation():
    from archsearch.training.layers import Mish

    assert M.count_flops(one_layer(Mish(), (4, 4, 2))) == 32


def test_einsum_dense_counts_every_index_once_whatever_output_shape_leaves_unknown():
    # "abc,cd->abd" on (5, 3) into 8: 1 x 5 x 3 x 8 multiply-adds, then a bias add per output element
    assert M.count_flops(one_layer(L.EinsumDense("abc,cd->abd", output_shape=(None, 8), bias_axes="d"), (5, 3))) \
        == 2 * 5 * 3 * 8 + 5 * 8
    assert M.count_flops(one_layer(L.EinsumDense("...b,bc->...c", output_shape=8), (5, 3))) == 2 * 5 * 3 * 8


def test_multi_head_attention_counts_its_projections_scores_softmax_and_weighted_sum():
    query, value = keras.Input((6, 8)), keras.Input((7, 8))
    layer = L.MultiHeadAttention(num_heads=2, key_dim=4, value_dim=3)
    heads, key_dim, value_dim, tq, tv = 2, 4, 3, 6, 7
    projections = (2 * tq * 8 * heads * key_dim + tq * heads * key_dim            # query (with its bias)
                   + 2 * tv * 8 * heads * key_dim + tv * heads * key_dim          # key
                   + 2 * tv * 8 * heads * value_dim + tv * heads * value_dim      # value
                   + 2 * tq * heads * value_dim * 8 + tq * 8)                     # output
    attention = heads * (2 * tq * tv * key_dim + tq * tv + 2 * tq * tv * value_dim) + heads * tq * key_dim
    assert M.count_flops(keras.Model([query, value], layer(query, value))) == projections + attention == 4414


@pytest.mark.parametrize("layer, per_step", [
    (L.SimpleRNN(4), 2 * 4 * (3 + 4) + 4 + 4),
    (L.GRU(4), 2 * 3 * 4 * (3 + 4) + 2 * 3 * 4 + 3 * 4 + 4 * 4),  # reset_after: two biases per gate
    (L.LSTM(4), 2 * 4 * 4 * (3 + 4) + 4 * 4 + 4 * 4 + 5 * 4),
])
def test_recurrent_layers_count_their_gate_products_per_time_step(layer, per_step):
    assert M.count_flops(one_layer(layer, (5, 3))) == 5 * per_step


def test_wrappers_and_augmentation_layers(caplog):
    lstm_steps = 5 * (2 * 4 * 4 * (3 + 4) + 4 * 4 + 4 * 4 + 5 * 4)
    assert M.count_flops(one_layer(L.Bidirectional(L.LSTM(4)), (5, 3))) == 2 * lstm_steps  # concatenated: free
    assert M.count_flops(one_layer(L.TimeDistributed(L.Dense(2)), (5, 3))) == 5 * (2 * 3 * 2 + 2)
    with caplog.at_level("WARNING", logger="archsearch"):
        assert M.count_flops(one_layer(L.RandomFlip(), (4, 4, 3))) == 0  # identity at inference
    assert not [r for r in caplog.records if "flops" in r.getMessage()]


def test_nested_models_are_walked_and_unknown_layers_named_once(caplog):
    inner = keras.Sequential([keras.Input((4,)), L.Dense(3)])
    inputs = keras.Input((4,))
    outputs = L.Lambda(lambda t: t * 2, name="doubling")(inner(inputs))
    with caplog.at_level("WARNING", logger="archsearch"):
        assert M.count_flops(keras.Model(inputs, outputs)) == 2 * 4 * 3 + 3
        M.count_flops(keras.Model(inputs, outputs))
    said = [r.getMessage() for r in caplog.records if "Lambda" in r.getMessage()]
    assert len(said) == 1 and "flops counts 0 for" in said[0] and "flops_rule" in said[0]


def test_a_subclassed_model_has_no_flops_but_its_parameters():
    class Tiny(keras.Model):
        def __init__(self):
            super().__init__()
            self.dense = L.Dense(2)

        def call(self, x):
            return self.dense(x)

    model = Tiny()
    assert M.measure_before_training(model, ["params"]) == {}  # no weights before its first call
    model(keras.ops.zeros((1, 3)))
    assert M.measure_before_training(model, ["params", "flops"]) == {"params": 8.0}
    assert M.example_inputs(model, 2).shape == (2, 3)


@pytest.mark.skipif(importlib.util.find_spec("tensorflow") is None, reason="TensorFlow's profiler is the reference")
def test_flops_match_tensorflow_s_profiler_on_a_small_cnn():
    import tensorflow as tf
    from tensorflow.python.framework.convert_to_constants import convert_variables_to_constants_v2

    inputs = keras.Input((8, 8, 3))
    x = L.Conv2D(4, 3, padding="same")(inputs)
    x = L.MaxPooling2D(2)(x)
    x = L.DepthwiseConv2D(3, padding="same")(x)
    x = L.SeparableConv2D(6, 3, padding="same")(x)
    x = L.Conv2DTranspose(2, 3, strides=2, padding="same")(x)
    x = L.AveragePooling2D(2)(x)
    x = L.Flatten()(x)
    model = keras.Model(inputs, L.Dense(5)(x))

    concrete = tf.function(lambda t: model(t, training=False)).get_concrete_function(
        tf.TensorSpec((1, 8, 8, 3), tf.float32))
    graph = convert_variables_to_constants_v2(concrete).graph
    builder = tf.compat.v1.profiler.ProfileOptionBuilder
    options = builder(builder.float_operation()).with_empty_output().build()
    profile = tf.compat.v1.profiler.profile(graph=graph, run_meta=tf.compat.v1.RunMetadata(), cmd="op",
                                            options=options)
    assert M.count_flops(model) == profile.total_float_ops > 0


# ------------------------------------------------------------ parameters, size, latency
def test_parameters_and_size_of_a_model():
    model = keras.Sequential([keras.Input((4,)), L.Dense(3), L.BatchNormalization()])
    got = M.measure_before_training(model, ["params", "trainable_params", "model_size_mb", "latency_ms"])
    assert got == {"params": 27.0, "trainable_params": 21.0, "model_size_mb": 27 * 4 / 2**20}


def test_latency_is_measured_at_batch_1_and_at_the_batch_size():
    model = keras.Sequential([keras.Input((4,)), L.Dense(3)])
    got = M.measure_after_training(model, ["params", "latency_ms", "latency_batch_ms"], batch_size=8)
    assert set(got) == {"latency_ms", "latency_batch_ms"}
    assert all(math.isfinite(v) and v > 0 for v in got.values())


# ------------------------------------------------------------ the runner: refused before training
def _builder(hp):
    model = keras.Sequential([keras.Input((4,)), L.Dense(hp.Int("units", 1, 64)), L.Dense(2)])
    model.compile(loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    return model


class Reporter:
    def __init__(self):
        self.epochs = []

    def on_epoch(self, trial, epoch, metrics, value):
        self.epochs.append(epoch)
        return False


def test_a_model_breaking_a_constraint_known_before_training_is_infeasible_and_never_trained(tmp_path):
    runner = Runner(_builder, FitArguments(), Objective("val_accuracy"), tmp_path,
                    constraints=["params <= 100", "latency_ms <= 5"], measures=["flops"])
    assert runner.measures == ("params", "latency_ms", "flops")
    hp = HyperParameters()
    hp.Int("units", 1, 64)
    reporter = Reporter()
    outcome = runner.run(Trial(0, {"units": 30}), hp.with_values({"units": 30}), reporter)
    params = 4 * 30 + 30 + 30 * 2 + 2
    assert (outcome.status, outcome.failure_kind, outcome.epochs_done, reporter.epochs) == (FAILED, "infeasible", 0, [])
    assert outcome.error == f"infeasible: params = {params} breaks params <= 100; not trained"
    assert outcome.metrics == {"params": params, "flops": 2 * (4 * 30 + 30 * 2) + 32,
                               "constraint_violation": pytest.approx((params - 100) / 100)}


def test_max_model_size_keeps_its_message_and_records_its_violation(tmp_path):
    from archsearch.training.settings import TrainerSettings

    runner = Runner(_builder, FitArguments(), Objective("val_accuracy"), tmp_path,
                    trainer=TrainerSettings(max_model_size=100))
    hp = HyperParameters()
    hp.Int("units", 1, 64)
    outcome = runner.run(Trial(0, {"units": 30}), hp.with_values({"units": 30}))
    assert outcome.failure_kind == "infeasible"
    assert outcome.error == "the model has 212 parameters, more than max_model_size=100; not trained"
    assert outcome.metrics == {"params": 212.0, "constraint_violation": pytest.approx(1.12)}


def test_names_are_checked_before_training_measures_pass_unknown_constraints_fail(tmp_path):
    hp = HyperParameters().with_values({})
    model = _builder(hp)
    fine = Runner(_builder, FitArguments(), ParetoObjective.of(["val_accuracy", "params", "latency_ms"]), tmp_path,
                  constraints=["flops <= 1e6", "val_loss <= 3"])
    fine._check_objective(model, hp)  # params is a measure, val_loss a metric the model produces
    typo = Runner(_builder, FitArguments(), Objective("val_accuracy"), tmp_path, constraints=["latncy_ms <= 5"])
    with pytest.raises(ObjectiveError, match=r"constraints.*'latncy_ms' is neither a model measure"):
        typo._check_objective(model, hp)
    # latency first is fine: the main objective, which scores epochs, is the first metric training produces
    Runner(_builder, FitArguments(), ParetoObjective.of(["latency_ms", "val_accuracy"]), tmp_path
           )._check_objective(model, hp)
    for objective in (ParetoObjective.of(["latency_ms", "params"]), Objective("latency_ms")):
        late = Runner(_builder, FitArguments(), objective, tmp_path)
        with pytest.raises(ObjectiveError, match="latency_ms is measured after training"):
            late._check_objective(model, hp)


def test_the_python_api_names_the_argument_it_refuses(tmp_path):
    import archsearch as kt

    with pytest.raises(ConfigError, match=r"constraints\[0\]"):
        kt.RandomSearch(_builder, objective="val_accuracy", directory=tmp_path, constraints=["params < = 3"])
    with pytest.raises(ConfigError, match=r"measures.*'latency'"):
        kt.RandomSearch(_builder, objective="val_accuracy", directory=tmp_path, measures=["latency"])
    tuner = kt.RandomSearch(_builder, objective=kt.ParetoObjective.of(["val_accuracy", "model_size_mb"]),
                            directory=tmp_path, constraints=["params <= 2e6"], measures=["flops"], overwrite=True)
    assert tuner.goal.mode == "pareto"
    assert tuner.goal.recorded_measures == ("model_size_mb", "params", "flops")
    assert tuner.runner.constraints.describe() == ["params <= 2e+06"]


def test_a_custom_run_trial_through_the_default_one_is_refused_and_measured(tmp_path):
    import archsearch as kt
    from kt_helpers import tiny_data

    def build(hp):
        model = keras.Sequential([keras.Input((6,)), L.Dense(hp.Choice("units", [2, 40])), L.Dense(2)])
        model.compile(loss="sparse_categorical_crossentropy", metrics=["accuracy"])
        return model

    class Own(kt.GridSearch):
        def run_trial(self, trial, *args, **kwargs):
            histories = super().run_trial(trial, *args, **kwargs)
            return {"val_accuracy": max(histories[0].history["val_accuracy"])}  # its own result: no measures

    x, y = tiny_data(n=16)
    tuner = Own(build, objective="val_accuracy", directory=tmp_path, constraints=["params <= 100"],
                measures=["flops"], max_consecutive_failed_trials=1)
    tuner.search(x, y, epochs=1, validation_split=0.25, verbose=0)
    rows = {r["hparams"]["units"]: r for r in tuner.store.rows()}
    assert rows[40]["failure_kind"] == "infeasible" and rows[40]["epochs_done"] == 0
    assert rows[40]["metrics"]["params"] == 6 * 40 + 40 + 82 and rows[40]["metrics"]["constraint_violation"] > 0
    assert rows[2]["status"] == "completed"
    assert rows[2]["metrics"]["params"] == 6 * 2 + 2 + 6 and rows[2]["metrics"]["flops"] == 2 * (12 + 4) + 4
    assert rows[2]["metrics"]["constraint_violation"] == 0.0


# ------------------------------------------------------------ the driver: every trial's final metrics
class MeasuringExecutor(FakeExecutor):
    """FakeExecutor whose trials also report ``latency_ms`` (as a command program may): 1 + trial id."""

    def __init__(self, files, pruned=(), **kwargs):
        super().__init__(files, **kwargs)
        self.pruned = pruned

    def wait(self) -> None:
        spec = self.queue.pop(0)
        trial = spec.trial
        self.handler.trial_started(spec, "fake-0")
        metrics = {"val_accuracy": 0.5 + 0.01 * trial.id, "latency_ms": 1.0 + trial.id}
        self.handler.epoch_ended(trial.id, 1, metrics, metrics["val_accuracy"])
        status = PRUNED if trial.id in self.pruned else COMPLETED
        self.handler.trial_finished(trial.id, TrialOutcome(status=status, value=metrics["val_accuracy"],
                                                           metrics=metrics, epochs_done=1))


def _search(tmp_path, constraints, max_trials=5, **executor):
    store = TrialStore(tmp_path / "trials.db")
    oracle = create_oracle("random", space(), "val_accuracy", max_trials=max_trials, seed=1)
    files = TrialFiles(tmp_path)
    search = Search(oracle, MeasuringExecutor(files, **executor), store, files, constraints=constraints,
                    max_consecutive_failed_trials=2)
    search.run()
    return {r["id"]: r for r in store.rows()}


def test_the_driver_makes_trials_breaking_a_constraint_infeasible_and_never_counts_them(tmp_path):
    rows = _search(tmp_path, Constraints.parse(["latency_ms <= 2.5"]), pruned=(4,))
    assert len(rows) == 5  # four infeasible trials in a row did not stop the search (max 2 failures in a row)
    assert [rows[i]["status"] for i in range(5)] == ["completed", "completed", "failed", "failed", "failed"]
    assert rows[0]["metrics"]["constraint_violation"] == 0.0
    for i in (2, 3, 4):  # the pruned trial 4 too: judged on what it has
        assert rows[i]["failure_kind"] == "infeasible"
        assert rows[i]["error"] == f"infeasible: latency_ms = {1 + i:g} breaks latency_ms <= 2.5"
        assert rows[i]["metrics"]["constraint_violation"] == pytest.approx((1 + i - 2.5) / 2.5)


def test_a_completed_trial_without_a_constrained_value_fails_loudly(tmp_path):
    rows = _search(tmp_path, Constraints.parse(["flops <= 1e6"]), max_trials=1)
    assert rows[0]["status"] == "failed" and rows[0]["failure_kind"] == "no_metric"
    assert "reported no flops, which the constraint flops <= 1e+06 bounds" in rows[0]["error"]


def test_a_command_search_refuses_measures_it_cannot_take():
    from archsearch.cli.command_search import check_no_measures

    check_no_measures(())
    with pytest.raises(ConfigError, match=r"search.measures.*trial=command"):
        check_no_measures(("flops",))


def test_without_constraints_the_driver_changes_nothing(tmp_path):
    rows = _search(tmp_path, None, max_trials=2)
    assert all(r["status"] == "completed" and "constraint_violation" not in r["metrics"] for r in rows.values())


# ------------------------------------------------------------ one search end to end (in process)
@pytest.mark.xdist_group("pareto_run")
def test_a_constrained_search_records_measures_and_skips_training_infeasible_trials(pareto_run):
    run, _ = pareto_run  # 5 trials, params <= 20000, measures flops and latency_ms, max_consecutive_failed_trials=1
    store = TrialStore(run / "trials.db")
    rows = store.rows()
    infeasible = [r for r in rows if r["failure_kind"] == "infeasible"]
    feasible = [r for r in rows if r["status"] == "completed"]
    assert len(rows) == 5 and infeasible and feasible, [(r["status"], r["metrics"].get("params")) for r in rows]
    for r in infeasible:
        assert r["metrics"]["params"] > 20000 and r["metrics"]["constraint_violation"] > 0
        assert r["epochs_done"] == 0 and store.epochs(r["id"]) == []
    for r in feasible:
        assert r["metrics"]["params"] <= 20000 and r["metrics"]["constraint_violation"] == 0.0
        assert r["metrics"]["flops"] > 0 and 0 < r["metrics"]["latency_ms"] < math.inf
    with open(run / "trials.csv", newline="") as fh:
        header = next(csv.reader(fh))
    assert {"params", "flops", "latency_ms", "constraint_violation"} <= set(header)
