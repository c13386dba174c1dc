"""The oracle protocol (ask/tell/report, failures, best trials, concurrency) and what random and grid search
do beyond it, on plain Python functions.  What every oracle promises (no repeats, exhaustion, values in the
space, restore after a kill) is checked over every registered oracle in test_oracle_contract.py."""

from __future__ import annotations

import math

import pytest

from archsearch import HyperParameters
from archsearch.errors import ConfigError
from archsearch.space.values import values_key
from archsearch.oracles import (
    COMPLETED,
    FAILED,
    INTERRUPTED,
    PRUNED,
    RUNNING,
    available_oracles,
    create_oracle,
    oracle_options,
)
from archsearch.oracles.driving import drive
from archsearch.oracles.grid import GridSearchOracle
from archsearch.oracles.random import RandomSearchOracle

SPACE = {
    "num_layers": {"type": "int", "min": 1, "max": 3},
    "units": {"type": "int", "min": 16, "max": 128, "step": 16},
    "units_2": {"type": "int", "min": 16, "max": 64, "step": 16, "when": {"num_layers": [2, 3]}},
    "lr": {"type": "float", "min": 1e-4, "max": 1e-1, "sampling": "log"},
    "act": {"type": "choice", "values": ["relu", "tanh"]},
    "dropout": {"type": "boolean"},
}

# scipy's Sobol.fast_forward(0) raises OverflowError, and _unit_point calls it on the first ask.
TINY = {"a": {"type": "choice", "values": [1, 2]}, "flag": {"type": "boolean"}}


def space(config=SPACE) -> HyperParameters:
    return HyperParameters.from_config(config)


def score(h: dict) -> float:
    """Something to minimise that depends on every parameter."""
    return (abs(math.log10(h["lr"]) + 2.5) + h["units"] / 128 + h["num_layers"] / 3
            + (0.1 if h["act"] == "tanh" else 0.0) + (0.05 if h["dropout"] else 0.0) + h.get("units_2", 0) / 640)


def proposals(oracle, n: int) -> list[dict]:
    """Ask and tell ``n`` trials one at a time; return their hparams."""
    asked = drive(oracle, score, max_asks=n).asked
    assert len(asked) == n
    return [t.hparams for t in asked]


def hparams_to_the_end(oracle, result: float = 0.5) -> list[dict]:
    """Every trial's hparams, the oracle driven until it has nothing left, each told ``result``."""
    return [t.hparams for t in drive(oracle, lambda h: result).asked]


# --------------------------------------------------------------------------- random search


def test_random_same_seed_same_sequence_different_seed_differs():
    a = proposals(RandomSearchOracle(space(), "val_loss", seed=7), 15)
    b = proposals(RandomSearchOracle(space(), "val_loss", seed=7), 15)
    c = proposals(RandomSearchOracle(space(), "val_loss", seed=8), 15)
    assert a == b
    assert a != c


def test_sobol_is_seeded_and_differs_from_pseudo_random():
    a = proposals(RandomSearchOracle(space(), "val_loss", seed=3, sampler="sobol"), 12)
    b = proposals(RandomSearchOracle(space(), "val_loss", seed=3, sampler="sobol"), 12)
    c = proposals(RandomSearchOracle(space(), "val_loss", seed=4, sampler="sobol"), 12)
    r = proposals(RandomSearchOracle(space(), "val_loss", seed=3), 12)
    assert a == b and a != c and a != r
    assert len({values_key(h) for h in a}) == 12


def test_sobol_spreads_evenly():
    hp = HyperParameters.from_config({"x": {"type": "float", "min": 0.0, "max": 1.0}})
    oracle = RandomSearchOracle(hp, "loss", seed=0, sampler="sobol")
    xs = []
    for _ in range(16):
        t = oracle.ask()
        xs.append(t.hparams["x"])
        oracle.tell(t.id, t.hparams["x"])
    counts = [sum(1 for x in xs if i / 4 <= x < (i + 1) / 4) for i in range(4)]
    assert counts == [4, 4, 4, 4]  # a scrambled Sobol net puts 4 of 16 points in each quarter


def test_max_trials_caps_random_search():
    oracle = RandomSearchOracle(space(), "val_loss", seed=0, max_trials=3)
    proposals(oracle, 3)
    assert oracle.ask() is None
    assert oracle.finished


# --------------------------------------------------------------------------- grid search


