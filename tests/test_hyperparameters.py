"""The search space: types, sampling warps, conditions, declaration errors, config and unit-cube round trips,
and KerasTuner-style define-by-run builders. Pure Python: no Keras, milliseconds per test, except one CLI run
(a few seconds) showing that a parameter whose condition can never hold is dropped with a note."""

from __future__ import annotations

import inspect
import logging
import math

import numpy as np
import pytest
import yaml

from archsearch import HyperParameters
from archsearch.errors import ConfigError, SearchSpaceError
from archsearch.space.categorical import Boolean, Choice, Fixed
from archsearch.space.declarative import parameter_from_config
from archsearch.space.numeric import Float, Int
from archsearch.space.values import values_key
from conftest import REPO

RNG_SEED = 1234


def samples(p, n: int = 2000) -> list:
    rng = np.random.default_rng(RNG_SEED)
    return [p.random_sample(rng) for _ in range(n)]


# --------------------------------------------------------------------------- types and sampling


def test_int_linear_covers_inclusive_bounds_uniformly():
    p = Int("n", 1, 4)
    drawn = samples(p)
    assert set(drawn) == {1, 2, 3, 4}
    assert all(isinstance(v, int) and not isinstance(v, bool) for v in drawn)
    counts = np.bincount(drawn)[1:]
    assert counts.min() > 0.2 * len(drawn)  # each value about a quarter of the draws
    assert p.grid() == [1, 2, 3, 4]
    assert p.from_unit(0.0) == 1 and p.from_unit(1.0) == 4
    assert p.default == 1


def test_int_step_grid_is_inclusive_when_max_is_on_the_grid():
    assert Int("u", 32, 512, step=32).grid() == list(range(32, 513, 32))
    assert Int("o", 1, 9, step=2).grid() == [1, 3, 5, 7, 9]
    assert Int("t", 0, 10, step=3).grid() == [0, 3, 6, 9]  # KerasTuner too: max is not on the grid
    assert set(samples(Int("o", 1, 9, step=2), 500)) == {1, 3, 5, 7, 9}


def test_int_log_step_is_a_multiplication_factor():
    p = Int("units", 8, 256, step=2, sampling="log")
    assert p.grid() == [8, 16, 32, 64, 128, 256]
    assert set(samples(p, 600)) == {8, 16, 32, 64, 128, 256}
    assert Int("u", 1, 100, step=3, sampling="log").grid() == [1, 3, 9, 27, 81]


def test_int_log_without_step_is_log_uniform_and_inclusive():
    p = Int("u", 1, 1000, sampling="log")
    assert p.from_unit(0.0) == 1 and p.from_unit(1.0) == 1000
    assert p.from_unit(0.5) == round(math.sqrt(1000))
    drawn = np.array(samples(p))
    assert drawn.min() >= 1 and drawn.max() <= 1000
    # log-uniform: about a third of the draws in each decade
    assert 0.25 < np.mean(drawn < 10) < 0.42
    assert 0.25 < np.mean(drawn >= 100) < 0.42
    assert p.grid(4) == [1, 10, 100, 1000]


def test_float_linear_range_and_bounds():
    p = Float("x", -1.0, 3.0)
    drawn = np.array(samples(p))
    assert drawn.min() >= -1.0 and drawn.max() <= 3.0
    assert abs(drawn.mean() - 1.0) < 0.1
    assert p.from_unit(0.0) == -1.0 and p.from_unit(1.0) == 3.0
    assert p.grid(5) == pytest.approx([-1.0, 0.0, 1.0, 2.0, 3.0])
    assert p.default == -1.0
    assert all(isinstance(v, float) for v in drawn.tolist())


def test_float_log_spacing():
    p = Float("lr", 1e-4, 1e-1, sampling="log")
    grid = p.grid(4)
    assert grid == pytest.approx([1e-4, 1e-3, 1e-2, 1e-1])
    ratios = [b / a for a, b in zip(grid, grid[1:])]
    assert ratios == pytest.approx([10.0] * 3)
    drawn = np.array(samples(p))
    assert np.all((drawn >= 1e-4) & (drawn <= 1e-1))
    assert 0.27 < np.mean(drawn < 1e-3) < 0.40  # one decade of three
    assert p.from_unit(0.5) == pytest.approx(math.sqrt(1e-4 * 1e-1))


