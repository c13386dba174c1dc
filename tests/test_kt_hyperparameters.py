"""KerasTuner's documented behaviour of hyperparameters, objectives and trials, on archsearch's classes.

Keras-free and fast: each test builds the objects directly.
"""

from __future__ import annotations

import numpy as np
import pytest

from archsearch.engine import hyperparameters as hpm  # KerasTuner's keras_tuner.engine.hyperparameters
from archsearch.errors import ConfigError, SearchSpaceError
from archsearch.space.hyperparameters import HyperParameters
from archsearch.space.parameters import Condition
from archsearch.core.objective import MultiObjective, Objective, create_objective
from archsearch.core.trial import Trial, TrialStatus


# --------------------------------------------------------------------------- declaration errors


@pytest.mark.parametrize("make, exc, phrases", [
    (lambda: hpm.Boolean("flag", default=None), ValueError, ["'flag'", "None", "must be a Python boolean"]),
    (lambda: hpm.Fixed("f", None), ValueError, ["'f'", "None", "value must be an"]),
    (lambda: hpm.Fixed("f", [1, 2]), ValueError, ["'f'", "list", "value must be an"]),
    (lambda: hpm.Choice("c", [1, 2, 3], default=4), ValueError, ["'c'", "default 4", "default value should be"]),
    (lambda: hpm.Choice("c", ["a", "b"], ordered=True), ValueError, ["'c'", "must be `False`"]),
    (lambda: hpm.Choice("c", []), ValueError, ["'c'", "`values` must be provided"]),
    (lambda: hpm.Choice("c", ["a", "b", 0]), TypeError, ["'c'", "['int', 'str']", "can contain only one"]),
    (lambda: hpm.Choice("c", [{"a": 1}, {"a": 2}]), TypeError, ["'c'", "dict", "can contain only `int`"]),
    (lambda: hpm.Int("i", 0, 10, sampling="cubic"), ValueError, ["'i'", "'cubic'", "sampling must be one of"]),
    (lambda: hpm.Int("i", 1, 0), ValueError, ["'i'", "min_value 1 is greater than the max_value 0"]),
    (lambda: hpm.Int("i", -10, -1, sampling="log"), ValueError, ["'i'", "-10", "does not support negative values"]),
    (lambda: hpm.Int("k", 1, 10, step=1, sampling="log"), ValueError,
     ["For HyperParameters.Int(name='k'), expected step > 1", "step=1"]),
    (lambda: hpm.Int("i", 0.5, 10), ValueError, ["'i'", "0.5", "must be an int"]),
])
def test_declaration_errors_carry_our_message_and_keras_tuners_phrase(make, exc, phrases):
    with pytest.raises(exc) as info:
        make()
    assert isinstance(info.value, SearchSpaceError)
    for phrase in phrases:
        assert phrase in str(info.value)


def test_sampling_none_is_linear():
    assert hpm.Int("i", 2, 4, sampling=None).sampling == "linear"


# --------------------------------------------------------------------------- numeric grids


def test_reverse_log_with_a_step_is_the_log_grid_mirrored_dense_near_max():
    rg = hpm.Float("rg", 0.01, 100, step=10, sampling="reverse_log")
    expected = [0.01, 90.01, 99.01, 99.91, 100.0]
    assert rg.grid() == pytest.approx(expected)  # ascending for grid search
    assert all(rg.contains(v) for v in rg.grid())
    assert any(abs(rg.random_sample(seed) - x) < 1e-4 for seed in range(5) for x in expected)
    # KerasTuner's unit order: max first, so 0.3 (the second of five bins) is 99.91
    assert rg.value_to_prob(99.91) == pytest.approx(0.3)
    assert rg.prob_to_value(0.3) == pytest.approx(99.91)


def test_int_log_values_with_and_without_step():
    with_step = hpm.Int("rg", 2, 32, step=2, sampling="log")
    assert list(with_step.values) == [2, 4, 8, 16, 32]
    assert with_step.value_to_prob(4) == pytest.approx(0.3) and with_step.prob_to_value(0.3) == 4
    without = hpm.Int("rg", 2, 32, sampling="log")
    assert without.prob_to_value(without.value_to_prob(4)) == 4
    assert 2 <= without.random_sample(0) <= 32


