"""Bayesian optimisation oracle: convergence, the initial design, parallel trials, failures, directions.

No repeats, exhaustion, restore after a kill and seeded determinism are checked for every oracle in
test_oracle_contract.py."""

from __future__ import annotations

import math
from collections import Counter

import numpy as np
import pytest

from archsearch import HyperParameters
from archsearch.errors import ConfigError
from archsearch.space.values import values_key
from archsearch.oracles import FAILED, create_oracle
from archsearch.oracles.acquisition import log_ei_and_gradient, log_expected_improvement
from archsearch.oracles.bayesian import BayesianOptimizationOracle
from archsearch.oracles.category_choice import ucb_combination
from archsearch.oracles.driving import drive

SQUARE = {"x": {"type": "float", "min": -1.0, "max": 1.0}, "y": {"type": "float", "min": -1.0, "max": 1.0}}
MIXED = {
    "lr": {"type": "float", "min": 1e-4, "max": 1e-1, "sampling": "log"},
    "units": {"type": "int", "min": 16, "max": 128, "step": 16},
    "layers": {"type": "int", "min": 1, "max": 3},
    "units_2": {"type": "int", "min": 16, "max": 64, "step": 16, "when": {"layers": [2, 3]}},
    "act": {"type": "choice", "values": ["relu", "tanh", "elu"]},
    "bn": {"type": "boolean"},
}


def quadratic(h: dict) -> float:
    return (h["x"] - 0.3) ** 2 + (h["y"] + 0.2) ** 2


def mixed_loss(h: dict) -> float:
    return (abs(math.log10(h["lr"]) + 2.5) + abs(h["units"] - 64) / 64 + (0.2 if h["act"] != "elu" else 0.0)
            + (0.0 if h["bn"] else 0.1) + h.get("units_2", 0) / 640)


def run(oracle, fn, n: int) -> list[float]:
    """``n`` trials one at a time; their objective values in order."""
    done = drive(oracle, fn, max_asks=n)
    assert len(done.told) == n
    return done.values


def make(config=SQUARE, objective="loss", **options) -> BayesianOptimizationOracle:
    return create_oracle("bayesian", HyperParameters.from_config(config), objective, **options)


def test_beats_random_search_on_a_quadratic():
    bayes = run(make(seed=0, max_trials=30), quadratic, 30)
    rand = run(create_oracle("random", HyperParameters.from_config(SQUARE), "loss", seed=0), quadratic, 30)
    assert min(bayes) < 1e-3
    assert min(rand) > 1e-3
    assert min(bayes[10:]) < min(bayes[:10])  # the model, not the initial design, found it


def test_initial_design_size_and_source():
    oracle = make(seed=0)
    assert oracle.initial_points() == 5  # 2 parameters: the minimum of 5
    assert make(MIXED).initial_points() == 12  # 6 parameters
    assert make(MIXED, max_trials=8).initial_points() == 4  # at most half of max_trials
    assert make(num_initial_points=3).initial_points() == 3
    run(oracle, quadratic, 7)
    sources = [t.info["source"] for t in oracle.trials.values()]
    assert sources == ["initial"] * 5 + ["model"] * 2


def test_running_trials_get_different_points():
    oracle = make(seed=3, num_initial_points=5)
    run(oracle, quadratic, 8)
    pending = [oracle.ask() for _ in range(4)]
    points = np.array([[t.hparams["x"], t.hparams["y"]] for t in pending])
    distances = [np.linalg.norm(points[i] - points[j]) for i in range(4) for j in range(i)]
    assert min(distances) > 0.01  # fantasies push later proposals away, not just to a different float
    assert all(t.info["source"] == "model" for t in pending)


def test_failed_trials_do_not_crash_and_their_region_is_avoided():
    def fails(h):
        return h["x"] > 0.0  # the right half of the square always crashes

    oracle = make(seed=4, num_initial_points=6)
    done = drive(oracle, lambda h: (h["x"] + 0.5) ** 2 + h["y"] ** 2, fail=lambda t: fails(t.hparams), max_asks=30)
    from_model = [t for t in done.asked if t.info["source"] == "model"]
    assert len(from_model) == 24 and sum(fails(t.hparams) for t in from_model) < 8
    assert all(t.status == FAILED for t in done.told if fails(t.hparams))
    # Only failures so far: still proposes (from the initial design / at random).
    all_failed = make(seed=5, num_initial_points=2)
    drive(all_failed, quadratic, fail=lambda t: True, max_asks=5)
    assert all_failed.ask() is not None


