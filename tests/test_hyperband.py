"""Hyperband: bracket arithmetic, promotions, checkpoint bookkeeping and restore, on plain functions."""

from __future__ import annotations

import copy
import math
from pathlib import Path

import pytest

from archsearch import HyperParameters
from archsearch.errors import ConfigError
from archsearch.space.values import values_key
from archsearch.oracles import create_oracle, driving, oracle_options
from archsearch.oracles.base import COMPLETED, FAILED, PRUNED
from archsearch.oracles.hyperband import HyperbandOracle
from archsearch.oracles.successive_halving import (
    bracket_schedule,
    keras_tuner_bracket_schedule,
    max_bracket,
    total_epochs,
    total_trials,
)

REPO = Path(__file__).resolve().parent.parent
SPACE = {
    "x": {"type": "float", "min": 0.0, "max": 1.0},
    "units": {"type": "int", "min": 8, "max": 64, "step": 8},
    "act": {"type": "choice", "values": ["relu", "tanh"]},
}


def space() -> HyperParameters:
    return HyperParameters.from_config(SPACE)


def score(hparams: dict, epoch: int) -> float:
    """A learning curve: higher x is better, and every epoch helps."""
    final = hparams["x"] + hparams["units"] / 640 + (0.05 if hparams["act"] == "relu" else 0.0)
    return final * (1 - 0.5 ** epoch)


def table(R: int, eta: int, r: int = 1) -> list[list[tuple[int, int]]]:
    return [[(rnd.num_trials, rnd.budget) for rnd in b.rounds] for b in bracket_schedule(R, eta, r)]


def drive(oracle: HyperbandOracle, fn=score, sign: float = 1.0, stop_after: int | None = None, events=None):
    """Run trials one at a time (to the end, or until ``stop_after`` trials exist); return the epochs trained.

    ``events`` collects ask/tell copies, the history ``restore`` replays."""
    limit = None if stop_after is None else max(0, stop_after - len(oracle.trials))
    done = driving.drive(oracle, curve=lambda h, epoch: sign * fn(h, epoch), max_asks=limit, history=events)
    assert done.waits == 0 and (stop_after is not None or oracle.finished), "a sequential search never waits"
    return done.epochs


def signature(oracle: HyperbandOracle) -> list[tuple]:
    return [(t.id, values_key(t.hparams), t.budget, t.resume_from, t.initial_budget, tuple(sorted(t.info.items())))
            for t in oracle.trials.values()]


# --------------------------------------------------------------------------- bracket arithmetic


def test_paper_table_r81_eta3():
    assert max_bracket(81, 3) == 4
    assert table(81, 3) == [
        [(81, 1), (27, 3), (9, 9), (3, 27), (1, 81)],
        [(34, 3), (11, 9), (3, 27), (1, 81)],
        [(15, 9), (5, 27), (1, 81)],
        [(8, 27), (2, 81)],
        [(5, 81)],
    ]
    # With resume a promoted trial trains only the extra epochs: s=4 costs 81 + 27*2 + 9*6 + 3*18 + 54.
    assert [b.epochs for b in bracket_schedule(81, 3)] == [297, 276, 279, 324, 405]
    assert total_epochs(81, 3) == 1581
    assert bracket_schedule(81, 3)[0].epochs_without_resume == 405


@pytest.mark.parametrize(
    "R, eta, r, expected",
    [
        (27, 3, 1, [[(27, 1), (9, 3), (3, 9), (1, 27)], [(12, 3), (4, 9), (1, 27)], [(6, 9), (2, 27)], [(4, 27)]]),
        (9, 3, 1, [[(9, 1), (3, 3), (1, 9)], [(5, 3), (1, 9)], [(3, 9)]]),
        (27, 3, 3, [[(9, 3), (3, 9), (1, 27)], [(5, 9), (1, 27)], [(3, 27)]]),
        (10, 3, 2, [[(3, 3), (1, 10)], [(2, 10)]]),  # 10/3 rounds to 3
        (16, 2, 1, [[(16, 1), (8, 2), (4, 4), (2, 8), (1, 16)], [(10, 2), (5, 4), (2, 8), (1, 16)],
                    [(7, 4), (3, 8), (1, 16)], [(5, 8), (2, 16)], [(5, 16)]]),
        (100, 3, 1, [[(81, 1), (27, 4), (9, 11), (3, 33), (1, 100)], [(34, 4), (11, 11), (3, 33), (1, 100)],
                     [(15, 11), (5, 33), (1, 100)], [(8, 33), (2, 100)], [(5, 100)]]),
        (5, 3, 5, [[(1, 5)]]),
    ],
)
def test_bracket_tables(R, eta, r, expected):
    assert table(R, eta, r) == expected