def test_repr_names_every_field_and_serialize_round_trips():
    units = hpm.Int("j", 1, 10)
    assert "name: 'j'" in repr(units)
    for p in (units, hpm.Choice("c", ["a", "b"], default="b"), hpm.Float("f", 1e-4, 1e-1, sampling="log"),
              hpm.Boolean("b", True), hpm.Fixed("x", 3)):
        assert repr(hpm.deserialize(hpm.serialize(p))) == repr(p)
    with pytest.raises(SearchSpaceError, match="unknown class_name 'Tensor'"):
        hpm.deserialize({"class_name": "Tensor", "config": {}})


# --------------------------------------------------------------------------- the space


def test_space_reads_as_keras_tuners_list_and_as_archsearchs_dict():
    hp = HyperParameters()
    assert hp.space == [] and hp.values == {}
    hp.Choice("choice", [1, 2, 3], default=2)
    assert len(hp.space) == 1 and hp.space[0].name == "choice"
    assert hp.space["choice"] is hp.space[0] and list(hp.space.keys()) == ["choice"]
    assert hp.copy().space[0].name == "choice"


def test_name_scopes_prefix_names_and_nest():
    hp = HyperParameters()
    hp.Choice("choice", [1, 2, 3], default=2)
    with hp.name_scope("block1"):
        hp.Choice("choice", [4, 5, 6], default=5)
        with hp.name_scope("inner"):
            hp.Choice("choice", [7, 8, 9], default=8)
        assert hp.get("choice") == 5  # read inside the scope: its own name
    assert hp.values == {"choice": 2, "block1/choice": 5, "block1/inner/choice": 8}


def test_one_name_under_two_conditions_is_two_declarations():
    hp = HyperParameters()
    hp.Choice("a", [1, 2, 3], default=2)
    assert hp.Int("b", 0, 10, parent_name="a", parent_values=1, default=5) is None
    assert hp.Int("b", 0, 100, parent_name="a", parent_values=2, default=4) == 4
    assert hp.values == {"a": 2, "b": 4}
    assert [p.max_value for p in hp.declarations("b")] == [10, 100]
    assert hp.space["b"].conditions[0].name == "a"  # KerasTuner's Parent(name, values)
    # the oracle's helpers use the declaration that is active
    assert hp.active_values({"a": 2}) == {"a": 2, "b": 4}
    assert hp.active_values({"a": 1}) == {"a": 1, "b": 5}
    assert hp.grid_size() == 1 + 11 + 101
    hp.validate_values({"a": 2, "b": 50})  # in range of the second declaration


def test_conditional_scopes_nest_and_reject_a_parent_of_the_same_name():
    hp = HyperParameters()
    hp.Choice("a", [1, 2, 3], default=3)
    with hp.conditional_scope("a", [1, 3]):
        assert hp.Choice("b", [4, 5, 6], default=6) == 6
        with hp.conditional_scope("b", 6):
            with hp.name_scope("d"):
                assert hp.Choice("e", [10, 11]) == 10
    assert hp.space["d/e"].conditions == (Condition("a", (1, 3)), Condition("b", (6,)))
    with pytest.raises(ValueError, match="cannot have the same name") as info:
        with hp.conditional_scope("a", [1, 3]):
            hp.Choice("a", [4, 5, 6])
    assert "'a'" in str(info.value)
    with pytest.raises(SearchSpaceError, match="'ghost' is not declared yet.*not defined"):
        with hp.conditional_scope("ghost", 2):
            pass


def test_item_access_and_get():
    hp = HyperParameters()
    hp.Int("a", 0, 10, default=3)
    hp.Choice("b", [1, 2], default=2)
    with hp.conditional_scope("b", 1):
        hp.Float("c", -10, 10, default=3)
        with pytest.raises(ValueError, match="'c'.*is currently inactive") as info:
            hp["c"]
        assert isinstance(info.value, KeyError)  # no value: also a KeyError, as archsearch always raised
    with hp.conditional_scope("b", 2):
        hp.Float("c", -30, -20, default=-25)
    assert (hp["a"], hp["b"], hp["c"]) == (3, 2, -25)
    with pytest.raises(KeyError, match="'d' does not exist"):
        hp["d"]
    with pytest.raises(KeyError, match="'wrong' does not exist"):
        hp.get("wrong")
    assert hp.get("wrong", None) is None and hp.get("wrong", 7) == 7
    assert "a" in hp and "c" in hp and "d" not in hp


