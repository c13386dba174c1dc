"""The median pruner on hand-made learning curves, and how the oracles use it."""

from __future__ import annotations

import pytest

from archsearch import HyperParameters
from archsearch.errors import ConfigError
from archsearch.oracles import create_oracle
from archsearch.oracles.base import PRUNED
from archsearch.oracles.pruners import MedianPruner, create_pruner

SPACE = {"x": {"type": "float", "min": 0.0, "max": 1.0}}


def oracle_with(curves: list[list[float]], objective="val_accuracy", pruner="median", **options):
    """A random-search oracle whose first trials completed with the given per-epoch curves."""
    oracle = create_oracle("random", HyperParameters.from_config(SPACE), objective, seed=0, pruner=pruner, **options)
    for curve in curves:
        trial = oracle.ask()
        for epoch, value in enumerate(curve, start=1):
            oracle.report(trial.id, epoch, value)
        oracle.tell(trial.id, curve[-1])
    return oracle


def report_curve(oracle, curve: list[float]) -> int | None:
    """Report a new trial's curve; the epoch at which it is pruned, or None."""
    trial = oracle.ask()
    for epoch, value in enumerate(curve, start=1):
        if oracle.report(trial.id, epoch, value):
            oracle.tell(trial.id, None, status=PRUNED)
            return epoch
    oracle.tell(trial.id, curve[-1])
    return None


COMPLETED_CURVES = [
    [0.50, 0.60, 0.70, 0.80],
    [0.40, 0.55, 0.65, 0.75],
    [0.30, 0.50, 0.60, 0.70],
]  # medians by epoch: 0.40, 0.55, 0.65, 0.75


def test_a_trial_below_the_median_is_pruned_after_warmup():
    oracle = oracle_with(COMPLETED_CURVES)
    # Below the median from epoch 1 on, but epoch 1 is the warm-up.
    assert report_curve(oracle, [0.10, 0.20, 0.30, 0.40]) == 2
    pruned = oracle.trials[3]
    assert pruned.status == PRUNED and pruned.value == pytest.approx(0.20)
    assert max(pruned.intermediate) == 2


def test_a_trial_at_or_above_the_median_runs_to_the_end():
    oracle = oracle_with(COMPLETED_CURVES)
    assert report_curve(oracle, [0.40, 0.55, 0.65, 0.75]) is None  # equal to the median is not worse
    assert report_curve(oracle, [0.90, 0.95, 0.96, 0.97]) is None


def test_best_value_so_far_counts_not_the_last_one():
    oracle = oracle_with(COMPLETED_CURVES)
    # Epoch 3 (0.5) is below the median 0.65, but the best so far (0.70 at epoch 2) is above it.
    assert report_curve(oracle, [0.30, 0.70, 0.50, 0.76]) is None
    # Falls to 0.60 by epoch 3 and never reached the median 0.65 there: pruned at 3.
    oracle2 = oracle_with(COMPLETED_CURVES)
    assert report_curve(oracle2, [0.45, 0.56, 0.60, 0.90]) == 3


def test_warmup_epochs_are_respected():
    oracle = oracle_with(COMPLETED_CURVES, pruner={"name": "median", "warmup_epochs": 3})
    assert report_curve(oracle, [0.0, 0.0, 0.0, 0.0]) == 4
    no_warmup = oracle_with(COMPLETED_CURVES, pruner={"name": "median", "warmup_epochs": 0})
    assert report_curve(no_warmup, [0.0, 0.0, 0.0, 0.0]) == 1


def test_min_trials_completed_at_that_epoch():
    # Only two completed trials: nobody is pruned with the default min_trials=3.
    oracle = oracle_with(COMPLETED_CURVES[:2])
    assert report_curve(oracle, [0.0, 0.0, 0.0, 0.0]) is None
    # Now three completed, but only two of them reached epoch 4 (one stopped at 2 epochs).
    short = oracle_with([COMPLETED_CURVES[0], COMPLETED_CURVES[1], [0.9, 0.9]],
                        pruner={"name": "median", "warmup_epochs": 2})
    assert report_curve(short, [0.0, 0.0, 0.0, 0.0]) is None
    lenient = oracle_with(COMPLETED_CURVES[:2], pruner={"name": "median", "min_trials": 2})
    assert report_curve(lenient, [0.0, 0.0, 0.0, 0.0]) == 2


def test_pruned_trials_do_not_count_towards_the_median():
    oracle = oracle_with(COMPLETED_CURVES[:2])
    assert report_curve(oracle, [0.0, 0.0, 0.0, 0.0]) is None  # completes: now 3 completed, median dragged down
    assert report_curve(oracle, [0.1, 0.3, 0.4, 0.5]) == 2  # median at epoch 2: 0.55 (of 0.60, 0.55, 0.0)
    # Were the pruned trial counted, the median at epoch 2 would be 0.425 and 0.5 would pass.
    assert report_curve(oracle, [0.1, 0.5, 0.6, 0.7]) == 2


