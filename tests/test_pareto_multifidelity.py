"""Pareto mode of the model-based and multi-fidelity oracles (issue 28), on simulated learning curves.

MO-ASHA promotion (asha, hyperband, bohb: non-dominated rank, crowding tie-break), median pruning
against the median point, ParEGO in ``bayesian``, and restore.  No Keras: the curves are plain
functions driven through :mod:`archsearch.oracles.driving`, or told by hand where the exact
vectors at a rung matter.
"""

from __future__ import annotations

import copy

import numpy as np
import pytest

from archsearch import HyperParameters
from archsearch.core.objective import ParetoObjective
from archsearch.core.pareto import (dominates, front_mask, hypervolume, nondominated_ranks, scored_trials,
                                    selection_order)
from archsearch.errors import ConfigError
from archsearch.oracles import create_oracle
from archsearch.oracles.base import COMPLETED, PRUNED
from archsearch.oracles.driving import drive, resume
from archsearch.oracles.hypervolume_acquisition import HypervolumeModel

ACC_PARAMS = ParetoObjective.of(["val_acc:max", "params:min"])
SPACE = {"x": {"type": "float", "min": 0.0, "max": 1.0}, "size": {"type": "float", "min": 0.0, "max": 1.0}}

# (val_acc, params) of nine trials at a rung.  The front is t0, t3, t2, t1 (by accuracy); of the two
# in its middle t3 is the more isolated (crowding 1.375 against t2's 1.0).  t4 has the second best
# accuracy but t0 dominates it: the single-objective rule would promote it, MO-ASHA must not.
RUNG = [(0.90, 9e5), (0.50, 1e5), (0.80, 6e5), (0.70, 5e5), (0.85, 9.5e5),
        (0.40, 2e5), (0.60, 7e5), (0.30, 9e5), (0.20, 1e6)]


def space() -> HyperParameters:
    return HyperParameters.from_config(SPACE)


def metrics(acc: float, params: float) -> dict[str, float]:
    return {"val_acc": acc, "params": params}


def learning_curve(hparams: dict, epoch: int) -> dict[str, float]:
    """Accuracy rises with the model's size and with x near 0.3; params is the size's, known at every epoch."""
    final = 0.6 + 0.35 * hparams["size"] ** 0.5 - 0.4 * (hparams["x"] - 0.3) ** 2
    return metrics(final * (1 - 0.6**epoch), 1e4 + 2e6 * hparams["size"])


def tell_rung(oracle, vectors) -> list[int]:
    """Ask ``len(vectors)`` trials and complete them with the given (val_acc, params)."""
    ids = [oracle.ask().id for _ in vectors]
    for trial_id, vector in zip(ids, vectors):
        oracle.tell(trial_id, metrics(*vector))
    return ids


# --------------------------------------------------------------------------- promotion


def test_selection_order_takes_the_front_first_then_the_most_isolated():
    costs = [(-a, p) for a, p in RUNG]
    assert list(selection_order(costs)[:4]) == [0, 1, 3, 2]  # ends (infinite crowding, older first), t3, t2
    assert set(selection_order(costs)[:4]) == {i for i, r in enumerate(nondominated_ranks(costs)) if r == 0}


def test_asha_promotes_the_non_dominated_trials_of_a_rung_by_crowding():
    oracle = create_oracle("asha", space(), ACC_PARAMS, max_epochs=9, factor=3, seed=0)
    ids = tell_rung(oracle, RUNG)
    promoted = [oracle.ask() for _ in range(4)]
    assert [t.resume_from for t in promoted[:3]] == [ids[0], ids[1], ids[3]]  # floor(9 / 3) = 3
    assert all(t.budget == 3 for t in promoted[:3])
    assert promoted[3].resume_from is None and promoted[3].budget == 1  # then a new configuration
    # The single-objective rule on the first objective would have taken t0, t4 (dominated) and t2.
    single = create_oracle("asha", space(), "val_acc", max_epochs=9, factor=3, seed=0)
    tell_rung(single, RUNG)
    assert [single.ask().resume_from for _ in range(3)] == [ids[0], ids[4], ids[2]]