def test_get_of_a_declared_inactive_name_raises_value_error_as_in_keras_tuner():
    """KerasTuner's ``hp.get`` raises ``ValueError("b is currently inactive.")`` (issue 24: it returned None)."""
    hp = HyperParameters()
    hp.Choice("a", [1, 2], default=1)
    with hp.conditional_scope("a", 2):
        hp.Int("b", 1, 3)
    with pytest.raises(ValueError, match="'b'.*is currently inactive.*hp.get\\('b', None\\)"):
        hp.get("b")
    assert hp.get("b", None) is None and not hp.is_active("b") and not hp.is_active(hp.space["b"])
    assert hp.with_values({"a": 2}).get("b") == 1  # active under a=2: its value (the default)


def test_merge_overwrites_or_keeps_and_gives_values_to_active_parameters_only():
    hp = HyperParameters()
    hp.Int("a", 0, 100)
    hp.Fixed("b", 2)
    hp.Int("c", 10, 100, default=30)
    other = HyperParameters()
    other.Fixed("a", 3)
    hp.merge(other)
    assert (hp.get("a"), hp.get("b"), hp.get("c")) == (3, 2, 30)
    assert isinstance(hp.space["a"], hpm.Fixed) and list(hp.space.keys()) == ["a", "b", "c"]
    third = HyperParameters()
    third.Fixed("a", 5)
    third.Choice("d", [1, 2, 3], default=1)
    hp.merge(third, overwrite=False)
    assert (hp.get("a"), hp.get("d")) == (3, 1)

    source = HyperParameters()
    source.Choice("x", [1, 2, 3], default=3)
    with source.conditional_scope("x", 2):
        source.Fixed("y", 4)
    target = HyperParameters()
    target.merge(source)
    assert target.values == {"x": 3} and "y" in target.space


def test_keras_tuner_config_round_trips_with_conditions_and_alternates():
    hp = HyperParameters()
    hp.Choice("model", ["v1", "v2"])
    with hp.conditional_scope("model", "v1"):
        hp.Int("layers", 1, 3)
    with hp.conditional_scope("model", "v2"):
        hp.Int("layers", 2, 4)
    hp.values["model"] = "v2"
    again = hpm.deserialize(hpm.serialize(hp))
    assert again.values == hp.values
    assert [repr(p) for p in again.all_declarations()] == [repr(p) for p in hp.all_declarations()]
    assert HyperParameters.from_config(hp.keras_tuner_config()).values == hp.values
    # archsearch's declarative form still round-trips
    assert HyperParameters.from_config(hp.get_config()).get_config() == hp.get_config()


# --------------------------------------------------------------------------- objectives


def test_objective_str_and_repr_are_keras_tuners_and_the_label_is_readable():
    objective = Objective("accuracy", "min")
    assert repr(objective) == str(objective) == 'Objective(name="accuracy", direction="min")'
    assert objective.label == "accuracy (min)"
    multi = create_objective(["loss", "accuracy"])
    assert str(multi) == ('MultiObjective(name="multi_objective", direction="min"): '
                          '[Objective(name="loss", direction="min"), Objective(name="accuracy", direction="max")]')
    assert multi.label == "multi_objective (min) of loss (min), accuracy (max)"


def test_a_list_is_a_multi_objective():
    multi = create_objective(["loss", "accuracy"])
    assert isinstance(multi, MultiObjective) and isinstance(multi, Objective)
    assert [(o.name, o.direction) for o in multi.objectives] == [("loss", "min"), ("accuracy", "max")]
    assert multi == create_objective(["accuracy", "loss"])
    assert multi != create_objective(["loss", "val_accuracy"]) and multi != Objective("loss")
    assert repr(multi) == ('MultiObjective(name="multi_objective", direction="min"): '
                           '[Objective(name="loss", direction="min"), Objective(name="accuracy", direction="max")]')
    assert multi.get_value({"accuracy": 3.0, "loss": 2.0}) == -1.0


