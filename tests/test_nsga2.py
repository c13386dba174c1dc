"""NSGA-II (``tuner=nsga2``): selection, variation, constraint-dominance, determinism and the front it finds.

The contract every oracle keeps (exhaustion, restore after a kill, parallel trials, Pareto mode) is in
``tests/test_oracle_contract.py``; here are the algorithm's own rules, on hand examples and ZDT1.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from archsearch import HyperParameters
from archsearch.core.objective import ParetoObjective
from archsearch.core.pareto import hypervolume
from archsearch.errors import ConfigError
from archsearch.oracles import FAILED, NSGA2Oracle, create_oracle
from archsearch.oracles.driving import drive
from archsearch.oracles.nsga2 import crossover, gene_kind, mutate, survivors, tournament, unit_vector
from archsearch.space.values import values_key

OBJECTIVE = ParetoObjective.of(["f1:min", "f2:min"])

# Every parameter type and scale, a conditional parameter, and a name declared twice under other conditions.
SPACE = {
    "layers": {"type": "int", "min": 1, "max": 3},
    "units": {"type": "int", "min": 8, "max": 128, "sampling": "log"},
    "filters": {"type": "int", "min": 8, "max": 64, "step": 8},
    "lr": {"type": "float", "min": 1e-4, "max": 1e-1, "sampling": "log"},
    "momentum": {"type": "float", "min": 0.5, "max": 0.99, "sampling": "reverse_log"},
    "decay": {"type": "float", "min": 1e-3, "max": 1.0, "step": 10, "sampling": "log"},
    "dropout": {"type": "float", "min": 0.0, "max": 0.5, "step": 0.1},
    "act": {"type": "choice", "values": ["relu", "tanh", "elu"]},
    "width": {"type": "choice", "values": [16, 32, 64]},
    "bn": {"type": "boolean"},
    "optimizer": {"type": "fixed", "value": "adam"},
    "units_2": {"type": "int", "min": 8, "max": 64, "step": 8, "when": {"layers": [2, 3]}},
    "kernel_3": {"type": "choice", "values": [3, 5], "when": {"layers": [3]}},
}


def two_costs(h: dict) -> dict:
    """A trade-off over every parameter: small models are cheap, big ones accurate."""
    size = h["layers"] * h["units"] + h.get("units_2", 0) + h["filters"] + h["width"] / 4
    error = (1.0 / size + abs(math.log10(h["lr"]) + 2.5) / 5 + h["dropout"] / 3 + (h["act"] != "elu") / 10
             + (1 - h["momentum"]) / 4 + h["decay"] / 10 + 0.05 * h["bn"] + (h.get("kernel_3") == 5) / 20)
    return {"f1": error, "f2": math.log(size)}


def zdt1(h: dict) -> dict:
    """ZDT1 (Zitzler, Deb & Thiele 2000), the standard 30 variables in [0, 1]."""
    x = np.array([h[f"x{i:02d}"] for i in range(30)])
    g = 1.0 + 9.0 * float(np.mean(x[1:]))
    return {"f1": float(x[0]), "f2": g * (1.0 - math.sqrt(x[0] / g))}


ZDT1_SPACE = {f"x{i:02d}": {"type": "float", "min": 0.0, "max": 1.0} for i in range(30)}


def nsga2(config=SPACE, objective=OBJECTIVE, **options) -> NSGA2Oracle:
    return create_oracle("nsga2", HyperParameters.from_config(config), objective, **{"seed": 0, **options})


# --------------------------------------------------------------------------- selection


def test_survivors_sort_by_front_then_crowding_and_put_infeasible_last_by_violation():
    costs = np.array([[1, 1], [0, 3], [2, 2], [3, 0], [4, 4], [np.nan, np.nan], [np.nan, np.nan], [1.5, 1.5]])
    violations = np.array([0, 0, 0, 0, 0, math.inf, 0.5, 0])
    # Front 0: rows 0, 1, 3 (the ends 1 and 3 are infinitely crowded, row 0 in between); then row 7, which
    # dominates row 2, which dominates row 4; then the infeasible rows, the smaller violation first.
    assert survivors(costs, violations, 8).tolist() == [1, 3, 0, 7, 2, 4, 6, 5]
    assert survivors(costs, violations, 3).tolist() == [1, 3, 0]


def test_crowding_keeps_the_spread_out_point_when_a_front_is_cut():
    costs = np.array([[0, 10], [1, 9], [1.1, 8.9], [5, 5], [10, 0]])  # one front; row 2 sits next to row 1
    kept = survivors(costs, np.zeros(5), 4).tolist()
    assert kept[:2] == [0, 4] and 3 in kept and kept.count(1) + kept.count(2) == 1


def test_a_binary_tournament_picks_the_better_of_two_distinct_members():
    rng = np.random.default_rng(0)
    picks = [tournament(5, rng) for _ in range(400)]
    assert set(picks) <= {0, 1, 2, 3} and 4 not in picks  # the worst member never wins a tournament
    assert picks.count(0) > picks.count(3)  # the best wins every tournament it enters: 4 of 10 pairs
    assert tournament(1, rng) == 0


def test_the_population_is_the_best_evaluated_trials_under_constraint_dominance():
    oracle = nsga2(ZDT1_SPACE, population_size=4, max_trials=10)
    trials = [oracle.ask() for _ in range(7)]
    oracle.tell(trials[0].id, {"f1": 0.0, "f2": 2.0})
    oracle.tell(trials[1].id, {"f1": 1.0, "f2": 1.0})
    oracle.tell(trials[2].id, {"f1": 2.0, "f2": 2.0})  # dominated by trial 1
    # Infeasible: refused by a constraint with its violation recorded, and one with no violation recorded.
    oracle.tell(trials[3].id, {"f1": 0.0, "f2": 0.0, "constraint_violation": 0.2}, status=FAILED, error="infeasible")
    oracle.tell(trials[4].id, None, status=FAILED, error="infeasible: too big")
    oracle.trials[trials[4].id].failure_kind = "infeasible"
    oracle.tell(trials[5].id, None, status=FAILED, error="RuntimeError: crashed")  # a crash does not compete
    assert [t.id for t in oracle.population_trials()] == [0, 1, 2, 3]  # feasible first, even when dominated
    oracle.tell(trials[6].id, {"f1": 3.0, "f2": 0.5})
    assert [t.id for t in oracle.population_trials()] == [0, 6, 1, 2]  # a new end of the front, crowded first


@pytest.mark.parametrize("scale, survivors", [("linear", [0, 3, 1]), ("log", [0, 3, 2])])
def test_the_population_is_crowded_in_each_objectives_scale(scale, survivors):
    """Of two middle points of one front, the more isolated survives: linearly (2, 300), by log f2 (3, 10)."""
    oracle = nsga2(ZDT1_SPACE, objective=ParetoObjective.of(["f1:min", f"f2:min:{scale}"]), population_size=3,
                   max_trials=10)
    for values in [(1.0, 1000.0), (2.0, 300.0), (3.0, 10.0), (4.0, 1.0)]:
        oracle.tell(oracle.ask().id, dict(zip(("f1", "f2"), values)))
    assert [t.id for t in oracle.population_trials()] == survivors


def test_single_objective_mode_ranks_by_value():
    oracle = nsga2(ZDT1_SPACE, objective="f2:min", population_size=3, max_trials=10)
    trials = [oracle.ask() for _ in range(5)]
    for trial, value in zip(trials, [3.0, 1.0, 2.0, 0.5, 4.0]):
        oracle.tell(trial.id, {"f2": value})
    assert [t.id for t in oracle.population_trials()] == [3, 1, 2]  # one objective: each value its own front
    drive(oracle, lambda h: zdt1(h)["f2"])
    assert oracle.finished and len(oracle.trials) == 10 and oracle.best_trials(1)[0].value <= 0.5


# --------------------------------------------------------------------------- variation


def test_children_stay_in_the_space_for_every_type_scale_and_condition():
    space = HyperParameters.from_config(SPACE)
    oracle = nsga2(population_size=6, max_trials=60)
    drive(oracle, two_costs, concurrent=2)
    children = [t for t in oracle.trials.values() if t.id >= 6]
    assert len(children) == 54 and len({values_key(t.hparams) for t in oracle.trials.values()}) == 60
    seen: dict[str, set] = {name: set() for name in SPACE}
    for trial in oracle.trials.values():
        assert trial.hparams == space.active_values(trial.hparams)  # inactive parameters are left out
        assert ("units_2" in trial.hparams) == (trial.hparams["layers"] > 1)
        assert ("kernel_3" in trial.hparams) == (trial.hparams["layers"] == 3)
        space.validate_values(trial.hparams)
        for name, value in trial.hparams.items():
            assert space.space[name].contains(value), (name, value)
            assert type(value) in (int, float, str, bool), (name, value)
            seen[name].add(value)
    assert seen["optimizer"] == {"adam"} and seen["bn"] == {False, True} and len(seen["act"]) == 3
    assert seen["decay"] <= set(space.space["decay"].grid()) and len(seen["decay"]) > 1  # the log grid's values
    assert seen["dropout"] <= set(space.space["dropout"].grid()) and len(seen["dropout"]) > 1
    assert len(seen["lr"]) > 20  # a continuous log scale is searched continuously


def test_crossover_and_mutation_keep_unit_coordinates_and_change_categories_to_another_value():
    hp = HyperParameters.from_config(SPACE)
    kinds = [gene_kind(p) for p in hp.space.values()]
    kind_of = dict(zip(hp.space.keys(), kinds))
    assert (kind_of["optimizer"], kind_of["act"], kind_of["bn"]) == ("fixed", "category", "category")
    assert kind_of["width"] == kind_of["lr"] == kind_of["filters"] == "real"  # ordered choices, numbers, steps
    rng = np.random.default_rng(1)
    sizes = [3 if n == "act" else 2 if n == "bn" else 0 for n in hp.space.keys()]
    for _ in range(200):
        a, b = rng.random(len(kinds)), rng.random(len(kinds))
        child = mutate(crossover(a, b, kinds, rng), kinds, 1.0, rng, sizes)
        assert np.all((0 <= child) & (child <= 1))
    parent = np.full(len(kinds), 0.5)
    mutated = mutate(parent, kinds, 1.0, np.random.default_rng(3), sizes)
    act, bn = list(hp.space.keys()).index("act"), list(hp.space.keys()).index("bn")
    assert math.floor(mutated[act] * 3) != 1 and (mutated[bn] >= 0.5) != (parent[bn] >= 0.5)


def test_a_parameter_active_in_one_parent_is_inherited_and_one_in_neither_is_drawn():
    hp = HyperParameters.from_config(SPACE)
    one = unit_vector(hp, hp.active_values({"layers": 1}))
    three = unit_vector(hp, hp.active_values({"layers": 3, "units_2": 64, "kernel_3": 5}))
    names = list(hp.space.keys())
    assert math.isnan(one[names.index("units_2")]) and three[names.index("units_2")] == pytest.approx(7.5 / 8)
    from archsearch.oracles.nsga2 import fill_missing

    a, b = fill_missing(one, three, np.random.default_rng(0))
    assert a[names.index("units_2")] == b[names.index("units_2")] == pytest.approx(7.5 / 8)
    a, b = fill_missing(one, one, np.random.default_rng(0))
    assert a[names.index("units_2")] == b[names.index("units_2")] and not math.isnan(a[names.index("units_2")])


# --------------------------------------------------------------------------- options, determinism, the front


def test_the_population_size_follows_the_budget_unless_given_and_bad_options_are_refused():
    assert nsga2(max_trials=200).population == 50 and nsga2(max_trials=100).population == 25
    assert nsga2(max_trials=6).population == 4 and nsga2().population == 50
    assert nsga2(max_trials=100, population_size=10).population == 10
    for field, value in (("population_size", 1), ("population_size", 2.5), ("crossover_prob", 1.5),
                         ("mutation_prob", "often")):
        with pytest.raises(ConfigError, match=f"tuner.{field}"):
            nsga2(**{field: value})


def test_the_same_seed_repeats_the_search_and_another_seed_does_not():
    def run(seed):
        oracle = nsga2(ZDT1_SPACE, seed=seed, max_trials=24, population_size=6)
        drive(oracle, zdt1)
        return [values_key(t.hparams) for t in oracle.trials.values()]

    assert run(5) == run(5) != run(6)


def test_the_front_on_zdt1_beats_random_search_with_the_same_budget():
    def front_hv(name: str, seed: int) -> float:
        oracle = create_oracle(name, HyperParameters.from_config(ZDT1_SPACE), OBJECTIVE, seed=seed, max_trials=60)
        drive(oracle, zdt1)
        costs = np.array([[t.metrics["f1"], t.metrics["f2"]] for t in oracle.pareto_front()])
        return hypervolume(costs, (11.0, 11.0))

    seeds = range(4)
    evolved = np.mean([front_hv("nsga2", s) for s in seeds])
    drawn = np.mean([front_hv("random", s) for s in seeds])
    assert evolved > drawn + 1.0, (evolved, drawn)


def test_a_restored_search_knows_which_failures_were_infeasible():
    """The engine marks a trial infeasible after telling it; the replay of the store must keep the mark."""
    import copy

    from archsearch.oracles.driving import resume

    def make():
        return nsga2(ZDT1_SPACE, population_size=3, max_trials=12)

    oracle, history = make(), []
    for _ in range(6):
        trial = oracle.ask()
        history.append(("ask", copy.deepcopy(trial)))
        if trial.id in (1, 4):  # too big to train: no objective, no violation recorded
            oracle.tell(trial.id, None, status=FAILED, error="infeasible: too big")
            oracle.trials[trial.id].failure_kind = "infeasible"
        else:
            oracle.tell(trial.id, zdt1(trial.hparams))
        history.append(("tell", copy.deepcopy(oracle.trials[trial.id])))
    restored = resume(make, history=history)
    assert [t.failure_kind for t in restored.trials.values()] == [t.failure_kind for t in oracle.trials.values()]
    assert [t.id for t in restored.population_trials()] == [t.id for t in oracle.population_trials()]
    assert restored.ask().hparams == oracle.ask().hparams
