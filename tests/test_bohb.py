"""BOHB: Hyperband's plan with model-based new configurations (TPE densities on the largest budget)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from archsearch import HyperParameters
from archsearch.errors import ConfigError
from archsearch.space.values import values_key
from archsearch.oracles import FAILED, create_oracle, driving, oracle_options
from archsearch.oracles.bohb import BOHBOracle

SPACE = {
    "x": {"type": "float", "min": 0.0, "max": 1.0},
    "lr": {"type": "float", "min": 1e-4, "max": 1e-1, "sampling": "log"},
    "units": {"type": "int", "min": 8, "max": 64, "step": 8},
    "act": {"type": "choice", "values": ["relu", "tanh", "elu"]},
    "bn": {"type": "boolean"},
    "rate": {"type": "float", "min": 0.1, "max": 0.5, "when": {"bn": [False]}},
}
PLAN = dict(max_epochs=9, factor=3, min_epochs=1)


def final(h: dict) -> float:
    """Best near x=0.7, lr=1e-2, elu, bn on; to maximise."""
    return (1.0 - (h["x"] - 0.7) ** 2 - 0.1 * (math.log10(h["lr"]) + 2) ** 2 + h["units"] / 640
            + (0.1 if h["act"] == "elu" else 0.0) + (0.05 if h["bn"] else -h.get("rate", 0.0) / 10))


def score(h: dict, epoch: int) -> float:
    return final(h) * (1 - 0.5 ** epoch)


def make(name="bohb", seed=0, **options):
    return create_oracle(name, HyperParameters.from_config(SPACE), "score", seed=seed, **{**PLAN, **options})


def drive(oracle, events=None, fail=lambda t: False) -> float:
    """Run to the end, one trial at a time; return the best full-budget score."""
    done = driving.drive(oracle, curve=score, fail=fail, history=events)
    assert oracle.finished and done.waits == 0
    return max((final(t.hparams) for t in done.told if t.status != FAILED and t.budget == oracle.max_epochs),
               default=-math.inf)


def test_registered_with_hyperband_options():
    assert isinstance(make(), BOHBOracle)
    options = oracle_options("bohb")
    for name in ("random_fraction", "min_points_in_model", "max_epochs", "factor", "min_epochs",
                 "hyperband_iterations", "seed"):
        assert name in options
    with pytest.raises(ConfigError, match="random_fraction"):
        make(random_fraction=1.5)
    with pytest.raises(ConfigError, match="min_points_in_model"):
        make(min_points_in_model=0)


def test_same_plan_as_hyperband_and_identical_when_always_random():
    bohb, hb = make(hyperband_iterations=2), make("hyperband", hyperband_iterations=2)
    drive(bohb)
    drive(hb)
    assert len(bohb.trials) == len(hb.trials) == hb.total_trials
    assert [t.budget for t in bohb.trials.values()] == [t.budget for t in hb.trials.values()]
    assert bohb.num_model_configurations > 0
    # random_fraction=1: every new configuration is Hyperband's own Sobol draw.
    always_random = make(random_fraction=1.0, hyperband_iterations=2)
    drive(always_random)
    assert [t.hparams for t in always_random.trials.values()] == [t.hparams for t in hb.trials.values()]
    assert always_random.num_model_configurations == 0


def test_model_uses_the_largest_budget_with_enough_points():
    oracle = make(hyperband_iterations=3, min_model_budget=None)  # the paper's rule: any budget
    n_min = len(SPACE) + 1  # d + 1, as in the paper
    sources = []
    while not oracle.finished:
        counts: dict[int, int] = {}
        for t in oracle.trials.values():
            if t.done:
                counts[t.budget] = counts.get(t.budget, 0) + 1
        eligible = [b for b, n in counts.items() if n >= n_min + 2]
        t = oracle.ask()
        if t.resume_from is None:
            if oracle.model_budget is not None:
                assert oracle.model_budget == max(eligible)
            sources.append((bool(eligible), oracle.model_budget is not None))
        oracle.tell(t.id, score(t.hparams, t.budget))
    assert not any(used for available, used in sources if not available)
    with_model = [used for available, used in sources if available]
    assert 0.5 < np.mean(with_model) < 0.85  # random_fraction = 1/3 of them stay random


def test_finds_better_configurations_than_hyperband():
    # Short trainings rank configurations as long ones do here (score = final * (1 - 0.5**epoch)),
    # which is BOHB's premise; 27 epochs give rounds big enough for the densities.
    plan = dict(max_epochs=27, factor=3, min_epochs=1, hyperband_iterations=3)
    bohb = [drive(make(seed=s, **plan)) for s in range(10)]
    hb = [drive(make("hyperband", seed=s, **plan)) for s in range(10)]
    assert np.mean(bohb) > np.mean(hb)
    assert np.median(bohb) > np.median(hb)


def test_min_model_budget_auto_is_one_rung_below_the_full_budget_never_the_smallest():
    assert make().min_model_budget == 3  # budgets 1, 3, 9
    assert make(max_epochs=27).min_model_budget == 9  # budgets 1, 3, 9, 27
    assert make(max_epochs=81).min_model_budget == 27
    assert make(max_epochs=3).min_model_budget == 3  # budgets 1, 3: the smallest is never used
    assert make(max_epochs=8, factor=2, min_epochs=2).min_model_budget == 4  # budgets 2, 4, 8
    assert make(max_epochs=1).min_model_budget is None  # a single budget: nothing to leave out
    assert make(min_model_budget=None).min_model_budget is None
    with pytest.raises(ConfigError, match="min_model_budget.*auto or null"):
        make(min_model_budget="soon")


def test_min_model_budget_keeps_short_budgets_out_of_the_model():
    oracle = make(min_model_budget=9, hyperband_iterations=2)
    drive(oracle)
    assert oracle.model_budget in (None, 9)
    assert oracle.num_model_configurations > 0
    with pytest.raises(ConfigError, match="min_model_budget"):
        make(min_model_budget=0)


def test_never_repeats_and_survives_failures():
    oracle = make(hyperband_iterations=2, seed=3)
    drive(oracle, fail=lambda t: t.hparams["act"] == "tanh")
    new = [values_key(t.hparams) for t in oracle.trials.values() if t.resume_from is None]
    assert len(new) == len(set(new))
    assert any(t.status == FAILED for t in oracle.trials.values())
    assert oracle.num_model_configurations > 0


def test_direction_min_mirrors_max():
    maximise = make(seed=7, min_model_budget=None)
    minimise = create_oracle("bohb", HyperParameters.from_config(SPACE), {"name": "loss", "direction": "min"},
                             seed=7, min_model_budget=None, **PLAN)
    while not maximise.finished:
        a, b = maximise.ask(), minimise.ask()
        assert a.hparams == b.hparams
        maximise.tell(a.id, score(a.hparams, a.budget))
        minimise.tell(b.id, -score(b.hparams, b.budget))
    assert maximise.num_model_configurations == minimise.num_model_configurations > 0


def crossing(h: dict, epoch: int) -> float:
    """Learning curves that cross: after 1 epoch the fastest learning rates lead, from 3 epochs on the slow,
    small ones do (the short-horizon bias of learning-rate sweeps); the final ranking holds from epoch 3."""
    slowness = -math.log10(h["lr"]) - 1  # 0 (lr = 0.1, fast) .. 3 (lr = 1e-4, slow)
    ceiling = 0.5 + 0.15 * slowness  # slow starters end best
    if epoch <= 1:
        return 0.6 - 0.15 * slowness  # the first epoch ranks them the other way round
    return ceiling * (1 - 0.5 ** epoch) + 0.01 * h["x"]


def model_learning_rates(min_model_budget, seed: int, curve=crossing, first=None, **plan) -> list[float]:
    """log10 lr of the first ``first`` model proposals (all of them by default) on ``curve``."""
    oracle = make(seed=seed, min_model_budget=min_model_budget, **{"hyperband_iterations": 3, **plan})
    chosen = []
    while not oracle.finished and (first is None or len(chosen) < first):
        t = oracle.ask()
        if t.resume_from is None and oracle.model_budget is not None:
            chosen.append(math.log10(t.hparams["lr"]))
        oracle.tell(t.id, curve(t.hparams, t.budget))
    return chosen


def test_the_model_does_not_prefer_the_fast_starters_of_crossing_curves():
    """By default the model leaves the first, misleading budget out: from its first proposal on it picks the slow
    starters that end best, where a model fitted on 1-epoch scores (min_model_budget=None, the paper's rule)
    first chases the fast ones, until enough longer trainings correct it."""
    first = 5  # model proposals per seed, from the first one
    default = [lr for s in range(4) for lr in model_learning_rates("auto", s)[:first]]
    paper = [lr for s in range(4) for lr in model_learning_rates(None, s)[:first]]
    assert len(default) == len(paper) == 4 * first
    assert np.median(default) < -2.5  # lr below 3e-3: the slow starters
    assert np.median(paper) > -2.0  # the fast starters the first epoch favours


def late_crossing(h: dict, epoch: int) -> float:
    """Curves that cross late: up to 3 epochs the fast learning rates lead, from 9 epochs on the slow ones do."""
    slowness = -math.log10(h["lr"]) - 1  # 0 (lr = 0.1, fast) .. 3 (lr = 1e-4, slow)
    if epoch <= 3:
        return 0.6 - 0.15 * slowness + 0.01 * h["x"]
    return (0.5 + 0.15 * slowness) * (1 - 0.5 ** epoch) + 0.01 * h["x"]


def test_on_a_longer_ladder_the_model_waits_for_the_rung_below_the_full_budget():
    """With budgets 1, 3, 9, 27 and curves that cross between 3 and 9 epochs, a model fitted on 3-epoch
    results (the previous default) chases the fast starters; the default waits for 9-epoch results and
    picks the slow starters that end best from its first proposal on."""
    ladder = dict(curve=late_crossing, first=5, max_epochs=27, hyperband_iterations=2)
    default = [lr for s in range(4) for lr in model_learning_rates("auto", s, **ladder)]
    rung_3 = [lr for s in range(4) for lr in model_learning_rates(3, s, **ladder)]
    assert len(default) == len(rung_3) == 20
    assert np.median(default) < -2.5  # lr below 3e-3: the slow starters
    assert np.median(rung_3) > -2.0  # the fast ones that lead for 3 epochs