def test_float_reverse_log_is_dense_near_max():
    low, high = 1e-4, 1e-1
    rev = Float("beta", low, high, sampling="reverse_log")
    log = Float("lr", low, high, sampling="log")
    assert rev.from_unit(0.0) == pytest.approx(low) and rev.from_unit(1.0) == pytest.approx(high)
    for u in (0.0, 0.1, 0.37, 0.5, 0.9, 1.0):  # the mirror image of log
        assert rev.from_unit(u) == pytest.approx(high + low - log.from_unit(1.0 - u))
    grid = rev.grid(6)
    gaps = np.diff(grid)
    assert np.all(gaps > 0) and np.all(np.diff(gaps) < 0)  # points get closer towards max
    drawn = np.array(samples(rev))
    assert np.all((drawn >= low) & (drawn <= high))
    assert np.mean(drawn > 0.9 * high) > 0.3
    assert np.mean(drawn < 0.1 * high) < 0.05
    assert np.median(drawn) > (low + high) / 2


def test_float_step_grid_linear_and_log():
    assert Float("d", 0.0, 0.5, step=0.1).grid() == pytest.approx([0.0, 0.1, 0.2, 0.3, 0.4, 0.5])
    assert Float("d", 0.0, 0.3, step=0.1).grid() == pytest.approx([0.0, 0.1, 0.2, 0.3])  # 0.3/0.1 < 3 in floats
    log = Float("lr", 1e-4, 1e-1, step=10, sampling="log")
    assert log.grid() == pytest.approx([1e-4, 1e-3, 1e-2, 1e-1])
    drawn = samples(Float("d", 0.0, 1.0, step=0.25), 400)
    assert sorted(set(drawn)) == [0.0, 0.25, 0.5, 0.75, 1.0]


def test_choice_boolean_fixed_sampling():
    c = Choice("act", ["relu", "tanh", "elu"])
    assert set(samples(c, 300)) == {"relu", "tanh", "elu"}
    assert c.default == "relu" and c.grid() == ["relu", "tanh", "elu"]
    assert c.ordered is False
    assert Choice("k", [3, 5, 7]).ordered is True
    assert Choice("k", [3, 5, 7], default=5).default == 5
    b = Boolean("flag")
    assert set(samples(b, 200)) == {False, True}
    assert b.default is False and Boolean("f", default=True).default is True
    f = Fixed("batch", 32)
    assert set(samples(f, 20)) == {32} and f.grid() == [32] and f.default == 32


def test_min_equal_max_is_a_single_value():
    assert Int("n", 3, 3).grid() == [3]
    assert Float("x", 0.5, 0.5).grid() == [0.5]
    assert Float("x", 0.5, 0.5).from_unit(0.9) == 0.5


# --------------------------------------------------------------------------- unit cube


@pytest.mark.parametrize(
    "param",
    [
        Int("a", 1, 9),
        Int("b", 32, 512, step=32),
        Int("c", 8, 256, step=2, sampling="log"),
        Float("d", 0.0, 1.0, step=0.25),
        Float("e", 1e-4, 1e-1, step=10, sampling="log"),
        Choice("f", ["relu", "tanh", "elu"]),
        Choice("g", [0.1, 0.2, 0.5]),
        Boolean("h"),
        Fixed("i", "same"),
    ],
    ids=lambda p: p.name,
)
def test_discrete_values_round_trip_through_the_unit_cube(param):
    for v in param.grid():
        u = param.to_unit(v)
        assert 0.0 <= u <= 1.0
        assert param.from_unit(u) == pytest.approx(v)


@pytest.mark.parametrize("sampling", ["linear", "log", "reverse_log"])
def test_float_unit_round_trip(sampling):
    p = Float("x", 1e-3, 10.0, sampling=sampling)
    for u in np.linspace(0.0, 1.0, 11):
        assert p.to_unit(p.from_unit(u)) == pytest.approx(u, abs=1e-9)
    for x in (1e-3, 0.01, 0.5, 3.3, 10.0):
        assert p.from_unit(p.to_unit(x)) == pytest.approx(x, rel=1e-9)


@pytest.mark.parametrize("sampling", ["linear", "log", "reverse_log"])
def test_int_unit_round_trip(sampling):
    p = Int("n", 1, 200, sampling=sampling)
    for v in (1, 2, 7, 50, 199, 200):
        assert p.from_unit(p.to_unit(v)) == v


def test_unit_values_are_clipped():
    assert Float("x", 0.0, 1.0).from_unit(-0.5) == 0.0
    assert Float("x", 0.0, 1.0).from_unit(1.5) == 1.0
    assert Int("n", 1, 5).from_unit(2.0) == 5
    assert Choice("c", ["a", "b"]).from_unit(1.0) == "b"


