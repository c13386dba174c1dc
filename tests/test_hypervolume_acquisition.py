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
from archsearch.oracles.hypervolume_acquisition import (log_ehvi, log_ehvi_and_gradient, nondominated_boxes,
                                                        pareto_training_data, warp_costs)

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


def test_model_measures_are_modelled_by_their_logarithm():
    costs = np.array([[-0.9, 1e6], [-0.5, 1e3]])
    warped = warp_costs(costs, ["acc", "params"])
    assert warped[:, 0].tolist() == [-0.9, -0.5] and warped[:, 1] == pytest.approx(np.log([1e6, 1e3]))
    assert warp_costs(np.array([[1.0, -2.0]]), ["loss", "latency_ms"]).tolist() == [[1.0, -2.0]]  # not all > 0


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