def test_a_repeated_metric_counts_twice_and_two_directions_are_refused():
    twice = create_objective(["loss", "loss", "accuracy"])  # KerasTuner's way to weigh a metric
    assert twice.get_value({"loss": 2.0, "accuracy": 3.0}) == 1.0
    assert twice.metric_names == ("loss", "accuracy")
    assert twice != create_objective(["loss", "accuracy", "accuracy"])
    assert create_objective(["loss", "loss"]) != create_objective(["loss", "accuracy"])
    with pytest.raises(ConfigError, match="gives a metric two directions"):
        create_objective(["loss", Objective("loss", "max")])
    with pytest.raises(ConfigError, match="nests a list"):
        create_objective([["loss", "accuracy"], "mse"])


def test_an_objective_of_an_unknown_type_is_a_type_error():
    with pytest.raises(TypeError, match="not understood, expected str") as info:
        create_objective([3, "accuracy"])
    assert isinstance(info.value, ConfigError) and "3" in str(info.value)


# --------------------------------------------------------------------------- trials


def test_keras_tuner_trial_constructor_and_summary(capsys):
    hp = HyperParameters()
    hp.Int("a", 0, 10, default=3)
    trial = Trial(hyperparameters=hp, trial_id="3", status=TrialStatus.FAILED, message="stack_trace\nerror_type\n")
    assert (trial.id, trial.trial_id, trial.hparams, trial.status) == (3, "3", {"a": 3}, "failed")
    assert trial.hyperparameters is hp and trial.message == trial.error
    trial.summary()
    out = capsys.readouterr().out
    assert "Trial 3 summary" in out and "a: 3" in out and "stack_trace\nerror_type\n" in out
    assert Trial(hp, trial_id="t1", status="COMPLETED").status == "completed"
    assert Trial(hp, status="INVALID").status == "failed"


def test_hand_made_trials_get_distinct_ids_and_keep_their_own_hyperparameters(tmp_path):
    """KerasTuner code builds trials by hand, keys a dict by their ids and asks for the best values."""
    import archsearch as kt

    made = []
    for value, score in ((1, 10.0), (2, 9.0)):
        hp = HyperParameters()
        hp.Fixed("a", value)
        trial = Trial(hyperparameters=hp)
        trial.status, trial.score = "COMPLETED", score
        made.append(trial)
    assert made[0].trial_id != made[1].trial_id
    from kt_helpers import build_mlp

    tuner = kt.RandomSearch(hypermodel=build_mlp, objective=kt.Objective("score", "max"), max_trials=2,
                            directory=tmp_path)
    tuner.oracle.trials = {t.trial_id: t for t in made}
    best = tuner.get_best_hyperparameters(2)
    assert [hp["a"] for hp in best] == [1, 2]  # names the oracle's space never declared


def test_archsearch_trial_constructor_is_unchanged():
    trial = Trial(4, {"units": 32}, budget=3)
    assert (trial.id, trial.hparams, trial.budget, trial.status) == (4, {"units": 32}, 3, "running")
    assert Trial(id=5, hparams={}, hyperparameters=None).id == 5


def test_a_status_equals_keras_tuners_spelling_and_stays_lower_case():
    trial = Trial(1, {})
    assert trial.status == "RUNNING" and trial.status == "running" and not trial.done
    trial.status = "COMPLETED"  # as KerasTuner code assigns it
    assert trial.done and trial.status == TrialStatus.COMPLETED and str(trial.status) == "completed"
    assert trial.status in {"completed"} and trial.status != "FAILED"
    trial.status = TrialStatus.INVALID
    assert trial.status == "INVALID" and trial.status == "failed" and repr(trial.status) == "'failed'"


def test_iterating_the_space_yields_the_parameter_objects_in_declaration_order():
    hp = HyperParameters()
    hp.Int("units", 8, 64)
    hp.Choice("act", ["relu", "tanh"])
    assert [p.name for p in hp.space] == ["units", "act"]
    assert all(isinstance(p, hpm.HyperParameter) for p in hp.space)
    assert "units" in hp.space and list(hp.space.keys()) == ["units", "act"]
    for p in hp.space:  # declaring while iterating, as a KerasTuner oracle may
        hp.Fixed(p.name + "_copy", 1)
    assert len(hp.space) == 4


