"""Expected hypervolume improvement (the Bayesian oracle's Pareto acquisition): the box decomposition
against hand counts and moocore, log EHVI against hand values and a seeded Monte Carlo estimate, its
gradient against finite differences, and the data the oracle feeds it.  numpy only."""

from __future__ import annotations

import math

import moocore
import numpy as np
import pytest

from archsearch.core.objective import ParetoObjective
from archsearch.core.trial import COMPLETED, FAILED, Trial
from archsearch.errors import ConfigError
from archsearch.oracles.hypervolume_acquisition import (HypervolumeModel, log_ehvi, log_ehvi_and_gradient,
                                                        nondominated_boxes, pareto_training_data, reference_excess)

FRONT = np.array([[1.0, 3.0], [2.0, 2.0], [3.0, 1.0]])
REF = np.array([4.0, 4.0])


def improvement(point: np.ndarray, front: np.ndarray, ref: np.ndarray) -> float:
    """The hypervolume a point adds, by moocore (the brute force the boxes are checked against)."""
    before = moocore.hypervolume(front, ref=ref)
    return moocore.hypervolume(np.vstack([front, point]), ref=ref) - before


def test_two_objective_boxes_are_the_staircase_below_the_front():
    lower, upper = nondominated_boxes(FRONT, REF)
    boxes = sorted(zip(map(tuple, lower), map(tuple, upper)))
    inf = -math.inf
    assert boxes == [((inf, inf), (1.0, 4.0)), ((1.0, inf), (2.0, 3.0)), ((2.0, inf), (3.0, 2.0)),
                     ((3.0, inf), (4.0, 1.0))]


@pytest.mark.parametrize("objectives", [2, 3, 4])
def test_boxes_and_front_fill_the_reference_box_exactly(objectives):
    rng = np.random.default_rng(objectives)
    front = rng.random((15, objectives))
    ref = np.full(objectives, 1.2)
    lower, upper = nondominated_boxes(front, ref)
    outside = np.prod(upper - np.maximum(lower, 0.0), axis=1).sum()  # every cost is >= 0 here
    nondominated = front[moocore.is_nondominated(front)]
    assert outside + moocore.hypervolume(nondominated, ref=ref) == pytest.approx(np.prod(ref))
    # Disjoint: the improvement of any point is its dominated volume within the boxes.
    for point in rng.random((20, objectives)):
        inside = np.prod(np.clip(upper - np.maximum(lower, point), 0.0, None), axis=1).sum()
        assert inside == pytest.approx(improvement(point, front, ref), abs=1e-12)


def test_an_empty_front_leaves_the_whole_reference_box_to_improve():
    lower, upper = nondominated_boxes(np.zeros((0, 2)), REF)
    assert lower.tolist() == [[-math.inf, -math.inf]] and upper.tolist() == [REF.tolist()]


def test_ehvi_of_a_near_certain_prediction_is_the_hand_counted_improvement():
    # (1.5, 1.5) against the staircase (1,3), (2,2), (3,1) up to (4,4) adds [1.5,2) x [1.5,3) (0.75)
    # and [2,3) x [1.5,2) (0.5): 1.25.
    lower, upper = nondominated_boxes(FRONT, REF)
    point = np.array([[1.5, 1.5]])
    value = math.exp(log_ehvi(point, np.full((1, 2), 1e-9), lower, upper)[0])
    assert value == pytest.approx(1.25, abs=1e-6)
    assert improvement(point[0], FRONT, REF) == pytest.approx(1.25)


@pytest.mark.parametrize("objectives", [2, 3])
def test_ehvi_matches_a_seeded_monte_carlo_estimate(objectives):
    rng = np.random.default_rng(10 + objectives)
    front = rng.random((8, objectives))
    ref = np.full(objectives, 1.1)
    mean, std = np.full(objectives, 0.45), np.linspace(0.1, 0.3, objectives)
    lower, upper = nondominated_boxes(front, ref)
    draws = mean + std * rng.standard_normal((20_000, objectives))
    estimate = np.mean([np.prod(np.clip(upper - np.maximum(lower, y), 0.0, None), axis=1).sum() for y in draws])
    exact = math.exp(log_ehvi(mean[None], std[None], lower, upper)[0])
    assert exact == pytest.approx(estimate, rel=0.03)


def test_log_ehvi_still_ranks_candidates_far_behind_the_front():
    lower, upper = nondominated_boxes(FRONT, REF)
    far = log_ehvi(np.array([[40.0, 40.0], [60.0, 60.0]]), np.ones((2, 2)), lower, upper)
    assert np.all(np.isfinite(far)) and far[0] > far[1] and far[0] < -500  # plain EHVI is 0.0 for both