@pytest.mark.parametrize("acquisition", ["ei", "ucb"])
def test_direction_max_mirrors_min(acquisition):
    minimise = make(seed=6, objective={"name": "loss", "direction": "min"}, acquisition=acquisition)
    maximise = make(seed=6, objective={"name": "score", "direction": "max"}, acquisition=acquisition)
    a = run(minimise, quadratic, 20)
    b = run(maximise, lambda h: -quadratic(h), 20)
    assert a == [-v for v in b]  # same proposals: the model only sees sign * value
    assert min(a) < 0.01
    assert minimise.best_trials()[0].value == min(a) and maximise.best_trials()[0].value == max(b)


def test_space_growing_mid_search():
    hp = HyperParameters()
    hp.Float("x", -1.0, 1.0)
    oracle = create_oracle("bayesian", hp, "loss", seed=2, num_initial_points=3)
    run(oracle, lambda h: (h["x"] - 0.2) ** 2, 5)
    grown = HyperParameters()
    grown.Float("x", -1.0, 1.0)
    grown.Choice("act", ["relu", "tanh"])
    oracle.update_space(grown)
    values = run(oracle, lambda h: (h["x"] - 0.2) ** 2 + (h["act"] == "tanh"), 5)
    assert all(np.isfinite(values))
    assert oracle.encoder.dims == 3


def test_bad_options_raise_config_errors():
    with pytest.raises(ConfigError, match="acquisition"):
        make(acquisition="pi")
    with pytest.raises(ConfigError, match="num_initial_points"):
        make(num_initial_points=0)


def test_log_expected_improvement_is_accurate_and_finite():
    from scipy.stats import norm

    mean, std, best = np.array([0.0, 1.0, -2.0]), np.array([1.0, 0.5, 0.3]), 0.5
    z = (mean - best) / std
    direct = std * (z * norm.cdf(z) + norm.pdf(z))
    assert np.allclose(log_expected_improvement(mean, std, best), np.log(direct))
    far = log_expected_improvement(np.array([-40.0, -1e6]), np.array([1.0, 1.0]), 0.0)
    assert np.all(np.isfinite(far)) and far[0] > far[1]
    value, d_mean, d_std = log_ei_and_gradient(-3.0, 0.7, 0.2)
    eps = 1e-6
    assert d_mean == pytest.approx((log_ei_and_gradient(-3.0 + eps, 0.7, 0.2)[0] - value) / eps, rel=1e-4)
    assert d_std == pytest.approx((log_ei_and_gradient(-3.0, 0.7 + eps, 0.2)[0] - value) / eps, rel=1e-4)


UNCONDITIONAL_MIXED = {name: spec for name, spec in MIXED.items() if "when" not in spec}


def test_array_candidates_are_the_candidates_built_as_values(monkeypatch):
    """Without conditions the candidates stay unit rows until picked; they must be the very same candidates."""
    import archsearch.oracles.encoding as encoding

    def candidates(array_path: bool):
        oracle = make(UNCONDITIONAL_MIXED, seed=3)
        run(oracle, mixed_loss, 12)
        if not array_path:
            monkeypatch.setattr(encoding.SpaceEncoder, "unconditional", property(lambda self: False))
        x, values_of = oracle._candidates()
        monkeypatch.undo()
        return x, [values_of(i) for i in range(len(x))]

    x_fast, values_fast = candidates(True)
    x_slow, values_slow = candidates(False)
    assert len(values_fast) > 500
    assert [values_key(v) for v in values_fast] == [values_key(v) for v in values_slow]
    np.testing.assert_array_equal(x_fast, x_slow)


def test_a_running_search_refits_the_kernel_from_its_last_fit(monkeypatch):
    """Suggestion cost: only every FULL_FIT_EVERY-th model ask refits from fresh starts, the others warm-start."""
    import archsearch.oracles.bayesian as bayesian

    restarts, starts = [], []

    class Recording(bayesian.GaussianProcess):
        def fit(self, x, y, *, rng=None, theta=None, optimize=True):
            restarts.append(self.restarts)
            starts.append(None if theta is None else np.array(theta))
            return super().fit(x, y, rng=rng, theta=theta, optimize=optimize)

    monkeypatch.setattr(bayesian, "GaussianProcess", Recording)
    oracle = make(MIXED, seed=1, num_initial_points=5)
    run(oracle, mixed_loss, 5 + 2 * bayesian.FULL_FIT_EVERY)
    every = bayesian.FULL_FIT_EVERY
    assert restarts == ([bayesian.GP_RESTARTS] + [0] * (every - 1)) * 2
    assert starts[0] is None and all(s is not None for s in starts[1:])