@pytest.mark.parametrize("R, eta, r", [(27, 3, 1), (9, 3, 1), (10, 3, 2), (16, 2, 1), (50, 4, 1), (81, 3, 1)])
def test_total_epochs_matches_hand_sum(R, eta, r):
    hand = 0
    for b in table(R, eta, r):
        previous = 0
        for n, budget in b:
            hand += n * (budget - previous)
            previous = budget
    assert total_epochs(R, eta, r) == hand
    assert total_epochs(R, eta, r, iterations=3) == 3 * hand
    for b in bracket_schedule(R, eta, r):
        budgets = [rnd.budget for rnd in b.rounds]
        assert budgets == sorted(set(budgets)) and budgets[-1] == R and budgets[0] >= r


@pytest.mark.parametrize(
    "options, field",
    [
        ({"max_epochs": 9, "factor": 1}, "tuner.factor"),
        ({"max_epochs": 9, "factor": 2.5}, "tuner.factor"),
        ({"max_epochs": 2, "min_epochs": 3}, "tuner.max_epochs"),
        ({"max_epochs": 9, "min_epochs": 0}, "tuner.min_epochs"),
        ({"max_epochs": 9, "hyperband_iterations": 0}, "tuner.hyperband_iterations"),
        ({"max_epochs": "many"}, "tuner.max_epochs"),
        ({"max_epochs": 9, "sampler": "lhs"}, "tuner.sampler"),
        ({"max_epochs": 9, "pruner": "asha"}, "tuner.pruner"),
        ({"max_epochs": 9, "schedule": "kt"}, "tuner.schedule"),
    ],
)
def test_invalid_settings_name_the_field(options, field):
    with pytest.raises(ConfigError) as info:
        create_oracle("hyperband", space(), "score", **options)
    assert info.value.field == field


def test_registered_with_its_options():
    options = oracle_options("hyperband")
    for name in ("max_epochs", "factor", "min_epochs", "hyperband_iterations", "max_trials", "seed", "pruner"):
        assert name in options
    oracle = create_oracle("hyperband", space(), "score", max_epochs=27, factor=3)
    assert isinstance(oracle, HyperbandOracle)
    assert oracle.total_epochs == 357
    assert oracle.total_trials == total_trials(27, 3) == 40 + 17 + 8 + 4


# --------------------------------------------------------------------------- running a search


@pytest.mark.parametrize("R, eta, r, iterations", [(9, 3, 1, 1), (27, 3, 1, 2), (10, 3, 2, 1), (16, 2, 1, 1)])
def test_spent_epochs_equal_the_plan(R, eta, r, iterations):
    oracle = create_oracle("hyperband", space(), "score", max_epochs=R, factor=eta, min_epochs=r,
                           hyperband_iterations=iterations, seed=1)
    spent = drive(oracle)
    assert spent == oracle.total_epochs == total_epochs(R, eta, r, iterations)
    assert len(oracle.trials) == oracle.total_trials
    assert oracle.ask() is None and oracle.finished
    assert oracle.checkpoints_to_keep() == set()
    # Every bracket ends with a trial trained to max_epochs.
    assert all(run.done for run in oracle.brackets)
    assert max(t.budget for t in oracle.trials.values()) == R