def test_space_sample_with_unit_point():
    hp = HyperParameters.from_config({
        "n": {"type": "int", "min": 1, "max": 4},
        "lr": {"type": "float", "min": 1e-4, "max": 1e-2, "sampling": "log"},
        "act": {"type": "choice", "values": ["relu", "tanh"]},
    })
    rng = np.random.default_rng(0)
    assert hp.sample(rng, unit=[0.0, 0.0, 0.0]) == {"n": 1, "lr": pytest.approx(1e-4), "act": "relu"}
    assert hp.sample(rng, unit=[0.999, 1.0, 0.99]) == {"n": 4, "lr": pytest.approx(1e-2), "act": "tanh"}


# --------------------------------------------------------------------------- conditions

CHAINED = {
    "arch": {"type": "choice", "values": ["mlp", "cnn"]},
    "num_conv": {"type": "int", "min": 1, "max": 3, "when": {"arch": ["cnn"]}},
    "pool": {"type": "boolean", "when": {"num_conv": [2, 3]}},
    "units": {"type": "int", "min": 16, "max": 64, "step": 16},
}


def test_chained_conditions_activate_in_cascade():
    hp = HyperParameters.from_config(CHAINED)
    assert hp.active_values({"arch": "mlp", "num_conv": 3, "pool": True, "units": 32}) == {"arch": "mlp", "units": 32}
    assert hp.active_values({"arch": "cnn", "num_conv": 1, "pool": True}) == {"arch": "cnn", "num_conv": 1, "units": 16}
    assert hp.active_values({"arch": "cnn", "num_conv": 2, "pool": True}) == {
        "arch": "cnn", "num_conv": 2, "pool": True, "units": 16,
    }
    # defaults fill what is active and missing
    assert hp.active_values({}) == {"arch": "mlp", "units": 16}
    assert hp.values == {"arch": "mlp", "units": 16}


def test_with_values_keeps_active_values_only():
    hp = HyperParameters.from_config(CHAINED)
    trial = hp.with_values({"arch": "mlp", "num_conv": 2, "pool": True, "units": 48})
    assert trial.values == {"arch": "mlp", "units": 48}
    assert trial.get("num_conv", None) is None and trial.get("pool", None) is None
    assert trial.get("num_conv", 7) == 7
    assert "num_conv" not in trial
    with pytest.raises(KeyError, match="num_conv"):
        trial["num_conv"]
    assert trial.is_active("units") and not trial.is_active("pool")
    assert hp.values == {"arch": "mlp", "units": 16}  # the original is untouched


def test_sampled_values_respect_conditions():
    hp = HyperParameters.from_config(CHAINED)
    rng = np.random.default_rng(3)
    seen_pool = False
    for _ in range(300):
        v = hp.sample(rng)
        assert ("num_conv" in v) == (v["arch"] == "cnn")
        assert ("pool" in v) == (v.get("num_conv") in (2, 3))
        seen_pool |= "pool" in v
    assert seen_pool


def test_several_conditions_must_all_hold_and_round_trip():
    config = {
        "a": ["x", "y"],
        "flag": {"type": "boolean"},
        "c": {"type": "float", "min": 0.0, "max": 1.0, "when": [{"a": ["x"]}, {"flag": [True]}]},
    }
    hp = HyperParameters.from_config(config)
    assert "c" not in hp.active_values({"a": "x", "flag": False})
    assert "c" not in hp.active_values({"a": "y", "flag": True})
    assert "c" in hp.active_values({"a": "x", "flag": True})
    again = HyperParameters.from_config(hp.get_config())
    assert again.get_config() == hp.get_config()
    assert hp.get_config()["c"]["when"] == [{"a": ["x"]}, {"flag": [True]}]


def test_space_grid_counts_conditional_combinations_once():
    hp = HyperParameters.from_config(CHAINED)
    combos = list(hp.grid())
    # mlp: 4 units; cnn: num_conv 1 -> 4, num_conv 2/3 -> 2 pools x 4 units each
    assert len(combos) == 4 + 4 + 2 * 2 * 4 == hp.grid_size()
    assert len({values_key(c) for c in combos}) == len(combos)
    for c in combos:
        assert c == hp.active_values(c)


# --------------------------------------------------------------------------- declaration errors


