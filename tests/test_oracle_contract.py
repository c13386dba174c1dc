"""The contract every registered oracle keeps, checked over ``available_oracles()``.

A new oracle registered with ``@register_oracle`` is checked here without editing this file.  Where
algorithms legitimately differ, the test asks the oracle, not a table of names: an oracle that takes
``max_epochs`` plans budgets (and is given a tiny ladder here), ``repeats_in_parallel()`` says whether
the order results arrive in may change what it proposes, and the option variants below are tried on
the oracles whose options include them.  Every search is driven by :func:`archsearch.oracles.driving.drive`
on tiny spaces and a made-up learning curve, so the whole suite runs in seconds without Keras.
"""

from __future__ import annotations

import math

import pytest

from archsearch import HyperParameters
from archsearch.space.values import values_key
from archsearch.oracles import COMPLETED, FAILED, PRUNED, RUNNING, available_oracles, create_oracle, oracle_options
from archsearch.oracles.driving import drive, resume
from archsearch.oracles.pruners import MedianPruner
from archsearch.core.objective import ParetoObjective
from archsearch.core.pareto import dominates, hypervolume
from archsearch.core.store import TrialStore

# Every parameter type and scale, with a conditional parameter.
SPACE = {
    "layers": {"type": "int", "min": 1, "max": 3},
    "units": {"type": "int", "min": 8, "max": 128, "sampling": "log"},
    "filters": {"type": "int", "min": 8, "max": 64, "step": 8},
    "lr": {"type": "float", "min": 1e-4, "max": 1e-1, "sampling": "log"},
    "momentum": {"type": "float", "min": 0.5, "max": 0.99, "sampling": "reverse_log"},
    "dropout": {"type": "float", "min": 0.0, "max": 0.5, "step": 0.1},
    "act": {"type": "choice", "values": ["relu", "tanh", "elu"]},
    "width": {"type": "choice", "values": [16, 32, 64]},
    "bn": {"type": "boolean"},
    "optimizer": {"type": "fixed", "value": "adam"},
    "units_2": {"type": "int", "min": 8, "max": 64, "step": 8, "when": {"layers": [2, 3]}},
}

# A space small enough to use up: 2 + 2 + 2 * 2 = 8 configurations, one of them conditional.
TINY = {
    "a": {"type": "choice", "values": [1, 2, 3]},
    "flag": {"type": "boolean"},
    "b": {"type": "choice", "values": ["x", "y"], "when": {"a": [3]}},
}

# Options that change how an oracle draws or orders proposals; each is tried where the oracle takes it.
VARIANTS = [{}, {"sampler": "sobol"}, {"shuffle": True}, {"schedule": "keras_tuner"}]

NAMES = available_oracles()
TRIALS = 6  # enough for Bayesian optimisation's model to propose half of them (its initial design is the rest)


def budgeted(name: str) -> bool:
    """Whether the oracle plans epoch budgets (and continues trials from checkpoints)."""
    return "max_epochs" in oracle_options(name)


def make(name: str, config=SPACE, seed: int = 3, **options):
    """The oracle minimising ``loss``, on a 1-3-9 epoch ladder where it plans budgets."""
    plan = {"max_epochs": 9, "factor": 3} if budgeted(name) else {}
    return create_oracle(name, HyperParameters.from_config(config), "loss", seed=seed, **{**plan, **options})


def variants() -> list:
    return [pytest.param(name, v, id="-".join([name, *map(str, v.values())]))
            for name in NAMES for v in VARIANTS if set(v) <= set(oracle_options(name))]


def loss(h: dict, epoch: int) -> float:
    """A learning curve that depends on every parameter; longer training always helps."""
    final = (abs(math.log10(h.get("lr", 1e-2)) + 2.5) + abs(h.get("units", 32) - 40) / 64 + h.get("dropout", 0) / 2
             + h.get("layers", h.get("a", 1)) / 3 + (0.1 if h.get("act", "relu") != "elu" else 0)
             + (0.05 if h.get("bn", h.get("flag")) else 0) + h.get("units_2", 0) / 640 + (h.get("b") == "y") / 5)
    return final + 1.0 / epoch


def new_configurations(oracle) -> list[str]:
    """The configurations started from scratch (a continued trial repeats its parent's on purpose)."""
    return [values_key(t.hparams) for t in oracle.trials.values() if t.resume_from is None]