def test_asha_keeps_the_checkpoints_a_dominance_bound_allows():
    oracle = create_oracle("asha", space(), ACC_PARAMS, max_epochs=9, factor=3, max_trials=9, seed=0,
                           promotion="rank")  # the paper's rule; by the curve models every candidate is kept
    ids = tell_rung(oracle, RUNG)
    # Rung 0 is closed (nine of nine configurations done): a trial dominated by 3 or more can never be
    # among the 3 promoted; every non-dominated one still may be.
    keep = oracle.checkpoints_to_keep()
    costs = [(-a, p) for a, p in RUNG]
    for i, trial_id in enumerate(ids):
        dominated_by = sum(dominates(other, costs[i]) for other in costs)
        assert (trial_id in keep) == (dominated_by < 3), (i, dominated_by)


def test_asha_promotions_on_simulated_curves_follow_the_pareto_order_and_keep_their_parents():
    """Every promotion, at the moment it is made, takes a trial of the rung's top 1/factor in the Pareto
    order, never a dominated one while a non-dominated one waits, and its checkpoint was never dropped."""
    oracle = create_oracle("asha", space(), ACC_PARAMS, max_epochs=9, factor=3, max_trials=40, seed=3,
                           promotion="rank", random_fraction=1)  # the paper's MO-ASHA: the order of current vectors
    running, dropped, promotions = [], set(), 0
    while True:
        while len(running) < 2 and (trial := oracle.ask()) is not None:
            if trial.resume_from is not None:
                promotions += 1
                assert trial.resume_from not in dropped
                check_promotion(oracle, oracle.trials[trial.resume_from])
            running.append(trial)
        if not running:
            break
        trial = running.pop(0)
        for epoch in range(trial.initial_budget + 1, trial.budget + 1):
            oracle.report(trial.id, epoch, learning_curve(trial.hparams, epoch))
        oracle.tell(trial.id, learning_curve(trial.hparams, trial.budget))
        keep = oracle.checkpoints_to_keep()
        dropped |= {t.id for t in oracle.trials.values() if t.done and t.budget < 9 and t.id not in keep}
    assert promotions >= 10 and oracle.finished


