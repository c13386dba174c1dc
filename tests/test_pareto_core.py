"""The words a Pareto search speaks: its objective, constraints, settings and front arithmetic."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from archsearch.core import pareto
from archsearch.core.constraints import Constraints
from archsearch.core.objective import Objective, ParetoObjective
from archsearch.core.trial import COMPLETED, FAILED, Trial
from archsearch.engine.settings import ObjectiveSettings
from archsearch.errors import ConfigError


def test_a_pareto_objective_keeps_every_objective_apart_and_its_value_is_the_first():
    objective = ParetoObjective.of(["val_iou:max", {"name": "params", "direction": "min"}, Objective("latency_ms")])
    metrics = {"val_iou": 0.8, "params": 1e5, "latency_ms": 2.0}
    assert objective.is_pareto and not Objective("val_iou").is_pareto
    assert objective.values_from(metrics) == (0.8, 1e5, 2.0)
    assert objective.costs_from(metrics) == (-0.8, 1e5, 2.0)
    assert objective.value_from(metrics) == 0.8 and objective.direction == "max"
    assert objective.metric_names == ("val_iou", "params", "latency_ms")
    assert objective.values_from({"val_iou": 0.8, "params": float("nan"), "latency_ms": 1}) is None
    assert objective.values_from({"val_iou": 0.8}) is None
    # not KerasTuner's sum of the same list: two searches with either are different searches
    assert objective != Objective.create(["val_iou:max", "params:min", "latency_ms:min"])


@pytest.mark.parametrize("spec, field", [(["val_iou"], "objective"), (["a:max", "a:max"], "objective"),
                                         ([["a", "b"], "c"], "objective")])
def test_a_pareto_objective_needs_two_distinct_flat_objectives(spec, field):
    with pytest.raises(ConfigError, match=field):
        ParetoObjective.of(spec)


def test_the_command_line_short_form_gives_a_direction():
    assert Objective.create("val_f1:max") == Objective("val_f1", "max")
    assert Objective.create("latency_ms:min") == Objective("latency_ms", "min")
    assert Objective.create("val_loss") == Objective("val_loss", "min")


def test_an_objective_has_a_scale_linear_unless_told_log():
    assert Objective.create("params:min").scale == "linear"
    assert Objective.create("params:min:log") == Objective("params", "min", scale="log")
    assert Objective.create({"name": "params", "direction": "min", "scale": "LOG"}).scale == "log"
    assert ParetoObjective.of(["val_iou:max", "params:min:log"]).log_columns == [1]
    assert ParetoObjective.of(["val_iou:max", "params:min:log"]) != ParetoObjective.of(["val_iou:max", "params:min"])
    assert ParetoObjective.of(["val_iou:max", "params:min:log"]).describe()["components"][1] == {
        "name": "params", "direction": "min", "scale": "log"}
    with pytest.raises(ConfigError, match="'ln' is not a scale of 'params'") as caught:
        Objective.create("params:min:ln")
    assert caught.value.field == "objective.scale"


def test_a_log_scale_counts_the_logarithm_of_each_value_still_to_minimise():
    objective = ParetoObjective.of(["val_acc:max:log", "params:min:log", "val_loss:min"])
    costs = np.array([objective.costs_from({"val_acc": 0.5, "params": 1e3, "val_loss": -2.0}),
                      objective.costs_from({"val_acc": 0.25, "params": 1e6, "val_loss": 3.0})])
    scaled = objective.scaled_costs(costs)
    assert scaled == pytest.approx(np.array([[np.log(2), np.log(1e3), -2.0], [np.log(4), np.log(1e6), 3.0]]))
    assert pareto.unscaled_costs(objective, scaled) == pytest.approx(costs)
    # the derived reference is the nadir plus 10% of each range in the scale: 1e6 * 1e0.3 params, not 1.1e6
    reference = pareto.derived_reference(objective, costs)
    assert reference[1] == pytest.approx(1e6 * 10 ** 0.3) and reference[2] == pytest.approx(3.5)
    assert -reference[0] == pytest.approx(0.25 / 2 ** 0.1)  # an accuracy stays above 0


def test_the_hypervolume_counts_a_log_objective_by_its_logarithm():
    """Two fronts that tie linearly differ by the log of params: the results' hypervolume follows the scale."""
    def trials(rows):
        out = []
        for i, (acc, params) in enumerate(rows):
            t = Trial(i, {})
            t.status, t.metrics = COMPLETED, {"acc": acc, "params": params}
            out.append(t)
        return out

    reference = np.array([0.0, 1e6])  # costs: acc negated
    rows = [(0.5, 1e2), (0.9, 5e5)]
    linear = pareto.FrontView.of(trials(rows), ParetoObjective.of(["acc:max", "params:min"])).hypervolume(reference)
    logged = pareto.FrontView.of(trials(rows), ParetoObjective.of(["acc:max", "params:min:log"])).hypervolume(reference)
    assert linear[0] == pytest.approx(0.5 * (1e6 - 1e2) + 0.4 * (1e6 - 5e5))
    assert logged[0] == pytest.approx(0.5 * (np.log(1e6) - np.log(1e2)) + 0.4 * (np.log(1e6) - np.log(5e5)))
    assert logged[1].tolist() == reference.tolist()  # the reference is given back in plain costs