@pytest.mark.parametrize("direction, sign", [("max", 1.0), ("min", -1.0)])
def test_promotes_the_best_third_in_order(direction, sign):
    oracle = create_oracle("hyperband", space(), {"name": "score", "direction": direction}, max_epochs=9, seed=5)
    first = [oracle.ask() for _ in range(9)]  # bracket s=2, round 0: 9 trials at 1 epoch
    assert [t.budget for t in first] == [1] * 9
    values = {t.id: sign * score(t.hparams, 1) for t in first}
    for t in first:
        oracle.tell(t.id, values[t.id])
    promoted = [oracle.ask() for _ in range(3)]
    best_first = sorted(values, key=lambda i: values[i], reverse=(direction == "max"))
    assert [t.resume_from for t in promoted] == best_first[:3]
    for child in promoted:
        parent = oracle.trials[child.resume_from]
        assert child.initial_budget == parent.budget == 1
        assert child.budget == 3
        assert child.hparams == parent.hparams
        assert child.info == {"iteration": 0, "bracket": 2, "round": 1, "parent": parent.id}
    for t in promoted:
        oracle.tell(t.id, sign * score(t.hparams, 3))
    last = oracle.ask()
    winner = min(promoted, key=lambda t: -score(t.hparams, 3))
    assert (last.resume_from, last.initial_budget, last.budget) == (winner.id, 3, 9)
    assert last.info["round"] == 2


def test_failed_and_pruned_trials_are_never_promoted():
    oracle = create_oracle("hyperband", space(), "score", max_epochs=9, seed=2)
    first = [oracle.ask() for _ in range(9)]
    ranked = sorted(first, key=lambda t: -score(t.hparams, 1))
    oracle.tell(ranked[0].id, None, status=FAILED, error="boom")
    oracle.report(ranked[1].id, 1, 0.99)
    oracle.tell(ranked[1].id, None, status=PRUNED)
    for t in ranked[2:]:
        oracle.tell(t.id, score(t.hparams, 1))
    promoted = [oracle.ask() for _ in range(3)]
    assert [t.resume_from for t in promoted] == [t.id for t in ranked[2:5]]
    assert oracle.trials[ranked[0].id].status == FAILED


def test_a_round_of_failures_closes_the_bracket():
    oracle = create_oracle("hyperband", space(), "score", max_epochs=9, seed=2)
    for _ in range(9):
        oracle.tell(oracle.ask().id, None, status=FAILED, error="no GPU")
    nxt = oracle.ask()
    assert nxt.info["bracket"] == 1 and nxt.resume_from is None and nxt.budget == 3
    assert oracle.brackets[0].done


def test_small_space_runs_out_of_new_configurations():
    tiny = HyperParameters.from_config({"act": {"type": "choice", "values": ["a", "b", "c", "d"]}})
    rank = {"a": 0.1, "b": 0.4, "c": 0.3, "d": 0.2}
    oracle = create_oracle("hyperband", tiny, "score", max_epochs=9, seed=0)
    drive(oracle, fn=lambda hp, e: rank[hp["act"]] * e)
    fresh = [t for t in oracle.trials.values() if t.resume_from is None]
    assert sorted(t.hparams["act"] for t in fresh) == ["a", "b", "c", "d"]
    # 4 of the 9 planned ran at 1 epoch: 4 // 3 = 1 is promoted (the best), then to 9 epochs.
    assert [(t.hparams["act"], t.initial_budget, t.budget) for t in oracle.trials.values() if t.resume_from is not None] \
        == [("b", 1, 3), ("b", 3, 9)]
    assert oracle.finished and oracle.ask() is None


def test_max_trials_caps_the_search():
    oracle = create_oracle("hyperband", space(), "score", max_epochs=9, max_trials=10, seed=0)
    drive(oracle)
    assert len(oracle.trials) == 10 and oracle.finished


def test_parallel_asks_start_the_next_bracket_then_wait():
    oracle = create_oracle("hyperband", space(), "score", max_epochs=3, seed=0)  # s=1: 3@1 1@3; s=0: 2@3
    wave = [oracle.ask() for _ in range(5)]
    assert [(t.info["bracket"], t.budget) for t in wave] == [(1, 1)] * 3 + [(0, 3)] * 2
    assert oracle.ask() is None and not oracle.finished
    for t in wave[:3]:
        oracle.tell(t.id, score(t.hparams, 1))
    child = oracle.ask()
    assert child.info["bracket"] == 1 and child.initial_budget == 1 and child.budget == 3
    for t in [*wave[3:], child]:
        oracle.tell(t.id, score(t.hparams, 3))
    assert oracle.finished and oracle.ask() is None


# --------------------------------------------------------------------------- checkpoints