@pytest.mark.parametrize("categories", [3, 5, 8])
def test_the_initial_design_visits_every_category_of_a_deceptive_space(categories):
    """Where one category hides the best basin, no model can rank it before some trial lands in it.

    The scrambled Sobol design is stratified in each coordinate, so its first
    eight points meet every value of a categorical with up to eight values:
    every category gets at least one look before the model takes over.
    """
    space = {"lr": {"type": "float", "min": 1e-5, "max": 1.0, "sampling": "log"},
             "x": {"type": "float", "min": 0.0, "max": 1.0},
             "n": {"type": "int", "min": 1, "max": 32},
             "flag": {"type": "boolean"},
             "cat": {"type": "choice", "values": [f"c{i}" for i in range(categories)]}}
    for seed in range(10):
        oracle = make(space, seed=seed, max_trials=40)
        assert oracle.initial_points() >= 8
        seen = set()
        for _ in range(8):
            t = oracle.ask()
            assert t.info["source"] == "initial"
            seen.add(t.hparams["cat"])
            oracle.tell(t.id, 0.0)
        assert seen == {f"c{i}" for i in range(categories)}, (seed, seen)


_H6_ALPHA = np.array([1.0, 1.2, 3.0, 3.2])
_H6_A = np.array([[10, 3, 17, 3.5, 1.7, 8], [0.05, 10, 17, 0.1, 8, 14],
                  [3, 3.5, 1.7, 10, 17, 8], [17, 8, 0.05, 10, 0.1, 14]], dtype=float)
_H6_P = 1e-4 * np.array([[1312, 1696, 5569, 124, 8283, 5886], [2329, 4135, 8307, 3736, 1004, 9991],
                         [2348, 1451, 3522, 2883, 3047, 6650], [4047, 8828, 8732, 5743, 1091, 381]], dtype=float)
_H6_MIN = -3.3223680114155147


def hartmann6(h: dict) -> float:
    x = np.array([h[f"x{i}"] for i in range(1, 7)])
    return float(-(_H6_ALPHA * np.exp(-(_H6_A * (x - _H6_P) ** 2).sum(axis=1))).sum())


@pytest.mark.parametrize("seed", [5, 9])
def test_hartmann6_seeds_that_used_to_stall_reach_the_global_basin(seed):
    # Standard Hartmann-6: a global minimum (-3.32) and a local one (-3.20, regret 0.12) among others.
    # With the former log-normal length-scale prior seed 9 (and 22) ended at regret 1.24 (1.5): an
    # unimportant-looking column grew a length scale of 5-40, the posterior mean became a slope, the
    # acquisition pinned the column to a bound and never came back (bench/RESULTS.md, issue 29).
    # Seed 5 kept x6 at 1.0 even then (regret 1.64, the optimum's x6 is 0.66): a posterior mean sloping
    # to the bound; now, after five model picks at a bound, one ask looks inside.  (Seed 22 made way
    # for seed 5 to keep the suite's time: it passes too.)
    space = {f"x{i}": {"type": "float", "min": 0.0, "max": 1.0} for i in range(1, 7)}
    oracle = create_oracle("bayesian", HyperParameters.from_config(space), {"name": "f", "direction": "min"},
                           seed=seed, max_trials=40)
    values = drive(oracle, hartmann6, max_asks=40).values
    assert min(values) - _H6_MIN < 0.1  # below the local minimum's regret of 0.12


def _two_basins(h: dict) -> float:
    """A narrow global basin (-1 at (0.8, 0.2)) and a broad local one whose minimum (-0.66) lies on the
    bound x = 1: a model that settles on the bound sees its values still improving along it."""
    g = math.exp(-0.5 * ((h["x"] - 0.8) ** 2 + (h["y"] - 0.2) ** 2) / 0.1**2)
    local = math.exp(-0.5 * ((h["x"] - 1.1) ** 2 + (h["y"] - 0.7) ** 2) / 0.3**2)
    return -(g + 0.7 * local)


def test_no_stuck_seed_on_a_two_basin_toy():
    seed = 0
    # Before issue 29's fix this seed (and 13 others of seeds 0-19) ended at -0.66: EI crept along the bound in
    # steps of 1e-3 to 1e-2 for 20 trials, as on Branin seed 26.  Once the model's pick repeats an
    # observation or expects next to no improvement, an exploration step leaves the basin.
    space = {"x": {"type": "float", "min": 0.0, "max": 1.0}, "y": {"type": "float", "min": 0.0, "max": 1.0}}
    oracle = make(space, objective={"name": "f", "direction": "min"}, seed=seed, max_trials=30)
    assert min(run(oracle, _two_basins, 30)) < -1.0


def branin(h: dict) -> float:
    x1, x2 = h["x1"], h["x2"]
    return ((x2 - 5.1 / (4 * math.pi**2) * x1**2 + 5 / math.pi * x1 - 6) ** 2
            + 10 * (1 - 1 / (8 * math.pi)) * math.cos(x1) + 10)