def signature(oracle) -> list[tuple]:
    return [(t.id, t.status, t.value, values_key(t.hparams), t.budget, t.resume_from, t.initial_budget, t.error)
            for t in oracle.trials.values()]


@pytest.mark.parametrize("name, options", variants())
def test_ask_and_tell_to_exhaustion_tries_every_configuration_exactly_once(name, options):
    oracle = make(name, TINY, **options)
    done = drive(oracle, curve=loss, max_asks=200)
    assert oracle.finished and oracle.ask() is None and not done.running
    every = {values_key(values) for values in HyperParameters.from_config(TINY).grid()}
    assert sorted(new_configurations(oracle)) == sorted(every)
    assert all(t.done for t in oracle.trials.values())


@pytest.mark.parametrize("name", NAMES)
def test_budgets_and_resume_from_are_consistent(name):
    oracle = make(name, max_trials=TRIALS)
    done = drive(oracle, curve=loss, concurrent=3, order="random")
    assert oracle.finished
    told_before: dict[int, int] = {t.id: i for i, t in enumerate(done.told)}
    for trial in oracle.trials.values():
        if not budgeted(name):
            assert (trial.budget, trial.resume_from, trial.initial_budget) == (None, None, 0)
            continue
        assert 0 <= trial.initial_budget < trial.budget <= oracle.max_epochs
        if trial.resume_from is None:
            assert trial.initial_budget == 0
            continue
        parent = oracle.trials[trial.resume_from]  # continued from a finished, completed trial of the same values
        assert parent.id < trial.id and parent.status == COMPLETED and told_before[parent.id] < told_before[trial.id]
        assert parent.budget == trial.initial_budget and parent.hparams == trial.hparams
    expected = sum((t.budget or 1) - t.initial_budget for t in oracle.trials.values())
    assert done.epochs == expected


@pytest.mark.parametrize("name, options", variants())
def test_restore_after_a_kill_gives_the_same_next_proposals(tmp_path, name, options):
    config = TINY if "shuffle" in options else SPACE  # a shuffled grid is drawn whole: keep it small
    # The kill falls where the oracle has learned from results: after promotions began, or the model's first proposals.
    limit, cut = (24, 15) if budgeted(name) else (TRIALS + 2, 6)
    store = TrialStore(tmp_path / "trials.db")
    original = make(name, config, max_trials=limit, **options)
    drive(original, curve=loss, concurrent=2, order="newest", fail=lambda t: t.id == 2,
          max_asks=cut, kill=True, store=store)
    assert any(t.status == FAILED for t in original.trials.values()) and original.running
    assert not budgeted(name) or any(t.resume_from is not None for t in original.trials.values())

    restored = resume(lambda: make(name, config, max_trials=limit, **options), store=TrialStore(tmp_path / "trials.db"))
    assert signature(restored) == signature(original)
    assert [t.id for t in restored.running] == [t.id for t in original.running]
    assert [t.id for t in restored.best_trials(3)] == [t.id for t in original.best_trials(3)]
    for oracle in (original, restored):  # the trials the kill interrupted report back in both
        for trial in list(oracle.running):
            oracle.tell(trial.id, loss(trial.hparams, trial.budget or 1))
    onward = [drive(oracle, curve=loss, concurrent=2, order="newest") for oracle in (original, restored)]
    assert onward[0].asked and signature(restored) == signature(original) and restored.finished
    assert len(set(new_configurations(restored))) == len(new_configurations(restored))


@pytest.mark.parametrize("name", NAMES)
def test_a_search_resumed_after_a_kill_tries_what_is_left_of_a_tiny_space_exactly_once(tmp_path, name):
    store = TrialStore(tmp_path / "trials.db")
    drive(make(name, TINY), curve=loss, max_asks=3, kill=True, store=store)
    resumed = resume(lambda: make(name, TINY), store=store)
    for trial in list(resumed.running):  # the trial the kill interrupted trains again, as a resumed search does
        resumed.tell(trial.id, loss(trial.hparams, trial.budget or 1))
    drive(resumed, curve=loss, max_asks=200)
    every = {values_key(values) for values in HyperParameters.from_config(TINY).grid()}
    assert resumed.finished and sorted(new_configurations(resumed)) == sorted(every)