def test_checkpoints_kept_only_while_promotable():
    oracle = create_oracle("hyperband", space(), "score", max_epochs=9, seed=4)
    first = [oracle.ask() for _ in range(9)]
    for t in first[:8]:
        oracle.tell(t.id, score(t.hparams, 1))
    # Round 0 is undecided: every completed or running trial may be promoted.
    assert oracle.checkpoints_to_keep() == {t.id for t in first}
    oracle.tell(first[8].id, score(first[8].hparams, 1))
    top3 = sorted(first, key=lambda t: -score(t.hparams, 1))[:3]
    # Decided: only the three chosen parents are kept; the other six can go.
    assert oracle.checkpoints_to_keep() == {t.id for t in top3}
    assert not oracle.promotable(sorted(first, key=lambda t: -score(t.hparams, 1))[3].id)
    child = oracle.ask()
    # The child is running from its parent's checkpoint; both are kept.
    assert oracle.checkpoints_to_keep() == {t.id for t in top3} | {child.id}
    oracle.tell(child.id, score(child.hparams, 3))
    # Child done: its parent is released, the child itself may be promoted.
    assert oracle.checkpoints_to_keep() == {top3[1].id, top3[2].id, child.id}
    others = [oracle.ask(), oracle.ask()]
    for t in others:
        oracle.tell(t.id, score(t.hparams, 3))
    final = oracle.ask()
    assert final.budget == 9
    assert oracle.checkpoints_to_keep() == {final.resume_from}
    oracle.tell(final.id, score(final.hparams, 9))
    # The bracket is finished: nothing of it is kept.
    assert oracle.brackets[0].done
    assert oracle.checkpoints_to_keep() == set()
    nxt = oracle.ask()
    assert nxt.info["bracket"] == 1
    assert oracle.checkpoints_to_keep() == {nxt.id}


def test_last_round_trials_are_not_kept():
    oracle = create_oracle("hyperband", space(), "score", max_epochs=9, seed=4)
    drive(oracle, stop_after=19)  # brackets s=2 (13 trials) and s=1 (5 + 1) done
    t = oracle.ask()
    assert t.info == {"iteration": 0, "bracket": 0, "round": 0, "parent": None} and t.budget == 9
    oracle.tell(t.id, score(t.hparams, 9))
    assert oracle.checkpoints_to_keep() == set()


# --------------------------------------------------------------------------- restore


def cut_restore_and_finish(cut: int, **option):
    """An uninterrupted search, and one cut after ``cut`` asks, restored from its events and finished:
    the restored oracle matches the cut one, and the finished one the uninterrupted one."""
    options = dict(max_epochs=9, factor=3, hyperband_iterations=2, seed=7, **option)
    whole = create_oracle("hyperband", space(), "score", **options)
    drive(whole)
    events: list = []
    first = create_oracle("hyperband", space(), "score", **options)
    drive(first, stop_after=cut, events=events)
    resumed = create_oracle("hyperband", space(), "score", **options)
    resumed.restore(events)
    assert signature(resumed) == signature(first)
    assert resumed.checkpoints_to_keep() == first.checkpoints_to_keep()
    drive(resumed)
    assert signature(resumed) == signature(whole)
    return whole, resumed


@pytest.mark.parametrize("cut, sampler", [(5, "sobol"), (9, "sobol"), (12, "sobol"), (14, "random"), (30, "random")])
def test_restore_reproduces_an_uninterrupted_search(cut, sampler):
    whole, resumed = cut_restore_and_finish(cut, sampler=sampler)
    assert [t.value for t in resumed.trials.values()] == [t.value for t in whole.trials.values()]
    assert resumed.best_trials(1)[0].id == whole.best_trials(1)[0].id


def test_restore_with_a_trial_still_running():
    options = dict(max_epochs=9, seed=7)
    whole = create_oracle("hyperband", space(), "score", **options)
    drive(whole)
    events: list = []
    first = create_oracle("hyperband", space(), "score", **options)
    drive(first, stop_after=10, events=events)
    running = first.ask()  # asked (a promotion), never told: the process died
    events.append(("ask", copy.deepcopy(running)))
    resumed = create_oracle("hyperband", space(), "score", **options)
    resumed.restore(events)
    assert [t.id for t in resumed.running] == [running.id]
    assert resumed.checkpoints_to_keep() >= {running.resume_from}
    resumed.tell(running.id, score(running.hparams, running.budget))
    drive(resumed)
    assert signature(resumed) == signature(whole)