def test_grid_covers_every_combination_once_including_conditionals():
    config = {
        "num_layers": {"type": "int", "min": 1, "max": 3},
        "units_2": {"type": "choice", "values": [16, 32], "when": {"num_layers": [2, 3]}},
        "act": ["relu", "tanh"],
        "batch": 32,
    }
    oracle = GridSearchOracle(space(config), "val_accuracy")
    seen = hparams_to_the_end(oracle)
    expected = [{"num_layers": 1, "act": a, "batch": 32} for a in ("relu", "tanh")]
    expected += [{"num_layers": n, "units_2": u, "act": a, "batch": 32}
                 for n in (2, 3) for u in (16, 32) for a in ("relu", "tanh")]
    assert sorted(map(values_key, seen)) == sorted(map(values_key, expected))
    assert len(seen) == 10 == oracle.grid_size
    assert seen[0] == {"num_layers": 1, "act": "relu", "batch": 32}  # declaration order
    assert oracle.finished


def test_grid_waits_for_running_trials_that_may_declare_more_and_then_grows():
    """Define-by-run: a parameter first declared while a trial trains (in fit) still gets its grid."""
    oracle = GridSearchOracle(space({"flag": {"type": "boolean"}}), "val_loss")
    first, second = oracle.ask(), oracle.ask()
    assert oracle.ask() is None and not oracle.finished  # the grid is used up, but both may grow it
    grown = space({"flag": {"type": "boolean"}, "c": {"type": "choice", "values": [0, 1, 2]}})
    oracle.update_space(grown.with_values({**first.hparams, "c": 0}), trial_id=first.id)
    oracle.tell(first.id, 0.5)
    third = oracle.ask()
    assert third is not None and third.hparams["c"] in (1, 2)
    for trial in (second, third):
        oracle.tell(trial.id, 0.5)
    hparams_to_the_end(oracle)
    assert len(oracle.trials) == 6 and oracle.finished  # 2 x 3, each once


def test_grid_float_points_on_log_scale():
    hp = HyperParameters.from_config({
        "lr": {"type": "float", "min": 1e-4, "max": 1e-1, "sampling": "log"},
        "opt": ["adam", "sgd"],
    })
    oracle = create_oracle("grid", hp, "val_loss", float_points=4)
    seen = hparams_to_the_end(oracle, 1.0)
    # KerasTuner's placement: the default (min), then the centres of 4 equal bins of the log range
    assert {round(math.log10(h["lr"]), 9) for h in seen} == {-4.0, -3.625, -2.875, -2.125, -1.375}
    assert len(seen) == 10


def test_grid_max_trials_caps_it():
    oracle = GridSearchOracle(space(TINY), "val_loss", max_trials=3)
    assert len(hparams_to_the_end(oracle, 1.0)) == 3
    assert oracle.finished and oracle.grid_size == 4


def test_grid_shuffle_is_seeded_and_still_complete():
    def order(seed, shuffle=True):
        oracle = GridSearchOracle(space(), "val_loss", shuffle=shuffle, seed=seed, float_points=2)
        return [values_key(h) for h in hparams_to_the_end(oracle, 1.0)]

    a, b, c = order(0), order(0), order(1)
    plain = order(0, shuffle=False)  # the same grid (default + 2 bin centres per float), KerasTuner's order
    assert a == b and a != c and a != plain
    assert sorted(a) == sorted(plain) and len(set(a)) == len(a)


# --------------------------------------------------------------------------- protocol


def test_tell_with_a_value_or_a_metrics_dict():
    oracle = RandomSearchOracle(space(), "val_loss", seed=0)
    t0, t1 = oracle.ask(), oracle.ask()
    assert t0.status == RUNNING and t0.id == 0 and t1.id == 1
    oracle.tell(t0.id, 0.25)
    assert (t0.status, t0.value, t0.metrics) == (COMPLETED, 0.25, {})
    oracle.tell(t1.id, {"loss": 0.3, "val_loss": 0.4, "note": "text"})
    assert t1.status == COMPLETED and t1.value == 0.4
    assert t1.metrics == {"loss": 0.3, "val_loss": 0.4}  # non-numbers dropped
    assert t0.done and t1.done


def test_failed_trial_keeps_its_error():
    oracle = RandomSearchOracle(space(), "val_loss", seed=0)
    t = oracle.ask()
    oracle.tell(t.id, None, status=FAILED, error="ResourceExhaustedError: OOM")
    assert t.status == FAILED and t.error == "ResourceExhaustedError: OOM" and t.value is None
    assert oracle.best_trials() == []
    assert oracle.finished is False  # failures do not end a search