def test_the_gradient_matches_finite_differences():
    rng = np.random.default_rng(3)
    front, ref = rng.random((10, 3)), np.full(3, 1.2)
    lower, upper = nondominated_boxes(front, ref)
    mean, std = np.array([0.3, 0.5, 0.4]), np.array([0.2, 0.1, 0.3])
    value, d_mean, d_std = log_ehvi_and_gradient(mean, std, lower, upper)
    assert value == pytest.approx(log_ehvi(mean[None], std[None], lower, upper)[0])
    step = 1e-6
    for j in range(3):
        e = np.eye(3)[j] * step
        assert d_mean[j] == pytest.approx((log_ehvi((mean + e)[None], std[None], lower, upper)[0] - value) / step,
                                          rel=1e-3)
        assert d_std[j] == pytest.approx((log_ehvi(mean[None], (std + e)[None], lower, upper)[0] - value) / step,
                                         rel=1e-3)


def _trials(rows: list[dict[str, float]]) -> list[Trial]:
    out = []
    for i, metrics in enumerate(rows):
        t = Trial(i, {"x": i / 10})
        t.status, t.metrics = COMPLETED, metrics
        out.append(t)
    return out


def test_each_objective_is_modelled_in_its_scale():
    """``scale: log`` models and weighs an objective by its logarithm; the default, linear, as it is (as the
    report's hypervolume counts it, whatever the name: a measure is no exception)."""
    trials = _trials([{"acc": 0.9, "params": 1e6}, {"acc": 0.5, "params": 1e3}])
    encode = lambda configs: np.array([[c["x"]] for c in configs])  # noqa: E731
    logged = pareto_training_data(trials, ParetoObjective.of(["acc:max", "params:min:log"]), encode)
    assert logged.costs[:, 0].tolist() == [-0.9, -0.5] and logged.costs[:, 1] == pytest.approx(np.log([1e6, 1e3]))
    plain = pareto_training_data(trials, ParetoObjective.of(["acc:max", "params:min"]), encode)
    assert plain.costs.tolist() == [[-0.9, 1e6], [-0.5, 1e3]]
    maximised = pareto_training_data(trials, ParetoObjective.of(["acc:max:log", "params:min"]), encode)
    assert maximised.costs[:, 0] == pytest.approx(-np.log([0.9, 0.5]))  # still to minimise


def test_a_log_scaled_objective_at_zero_is_refused_by_name():
    trials = _trials([{"acc": 0.9, "params": 1e6}, {"acc": 0.5, "params": 0.0}])
    encode = lambda configs: np.array([[c["x"]] for c in configs])  # noqa: E731
    with pytest.raises(ConfigError, match=r"'params' is counted by its log .* value 0"):
        pareto_training_data(trials, ParetoObjective.of(["acc:max", "params:min:log"]), encode)


def test_training_data_puts_failed_and_violating_trials_at_the_worst_costs_and_off_the_front():
    objective = ParetoObjective.of(["f1:min", "f2:max"])

    def trial(i, status, metrics):
        t = Trial(i, {"x": i / 10})
        t.status, t.metrics = status, metrics
        return t

    trials = [trial(0, COMPLETED, {"f1": 1.0, "f2": 3.0}), trial(1, COMPLETED, {"f1": 2.0, "f2": 5.0}),
              trial(2, FAILED, {}), trial(3, COMPLETED, {"f1": 0.1, "f2": 9.0, "constraint_violation": 2.0})]
    data = pareto_training_data(trials, objective, lambda configs: np.array([[c["x"]] for c in configs]))
    assert data.x[:, 0].tolist() == [0.0, 0.1, 0.2, 0.3]
    assert data.costs.tolist() == [[1.0, -3.0], [2.0, -5.0], [2.0, -3.0], [2.0, -3.0]]
    assert sorted(map(tuple, data.front)) == [(1.0, -3.0), (2.0, -5.0)]
    assert set(data.ranks) == {0, 1} and min(data.ranks.values()) > 0


def test_a_configured_reference_point_is_the_improvements_bound_in_the_modelled_units():
    objective = ParetoObjective.of(["acc:max", "params:min:log"])
    trials = []
    for i, (acc, params) in enumerate([(0.9, 1e6), (0.5, 1e3), (0.95, 1e8)]):
        t = Trial(i, {"x": i / 10})
        t.status, t.metrics = COMPLETED, {"acc": acc, "params": params}
        trials.append(t)
    encode = lambda configs: np.array([[c["x"]] for c in configs])  # noqa: E731
    told = pareto_training_data(trials, objective, encode, reference=np.array([-0.8, 1e7]))
    assert told.reference == pytest.approx([-0.8, math.log(1e7)])  # params modelled by its log, so is its bound
    derived = pareto_training_data(trials, objective, encode)
    assert derived.reference[0] == pytest.approx(-0.5 + 0.1 * 0.45)  # the nadir plus a tenth of the range
    # Only trials below the reference improve on nothing: the (0.95, 1e8) model adds no volume below 1e7.
    lower, upper = nondominated_boxes(told.front, told.reference)
    assert np.all(upper <= told.reference + 1e-12)