def check_promotion(oracle, parent) -> None:
    rung = [t for t in oracle.trials.values() if t.budget == parent.budget and t.done]
    kept, costs = scored_trials(sorted(rung, key=lambda t: t.id), ACC_PARAMS)
    order = [kept[i].id for i in selection_order(costs)]
    assert parent.id in order[: len(rung) // 3]
    ranks = dict(zip((t.id for t in kept), nondominated_ranks(costs)))
    already = {t.resume_from for t in oracle.trials.values() if t.resume_from is not None}
    waiting = [i for i in order[: len(rung) // 3] if i not in already or i == parent.id]
    assert ranks[parent.id] == min(ranks[i] for i in waiting)


@pytest.mark.parametrize("tuner", ["hyperband", "bohb"])
def test_hyperband_promotes_the_front_of_each_round(tuner):
    # max_epochs=9, factor=3: the first bracket runs 9@1, 3@3, 1@9.
    oracle = create_oracle(tuner, space(), ACC_PARAMS, max_epochs=9, factor=3, seed=0)
    ids = tell_rung(oracle, RUNG)
    second = [oracle.ask() for _ in range(3)]
    assert [t.resume_from for t in second] == [ids[0], ids[1], ids[3]]
    assert oracle.ask() is None or oracle.ask().info["bracket"] != second[0].info["bracket"]
    # The round of three: the last one is dominated by the first; the two others tie on crowding (ends).
    for trial, vector in zip(second, [(0.92, 9e5), (0.60, 1e5), (0.91, 9.5e5)]):
        oracle.tell(trial.id, metrics(*vector))
    last = next(t for t in iter(oracle.ask, None) if t.info["bracket"] == second[0].info["bracket"])
    assert last.resume_from == second[0].id and last.budget == 9


def test_bohb_fits_its_good_density_on_the_front_first():
    oracle = create_oracle("bohb", space(), ACC_PARAMS, max_epochs=9, factor=3, seed=0, min_model_budget=None,
                           min_points_in_model=2)
    ids = tell_rung(oracle, RUNG)
    oracle.trials[ids[8]].status = PRUNED  # a pruned trial ranks last, whatever its values
    ranked = oracle._pareto_ranked([oracle.trials[i] for i in ids])
    assert [t.id for t in ranked] == [ids[i] for i in (0, 1, 3, 2, 4, 5, 6, 7, 8)]


# --------------------------------------------------------------------------- median pruning

COMPLETED_CURVES = [  # (val_acc per epoch, params): the median point at epoch 2 is (0.6, 5e5)
    ([0.5, 0.6, 0.7], 4e5),
    ([0.5, 0.6, 0.7], 5e5),
    ([0.5, 0.6, 0.7], 6e5),
]


def pruning_oracle(objective=ACC_PARAMS, curves=COMPLETED_CURVES):
    oracle = create_oracle("random", space(), objective, seed=0, pruner={"name": "median", "warmup_epochs": 1})
    for accs, params in curves:
        trial = oracle.ask()
        for epoch, acc in enumerate(accs, start=1):
            oracle.report(trial.id, epoch, metrics(acc, params))
        oracle.tell(trial.id, {**metrics(accs[-1], params), "latency_ms": 2.0})  # latency: measured at the end
    return oracle


def pruned_at(oracle, accs, params=None) -> int | None:
    trial = oracle.ask()
    for epoch, acc in enumerate(accs, start=1):
        result = {"val_acc": acc} if params is None else metrics(acc, params)
        if oracle.report(trial.id, epoch, result):
            oracle.tell(trial.id, None, status=PRUNED)
            return epoch
    oracle.tell(trial.id, result)
    return None


def test_median_pruning_stops_a_curve_the_median_point_dominates():
    oracle = pruning_oracle()
    assert pruned_at(oracle, [0.5, 0.55, 0.6], params=8e5) == 2  # less accurate and larger
    assert oracle.trials[3].status == PRUNED


def test_median_pruning_keeps_a_trade_off_curve():
    oracle = pruning_oracle()
    assert pruned_at(oracle, [0.3, 0.35, 0.4], params=1e5) is None  # far less accurate, but far smaller
    assert pruned_at(oracle, [0.6, 0.7, 0.8], params=9e5) is None  # larger, but more accurate
    # The single-objective rule on val_acc stops the small one at once.
    single = pruning_oracle(objective="val_acc")
    assert pruned_at(single, [0.3, 0.35, 0.4], params=1e5) == 2


def test_median_pruning_compares_the_objectives_known_at_the_epoch():
    # latency_ms is measured after training: left out while training, the rest still decides.
    with_latency = ParetoObjective.of(["val_acc:max", "params:min", "latency_ms:min"])
    oracle = pruning_oracle(with_latency)
    assert pruned_at(oracle, [0.5, 0.55, 0.6], params=8e5) == 2
    # A trial that reports no params: one objective alone is no front, it is never stopped.
    oracle = pruning_oracle()
    assert pruned_at(oracle, [0.2, 0.2, 0.2]) is None


def test_params_reported_once_count_at_every_epoch():
    oracle = pruning_oracle()
    trial = oracle.ask()
    assert not oracle.report(trial.id, 1, metrics(0.5, 8e5))  # params with the first epoch only
    assert oracle.report(trial.id, 2, {"val_acc": 0.55})


def test_a_search_hands_the_pruner_every_metric_of_the_epoch():
    oracle = pruning_oracle()
    trial = oracle.ask()
    # The engine's path: epoch_report(trial, epoch, the epoch's metrics, the objective's value).
    assert not oracle.epoch_report(trial.id, 1, metrics(0.5, 8e5), 0.5)
    assert oracle.epoch_report(trial.id, 2, metrics(0.55, 8e5), 0.55)
    small = oracle.ask()  # a trade-off: judged on its accuracy alone it would be stopped
    assert not any(oracle.epoch_report(small.id, e, metrics(0.3, 1e5), 0.3) for e in (1, 2, 3))


# --------------------------------------------------------------------------- bayesian: EHVI and ParEGO

ZDT_SPACE = {f"x{i}": {"type": "float", "min": 0.0, "max": 1.0} for i in range(3)}
ZDT = ParetoObjective.of(["f1:min", "f2:min"])


def zdt1(hparams: dict) -> dict[str, float]:
    """ZDT1 on three variables: the front is f2 = 1 - sqrt(f1), where x1 = x2 = 0."""
    x = np.array([hparams[f"x{i}"] for i in range(3)])
    g = 1 + 9 * x[1:].mean()
    return {"f1": float(x[0]), "f2": float(g * (1 - np.sqrt(x[0] / g)))}


def zdt_hypervolume(tuner: str, seed: int, **options) -> float:
    oracle = create_oracle(tuner, HyperParameters.from_config(ZDT_SPACE), ZDT, max_trials=12, seed=seed,
                           **({"num_initial_points": 5} if tuner == "bayesian" else {}), **options)
    drive(oracle, zdt1)
    return hypervolume(scored_trials(oracle.trials.values(), ZDT)[1], [1.1, 1.1])


def test_parego_finds_a_larger_front_than_random_search():
    # Measured (seed 0, 12 trials): bayesian 0.64, random 0.0 (no point below f2 = 1.1); at best about 0.88.
    assert zdt_hypervolume("bayesian", 0, pareto_acquisition="parego") > zdt_hypervolume("random", 0) + 0.2


def test_ehvi_finds_a_larger_front_than_random_search_on_each_seed():
    # Measured (12 trials, seeds 0/1/2): EHVI 0.74/0.74/0.73, random 0.0/0.0/0.13 (ParEGO 0.64/0.49/0.11).
    for seed in (0, 2):
        assert zdt_hypervolume("bayesian", seed) > zdt_hypervolume("random", seed) + 0.2


def test_ehvi_models_each_objective_believes_running_trials_and_avoids_failures():
    oracle = create_oracle("bayesian", HyperParameters.from_config(ZDT_SPACE), ZDT, max_trials=10, seed=1,
                           num_initial_points=5)

    def infeasible_beyond_half(hparams):
        return None if hparams["x0"] > 0.5 else zdt1(hparams)  # None: the trial fails, as an infeasible one

    drive(oracle, infeasible_beyond_half, max_asks=8)
    model = [t for t in oracle.trials.values() if t.info["source"] == "model"]
    assert len(model) == 3 and sum(t.hparams["x0"] > 0.5 for t in model) <= 1
    oracle.ask()  # left running: the next ask's GPs observe their own mean there, and its front has it
    oracle.ask()
    gp = oracle.gp
    assert isinstance(gp, HypervolumeModel) and [len(g.x) for g in gp.gps] == [9, 9]
    assert len(gp.front) == front_mask(scored_trials(oracle.trials.values(), ZDT)[1]).sum() + 1
    assert set(oracle._scalars) <= {t.id for t in oracle.trials.values() if t.status == COMPLETED}


def test_parego_draws_a_new_weighting_each_model_ask_and_avoids_failures():
    oracle = create_oracle("bayesian", HyperParameters.from_config(ZDT_SPACE), ZDT, max_trials=8, seed=1,
                           num_initial_points=5, pareto_acquisition="parego")

    def infeasible_beyond_half(hparams):
        return None if hparams["x0"] > 0.5 else zdt1(hparams)  # None: the trial fails, as an infeasible one

    drive(oracle, infeasible_beyond_half)
    model = [t for t in oracle.trials.values() if t.info["source"] == "model"]
    assert len(model) == 3
    assert sum(t.hparams["x0"] > 0.5 for t in model) <= 1
    assert oracle._scalars and set(oracle._scalars) <= {t.id for t in oracle.trials.values() if t.status == COMPLETED}


# --------------------------------------------------------------------------- restore


@pytest.mark.parametrize("tuner, options", [
    ("asha", dict(max_epochs=9, factor=3, max_trials=14)),
    ("hyperband", dict(max_epochs=9, factor=3)),
    ("bohb", dict(max_epochs=9, factor=3, hyperband_iterations=2, min_model_budget=None)),
    ("bayesian", dict(max_trials=7, num_initial_points=3)),
])
def test_a_restored_pareto_search_makes_the_same_next_proposals(tuner, options):
    def make():
        return create_oracle(tuner, space(), ACC_PARAMS, seed=5, **options)

    def proposals(oracle) -> list[tuple]:
        return [(t.id, t.hparams, t.budget, t.resume_from) for t in oracle.trials.values()]

    history: list = []
    first = make()
    drive(first, curve=learning_curve, epochs=3, max_asks=5 if tuner == "bayesian" else 20, history=history)
    restored = resume(make, history=copy.deepcopy(history))
    assert proposals(restored) == proposals(first)
    drive(first, curve=learning_curve, epochs=3)
    drive(restored, curve=learning_curve, epochs=3)
    assert proposals(restored) == proposals(first) and len(first.trials) > 5
    if tuner == "bohb":
        assert restored.num_model_configurations > 0  # its model ran in Pareto mode, and replayed alike


def test_the_decay_curve_pruner_refuses_a_pareto_search():
    with pytest.raises(ConfigError, match=r"tuner.pruner.*decay_curve.*search.mode=pareto"):
        create_oracle("asha", space(), ACC_PARAMS, pruner="decay_curve")


# --------------------------------------------------------------------------- MO-ASHA's curve models


def full_budget_history(configurations, budget: int = 9) -> list:
    """The asks and tells of configurations (x, size) trained to ``budget`` epochs on ``learning_curve``."""
    from archsearch.oracles.base import Trial

    events = []
    for i, (x, size) in enumerate(configurations):
        asked = Trial(i, {"x": x, "size": size})
        asked.budget, asked.initial_budget = budget, 0
        told = copy.deepcopy(asked)
        told.intermediate = {e: learning_curve(told.hparams, e)["val_acc"] for e in range(1, budget + 1)}
        told.metrics, told.status = learning_curve(told.hparams, budget), COMPLETED
        events += [("ask", asked), ("tell", told)]
    return events


GRID = [(x, size) for x in (0.05, 0.3, 0.6, 0.95) for size in (0.2, 0.5, 0.8) if (x, size) != (0.3, 0.8)]


def mo_asha(objective=ACC_PARAMS):
    return create_oracle("asha", space(), objective, max_epochs=9, factor=3, seed=0)


@pytest.mark.parametrize("scale", ["linear", "log"])
def test_mo_asha_proposes_the_candidate_that_extends_the_front_by_its_predicted_final_costs(scale):
    """Eleven configurations trained to the end on a grid, the best x (0.3) missing at the largest size:
    of three candidates the curve models and EHVI pick that gap, not a dominated x, nor a known size.
    ``params`` is modelled in its scale: as counted, or by its logarithm for ``scale: log``."""
    oracle = mo_asha(ParetoObjective.of(["val_acc:max", f"params:min:{scale}"]))
    oracle.restore(full_budget_history(GRID))
    candidates = [{"x": 0.95, "size": 0.8}, {"x": 0.6, "size": 0.5}, {"x": 0.3, "size": 0.8}]
    model = oracle.pareto_curves
    assert model.can_propose(oracle.trials)
    assert model.best_candidate(oracle.trials, candidates) == 2
    mean, std = model.predict_costs(oracle.trials, candidates)
    params = 1e4 + 2e6 * np.array([0.8, 0.5, 0.8])
    if scale == "log":
        assert np.allclose(mean[:, 1], np.log(params), atol=0.05)
    else:
        assert np.allclose(mean[:, 1], params, rtol=0.05)
    assert mean[2, 0] < mean[0, 0] - 0.1  # predicted final error (cost: -val_acc) lower at x = 0.3
    # Told to score models of at most 1.2e6 parameters (search.reference_point), the large one adds nothing there.
    oracle.set_reference_point({"val_acc": 0.0, "params": 1.2e6})
    assert model.best_candidate(oracle.trials, candidates, oracle.reference_costs) == 1


def test_mo_asha_model_proposals_are_deterministic_and_replayed_by_a_restored_search():
    """Past the grid, MO-ASHA's new configurations come from the models; replaying the history gives the same
    proposals, model ones included, and the same next ones."""

    def proposals(oracle) -> list[tuple]:
        return [(t.id, t.hparams, t.budget, t.resume_from) for t in oracle.trials.values()]

    first, history = mo_asha(), full_budget_history(GRID)
    first.restore(copy.deepcopy(history))
    drive(first, curve=learning_curve, max_asks=6, history=history)
    assert first.num_model_configurations >= 2  # two thirds of new configurations, once the model can say
    restored = resume(mo_asha, history=copy.deepcopy(history))
    assert proposals(restored) == proposals(first)
    assert restored.num_model_configurations == first.num_model_configurations
    drive(first, curve=learning_curve, max_asks=2)
    drive(restored, curve=learning_curve, max_asks=2)
    assert proposals(restored) == proposals(first)


def test_a_curve_models_prediction_becomes_a_cost_in_the_objectives_scale():
    """The curve model predicts ``sign * value`` (it maximises); EHVI takes costs: a minimised error's cost is
    the error itself (by its log for ``scale: log``, the standard deviation divided by the value)."""
    from archsearch.core.objective import Objective
    from archsearch.oracles.pareto_curves import _in_scale

    signed, std = np.array([-0.2]), np.array([0.02])
    assert _in_scale(Objective("val_error", "min"), signed, std) == (pytest.approx([0.2]), pytest.approx([0.02]))
    assert _in_scale(Objective("val_error", "min", scale="log"), signed, std) == (
        pytest.approx(np.log([0.2])), pytest.approx([0.1]))
    assert _in_scale(Objective("val_acc", "max"), np.array([0.8]), std)[0] == pytest.approx([-0.8])
    assert _in_scale(Objective("val_acc", "max", scale="log"), np.array([0.8]), std) == (
        pytest.approx(-np.log([0.8])), pytest.approx([0.025]))