def test_trial_metrics_answer_keras_tuner_s_tracker_questions():
    trial = Trial(0, {})
    trial.metrics = {"val_loss": 0.25, "accuracy": 0.9}
    assert trial.metrics.exists("val_loss") and not trial.metrics.exists("loss")
    assert trial.metrics.get_best_value("accuracy") == 0.9 and trial.metrics.get_best_value("loss") is None
    assert trial.metrics == {"val_loss": 0.25, "accuracy": 0.9}


def test_trial_metrics_keep_every_reported_step_for_get_history():
    """KerasTuner's ``trial.metrics.get_history(name)``: each step reported to the oracle, in order, kept
    when the trial's best metrics are replaced at the end."""
    from archsearch.oracles import create_oracle

    space = HyperParameters()
    space.Float("x", 0.0, 1.0)
    oracle = create_oracle("random", space, "val_loss", seed=0)
    trial = oracle.ask()
    oracle.report(trial.id, 2, {"val_loss": 0.5, "acc": 0.7})
    oracle.report(trial.id, 1, {"val_loss": 0.8, "acc": 0.6})
    oracle.tell(trial.id, {"val_loss": 0.5, "acc": 0.7})
    history = trial.metrics.get_history("val_loss")
    assert [(h.step, h.value) for h in history] == [(1, [0.8]), (2, [0.5])]
    assert [h.mean() for h in trial.metrics.get_history("acc")] == [0.6, 0.7]
    assert trial.metrics == {"val_loss": 0.5, "acc": 0.7}
    with pytest.raises(ValueError, match="Unknown metric: 'loss'"):
        trial.metrics.get_history("loss")


def test_trial_metrics_answer_every_question_of_keras_tuner_s_metrics_tracker():
    """``get_direction`` was missing (issue 24), and the other MetricsTracker methods a KerasTuner user calls:
    register, update (one value per execution at a step), get_best_value/get_best_step in the metric's
    own direction, get_last_value and get_statistics."""
    from archsearch.oracles import create_oracle

    space = HyperParameters()
    space.Float("x", 0.0, 1.0)
    oracle = create_oracle("random", space, Objective("val_quality", "max"), seed=0)
    trial = oracle.ask()
    assert not trial.metrics.exists("val_quality")  # nothing reported yet
    oracle.report(trial.id, 1, {"val_quality": 0.5, "loss": 0.9})
    oracle.report(trial.id, 2, {"val_quality": 0.7, "loss": 0.4})
    oracle.report(trial.id, 3, {"val_quality": 0.6, "loss": 0.6})
    oracle.tell(trial.id, {"val_quality": 0.7, "loss": 0.4})
    metrics = oracle.get_trial(trial.trial_id).metrics
    assert metrics.get_direction("val_quality") == "max"  # the objective's, not guessed from the name
    assert metrics.get_direction("loss") == "min"
    assert metrics.get_best_value("val_quality") == 0.7 and metrics.get_best_step("val_quality") == 2
    assert metrics.get_best_value("loss") == 0.4 and metrics.get_last_value("loss") == 0.6
    stats = metrics.get_statistics("val_quality")
    assert stats["min"] == 0.5 and stats["max"] == 0.7 and stats["median"] == 0.6
    assert stats["mean"] == pytest.approx(0.6) and stats["std"] == pytest.approx(np.std([0.5, 0.7, 0.6]))
    with pytest.raises(ValueError, match="Unknown metric"):
        metrics.get_direction("val_loss")

    metrics.register("custom", direction="max")
    with pytest.raises(ValueError, match="Metric already exists: custom"):
        metrics.register("custom")
    with pytest.raises(ValueError, match="direction"):
        metrics.register("other", direction="up")
    assert metrics.get_history("custom") == [] and metrics.get_statistics("custom") == {}
    assert metrics.update("custom", 1.0, step=1) and metrics.update("custom", 3.0, step=1)  # a second execution
    assert not metrics.update("custom", 0.5, step=2)
    assert [(o.step, o.value) for o in metrics.get_history("custom")] == [(1, [1.0, 3.0]), (2, [0.5])]
    assert metrics.get_best_value("custom") == 2.0 and metrics.get_direction("custom") == "max"
    assert metrics.update("new_acc", 0.3) and metrics.get_direction("new_acc") == "max"  # registered on first update