def _zdt1(values):
    x = np.array([values[f"x{i}"] for i in range(3)])
    g = 1.0 + 9.0 * x[1:].mean()
    return {"f1": float(x[0]), "f2": float(g * (1.0 - math.sqrt(x[0] / g)))}


def test_told_a_reference_point_the_search_spends_its_model_trials_below_it():
    """ZDT1's early costs reach 10; a user who scores the front below (1, 1) says so, and the model's trials go
    there instead of along the whole trade-off seen so far (untold, 6-8 of these 10 land at or below it on
    seeds 0-5).  At or below: the approach (module bayesian) may try the box's corners (0, 1) and (1, 0)."""
    from archsearch import HyperParameters
    from archsearch.oracles import create_oracle
    from archsearch.oracles.driving import drive

    space = HyperParameters.from_config({f"x{i}": {"type": "float", "min": 0.0, "max": 1.0} for i in range(3)})
    oracle = create_oracle("bayesian", space, ParetoObjective.of(["f1:min", "f2:min"]), seed=0, max_trials=16)
    oracle.set_reference_point({"f1": 1.0, "f2": 1.0})
    drive(oracle, _zdt1)
    model_trials = [t for t in oracle.trials.values() if t.id >= oracle.initial_points()]
    assert len(model_trials) == 10
    assert sum(t.metrics["f1"] <= 1.0 and t.metrics["f2"] <= 1.0 for t in model_trials) >= 9


def test_the_excess_over_the_reference_is_negative_exactly_inside_its_box():
    costs = np.array([[0.0, 0.0], [1.0, 4.0], [2.0, 1.0], [0.5, 3.0]])  # ranges 2 and 4
    excess = reference_excess(costs, np.array([1.0, 2.0]))
    assert excess.tolist() == pytest.approx([-0.5, 0.5, 0.5, 0.25])  # the largest, in units of each range
    assert (excess < 0).tolist() == np.all(costs < [1.0, 2.0], axis=1).tolist()


def _dtlz2(values):
    x = np.array([values[f"x{i}"] for i in range(12)])
    g = float(np.sum((x[2:] - 0.5) ** 2))
    a, b = x[0] * math.pi / 2, x[1] * math.pi / 2
    return {"f1": (1 + g) * math.cos(a) * math.cos(b), "f2": (1 + g) * math.cos(a) * math.sin(b),
            "f3": (1 + g) * math.sin(a)}


def test_told_a_reference_point_far_below_the_early_costs_the_model_approaches_its_box_first():
    """DTLZ2 (Deb et al. 2002, 12 variables) scored below (1.1, 1.1, 1.1), which none of the initial design
    reaches: EHVI alone sent seeds 0-3 to the cube's corners and none of their 30 trials into the box; the
    approach (minus the excess over the reference, one GP) gets there, and EHVI takes over once the box
    holds a trial per objective."""
    from archsearch import HyperParameters
    from archsearch.oracles import create_oracle
    from archsearch.oracles.driving import drive

    space = HyperParameters.from_config({f"x{i}": {"type": "float", "min": 0.0, "max": 1.0} for i in range(12)})
    oracle = create_oracle("bayesian", space, ParetoObjective.of(["f1:min", "f2:min", "f3:min"]), seed=0,
                           max_trials=30)
    oracle.set_reference_point({"f1": 1.1, "f2": 1.1, "f3": 1.1})
    drive(oracle, _dtlz2)
    inside = [t for t in oracle.trials.values() if all(v < 1.1 for v in t.metrics.values())]
    assert all(t.id >= oracle.initial_points() for t in inside)
    assert len(inside) >= 3  # a trial per objective, then EHVI
    assert isinstance(oracle.gp, HypervolumeModel)


def test_a_reference_point_is_refused_where_it_cannot_apply():
    from archsearch import HyperParameters
    from archsearch.errors import ConfigError
    from archsearch.oracles import create_oracle

    space = HyperParameters.from_config({"x": {"type": "float", "min": 0.0, "max": 1.0}})
    with pytest.raises(ConfigError, match="search.reference_point.*one objective"):
        create_oracle("bayesian", space, "loss", seed=0).set_reference_point([1.0])
    oracle = create_oracle("random", space, ParetoObjective.of(["f1:min", "f2:max"]), seed=0)
    with pytest.raises(ConfigError, match="search.reference_point"):
        oracle.set_reference_point({"f1": 1.0})  # f2 missing
    oracle.set_reference_point({"f1": 1.0, "f2": 3.0})
    assert oracle.reference_costs.tolist() == [1.0, -3.0]  # costs: the maximised objective negated