def test_a_converged_search_still_refines_finer_than_a_thousandth_of_the_box():
    # A pick within DUPLICATE_DISTANCE of an observation counts as converged and becomes an exploration
    # step.  At 1e-3 of the unit box that stopped Branin's refinement at regret 1e-4 to 1e-3 (seed 0:
    # 4.4e-4 at 40 trials; a regret of 1e-4 needs steps of about 4e-4 there); at 1e-4 seed 0 ends at 6e-6.
    space = {"x1": {"type": "float", "min": -5.0, "max": 10.0}, "x2": {"type": "float", "min": 0.0, "max": 15.0}}
    oracle = create_oracle("bayesian", HyperParameters.from_config(space), {"name": "f", "direction": "min"},
                           seed=0, max_trials=40)
    values = drive(oracle, branin, max_asks=40).values
    assert min(values) - 0.39788735772973816 < 5e-5


_OPT = {"sgd": 0.1, "adam": 0.0, "rms": 0.2}  # each category's floor: adam x tanh is the best pair
_ACT = {"relu": 0.15, "tanh": 0.0, "elu": 0.1}
_SHIFT = {"sgd": -0.25, "adam": 0.25, "rms": 0.0, "relu": 0.1, "tanh": 0.05, "elu": -0.1}


def _pairs(h: dict) -> float:
    """Nine category pairs, each with its own optimum of x (shifted per category) and its own floor."""
    centre = 0.5 + _SHIFT[h["opt"]] + _SHIFT[h["act"]]
    return _OPT[h["opt"]] + _ACT[h["act"]] + 1.0 - math.exp(-0.5 * ((h["x"] - centre) / 0.12) ** 2)


def test_every_category_pair_is_tried_until_separated():
    seed = 0
    # Before issue 29 some pairs got one look (the initial design's, at a random x) and never another.
    space = {"opt": {"type": "choice", "values": list(_OPT)}, "act": {"type": "choice", "values": list(_ACT)},
             "x": {"type": "float", "min": 0.0, "max": 1.0}}
    oracle = make(space, objective={"name": "f", "direction": "min"}, seed=seed, max_trials=30)
    done = drive(oracle, _pairs, max_asks=30)
    tried = Counter((t.hparams["opt"], t.hparams["act"]) for t in done.told)
    assert len(tried) == 9 and min(tried.values()) >= 2, tried
    assert min(done.values) < 0.01  # and the best pair's optimum was found


def test_the_category_choice_explores_a_pair_seen_once_then_commits():
    # Combination 0: the incumbent's, converged (-0.2, the GP sure of it).  Combination 1: one look
    # at poor numbers (-0.9); the GP, reverting to the average, bounds it at -0.5, below the incumbent.
    keys = np.array([0, 0, 0, 1, 1, 1])
    mean = np.array([-0.2, -0.21, -0.25, -0.7, -0.8, -0.9])
    std = np.array([0.01, 0.01, 0.01, 0.1, 0.1, 0.1])
    incumbent = [-0.2, -0.3, -0.5, -0.6, -0.9, -1.0, -0.25, -0.22]
    assert ucb_combination(keys, mean, std, np.array([0] * 8 + [1]), np.array(incumbent + [-0.9]), 2) == 1
    # After four more looks near its predicted best, all clearly worse: the evidence separates them.
    seen = [-0.9, -0.8, -0.85, -0.82, -0.81]
    assert ucb_combination(keys, mean, std, np.array([0] * 8 + [1] * 5), np.array(incumbent + seen), 2) == 0


# --------------------------------------------------------------------------- Pareto mode's options

PARETO_SPACE = HyperParameters.from_config(SQUARE)


@pytest.mark.parametrize("options, field, message, fixed", [
    (dict(pareto_acquisition="qnehvi"), "tuner.pareto_acquisition", "unknown Pareto acquisition 'qnehvi'",
     dict(pareto_acquisition="EHVI")),
    (dict(acquisition="ucb"), "tuner.acquisition", "'ucb' has no form for several objectives",
     dict(acquisition="ucb", pareto_acquisition="parego")),
])
def test_pareto_options_are_checked(options, field, message, fixed):
    from archsearch.core.objective import ParetoObjective

    objective = ParetoObjective.of(["a:min", "b:min"])
    with pytest.raises(ConfigError, match=f"{field}.*{message}"):
        create_oracle("bayesian", PARETO_SPACE, objective, **options)
    assert create_oracle("bayesian", PARETO_SPACE, objective, **fixed).pareto_acquisition == \
        fixed["pareto_acquisition"].lower()


def test_a_pareto_acquisition_is_refused_in_a_single_objective_search():
    with pytest.raises(ConfigError, match="tuner.pareto_acquisition.*one objective.*search.mode=pareto"):
        create_oracle("bayesian", PARETO_SPACE, "loss", pareto_acquisition="parego")