def test_min_direction():
    losses = [[1.0, 0.8, 0.6], [1.2, 0.9, 0.7], [1.4, 1.0, 0.8]]  # medians 1.2, 0.9, 0.7
    oracle = oracle_with(losses, objective="val_loss")
    assert oracle.objective.direction == "min"
    assert report_curve(oracle, [1.5, 1.1, 0.5]) == 2  # 1.1 > median 0.9: worse
    assert report_curve(oracle, [1.5, 0.85, 0.65]) is None  # 0.85 <= 0.9, then 0.65 <= 0.7
    assert oracle.trials[max(oracle.trials)].status == "completed"


def test_min_direction_prunes_when_best_is_above_median():
    losses = [[1.0, 0.8, 0.6], [1.2, 0.9, 0.7], [1.4, 1.0, 0.8]]
    oracle = oracle_with(losses, objective="val_loss")
    assert report_curve(oracle, [1.5, 0.85, 0.75]) == 3  # best 0.75 > median 0.7 at epoch 3


def test_should_prune_directly():
    oracle = oracle_with(COMPLETED_CURVES, pruner=None)
    trial = oracle.ask()
    trial.intermediate = {1: 0.1, 2: 0.2}
    pruner = MedianPruner(warmup_epochs=1, min_trials=3)
    assert pruner.should_prune(oracle, trial, 2) is True
    assert pruner.should_prune(oracle, trial, 1) is False
    trial.intermediate = {1: 0.1, 2: 0.6}
    assert pruner.should_prune(oracle, trial, 2) is False


@pytest.mark.parametrize("spec", ["median", {"name": "median"}, {"name": "median", "warmup_epochs": 2, "min_trials": 5}])
def test_create_pruner_specs(spec):
    pruner = create_pruner(spec)
    assert isinstance(pruner, MedianPruner)
    if isinstance(spec, dict) and "min_trials" in spec:
        assert (pruner.warmup_epochs, pruner.min_trials) == (2, 5)
    else:
        assert (pruner.warmup_epochs, pruner.min_trials) == (1, 3)


def test_none_means_no_pruning():
    assert create_pruner(None) is None
    assert create_pruner("none") is None
    assert create_pruner({"name": "none"}) is None
    oracle = oracle_with(COMPLETED_CURVES, pruner="none")
    assert oracle.pruner is None
    assert report_curve(oracle, [0.0, 0.0, 0.0, 0.0]) is None


@pytest.mark.parametrize(
    "spec, field",
    [
        ("asha", "tuner.pruner"),
        ({"warmup_epochs": 1}, "tuner.pruner"),
        ({"name": "median", "patience": 2}, "tuner.pruner.patience"),
        ({"name": "median", "warmup_epochs": -1}, "tuner.pruner.warmup_epochs"),
        ({"name": "median", "min_trials": 0}, "tuner.pruner.min_trials"),
        (3, "tuner.pruner"),
    ],
)
def test_bad_pruner_specs_name_the_field(spec, field):
    with pytest.raises(ConfigError) as info:
        create_pruner(spec)
    assert info.value.field == field


def test_unknown_pruner_through_create_oracle():
    with pytest.raises(ConfigError, match="tuner.pruner"):
        create_oracle("grid", HyperParameters.from_config(SPACE), "val_accuracy", pruner="percentile")


# Completed trials of 9 epochs whose best ends at 0.80 accuracy.
LONG_CURVES = [[0.30 + 0.5 * (1 - 0.7 ** e) for e in range(1, 10)],
               [0.40 + 0.4 * (1 - 0.6 ** e) for e in range(1, 10)],
               [0.20 + 0.5 * (1 - 0.75 ** e) for e in range(1, 10)]]


def test_the_decay_curve_rule_keeps_a_slow_starter_whose_curve_still_rises_steeply():
    """The crossing-curve toy: below every completed trial for 4 epochs, but rising towards 0.95."""
    slow = [0.95 - 0.9 * e ** -1.0 for e in range(1, 10)]  # 0.05, 0.50, 0.65, 0.725, ... 0.85 at 9
    assert report_curve(oracle_with(LONG_CURVES, pruner="median"), slow) == 2  # the median rule loses it
    oracle = oracle_with(LONG_CURVES, pruner="decay_curve")
    assert report_curve(oracle, slow) is None
    assert oracle.trials[3].value == pytest.approx(slow[-1])


def test_the_decay_curve_rule_stops_a_curve_that_has_levelled_off_below_the_best():
    flat = [0.30, 0.40, 0.44, 0.45, 0.455, 0.457, 0.458, 0.459, 0.46]
    oracle = oracle_with(LONG_CURVES, pruner={"name": "decay_curve", "warmup_epochs": 3})
    assert report_curve(oracle, flat) == 4  # needs warmup_epochs + 1 points; then it cannot reach 0.80
    minimised = oracle_with([[1 - v for v in c] for c in LONG_CURVES], objective="val_loss", pruner="decay_curve")
    assert report_curve(minimised, [1 - v for v in flat]) == 3  # the same for a loss


def test_the_decay_curve_rule_waits_for_completed_trials_and_reads_its_options():
    flat = [0.30, 0.40, 0.44, 0.45, 0.455]
    assert report_curve(oracle_with(LONG_CURVES[:2], pruner="decay_curve"), flat) is None  # min_trials=3
    with pytest.raises(ConfigError, match="tuner.pruner.warmup_epochs"):
        create_pruner({"name": "decay_curve", "warmup_epochs": 1})  # three points fit the curve at least
