"""The learning-curve model's promotions (issue 29): a rung promotes by the predicted final score.

Cheap and Keras-free: a search's state is built by replaying a hand-made history (``Oracle.restore``, the
path a resumed search takes), so the rung to decide holds exactly the trials named here.
"""

from __future__ import annotations

import pytest

from archsearch import HyperParameters
from archsearch.errors import ConfigError
from archsearch.oracles import create_oracle
from archsearch.oracles.base import COMPLETED, Trial
from archsearch.oracles.learning_curves import CurveModel, lineage, merged_curve

SPACE = {"lr": {"type": "float", "min": 1e-4, "max": 1e-1, "sampling": "log"},
         "x": {"type": "float", "min": 0.0, "max": 1.0}}


def crossing(lr: float, epoch: int) -> float:
    """Slow learning rates end best, fast ones lead early: at epoch 1 the ranking is reversed."""
    slow = lr < 1e-2
    final, rate = (0.9, 0.15) if slow else (0.6, 0.8)
    return final * (1 - (1 - rate) ** epoch)


def done(trial_id: int, lr: float, budget: int, start: int = 0, parent: int | None = None) -> list:
    """The ask and tell of a trial trained from ``start`` to ``budget`` epochs on the crossing curves."""
    t = Trial(trial_id, {"lr": lr, "x": 0.5})
    t.budget, t.initial_budget, t.resume_from = budget, start, parent
    told = Trial(trial_id, dict(t.hparams))
    told.budget, told.initial_budget, told.resume_from = budget, start, parent
    told.intermediate = {e: crossing(lr, e) for e in range(start + 1, budget + 1)}
    told.value, told.status = crossing(lr, budget), COMPLETED
    return [("ask", t), ("tell", told)]


def history() -> list:
    """Four configurations trained to the full 9 epochs (two slow ones ended best), then rung 0 (1 epoch)
    holds a fast starter (the best score now) and two slow ones: one of them goes on."""
    events = []
    for i, lr in enumerate((1.2e-4, 3e-4, 0.09, 0.05)):
        events += done(i, lr, 9)
    for i, lr in ((4, 0.07), (5, 2e-4), (6, 5e-4)):
        events += done(i, lr, 1)
    return events


def next_promotion(promotion: str):
    oracle = create_oracle("asha", HyperParameters.from_config(SPACE), "score", max_epochs=9, factor=3, seed=0,
                           promotion=promotion)
    oracle.restore(history())
    return oracle.ask()


def test_a_crossing_curve_toy_where_the_curve_model_promotes_the_slow_starter():
    """The fast starter (trial 4) leads rung 0 after one epoch; configurations like it ended at 0.6, the slow
    ones at 0.9.  By current score the rung promotes the fast starter; the curve model promotes a slow one."""
    assert crossing(0.07, 1) > crossing(2e-4, 1)  # the fast starter leads now...
    assert crossing(0.07, 9) < crossing(2e-4, 9)  # ...and ends worse
    by_rank = next_promotion("rank")
    assert (by_rank.resume_from, by_rank.budget) == (4, 3)
    by_curve = next_promotion("curve")
    assert by_curve.resume_from in (5, 6) and by_curve.budget == 3
    assert by_curve.hparams["lr"] < 1e-3


def test_without_knowledge_past_the_rung_the_rank_decides():
    """Fewer than three configurations seen past a rung's budget: the model keeps out, the current score ranks."""
    model = CurveModel(HyperParameters.from_config(SPACE), _maximise(), budgets=(1, 3, 9), max_epochs=9)
    trials = {}
    oracle = create_oracle("asha", HyperParameters.from_config(SPACE), "score", max_epochs=9, factor=3, seed=0)
    events = done(0, 1.2e-4, 9) + done(1, 0.09, 9)
    for i, lr in ((2, 0.07), (3, 2e-4), (4, 5e-4)):
        events += done(i, lr, 1)
    oracle.restore(events)
    trials = oracle.trials
    members = [trials[i] for i in (2, 3, 4)]
    assert model.predict_final(trials, members, budget=1) is None
    assert [t.id for t in model.rank(trials, members, budget=1)] == [2, 3, 4]
    assert oracle.ask().resume_from == 2  # as the rank rule


def test_curves_are_merged_along_continued_trials():
    oracle = create_oracle("asha", HyperParameters.from_config(SPACE), "score", max_epochs=9, factor=3, seed=0)
    oracle.restore(done(0, 1e-3, 1) + done(1, 1e-3, 3, start=1, parent=0))
    chain = lineage(oracle.trials[1], oracle.trials)
    assert [t.id for t in chain] == [0, 1]
    assert sorted(merged_curve(chain)) == [1, 2, 3]


@pytest.mark.parametrize("tuner", ["asha", "hyperband", "bohb"])
def test_an_unknown_promotion_rule_is_refused_by_name(tuner):
    with pytest.raises(ConfigError, match="tuner.promotion.*'best'.*curve.*rank"):
        create_oracle(tuner, HyperParameters.from_config(SPACE), "score", max_epochs=9, promotion="best")


def test_defaults_asha_promotes_by_the_curves_hyperband_and_bohb_by_score():
    """The defaults follow bench/RESULTS.md (issue 29): the model's promotions help ASHA, not Hyperband or BOHB."""
    space = HyperParameters.from_config(SPACE)
    assert create_oracle("asha", space, "score", max_epochs=9).promotion == "curve"
    assert create_oracle("hyperband", space, "score", max_epochs=9).promotion == "rank"
    assert create_oracle("bohb", space, "score", max_epochs=9).promotion == "rank"
    assert create_oracle("hyperband", space, "score", max_epochs=9, promotion="curve").promotion == "curve"


def _maximise():
    from archsearch.core.objective import Objective

    return Objective("score", "max")