def test_best_trial_is_found_at_full_budget():
    oracle = create_oracle("hyperband", space(), "score", max_epochs=27, seed=0)
    drive(oracle)
    best = oracle.best_trials(1)[0]
    assert best.budget == 27 and best.status == COMPLETED
    assert math.isclose(best.value, score(best.hparams, 27))


def test_seeds_make_searches_reproducible_and_different():
    def run(seed):
        oracle = create_oracle("hyperband", space(), "score", max_epochs=9, seed=seed)
        drive(oracle)
        return signature(oracle)

    assert run(0) == run(0)
    assert run(0) != run(1)


def test_median_pruner_inside_hyperband():
    oracle = create_oracle("hyperband", space(), "score", max_epochs=9, seed=0,
                           pruner={"name": "median", "warmup_epochs": 0, "min_trials": 1})
    first = [oracle.ask() for _ in range(9)]
    for t in first[:8]:
        oracle.report(t.id, 1, 0.5)
        oracle.tell(t.id, 0.5)
    assert oracle.report(first[8].id, 1, 0.1) is True  # worse than the median 0.5 at epoch 1
    oracle.tell(first[8].id, None, status=PRUNED)
    assert oracle.trials[first[8].id].value == pytest.approx(0.1)
    promoted = [oracle.ask() for _ in range(3)]
    assert first[8].id not in {t.resume_from for t in promoted}


# --------------------------------------------------------------------------- KerasTuner's schedule (issue 24)


def kt_table(R: int, eta: int) -> list[list[tuple[int, int]]]:
    return [[(rnd.num_trials, rnd.budget) for rnd in b.rounds] for b in keras_tuner_bracket_schedule(R, eta)]


def keras_tuner_sizes(R: int, eta: int) -> list[list[tuple[int, int]]]:
    """KerasTuner 1.4.8's formulas, written out as its hyperband.py computes them (in floating point)."""
    brackets, epochs = 0, float(R)
    while epochs >= 1:
        epochs, brackets = epochs / eta, brackets + 1
    end = math.ceil(1 + math.log(R, eta))
    return [[(math.ceil(end / (b + 1) * eta ** (b - r)), math.ceil(R / eta ** (b - r))) for r in range(b + 1)]
            for b in range(brackets - 1, -1, -1)]


def test_keras_tuner_schedule_for_max_epochs_4_factor_3():
    assert kt_table(4, 3) == [[(5, 2), (2, 4)], [(3, 4)]]  # 10 trials, 26 epochs
    assert table(4, 3) == [[(3, 1), (1, 4)], [(2, 4)]]  # archsearch's: 6 trials, 14 epochs
    oracle = HyperbandOracle(space(), "score", max_epochs=4, factor=3)
    assert oracle.schedule_name == "keras_tuner"  # built directly, as KerasTuner code builds it
    assert (oracle.total_trials, oracle.total_epochs) == (10, 26)
    ours = create_oracle("hyperband", space(), "score", max_epochs=4, factor=3)
    assert ours.schedule_name == "archsearch"  # the command line's and the benchmarks' plan
    assert (ours.total_trials, ours.total_epochs) == (6, 14)


@pytest.mark.parametrize("R, eta", [(R, eta) for eta in (2, 3, 4, 5) for R in (1, 2, 3, 4, 5, 9, 10, 27, 81, 100, 250)])
def test_keras_tuner_schedule_is_keras_tuner_s_formulas(R, eta):
    assert kt_table(R, eta) == keras_tuner_sizes(R, eta)


