"""Objective: direction inference, explicit directions, create() from every accepted form, and errors."""

from __future__ import annotations

import math
from types import SimpleNamespace

import pytest

from archsearch import Objective
from archsearch.errors import ConfigError
from archsearch.core.objective import infer_direction, is_finite


@pytest.mark.parametrize(
    "name",
    ["loss", "val_loss", "VAL_LOSS", "val_dice_loss", "error", "val_error", "mean_squared_error",
     "val_mean_absolute_error", "val_mse", "mae", "val_rmse", "val_mape", "categorical_crossentropy",
     "hinge", "kl_divergence"],
)
def test_losses_and_errors_are_minimised(name):
    assert infer_direction(name) == "min"
    assert Objective(name).direction == "min"
    assert Objective(name).sign == -1.0


@pytest.mark.parametrize("name", ["accuracy", "val_accuracy", "val_f1", "val_iou", "auc", "val_precision",
                                  "val_mean_io_u", "top_k_categorical_accuracy", "score"])
def test_scores_are_maximised(name):
    assert infer_direction(name) == "max"
    assert Objective(name).direction == "max"
    assert Objective(name).sign == 1.0


@pytest.mark.parametrize("name", ["custom_metric", "loss_scale_factor", "val_throughput"])
def test_a_name_that_says_neither_loss_nor_score_needs_its_direction(name):
    assert infer_direction(name) is None
    with pytest.raises(ConfigError, match=f"objective.direction: Could not infer optimization direction of '{name}'"):
        Objective(name)
    assert Objective(name, "min").direction == "min"


@pytest.mark.parametrize(
    "given, expected",
    [("max", "max"), ("min", "min"), ("MAX", "max"), ("maximize", "max"), ("minimize", "min"), ("Minimize", "min")],
)
def test_explicit_direction_wins_over_inference(given, expected):
    assert Objective("val_loss", given).direction == expected
    assert Objective("val_accuracy", given).direction == expected


def test_bad_direction_and_name():
    with pytest.raises(ConfigError, match=r"objective\.direction.*'up'.*min or max") as info:
        Objective("val_loss", "up")
    assert info.value.field == "objective.direction"
    with pytest.raises(ConfigError, match="objective"):
        Objective("")
    with pytest.raises(ConfigError, match="objective"):
        Objective(None)  # type: ignore[arg-type]


def test_create_from_str_dict_and_objective():
    assert Objective.create("val_loss") == Objective("val_loss", "min")
    assert Objective.create({"name": "val_f1", "direction": "max"}) == Objective("val_f1", "max")
    assert Objective.create({"name": "val_f1"}).direction == "max"
    assert Objective.create({"name": "val_loss"}).direction == "min"
    assert Objective.create({"name": "val_loss", "direction": "max"}).direction == "max"
    obj = Objective("val_iou", "max")
    assert Objective.create(obj) is obj
    # anything shaped like keras_tuner.Objective(name, direction)
    kt_like = SimpleNamespace(name="val_auc", direction="max")
    assert Objective.create(kt_like) == Objective("val_auc", "max")


@pytest.mark.parametrize(
    "spec, words",
    [
        ({"metric": "val_loss"}, ["objective", "name, direction"]),
        ({"name": "val_loss", "mode": "min"}, ["objective", "mode"]),
        (42, ["objective", "42"]),
        ([], ["objective", "empty"]),
        (["val_loss", {"name": "val_loss", "direction": "max"}], ["objective", "two directions"]),
        ({"name": "val_loss", "direction": "sideways"}, ["objective.direction", "sideways"]),
    ],
)
def test_create_errors(spec, words):
    with pytest.raises(ConfigError) as info:
        Objective.create(spec)
    for word in words:
        assert word in str(info.value)


def test_objective_is_immutable_and_prints_nicely():
    obj = Objective("val_loss")
    with pytest.raises(AttributeError):
        obj.direction = "max"  # type: ignore[misc]
    assert obj.label == "val_loss (min)"
    assert str(obj) == repr(obj) == 'Objective(name="val_loss", direction="min")'  # KerasTuner's str


def test_better_and_best_treat_none_and_nan_as_worst():
    low, high = Objective("val_loss"), Objective("val_accuracy")
    assert low.better(0.1, 0.2) and not low.better(0.2, 0.1) and not low.better(0.2, 0.2)
    assert high.better(0.9, 0.5) and not high.better(0.5, 0.9)
    for obj in (low, high):
        assert obj.better(0.5, None) and obj.better(0.5, math.nan)
        assert not obj.better(None, 0.5) and not obj.better(math.nan, 0.5) and not obj.better(math.inf, 0.5)
    assert low.best([0.3, None, 0.1, math.nan, 0.2]) == 0.1
    assert high.best([0.3, None, 0.1, math.nan, 0.2]) == 0.3
    assert low.best([None, math.nan]) is None and high.best([]) is None


def test_value_from_metrics():
    obj = Objective("val_f1")
    assert obj.value_from({"val_f1": 0.75, "loss": 1.0}) == 0.75
    assert isinstance(obj.value_from({"val_f1": 1}), float)
    assert obj.value_from({"f1": 0.75}) is None


def test_is_finite():
    assert is_finite(0) and is_finite(1.5) and is_finite(-3)
    assert not is_finite(None) and not is_finite(math.nan) and not is_finite(-math.inf) and not is_finite("1")


def test_none_is_keras_tuner_s_default_objective():
    assert Objective.create(None) == Objective("default_objective", "min")


def test_a_list_is_one_combined_score_to_minimise_with_its_components_kept():
    """KerasTuner's multi-objective: minimised metrics added, maximised ones subtracted."""
    multi = Objective.create(["val_accuracy", Objective("val_loss", "min")])
    assert multi.name == "multi_objective" and multi.direction == "min"
    assert multi.metric_names == ("val_accuracy", "val_loss")
    assert multi.value_from({"val_accuracy": 0.9, "val_loss": 0.25, "loss": 3.0}) == pytest.approx(-0.65)
    assert multi.value_from({"val_accuracy": 0.9}) is None  # every component is needed
    assert multi.has_value({"val_accuracy": 0.9, "val_loss": 0.2}) and not multi.has_value({})
    assert multi.better_than(-0.7, -0.65) and not multi.better_than(-0.6, -0.65)
    assert Objective.create(["val_f1"]) == Objective("val_f1", "max")  # one name: a plain objective
    assert multi.describe()["components"][0] == {"name": "val_accuracy", "direction": "max"}


def test_keras_tuner_objective_methods():
    objective = Objective("val_acc", "max")
    assert objective.has_value({"val_acc": 0.5}) and not objective.has_value({"acc": 0.5})
    assert objective.get_value({"val_acc": 0.5}) == 0.5
    assert objective.better_than(0.6, 0.5) and not objective.better_than(0.5, 0.5)
