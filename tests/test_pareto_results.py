"""What a user sees of a Pareto search's results (issue 28): the best trials as the front, the results table
with its knee and hypervolume, trials.csv's rank and on_front columns, best/pareto/ and retrain of the knee."""

from __future__ import annotations

import csv
import logging

import numpy as np
import pytest

from archsearch.core import pareto
from archsearch.core.objective import Objective, ParetoObjective
from archsearch.core.trial import COMPLETED, FAILED, Trial

OBJECTIVE = ParetoObjective.of(["a:max", "b:min"])


def searched_oracle(objective=OBJECTIVE, trials: int = 12):
    """A random search over x in [0, 1]: a = x (max), b = x^2 (min), every third trial penalised (dominated)."""
    from archsearch.oracles import create_oracle
    from archsearch.space.hyperparameters import HyperParameters

    hp = HyperParameters()
    hp.Float("x", 0.0, 1.0)
    oracle = create_oracle("random", hp, objective, max_trials=trials, seed=3)
    while (trial := oracle.ask()) is not None:
        x = trial.hparams["x"]
        oracle.tell(trial.id, {"a": x, "b": x * x + (0.3 if trial.id % 3 == 0 else 0.0)})
    return oracle


def test_the_best_trials_of_a_pareto_search_are_the_whole_front_unless_a_number_limits_them():
    oracle = searched_oracle()
    front = oracle.pareto_front()
    assert len(front) > 2 and all(t.id % 3 for t in front)
    assert oracle.get_best_trials() == oracle.best_trials() == front  # KerasTuner's default of 1 hides nothing
    assert oracle.get_best_trials(2) == front[:2]
    single = searched_oracle(Objective("a", "max"))
    assert len(single.get_best_trials()) == 1  # a single objective keeps KerasTuner's default


def test_default_reference_point_is_the_nadir_plus_a_tenth_of_the_range():
    costs = np.array([[0.0, 10.0], [1.0, 30.0], [0.5, 20.0]])
    assert pareto.default_reference_point(costs).tolist() == pytest.approx([1.1, 32.0])
    flat = np.array([[2.0, 0.0], [2.0, 0.0]])  # no range: 10% of the magnitude, or 1 at zero
    assert pareto.default_reference_point(flat).tolist() == pytest.approx([2.2, 1.0])
    assert pareto.reference_costs(OBJECTIVE, {"b": 2.0, "a": 0.0}).tolist() == [-0.0, 2.0]  # a:max is negated
    assert pareto.as_values(OBJECTIVE, [-0.5, 2.0]) == [0.5, 2.0]


def test_the_results_table_lists_the_front_every_objective_the_knee_and_the_hypervolume():
    from archsearch.keras_tuner.results import results_table

    oracle = searched_oracle()
    view = pareto.FrontView.of(oracle.trials.values(), OBJECTIVE)
    text = results_table(oracle, None)
    lines = text.splitlines()
    header = next(i for i, line in enumerate(lines) if line.split()[:4] == ["#", "trial", "a", "b"])
    rows = [line.split() for line in lines[header + 2: header + 2 + len(view.front)]]
    assert [int(r[1]) for r in rows] == [t.id for t in view.front]
    assert [r[1] for r in rows if "yes" in r] == [str(view.knee)]
    assert f"Pareto front: {len(view.front)} of 12 trials" in text
    hv = pareto.hypervolume(view.costs, pareto.default_reference_point(view.costs))
    assert f"Hypervolume: {hv:.6g} (reference point a=" in text and "derived" in text

    limited = results_table(oracle, 2, reference_point={"a": 0.0, "b": 1.5})
    assert f"... and {len(view.front) - 2} more on the front" in limited
    fixed = pareto.hypervolume(view.costs, [0.0, 1.5])
    assert f"Hypervolume: {fixed:.6g} (reference point a=0, b=1.5; search.reference_point)" in limited


def test_trials_csv_of_a_pareto_search_has_each_trials_rank_and_whether_it_is_on_the_front(tmp_path):
    from archsearch.core.store import CSV_COLUMNS, TrialStore

    metrics = [{"a": 0.9, "b": 3.0}, {"a": 0.5, "b": 1.0}, {"a": 0.4, "b": 2.0}, {"a": 0.3, "b": 2.5}, {"a": 0.95}]
    with TrialStore(tmp_path / "store") as store:
        for i, m in enumerate(metrics):
            trial = Trial(i, {"x": i})
            store.create_trial(trial)
            trial.status, trial.metrics, trial.value = COMPLETED, m, m["a"]
            store.finish_trial(trial)
        failed = Trial(5, {"x": 5}, status=FAILED, error="boom")
        store.create_trial(failed)
        store.finish_trial(failed)
        rows = list(csv.DictReader(store.export_csv(tmp_path / "trials.csv", OBJECTIVE).open(newline="")))
        plain = next(csv.reader(store.export_csv(tmp_path / "single.csv", Objective("a", "max")).open(newline="")))
    assert [(r["rank"], r["on_front"]) for r in rows] == [
        ("0", "true"), ("0", "true"), ("1", "false"), ("2", "false"), ("", "false"), ("", "false")]
    assert rows[0]["a"] == "0.9" and rows[0]["b"] == "3.0"  # every objective is a metric column
    assert plain == [*CSV_COLUMNS, "x", "a", "b"]  # a single objective's CSV is unchanged


def test_a_list_objective_in_single_mode_is_a_sum_and_the_search_says_so_once(caplog):
    from archsearch.core.console import sum_note

    note = sum_note(Objective.create(["val_accuracy", "val_loss"]))
    assert "KerasTuner's sum" in note and "search.mode=pareto" in note and "ParetoObjective" in note
    assert sum_note(OBJECTIVE) is None and sum_note(Objective("val_loss")) is None