def test_the_knee_is_taken_in_each_objectives_scale():
    """Accuracy against params over four decades: counted linearly every model below 1e5 is 'small', so the
    knee is the accurate 1e5 one; by the log of params the 1e3 one, a hundred times smaller, is."""
    rows = [(0.5, 1e2), (0.8, 1e3), (0.85, 1e5), (0.9, 1e6)]
    trials = []
    for i, (acc, params) in enumerate(rows):
        t = Trial(i, {})
        t.status, t.metrics = COMPLETED, {"acc": acc, "params": params}
        trials.append(t)
    assert pareto.FrontView.of(trials, ParetoObjective.of(["acc:max", "params:min"])).knee == 2
    logged = pareto.FrontView.of(trials, ParetoObjective.of(["acc:max", "params:min:log"]))
    assert logged.knee == 1 and [t.id for t in logged.knee_first()][0] == 1


def test_crowding_is_taken_in_each_objectives_scale():
    """Four trials on one front: linearly the (2, 300) point is the more isolated of the middle two, by the log
    of f2 the (3, 10) one (MO-ASHA's and NSGA-II's tie-break, so their choices spread as the user counts)."""
    trials = []
    for i, (f1, f2) in enumerate([(1.0, 1000.0), (2.0, 300.0), (3.0, 10.0), (4.0, 1.0)]):
        t = Trial(i, {})
        t.status, t.metrics = COMPLETED, {"f1": f1, "f2": f2}
        trials.append(t)
    assert [t.id for t in pareto.ranked_trials(trials, ParetoObjective.of(["f1:min", "f2:min"]))] == [0, 3, 1, 2]
    assert [t.id for t in pareto.ranked_trials(trials, ParetoObjective.of(["f1:min", "f2:min:log"]))] == [0, 3, 2, 1]


@pytest.mark.parametrize("cfg, field, says", [
    ({"objective": {"name": "params", "direction": "min", "scale": "log"}}, "objective.scale", "this search has one objective"),
    ({"objective": ["val_loss", "params:min:log"]}, "objective.scale", "one summed score"),
    ({"objective": ["val_accuracy:max", "params:min:log"],
      "search": {"mode": "pareto", "reference_point": [0.5, 0]}}, "search.reference_point", "params=0"),
])
def test_a_scale_that_cannot_be_honoured_is_refused_by_name(cfg, field, says):
    with pytest.raises(ConfigError, match=says) as caught:
        ObjectiveSettings.from_config(cfg)
    assert caught.value.field == field


def test_an_oracle_of_one_objective_refuses_a_scale_it_would_not_honour():
    from archsearch.oracles import create_oracle
    from archsearch.space.hyperparameters import HyperParameters

    hp = HyperParameters()
    hp.Float("x", 0.0, 1.0)
    with pytest.raises(ConfigError, match="this search has one objective"):
        create_oracle("random", hp, Objective("params", "min", scale="log"), max_trials=2)


def test_a_log_objective_at_zero_is_refused_not_counted_otherwise():
    objective = ParetoObjective.of(["val_accuracy:max", "params:min:log"])
    with pytest.raises(ConfigError, match="'params' is counted by its log .* value 0"):
        objective.scaled_costs(np.array([[-0.5, 10.0], [-0.6, 0.0]]))


def test_constraints_are_parsed_once_and_measure_how_far_they_are_broken():
    constraints = Constraints.parse(["params <= 2e6", "latency_ms<5", "val_accuracy >= 0.5"])
    assert [c.before_training for c in constraints] == [True, False, False]
    broken = constraints.violations({"params": 3e6, "val_accuracy": 0.25})  # latency_ms not known yet
    assert [str(v) for v in broken] == ["params = 3e+06 breaks params <= 2e+06",
                                        "val_accuracy = 0.25 breaks val_accuracy >= 0.5"]
    assert Constraints.total(broken) == pytest.approx(0.5 + 0.5)
    assert constraints.violations({"params": 2e6, "latency_ms": 4.9, "val_accuracy": 0.5}) == []
    assert constraints.violations({"latency_ms": 5.0})[0].amount > 0  # a strict bound met exactly is broken
    assert constraints.missing({"params": 1}) == ["latency_ms", "val_accuracy"]


@pytest.mark.parametrize("bad", ["params =< 2", "params <= lots", "<= 3", {"params": 3}, 5])
def test_a_malformed_constraint_is_one_error_naming_it(bad):
    with pytest.raises(ConfigError, match="constraints"):
        Constraints.parse(bad if isinstance(bad, (dict, int)) else [bad])