@pytest.mark.parametrize(
    "spec, words",
    [
        ({"type": "int", "min": 5, "max": 1}, ["min_value 5", "greater than the max_value 1"]),
        ({"type": "float", "min": 1.0, "max": 0.5}, ["min_value", "greater than the max_value"]),
        ({"type": "int", "min": 0, "max": 10, "step": 0}, ["step", "> 0", "0"]),
        ({"type": "float", "min": 0.0, "max": 1.0, "step": -0.1}, ["step", "> 0"]),
        ({"type": "float", "min": 0.0, "max": 1.0, "sampling": "log"}, ["log", "min > 0"]),
        ({"type": "int", "min": -3, "max": 10, "sampling": "reverse_log"}, ["reverse_log", "min > 0"]),
        ({"type": "float", "min": 1.0, "max": 2.0, "sampling": "cubic"}, ["cubic", "linear, log, reverse_log"]),
        ({"type": "int", "min": 1, "max": 64, "step": 1, "sampling": "log"}, ["multiplication factor", "> 1"]),
        ({"type": "choice", "values": []}, ["empty"]),
        ({"type": "choice"}, ["missing values"]),
        ({"type": "tensor", "min": 1}, ["unknown type 'tensor'", "int", "float", "choice"]),
        ({"type": "int", "min": 1, "max": 2, "stp": 1}, ["unknown field", "stp", "step"]),
        ({"type": "int", "max": 2}, ["missing min"]),
        ({"type": "fixed"}, ["missing value"]),
        ({"type": "int", "min": 0, "max": 3, "default": 7}, ["default 7", "outside"]),
        ({"type": "float", "min": 0.0, "max": 1.0, "default": 2.5}, ["default 2.5", "outside"]),
        ({"type": "choice", "values": ["a", "b"], "default": "c"}, ["default 'c'", "not one of"]),
        ({"type": "boolean", "default": "yes"}, ["default", "true or false"]),
        ({"type": "int", "min": 1.5, "max": 3}, ["integer", "1.5"]),
        ({"type": "choice", "values": [1, "a"]}, ["mix types"]),
        ({"type": "choice", "values": [1, 1]}, ["duplicates"]),
        ({"type": "choice", "values": ["a", "b"], "ordered": True}, ["ordered", "numeric"]),
    ],
)
def test_declaration_errors_name_the_parameter_and_the_problem(spec, words):
    with pytest.raises(SearchSpaceError) as info:
        HyperParameters.from_config({"my_param": spec})
    message = str(info.value)
    assert "my_param" in message
    for word in words:
        assert word in message
    assert isinstance(info.value, ConfigError) and isinstance(info.value, ValueError)


def test_condition_on_a_missing_parent():
    with pytest.raises(SearchSpaceError, match=r"'child'.*'ghost'.*not in the search space"):
        HyperParameters.from_config({"child": {"type": "int", "min": 0, "max": 1, "when": {"ghost": [1]}}})


def _mlp_space(max_layers: int) -> dict:
    return {
        "num_layers": {"type": "int", "min": 1, "max": max_layers},
        "units_1": {"type": "int", "min": 32, "max": 512, "step": 32},
        "units_2": {"type": "int", "min": 32, "max": 512, "step": 32, "when": {"num_layers": [2, 3]}},
        "units_3": {"type": "int", "min": 32, "max": 512, "step": 32, "when": {"num_layers": [3]}},
        "dropout": {"type": "choice", "values": [0.0, 0.1, 0.2], "ordered": True},
    }


def _notes(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "archsearch" and r.levelno == logging.WARNING]


def test_a_condition_that_can_never_hold_drops_its_parameter_with_a_note(caplog):
    # python -m archsearch model.space.num_layers.max=1: units_2 and units_3 can never be active.
    with caplog.at_level(logging.WARNING, logger="archsearch"):
        hp = HyperParameters.from_config(_mlp_space(1), where="model.space")
    assert _notes(caplog) == [
        "Note: model.space.units_2 is dropped: its condition num_layers in [2, 3] can never hold "
        "(num_layers takes 1..1)",
        "Note: model.space.units_3 is dropped: its condition num_layers in [3] can never hold "
        "(num_layers takes 1..1)",
    ]
    assert list(hp.space.keys()) == ["num_layers", "units_1", "dropout"]
    assert list(hp.dropped) == ["units_2", "units_3"]
    assert hp.dropped["units_2"] == _notes(caplog)[0]
    # the rest of the space works as usual
    assert hp.values == {"num_layers": 1, "units_1": 32, "dropout": 0.0}
    assert hp.active_values({"num_layers": 1, "units_1": 64, "units_2": 96}) == {
        "num_layers": 1, "units_1": 64, "dropout": 0.0,
    }
    assert hp.with_values({"units_1": 128}).values == {"num_layers": 1, "units_1": 128, "dropout": 0.0}
    assert hp.get("units_2", None) is None and not hp.is_active("units_2")
    with pytest.raises(ValueError, match="units_2.*dropped"):
        hp.get("units_2")
    rng = np.random.default_rng(0)
    assert all(set(hp.sample(rng)) == {"num_layers", "units_1", "dropout"} for _ in range(20))
    assert hp.grid_size() == 16 * 3
    assert "units_2" not in hp.get_config()
    assert HyperParameters.from_config(hp.get_config()).get_config() == hp.get_config()
    assert "units_2" in hp.copy().dropped