@pytest.mark.parametrize("result", [{"loss": 0.3}, None, math.nan, {"val_loss": math.inf}])
def test_completed_trial_without_a_finite_objective_becomes_failed(result):
    oracle = RandomSearchOracle(space(), "val_loss", seed=0)
    t = oracle.ask()
    oracle.tell(t.id, result)
    assert t.status == FAILED
    assert "val_loss" in t.error and "missing" in t.error
    assert t.value is None


def test_tell_errors():
    oracle = RandomSearchOracle(space(), "val_loss", seed=0)
    t = oracle.ask()
    with pytest.raises(ValueError, match="unknown status"):
        oracle.tell(t.id, 1.0, status="exploded")
    with pytest.raises(KeyError, match="unknown trial id 99"):
        oracle.tell(99, 1.0)


def test_report_stores_intermediate_values():
    oracle = RandomSearchOracle(space(), "val_accuracy", seed=0)
    t = oracle.ask()
    assert oracle.report(t.id, 1, 0.5) is False
    assert oracle.report(t.id, 2, {"val_accuracy": 0.6, "loss": 0.9}) is False
    assert oracle.report(t.id, 3, {"loss": 0.8}) is False  # objective missing: ignored
    assert oracle.report(t.id, 4, math.nan) is False
    assert t.intermediate == {1: 0.5, 2: 0.6}
    oracle.tell(t.id, None, status=PRUNED)
    assert t.status == PRUNED and t.value == 0.6  # pruned trials keep their best epoch


@pytest.mark.parametrize("objective, expected", [("val_loss", [1, 2, 0, 3]), ("val_accuracy", [3, 0, 1, 2])])
def test_best_trials_ordering(objective, expected):
    oracle = RandomSearchOracle(space(), objective, seed=0)
    trials = [oracle.ask() for _ in range(6)]
    for t, v in zip(trials, [0.5, 0.2, 0.2, 0.9]):
        oracle.tell(t.id, v)
    oracle.tell(trials[4].id, None, status=FAILED, error="boom")
    # trials[5] still running
    assert [t.id for t in oracle.best_trials(10)] == expected
    assert [t.id for t in oracle.best_trials()] == expected[:1]
    assert [t.id for t in oracle.completed()] == [0, 1, 2, 3]


def test_several_trials_running_at_once():
    oracle = RandomSearchOracle(space(), "val_loss", seed=5, max_trials=4)
    running = [oracle.ask() for _ in range(4)]
    assert [t.id for t in running] == [0, 1, 2, 3]
    assert len({values_key(t.hparams) for t in running}) == 4
    assert oracle.ask() is None  # the budget is handed out
    assert not oracle.finished and len(oracle.running) == 4
    for t in reversed(running):
        oracle.tell(t.id, score(t.hparams))
        assert oracle.finished == (t.id == 0)
    assert oracle.running == []


def test_interrupted_trials_do_not_count_against_max_trials():
    oracle = RandomSearchOracle(space(), "val_loss", seed=0, max_trials=2)
    t = oracle.ask()
    oracle.tell(t.id, None, status=INTERRUPTED)
    assert oracle.ask() is not None and oracle.ask() is not None
    assert oracle.ask() is None


def test_create_oracle_and_its_errors():
    assert {"random", "grid"} <= set(available_oracles())
    assert isinstance(create_oracle("random", space(), "val_loss", seed=1, max_trials=2), RandomSearchOracle)
    assert {"sampler", "max_trials", "seed"} <= set(oracle_options("random"))
    assert {"float_points", "shuffle", "max_trials", "seed"} <= set(oracle_options("grid"))

    with pytest.raises(ConfigError) as info:
        create_oracle("random", space(), "val_loss", max_trails=5)
    assert info.value.field == "tuner.max_trails"
    message = str(info.value)
    assert "tuner.max_trails" in message and "random" in message
    for option in oracle_options("random"):
        assert option in message

    with pytest.raises(ConfigError) as info:
        create_oracle("annealing", space(), "val_loss")
    assert info.value.field == "tuner.name"
    assert "annealing" in str(info.value)
    for name in available_oracles():
        assert name in str(info.value)


@pytest.mark.parametrize(
    "name, options, field",
    [
        ("random", {"sampler": "halton"}, "tuner.sampler"),
        ("grid", {"float_points": 1}, "tuner.float_points"),
        ("random", {"max_trials": 0}, "tuner.max_trials"),
    ],
)
def test_bad_option_values(name, options, field):
    with pytest.raises(ConfigError) as info:
        create_oracle(name, space(), "val_loss", **options)
    assert info.value.field == field