@pytest.mark.parametrize("name", NAMES)
def test_concurrent_trials_are_distinct_and_repeat_exactly_where_the_oracle_says_so(name):
    parallel = make(name, max_trials=TRIALS)
    done = drive(parallel, curve=loss, concurrent=4, order="random", seed=5)
    assert parallel.finished and done.most_running >= 2  # an oracle may wait for results (grid's successors)
    assert len(new_configurations(parallel)) <= TRIALS
    assert len(set(new_configurations(parallel))) == len(new_configurations(parallel))
    if parallel.repeats_in_parallel():
        sequential = make(name, max_trials=TRIALS)
        drive(sequential, curve=loss)
        assert [values_key(t.hparams) for t in parallel.trials.values()] == \
               [values_key(t.hparams) for t in sequential.trials.values()]


@pytest.mark.parametrize("name", NAMES)
def test_several_trials_are_handed_out_before_any_result(name):
    oracle = make(name, max_trials=TRIALS)
    running = [t for t in (oracle.ask() for _ in range(4)) if t is not None]
    assert len(running) >= 2 and all(t.status == RUNNING for t in running) and not oracle.finished
    assert len({values_key(t.hparams) for t in running}) == len(running)  # never the same configuration twice
    assert sorted(t.id for t in oracle.running) == [t.id for t in running]


@pytest.mark.parametrize("name", NAMES)
def test_failed_and_infeasible_trials_are_tolerated(name):
    oracle = make(name, max_trials=TRIALS)

    def infeasible_curve(h: dict, epoch: int) -> float:
        return math.nan if h["bn"] else loss(h, epoch)  # an infeasible region: no finite value

    drive(oracle, curve=infeasible_curve, concurrent=2, fail=lambda t: t.id == 1)
    assert oracle.finished
    failed = [t for t in oracle.trials.values() if t.status == FAILED]
    assert any(t.id == 1 for t in failed) and any(t.hparams["bn"] and t.id != 1 for t in failed)
    assert all(t.error and t.value is None for t in failed)
    assert not {t.resume_from for t in oracle.trials.values()} & {t.id for t in failed}  # never continued
    best = oracle.best_trials(5)
    assert best and all(t.status == COMPLETED and not t.hparams["bn"] for t in best)


@pytest.mark.parametrize("name", NAMES)
def test_a_pruner_stops_trials_and_the_search_goes_on(name):
    oracle = make(name, max_trials=TRIALS, pruner=MedianPruner(warmup_epochs=0, min_trials=2))  # from the 1st epoch
    drive(oracle, curve=loss, epochs=5, concurrent=2)
    assert oracle.finished
    pruned = [t for t in oracle.trials.values() if t.status == PRUNED]
    assert pruned
    for trial in pruned:  # stopped where the pruner said (at the latest its budget), scored by its best epoch
        assert max(trial.intermediate) <= (trial.budget or 5)
        assert trial.value == min(trial.intermediate.values())
    assert not {t.resume_from for t in oracle.trials.values()} & {t.id for t in pruned}


@pytest.mark.parametrize("name", NAMES)
def test_values_lie_in_the_space_and_respect_conditions(name):
    space = HyperParameters.from_config(SPACE)
    oracle = make(name, max_trials=TRIALS)
    drive(oracle, curve=loss, concurrent=2)
    seen: dict[str, set] = {n: set() for n in SPACE}
    for trial in oracle.trials.values():
        assert trial.hparams == space.active_values(trial.hparams)  # inactive parameters are left out
        assert ("units_2" in trial.hparams) == (trial.hparams["layers"] > 1)
        space.validate_values(trial.hparams)
        for key, value in trial.hparams.items():
            assert space.space[key].contains(value), (key, value)
            assert type(value) in (int, float, str, bool), (key, value)  # plain Python, JSON-ready
            seen[key].add(value)
    assert seen["optimizer"] == {"adam"}
    assert all(isinstance(v, bool) for v in seen["bn"]) and all(type(v) is int for v in seen["units"] | seen["width"])
    assert all(type(v) is float for v in seen["lr"] | seen["momentum"])