def test_the_note_names_the_parameter_without_a_prefix(caplog):
    with caplog.at_level(logging.WARNING, logger="archsearch"):
        HyperParameters.from_config({
            "act": ["relu", "tanh"],
            "child": {"type": "int", "min": 0, "max": 1, "when": {"act": ["swish"]}},
        })
    assert _notes(caplog) == [
        "Note: hyperparameter 'child' is dropped: its condition act in [swish] can never hold "
        "(act takes [relu, tanh])"
    ]


@pytest.mark.parametrize(
    "parent, when, shown, takes",
    [
        ({"type": "int", "min": 1, "max": 3}, [4], "[4]", "1..3"),
        ({"type": "int", "min": 1, "max": 3, "step": 2}, [2], "[2]", "[1, 3]"),  # off the step grid
        ({"type": "int", "min": 32, "max": 512, "step": 32}, [16], "[16]", "32..512 step 32"),
        ({"type": "float", "min": 0.0, "max": 1.0}, [2.0], "[2.0]", "0.0..1.0"),
        ({"type": "boolean"}, ["yes"], "[yes]", "[False, True]"),
        ({"type": "fixed", "value": "adam"}, ["sgd"], "[sgd]", "only adam"),
    ],
)
def test_conditions_the_parent_never_meets_are_dropped_for_every_type(caplog, parent, when, shown, takes):
    with caplog.at_level(logging.WARNING, logger="archsearch"):
        hp = HyperParameters.from_config({"p": parent, "child": {"type": "boolean", "when": {"p": when}}})
    assert list(hp.space.keys()) == ["p"]
    assert _notes(caplog) == [
        f"Note: hyperparameter 'child' is dropped: its condition p in {shown} can never hold (p takes {takes})"
    ]


def test_dropping_cascades_to_children_of_dropped_parameters(caplog):
    config = dict(CHAINED)
    config["arch"] = {"type": "choice", "values": ["mlp"]}  # e.g. model.space.arch.values=[mlp]
    config["kernel"] = {"type": "choice", "values": [3, 5], "when": {"pool": [True]}}  # grandchild
    with caplog.at_level(logging.WARNING, logger="archsearch"):
        hp = HyperParameters.from_config(config)
    assert list(hp.space.keys()) == ["arch", "units"]
    assert _notes(caplog) == [
        "Note: hyperparameter 'num_conv' is dropped: its condition arch in [cnn] can never hold (arch takes [mlp])",
        "Note: hyperparameter 'pool' is dropped: its parent num_conv is dropped",
        "Note: hyperparameter 'kernel' is dropped: its parent pool is dropped",
    ]
    assert hp.values == {"arch": "mlp", "units": 16}
    assert list(hp.grid()) == [{"arch": "mlp", "units": u} for u in (16, 32, 48, 64)]


def test_dropping_cascades_whatever_the_declaration_order(caplog):
    with caplog.at_level(logging.WARNING, logger="archsearch"):
        hp = HyperParameters.from_config({
            "grandchild": {"type": "boolean", "when": {"child": [True]}},
            "child": {"type": "boolean", "when": {"n": [5]}},
            "n": {"type": "int", "min": 1, "max": 3},
        })
    assert list(hp.space.keys()) == ["n"]
    assert set(hp.dropped) == {"child", "grandchild"}
    assert "its parent child is dropped" in hp.dropped["grandchild"]


def test_one_impossible_condition_of_several_drops_the_parameter():
    hp = HyperParameters.from_config({
        "a": ["x", "y"],
        "flag": {"type": "boolean"},
        "c": {"type": "float", "min": 0.0, "max": 1.0, "when": [{"a": ["x"]}, {"flag": ["on"]}]},
    })
    assert list(hp.space.keys()) == ["a", "flag"]
    assert "its condition flag in [on] can never hold" in hp.dropped["c"]


def test_a_condition_that_can_still_hold_keeps_its_parameter(caplog):
    with caplog.at_level(logging.WARNING, logger="archsearch"):
        hp = HyperParameters.from_config(_mlp_space(3))
    assert list(hp.space.keys()) == ["num_layers", "units_1", "units_2", "units_3", "dropout"]
    assert hp.dropped == {} and _notes(caplog) == []


def test_a_choice_value_the_parent_never_takes_beside_ones_it_takes_is_still_an_error():
    # a value missing from a list of choices is a typo; a narrowed numeric range is not
    with pytest.raises(SearchSpaceError, match=r"'child'.*'act'.*\['rleu'\].*never takes"):
        HyperParameters.from_config({
            "act": {"type": "choice", "values": ["relu", "tanh"]},
            "child": {"type": "boolean", "when": {"act": ["tanh", "rleu"]}},
        })