def test_a_keras_tuner_search_trains_its_plan_and_continues_the_best():
    oracle = HyperbandOracle(space(), "score", max_epochs=4, factor=3, hyperband_iterations=2, seed=1)
    spent = drive(oracle)
    assert (len(oracle.trials), spent) == (20, 52)  # KerasTuner's numbers, twice
    first = [oracle.trials[i] for i in range(5)]
    promoted = [oracle.trials[5], oracle.trials[6]]
    best_two = sorted(first, key=lambda t: -t.value)[:2]
    assert [t.resume_from for t in promoted] == [t.id for t in best_two]
    values = oracle.get_trial(promoted[0].id).hyperparameters.values
    assert {k: v for k, v in values.items() if k.startswith("tuner/")} == {
        "tuner/trial_id": str(best_two[0].id), "tuner/epochs": 4, "tuner/initial_epoch": 2,
        "tuner/bracket": 1, "tuner/round": 1}
    fresh = oracle.get_trial(7).hyperparameters
    assert (fresh.get("tuner/epochs"), fresh.get("tuner/initial_epoch"), fresh.get("tuner/bracket")) == (4, 0, 0)
    assert "tuner/trial_id" not in fresh.values
    assert all(not k.startswith("tuner/") for t in oracle.trials.values() for k in t.hparams)  # shown, not stored


@pytest.mark.parametrize("cut", [3, 6, 13])
def test_keras_tuner_schedule_restores_exactly(cut):
    whole, _ = cut_restore_and_finish(cut, schedule="keras_tuner")
    assert len(whole.trials) == 2 * 23


def test_keras_tuner_schedule_keeps_workers_busy_and_promotes_after_the_round():
    oracle = HyperbandOracle(space(), "score", max_epochs=4, factor=3, seed=0)
    first = [oracle.ask() for _ in range(5)]
    assert [t.budget for t in first] == [2] * 5
    waiting = oracle.ask()  # round 0 waits: bracket 0 starts meanwhile
    assert waiting.info["bracket"] == 0 and waiting.budget == 4
    for t in first:
        oracle.tell(t.id, score(t.hparams, 2))
    promoted = [oracle.ask(), oracle.ask()]
    assert [t.initial_budget for t in promoted] == [2, 2] and all(t.resume_from is not None for t in promoted)
    assert {t.resume_from for t in promoted} <= oracle.checkpoints_to_keep()


def test_bohb_keeps_the_paper_s_plan():
    from archsearch.oracles import BOHBOracle

    assert BOHBOracle(space(), "score", max_epochs=4, factor=3).schedule_name == "archsearch"
    assert BOHBOracle(space(), "score", max_epochs=4, factor=3, schedule="keras_tuner").total_trials == 10


def test_the_command_line_keeps_archsearch_s_plan_and_chooses_keras_tuner_s_by_name():
    from hydra import compose, initialize_config_dir

    from archsearch.cli import config as C
    from archsearch.engine.assembly import create_search_oracle
    from archsearch.engine.settings import TunerSettings

    def oracle_of(*overrides):
        with initialize_config_dir(config_dir=str(REPO / "conf"), version_base=None):
            cfg = compose(config_name="config", overrides=["tuner=hyperband", "tuner.max_epochs=4", *overrides])
        return create_search_oracle(TunerSettings.from_config(C.to_dict(cfg.tuner)), space(), "score")

    ours, keras_tuner_s = oracle_of(), oracle_of("tuner.schedule=keras_tuner")
    assert (ours.total_trials, ours.total_epochs) == (6, 14)
    assert (keras_tuner_s.total_trials, keras_tuner_s.total_epochs) == (10, 26)
    with pytest.raises(ConfigError) as info:
        oracle_of("tuner.schedule=kerastuner")
    assert info.value.field == "tuner.schedule"
    assert "archsearch (the paper" in str(info.value) and "keras_tuner (" in str(info.value)


def test_a_search_stored_before_tuner_schedule_existed_continues_with_the_paper_s_plan():
    from archsearch.cli.resume import compare_for_resume

    stored = {"tuner": {"name": "hyperband", "max_epochs": 9, "seed": 0}}
    assert compare_for_resume(stored, {"tuner": {**stored["tuner"], "schedule": "archsearch"}}) == ([], [])
    _, refused = compare_for_resume(stored, {"tuner": {**stored["tuner"], "schedule": "keras_tuner"}})
    assert refused == ["tuner.schedule: archsearch -> keras_tuner"]  # another plan: another search
    options = {k: v for k, v in stored["tuner"].items() if k != "name"}
    oracle = create_oracle("hyperband", space(), "score", **options)  # what resume= builds from it
    assert oracle.schedule_name == "archsearch"