@pytest.mark.parametrize("name", NAMES)
def test_the_same_seed_repeats_a_search(name):
    runs = [make(name, seed=4, max_trials=6) for _ in range(2)]
    for oracle in runs:
        drive(oracle, curve=loss, concurrent=2, fail=lambda t: t.id == 3)
    assert signature(runs[0]) == signature(runs[1])


# --------------------------------------------------------------------------- the shared driver itself


def test_the_driver_refuses_an_ambiguous_objective_and_no_workers():
    oracle = make("random", max_trials=2)
    with pytest.raises(TypeError, match="exactly one of objective="):
        drive(oracle)
    with pytest.raises(TypeError, match="exactly one of objective="):
        drive(oracle, lambda h: 0.0, curve=loss)
    with pytest.raises(ValueError, match="concurrent must be at least 1"):
        drive(oracle, lambda h: 0.0, concurrent=0)
    with pytest.raises(TypeError, match="exactly one of store="):
        resume(lambda: make("random"))


def test_the_driver_counts_epochs_stops_at_an_epoch_cap_and_leaves_killed_trials_running():
    capped = drive(make("hyperband"), curve=loss, max_epochs_trained=10)
    assert capped.epochs_at == sorted(capped.epochs_at) and capped.epochs_at[-1] == capped.epochs >= 10
    assert capped.epochs - (capped.told[-1].budget - capped.told[-1].initial_budget) < 10  # the last one crossed it
    assert len(capped.ask_seconds) == len(capped.asked)
    killed = drive(make("random", max_trials=TRIALS), lambda h: loss(h, 1), concurrent=3, max_asks=4, kill=True)
    assert [t.id for t in killed.running] == [1, 2, 3] and len(killed.told) == 1  # oldest first, then the kill
    assert all(t.status == RUNNING for t in killed.running)


# --------------------------------------------------------------------------- Pareto mode (issue 28)

PARETO = ParetoObjective.of(["loss:min", "size:min"])


def pareto_names() -> list:
    return list(NAMES)


def make_pareto(name: str, config=SPACE, seed: int = 3, **options):
    plan = {"max_epochs": 9, "factor": 3} if budgeted(name) else {}
    return create_oracle(name, HyperParameters.from_config(config), PARETO, seed=seed, **{**plan, **options})


def size(h: dict) -> float:
    """The second objective, at odds with ``loss``: small and shallow models are cheap and worse."""
    return h.get("layers", h.get("a", 1)) * h.get("units", 16) + 4 * bool(h.get("bn", h.get("flag"))) + \
        (h.get("b") == "x") + h.get("units_2", 0)


def two_objectives(h: dict, epoch: int) -> dict:
    return {"loss": loss(h, epoch) - math.log2(size(h)), "size": size(h)}  # bigger: better loss, worse size


def top_budget(oracle) -> int | None:
    """The largest budget a completed trial trained to: a multi-fidelity search's front compares those only."""
    return max((t.budget for t in oracle.trials.values() if t.status == COMPLETED and t.budget is not None),
               default=None)


def brute_force_front(oracle) -> set[int]:
    top = top_budget(oracle)
    scored = {t.id: PARETO.costs_from(t.metrics) for t in oracle.trials.values()
              if t.status == COMPLETED and (top is None or t.budget is None or t.budget >= top)}
    return {i for i, c in scored.items() if not any(dominates(other, c) for other in scored.values())}


def front_hypervolume(oracle) -> float:
    costs = [PARETO.costs_from(t.metrics) for t in oracle.pareto_front()]
    return hypervolume(costs, (10.0, 1000.0)) if costs else 0.0  # beyond every point of these problems


@pytest.mark.parametrize("name", pareto_names())
def test_pareto_search_to_exhaustion_reports_exactly_the_front(name):
    oracle = make_pareto(name, TINY)
    drive(oracle, curve=two_objectives, concurrent=2, max_asks=200)
    every = {values_key(values) for values in HyperParameters.from_config(TINY).grid()}
    assert oracle.finished and sorted(set(new_configurations(oracle))) == sorted(every)
    front = oracle.pareto_front()
    # a multi-fidelity tuner's front compares the trials at its largest budget, which may be one trial here
    assert {t.id for t in front} == brute_force_front(oracle) and len(front) >= (1 if budgeted(name) else 2)
    assert [t.id for t in oracle.best_trials(len(front))] == [t.id for t in front]