def test_a_narrowed_numeric_parent_keeps_children_it_can_still_reach():
    space = HyperParameters.from_config({
        "n": {"type": "int", "min": 1, "max": 3},
        "child": {"type": "boolean", "when": {"n": [2, 4]}},
    })
    assert set(space.space.keys()) == {"n", "child"} and not space.dropped
    mlp = yaml.safe_load((REPO / "conf" / "model" / "mlp.yaml").read_text())["space"]
    mlp["num_layers"]["max"] = 2
    narrowed = HyperParameters.from_config(mlp)
    assert "units_2" in narrowed.space and "units_3" not in narrowed.space


def test_an_undeclared_parent_is_still_an_error_even_beside_dropped_parameters():
    with pytest.raises(SearchSpaceError, match=r"'ghost_child'.*'ghost'.*not in the search space"):
        HyperParameters.from_config({**_mlp_space(1), "ghost_child": {"type": "boolean", "when": {"ghost": [1]}}})
    # a child of a dropped parameter that also names an undeclared parent: the error wins
    with pytest.raises(SearchSpaceError, match=r"'both'.*'ghost'.*not in the search space"):
        HyperParameters.from_config({
            **_mlp_space(1),
            "both": {"type": "boolean", "when": [{"units_2": [64]}, {"ghost": [1]}]},
        })


def test_the_cli_drops_a_parameter_whose_condition_can_never_hold(tmp_path):
    """python -m archsearch model.space.num_layers.max=1 runs (it was refused) and says what it left out."""
    from conftest import run_cli

    run_dir = tmp_path / "run"
    result = run_cli(["model=mlp", "model.space.num_layers.max=1", "tuner=random", "tuner.max_trials=1",
                      "trainer.epochs=1", "data.num_samples=160"], run_dir)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-3000:]
    assert ("Note: model.space.units_2 is dropped: its condition num_layers in [2, 3] can never hold "
            "(num_layers takes 1..1)") in output
    assert "model.space.units_3 is dropped" in output
    assert "dropped" in (run_dir / "archsearch.log").read_text()  # in the run's log file too
    header, row = (run_dir / "trials.csv").read_text().splitlines()[:2]
    columns = header.split(",")
    assert "units_1" in columns and "units_2" not in columns and "units_3" not in columns
    assert dict(zip(columns, row.split(",")))["status"] == "completed"


def test_malformed_when_is_rejected():
    with pytest.raises(SearchSpaceError, match=r"'child'.*'when' must map"):
        HyperParameters.from_config({"a": [1, 2], "child": {"type": "boolean", "when": "a"}})


def test_validate_values_reports_unknown_and_out_of_range():
    hp = HyperParameters.from_config({"n": {"type": "int", "min": 1, "max": 3}, "act": ["relu", "tanh"]})
    hp.validate_values({"n": 2, "act": "tanh"})
    with pytest.raises(SearchSpaceError, match=r"'zz'.*not in the search space"):
        hp.validate_values({"zz": 1})
    with pytest.raises(SearchSpaceError, match=r"'n'.*value 9"):
        hp.validate_values({"n": 9})
    with pytest.raises(SearchSpaceError, match=r"'act'.*'swish'"):
        hp.validate_values({"act": "swish"})


def test_bad_names_are_rejected():
    with pytest.raises(SearchSpaceError, match="name"):
        Int("", 1, 2)


def test_int_choice_does_not_contain_booleans():
    assert not Choice("k", [1, 2]).contains(True)


# --------------------------------------------------------------------------- config round trip

FULL = {
    "num_layers": {"type": "int", "min": 1, "max": 3},
    "units": {"type": "int", "min": 32, "max": 512, "step": 32, "default": 64},
    "filters": {"type": "int", "min": 8, "max": 128, "step": 2, "sampling": "log"},
    "units_2": {"type": "int", "min": 32, "max": 512, "step": 32, "when": {"num_layers": [2, 3]}},
    "learning_rate": {"type": "float", "min": 1.0e-4, "max": 1.0e-2, "sampling": "log"},
    "momentum": {"type": "float", "min": 0.5, "max": 0.999, "sampling": "reverse_log", "default": 0.9},
    "dropout_rate": {"type": "float", "min": 0.0, "max": 0.5, "step": 0.1},
    "activation": {"type": "choice", "values": ["relu", "elu"], "default": "elu"},
    "kernel": {"type": "choice", "values": [3, 5], "ordered": False},
    "dropout": {"type": "boolean", "default": True},
    "batch_norm": {"type": "bool"},
    "optimizer": {"type": "fixed", "value": "adam"},
    "seed": 7,
    "pool": ["max", "avg"],
}