def test_objective_settings_read_mode_measures_constraints_and_reference_point():
    goal = ObjectiveSettings.from_config({
        "objective": ["val_accuracy:max", "params:min"], "search": {"mode": "pareto", "measures": ["latency_ms"],
                                                                  "reference_point": [0.0, 1e7]},
        "constraints": ["flops <= 1e9"]})
    assert goal.objective.is_pareto and goal.mode == "pareto"
    assert goal.reference_point == {"val_accuracy": 0.0, "params": 1e7}
    assert goal.recorded_measures == ("params", "flops", "latency_ms")
    single = ObjectiveSettings.from_config({"objective": ["val_accuracy", "val_loss"]})
    assert single.mode == "single" and single.objective.name == "multi_objective"  # KerasTuner's sum


@pytest.mark.parametrize("cfg, field", [
    ({"search": {"mode": "front"}}, "search.mode"),
    ({"search": {"measures": ["speed"]}}, "search.measures"),
    ({"search": {"modes": "pareto"}}, "search.modes"),
    ({"search": {"reference_point": {"val_accuracy": 0}}}, "search.reference_point"),  # single mode
    ({"search": {"mode": "pareto", "reference_point": {"val_accuracy": 0}}}, "search.reference_point"),
    ({"search": {"mode": "pareto"}, "objective": "val_accuracy"}, "objective"),
])
def test_objective_settings_refuse_what_they_cannot_honour(cfg, field):
    cfg = {"objective": ["val_accuracy:max", "params:min"], **cfg}
    with pytest.raises(ConfigError) as caught:
        ObjectiveSettings.from_config(cfg)
    assert caught.value.field == field


def brute_front(costs):
    return [not any(pareto.dominates(other, row) for other in costs) for row in costs]


def test_ranks_front_and_hypervolume_agree_with_brute_force():
    rng = np.random.default_rng(3)
    costs = np.round(rng.random((40, 3)), 1)  # rounded: ties and duplicates
    assert list(pareto.front_mask(costs)) == brute_front(costs.tolist())
    ranks = pareto.nondominated_ranks(costs)
    for i, j in itertools.permutations(range(len(costs)), 2):
        if pareto.dominates(costs[i], costs[j]):
            assert ranks[i] < ranks[j]
    # hypervolume of a staircase, by hand: [1,3],[2,2],[3,1] against [4,4] covers 3+2+1
    assert pareto.hypervolume([[1, 3], [2, 2], [3, 1], [5, 0]], [4, 4]) == pytest.approx(6.0)
    assert pareto.hypervolume([[5, 5]], [4, 4]) == 0.0


def test_crowding_and_knee():
    front = np.array([[0.0, 1.0], [0.1, 0.5], [0.5, 0.1], [0.6, 0.09], [1.0, 0.0]])
    crowd = pareto.crowding_distance(front)
    assert np.isinf(crowd[[0, 4]]).all() and crowd[2] > crowd[3]
    assert pareto.knee_index(front) in (1, 2)
    assert pareto.knee_index([[0, 10], [1, 1], [10, 0]]) == 1


def test_the_front_of_trials_skips_failed_ones_and_orders_by_the_first_objective():
    objective = ParetoObjective.of(["acc:max", "params:min"])
    rows = [(0.9, 100), (0.8, 50), (0.7, 60), (0.95, 1000), (0.99, 10)]
    trials = [Trial(i, {}, status=COMPLETED, metrics={"acc": a, "params": p}) for i, (a, p) in enumerate(rows)]
    trials[4].status = FAILED
    assert [t.id for t in pareto.front(trials, objective)] == [3, 0, 1]


def test_an_oracle_in_pareto_mode_fails_a_trial_missing_an_objective_and_its_best_trials_are_the_front():
    from archsearch.oracles import create_oracle
    from archsearch.space.hyperparameters import HyperParameters

    hp = HyperParameters()
    hp.Float("x", 0.0, 1.0)
    oracle = create_oracle("random", hp, ParetoObjective.of(["a:max", "b:min"]), max_trials=12, seed=1)
    while (trial := oracle.ask()) is not None:
        x = trial.hparams["x"]
        oracle.tell(trial.id, {"a": x} if trial.id == 5 else {"a": x, "b": x * x + (0.3 if trial.id % 3 == 0 else 0)})
    assert oracle.trials[5].status == FAILED and "objective b is missing" in oracle.trials[5].error
    front = oracle.best_trials(100)
    assert front == oracle.pareto_front() and front
    assert all(t.id % 3 for t in front)  # the penalised third are all dominated by a neighbour
    firsts = [t.metrics["a"] for t in front]
    assert firsts == sorted(firsts, reverse=True)  # ordered by the first objective, best first


def test_the_main_objective_is_the_first_one_training_produces():
    objective = ParetoObjective.of(["params:min", "flops:min", "val_iou:max"])
    assert objective.main == Objective("val_iou", "max") and objective.monitor == "val_iou"
    assert objective.direction == "max" and objective.value_from({"params": 3.0, "val_iou": 0.5}) == 0.5
    only_measures = ParetoObjective.of(["params:min", "latency_ms:min"])
    assert only_measures.main.name == "params"
    assert Objective("val_loss").monitor == "val_loss"