@pytest.mark.parametrize("name", pareto_names())
def test_pareto_hypervolume_never_falls_as_trials_finish(name):
    oracle = make_pareto(name, max_trials=TRIALS + 2)
    volumes: dict[int | None, list[float]] = {}  # by the budget the front compares at: a higher one starts afresh
    while not oracle.finished:  # one trial at a time, the front checked after each
        drive(oracle, curve=two_objectives, max_asks=1)
        assert {t.id for t in oracle.pareto_front()} == brute_force_front(oracle)
        volumes.setdefault(top_budget(oracle), []).append(front_hypervolume(oracle))
    assert all(v == sorted(v) for v in volumes.values())
    last = volumes[max(volumes, key=lambda b: -1 if b is None else b)]
    # It grew somewhere; at the top budget a later trial may be dominated (MO-ASHA's curve models promote
    # by predicted final vectors, so a second trial can reach the top behind the first).
    assert last[0] > 0 and any(v[-1] > v[0] for v in volumes.values())


@pytest.mark.parametrize("name", pareto_names())
def test_pareto_search_tolerates_failed_and_infeasible_trials(name):
    def curve(h: dict, epoch: int) -> dict:
        if h["bn"]:  # refused by a constraint: its measure and violation recorded, no objective
            return {"size": size(h), "constraint_violation": 0.5}
        return two_objectives(h, epoch)

    oracle = make_pareto(name, max_trials=TRIALS + 2)
    drive(oracle, curve=curve, concurrent=2, fail=lambda t: t.id == 1)
    assert oracle.finished
    failed = [t for t in oracle.trials.values() if t.status == FAILED]
    assert any(t.id == 1 for t in failed) and any(t.hparams["bn"] and t.id != 1 for t in failed)
    front = oracle.pareto_front()
    assert front and all(t.status == COMPLETED and not t.hparams["bn"] for t in front)
    assert {t.id for t in front} == brute_force_front(oracle)


@pytest.mark.parametrize("name", pareto_names())
def test_pareto_restore_after_a_kill_gives_the_same_next_proposals(tmp_path, name):
    limit, cut = (24, 15) if budgeted(name) else (TRIALS + 2, 6)
    store = TrialStore(tmp_path / "trials.db")
    original = make_pareto(name, max_trials=limit)
    drive(original, curve=two_objectives, concurrent=2, order="newest", fail=lambda t: t.id == 2,
          max_asks=cut, kill=True, store=store)
    assert original.running
    restored = resume(lambda: make_pareto(name, max_trials=limit), store=TrialStore(tmp_path / "trials.db"))
    assert signature(restored) == signature(original)
    assert [t.id for t in restored.pareto_front()] == [t.id for t in original.pareto_front()]
    for oracle in (original, restored):
        for trial in list(oracle.running):
            oracle.tell(trial.id, two_objectives(trial.hparams, trial.budget or 1))
    onward = [drive(oracle, curve=two_objectives, concurrent=2, order="newest") for oracle in (original, restored)]
    assert onward[0].asked and signature(restored) == signature(original) and restored.finished
    assert [t.id for t in restored.pareto_front()] == [t.id for t in original.pareto_front()]


def test_pareto_restore_while_approaching_a_told_reference_point_gives_the_same_next_proposals(tmp_path):
    """The Bayesian oracle told a reference point no trial reaches (it approaches it: module bayesian)
    replays the same after a kill, as it does with EHVI."""
    def make():
        oracle = make_pareto("bayesian", max_trials=12)
        oracle.set_reference_point({"loss": -100.0, "size": 1.0})  # below every trial of this problem
        return oracle

    store = TrialStore(tmp_path / "trials.db")
    original = make()
    drive(original, curve=two_objectives, concurrent=2, order="newest", max_asks=9, kill=True, store=store)
    assert original.running and original.gp is not None and not hasattr(original.gp, "gps")  # the approach's one GP
    restored = resume(make, store=TrialStore(tmp_path / "trials.db"))
    assert signature(restored) == signature(original)
    for oracle in (original, restored):
        for trial in list(oracle.running):
            oracle.tell(trial.id, two_objectives(trial.hparams, trial.budget or 1))
    onward = [drive(oracle, curve=two_objectives, concurrent=2, order="newest") for oracle in (original, restored)]
    assert onward[0].asked and signature(restored) == signature(original) and restored.finished