def test_from_config_get_config_round_trip():
    hp = HyperParameters.from_config(FULL)
    config = hp.get_config()
    again = HyperParameters.from_config(config)
    assert again.get_config() == config
    assert list(config) == list(FULL)  # declaration order is kept
    assert config["filters"] == {"type": "int", "min": 8, "max": 128, "step": 2, "sampling": "log"}
    assert config["units_2"]["when"] == {"num_layers": [2, 3]}
    assert config["momentum"]["sampling"] == "reverse_log" and config["momentum"]["default"] == 0.9
    assert config["kernel"]["ordered"] is False
    assert config["seed"] == {"type": "fixed", "value": 7}
    assert config["pool"] == {"type": "choice", "values": ["max", "avg"]}
    assert config["batch_norm"] == {"type": "boolean"}
    assert again.values == hp.values
    assert hp.values["units"] == 64 and hp.values["activation"] == "elu" and hp.values["dropout"] is True
    assert "units_2" not in hp.values  # num_layers defaults to 1
    for name in FULL:
        p, q = hp.space[name], again.space[name]
        assert type(p) is type(q) and p.grid() == q.grid() and p.conditions == q.conditions


def test_parameter_from_config_shorthands():
    assert isinstance(parameter_from_config("x", 3), Fixed)
    assert isinstance(parameter_from_config("x", [1, 2]), Choice)
    assert HyperParameters.from_config(None).space == {}
    assert len(HyperParameters.from_config(FULL)) == len(FULL)


def test_summary_lists_every_parameter():
    text = HyperParameters.from_config(FULL).summary()
    assert f"{len(FULL)} hyperparameters" in text
    assert "units_2 (int)" in text and "num_layers" in text


# --------------------------------------------------------------------------- define-by-run (KerasTuner style)


def kt_builder(hp) -> dict:
    """A KerasTuner tutorial-style builder, written against KerasTuner's ``hp`` API only."""
    layers = []
    for i in range(hp.Int("num_layers", 1, 3)):
        layers.append(hp.Int(f"units_{i}", min_value=32, max_value=512, step=32))
    activation = hp.Choice("activation", ["relu", "tanh"])
    lr = hp.Float("lr", min_value=1e-4, max_value=1e-2, sampling="log")
    rate = None
    if hp.Boolean("dropout"):
        rate = hp.Float("rate", 0.1, 0.5, step=0.1, default=0.2)
    optimizer = hp.Choice("optimizer", values=["adam", "sgd"], default="adam")
    with hp.conditional_scope("optimizer", ["sgd"]):
        momentum = hp.Float("momentum", 0.0, 0.9, default=0.5)
    nesterov = hp.Boolean("nesterov", parent_name="optimizer", parent_values=["sgd"])
    batch = hp.Fixed("batch_size", 32)
    return dict(layers=layers, activation=activation, lr=lr, rate=rate, optimizer=optimizer,
                momentum=momentum, nesterov=nesterov, batch=batch)


def test_define_by_run_builder_first_run_gets_defaults_and_none_for_inactive():
    hp = HyperParameters()
    out = kt_builder(hp)
    assert out == dict(layers=[32], activation="relu", lr=1e-4, rate=None, optimizer="adam",
                       momentum=None, nesterov=None, batch=32)
    assert hp.values == {"num_layers": 1, "units_0": 32, "activation": "relu", "lr": 1e-4, "dropout": False,
                         "optimizer": "adam", "batch_size": 32}
    assert "momentum" in hp.space and "nesterov" in hp.space  # declared though inactive
    assert "rate" not in hp.space  # never reached, as in KerasTuner
    assert hp.get("momentum", None) is None
    with pytest.raises(ValueError, match="momentum.*inactive"):
        hp.get("momentum")


def test_define_by_run_builder_reads_a_trials_values():
    space = HyperParameters()
    kt_builder(space)
    trial = space.with_values({"num_layers": 2, "units_0": 64, "activation": "tanh", "lr": 3e-3,
                               "dropout": True, "optimizer": "sgd", "momentum": 0.9, "nesterov": True})
    out = kt_builder(trial)
    assert out == dict(layers=[64, 32], activation="tanh", lr=3e-3, rate=0.2, optimizer="sgd",
                       momentum=0.9, nesterov=True, batch=32)
    assert trial.values["units_1"] == 32 and trial.values["rate"] == 0.2  # new params get their defaults
    assert "rate" in trial.space and "rate" not in space.space  # the copy grew, not the original

    # switching the parent back drops the conditional values
    back = trial.with_values({**trial.values, "optimizer": "adam"})
    assert "momentum" not in back.values and "nesterov" not in back.values
    assert kt_builder(back)["momentum"] is None


