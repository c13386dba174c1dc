"""Objective: direction inference, explicit directions, create() from every accepted form, and errors."""

from __future__ import annotations

import math
from types import SimpleNamespace

import pytest

from archsearch import Objective
from archsearch.errors import ConfigError
from archsearch.objective import infer_direction, is_finite


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
                                  "loss_scale_factor"])
def test_scores_are_maximised(name):
    assert infer_direction(name) == "max"
    assert Objective(name).direction == "max"
    assert Objective(name).sign == 1.0


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
        (None, ["objective"]),
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
    assert str(obj) == "val_loss (min)"


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