def test_define_by_run_space_round_trips_through_config():
    hp = HyperParameters()
    kt_builder(hp)
    config = hp.get_config()
    assert config["momentum"]["when"] == {"optimizer": ["sgd"]}
    assert config["nesterov"]["when"] == {"optimizer": ["sgd"]}
    again = HyperParameters.from_config(config)
    assert again.get_config() == config
    assert again.values == hp.values


def test_nested_conditional_scopes_stack():
    hp = HyperParameters()
    hp.values.update({"a": "x", "b": True})  # KerasTuner idiom: preset values before the builder runs
    assert hp.Choice("a", ["x", "y"]) == "x"
    assert hp.Boolean("b") is True
    with hp.conditional_scope("a", ["x"]):
        with hp.conditional_scope("b", [True]):
            assert hp.Int("c", 1, 5, default=4) == 4
        assert hp.Int("d", 1, 5) == 1
    assert len(hp.space["c"].conditions) == 2
    assert hp.space["d"].conditions == hp.space["c"].conditions[:1]
    off = hp.with_values({"a": "x", "b": False})
    assert off.get("c", None) is None and off.get("d") == 1
    with off.conditional_scope("a", ["x"]), off.conditional_scope("b", [True]):
        assert off.Int("c", 1, 5) is None  # the same declaration, inactive under b=False
    # KerasTuner's rule: the same name under other conditions (none here) is another declaration
    assert off.Int("c", 1, 5) == 1 and len(off.declarations("c")) == 2


def test_conditional_scope_on_an_undeclared_parent():
    hp = HyperParameters()
    with pytest.raises(SearchSpaceError, match="'ghost' is not declared"):
        with hp.conditional_scope("ghost", [1]):
            pass


def test_parent_name_on_an_undeclared_parent():
    hp = HyperParameters()
    with pytest.raises(SearchSpaceError, match="ghost"):
        hp.Int("x", 1, 3, parent_name="ghost", parent_values=[1])


def test_define_by_run_declaration_errors():
    hp = HyperParameters()
    with pytest.raises(SearchSpaceError, match=r"'units'.*greater than the max_value"):
        hp.Int("units", 512, 32)
    with pytest.raises(SearchSpaceError, match=r"'act'.*empty"):
        hp.Choice("act", [])
    with pytest.raises(SearchSpaceError, match=r"'lr'.*min > 0"):
        hp.Float("lr", 0.0, 1.0, sampling="log")


def test_redeclaring_a_parameter_returns_its_value():
    hp = HyperParameters()
    hp.values["units"] = 96
    assert hp.Int("units", 32, 512, step=32) == 96
    assert hp.Int("units", 32, 512, step=32) == 96
    assert len(hp) == 1


@pytest.mark.parametrize(
    "method, expected",
    [
        ("Int", [("name", inspect._empty), ("min_value", inspect._empty), ("max_value", inspect._empty),
                 ("step", None), ("sampling", "linear"), ("default", None)]),
        ("Float", [("name", inspect._empty), ("min_value", inspect._empty), ("max_value", inspect._empty),
                   ("step", None), ("sampling", "linear"), ("default", None)]),
        ("Choice", [("name", inspect._empty), ("values", inspect._empty), ("ordered", None), ("default", None)]),
        ("Boolean", [("name", inspect._empty), ("default", False)]),
        ("Fixed", [("name", inspect._empty), ("value", inspect._empty)]),
    ],
)
def test_kerastuner_argument_names_and_defaults(method, expected):
    params = list(inspect.signature(getattr(HyperParameters, method)).parameters.values())[1:]
    assert [(p.name, p.default) for p in params[: len(expected)]] == expected
    assert {"parent_name", "parent_values"} <= {p.name for p in params}


def test_kerastuner_keyword_calls():
    hp = HyperParameters()
    assert hp.Int(name="a", min_value=2, max_value=8, step=2, sampling="linear", default=4) == 4
    assert hp.Float(name="b", min_value=0.1, max_value=0.9, step=None, sampling="linear", default=None) == 0.1
    assert hp.Choice(name="c", values=[1, 2, 3], ordered=True, default=3) == 3
    assert hp.Boolean(name="d", default=True) is True
    assert hp.Fixed(name="e", value="x") == "x"
    assert hp.values == {"a": 4, "b": 0.1, "c": 3, "d": True, "e": "x"}


def test_values_key_is_canonical():
    assert values_key({"b": 1, "a": 0.1 + 0.2}) == values_key({"a": 0.3, "b": np.int64(1)})
    assert values_key({"a": 1}) != values_key({"a": 2})
