"""KerasTuner's oracles: built with keywords only, handed to a tuner, or driven by hand (issue 12)."""

from __future__ import annotations

import pytest

import archsearch as kt
from archsearch.errors import SearchSpaceError
from archsearch.oracles import driving


def test_an_oracle_without_hyperparameters_learns_its_space_from_the_hypermodel(tmp_path):
    from kt_helpers import build_mlp, tiny_data

    oracle = kt.oracles.RandomSearchOracle(objective=kt.Objective("val_accuracy", "max"), max_trials=2, seed=3)
    assert len(oracle.get_space().space) == 0
    tuner = kt.Tuner(hypermodel=build_mlp, oracle=oracle, directory=tmp_path, project_name="p")
    assert tuner.oracle is oracle
    assert sorted(oracle.get_space().space.keys()) == ["learning_rate", "units"]
    assert oracle.get_space().values == {n: p.default for n, p in oracle.get_space().space.items()}
    x, y = tiny_data()
    tuner.search(x, y, epochs=1, validation_split=0.25, verbose=0)
    best = oracle.get_best_trials(1)[0]
    assert best.status == "completed" and best.score == best.value is not None
    assert best.hyperparameters.get("units") == best.hparams["units"]
    assert len(oracle.trials) == 2
    assert tuner.get_best_hyperparameters()[0].values == best.hparams


@pytest.mark.parametrize("cls, options", [
    (kt.oracles.RandomSearchOracle, {"max_trials": 3}),
    (kt.oracles.GridSearchOracle, {"max_trials": 3}),
    (kt.oracles.BayesianOptimizationOracle, {"max_trials": 3, "num_initial_points": 2}),
    (kt.oracles.HyperbandOracle, {"max_epochs": 3, "factor": 3}),
])
def test_every_oracle_can_be_driven_by_hand(cls, options):
    """create_trial / update_trial / end_trial, as code that drives a KerasTuner oracle runs it."""
    hp = kt.HyperParameters()
    hp.Float("x", -1.0, 1.0)
    oracle = cls(objective=kt.Objective("loss", "min"), hyperparameters=hp, seed=1, **options)
    finished = 0
    for _ in range(20):
        trial = oracle.create_trial("tuner0")
        if trial.status == "stopped":
            break
        if trial.status == "idle":
            continue
        x = trial.hyperparameters.get("x")
        for step in (1, 2):
            status = oracle.update_trial(trial.trial_id, {"loss": (x - 0.2) ** 2 + 1.0 / step}, step=step)
            assert status in ("running", "stopped")
        ended = oracle.end_trial(trial)
        assert ended.status == "completed"
        assert ended.score == pytest.approx((x - 0.2) ** 2 + 0.5)  # the best step's value
        finished += 1
    assert finished >= 3
    assert oracle.create_trial("tuner0").status == "stopped"
    best = oracle.get_best_trials(2)
    assert best[0].score <= best[1].score
    assert oracle.get_trial(best[0].trial_id) is best[0]


def test_end_trial_with_a_failed_status_records_the_failure():
    hp = kt.HyperParameters()
    hp.Int("n", 1, 4)
    oracle = kt.oracles.RandomSearchOracle(objective="val_loss", hyperparameters=hp, max_trials=2)
    trial = oracle.create_trial("t")
    trial.status = "FAILED"
    ended = oracle.end_trial(trial, message="out of luck")
    assert ended.status == "failed" and ended.error == "out of luck"


def test_allow_new_entries_false_refuses_a_builder_that_declares_more(tmp_path):
    from kt_helpers import build_mlp

    hp = kt.HyperParameters()
    hp.Int("units", 4, 16, step=4)
    with pytest.raises(SearchSpaceError, match="'learning_rate'.*`allow_new_entries` is `False`") as info:
        kt.RandomSearch(build_mlp, objective="val_accuracy", hyperparameters=hp, allow_new_entries=False,
                        max_trials=2, directory=tmp_path)
    assert isinstance(info.value, RuntimeError)  # KerasTuner's type there, for code that catches it


def test_tune_new_entries_false_keeps_new_entries_out_of_the_space_at_their_default(tmp_path):
    from kt_helpers import build_mlp, tiny_data

    hp = kt.HyperParameters()
    hp.Int("units", 4, 16, step=4)
    oracle = kt.oracles.RandomSearchOracle(objective="val_accuracy", hyperparameters=hp, tune_new_entries=False,
                                           max_trials=2, allow_new_entries=False)
    oracle.allow_new_entries = True  # the builder may declare learning_rate; it is not tuned
    tuner = kt.Tuner(build_mlp, oracle=oracle, directory=tmp_path)
    x, y = tiny_data(32)
    tuner.search(x, y, epochs=1, validation_split=0.25, verbose=0)
    assert [p.name for p in oracle.hyperparameters.space] == ["units"]
    trials = list(oracle.trials.values())
    assert len(trials) == 2
    assert {t.hyperparameters.get("learning_rate") for t in trials} == {1e-2}  # the Choice's default, every time


def test_a_tuner_given_an_oracle_refuses_a_second_objective_or_oracle_settings(tmp_path):
    from kt_helpers import build_mlp

    oracle = kt.oracles.RandomSearchOracle(objective="val_accuracy", max_trials=2)
    with pytest.raises(kt.ConfigError, match="objective"):
        kt.Tuner(build_mlp, oracle=oracle, objective="val_loss", directory=tmp_path / "a")
    with pytest.raises(kt.ConfigError, match="max_trials: is an oracle setting"):
        kt.Tuner(build_mlp, oracle=oracle, max_trials=5, directory=tmp_path / "b")


def test_hyperparameter_objects_have_keras_tuner_s_methods():
    from archsearch.space.categorical import Boolean, Choice, Fixed
    from archsearch.space.numeric import Float, Int

    rg = Int.from_config(Int("rg", 5, 9, default=6).get_config())
    assert rg.default == 6 and 5 <= rg.random_sample() <= 9
    assert rg.random_sample(123) == rg.random_sample(123)
    assert abs(rg.value_to_prob(6) - 0.3) < 1e-4 and rg.prob_to_value(0.3) == 6
    assert list(Int("i", 2, 8, 2).values) == [2, 4, 6, 8]
    assert list(Int("i", 2, 8, 2, sampling="log").values) == [2, 4, 8]
    assert Float.from_config(Float("f", 0.0, 1.0, step=0.5).get_config()).values == [0.0, 0.5, 1.0]
    assert list(Boolean("b").values) == [True, False]
    assert Fixed("x", 3).values == [3] and Fixed.from_config(Fixed("x", 3).get_config()).value == 3
    choice = Choice.from_config(Choice("c", ["a", "b"], default="b").get_config())
    assert choice.values == ["a", "b"] and choice.default == "b"


def test_keras_tuner_status_names_and_create_objective():
    from archsearch.core.objective import create_objective
    from archsearch.core.trial import Status, TrialStatus

    assert Status("completed") == TrialStatus.COMPLETED and Status(TrialStatus.INVALID) == "failed"
    assert create_objective("val_accuracy") == kt.Objective("val_accuracy", "max")
    assert create_objective(["loss", "val_loss"]).name == "multi_objective"


def test_max_consecutive_failed_trials_set_twice_differently_is_refused(tmp_path):
    from kt_helpers import build_mlp

    oracle = kt.oracles.RandomSearchOracle(objective="val_accuracy", max_trials=2, max_consecutive_failed_trials=5)
    with pytest.raises(kt.ConfigError, match="max_consecutive_failed_trials: is 3 for the tuner but 5"):
        kt.Tuner(build_mlp, oracle=oracle, max_consecutive_failed_trials=3, directory=tmp_path / "a")
    assert kt.Tuner(build_mlp, oracle=oracle, directory=tmp_path / "b").max_consecutive_failed_trials == 5


def test_best_step_is_the_zero_based_epoch_of_the_best_objective():
    hp = kt.HyperParameters()
    hp.Float("x", 0.0, 1.0)
    oracle = kt.oracles.RandomSearchOracle(objective=kt.Objective("val_accuracy", "max"), max_trials=2,
                                           hyperparameters=hp, seed=0)
    trial = oracle.ask()
    for epoch, value in ((1, 0.5), (2, 0.9), (3, 0.7)):
        oracle.report(trial.id, epoch, value)
    oracle.tell(trial.id, 0.9)
    assert oracle.get_best_trials(1)[0].best_step == 1  # epoch 2, as KerasTuner counts steps from 0
    untracked = oracle.ask()
    oracle.tell(untracked.id, 0.1)  # a run_trial that returned one number: no epochs
    assert oracle.get_trial(untracked.id).best_step == 0


# --------------------------------------------------------------------------- grid search in KerasTuner's order


def drive(oracle, run=None) -> list[dict]:
    """Ask and tell one trial at a time until the oracle stops; ``run(hp)`` may declare more names."""
    done = driving.drive(oracle, lambda h: 1.0, declare=run)
    assert oracle.finished
    return [dict(t.hparams) for t in done.asked]


def test_grid_starts_at_the_defaults_and_varies_the_last_parameter_fastest():
    hp = kt.HyperParameters()
    hp.Choice("a", [1, 2, 3], default=2)
    hp.Boolean("b")
    seen = drive(kt.oracles.GridSearchOracle(objective="loss", hyperparameters=hp))
    assert [(v["a"], v["b"]) for v in seen] == [(2, False), (2, True), (1, False), (1, True), (3, False), (3, True)]


def test_grid_tries_a_float_without_step_at_its_default_and_ten_bin_centres():
    hp = kt.HyperParameters()
    hp.Int("int", 1, 5)
    hp.Float("float", 1, 2)
    seen = drive(kt.oracles.GridSearchOracle(objective="loss", hyperparameters=hp))
    assert len(seen) == 5 * (10 + 1)
    floats = [v["float"] for v in seen[:11]]
    assert floats == pytest.approx([1.0] + [1.05 + 0.1 * i for i in range(10)])
    assert [v["int"] for v in seen[::11]] == [1, 2, 3, 4, 5]
    assert hp.space["float"].grid_order(4) == pytest.approx([1.0, 1.125, 1.375, 1.625, 1.875])


def test_grid_extends_with_names_declared_during_the_search_without_revisiting_earlier_trials():
    def run(hp):
        if hp.Boolean("bool"):
            hp.Choice("choice1", [0, 1, 2])
        else:
            hp.Choice("choice2", [3, 4, 5])

    seen = drive(kt.oracles.GridSearchOracle(objective="loss"), run)
    assert len(seen) == 3 + 3 * 3  # choice1 joins when bool is True; the False trials ran before it existed
    assert [v["choice2"] for v in seen[:3]] == [3, 4, 5] and not any(v["bool"] for v in seen[:3])
    assert sorted((v["choice2"], v["choice1"]) for v in seen[3:]) == [(c2, c1) for c2 in (3, 4, 5) for c1 in (0, 1, 2)]


def test_parallel_grid_waits_while_only_running_trials_can_have_successors():
    hp = kt.HyperParameters()
    hp.Boolean("bool")
    oracle = kt.oracles.GridSearchOracle(objective="loss", hyperparameters=hp)
    first, second = oracle.ask(), oracle.ask()
    assert (first.hparams, second.hparams) == ({"bool": False}, {"bool": True})
    assert oracle.ask() is None and not oracle.finished  # bool2 may still appear

    def finish(trial):
        grown = oracle.hyperparameters.with_values(trial.hparams)
        grown.Boolean("bool2")
        oracle.update_space(grown, trial_id=trial.id)
        oracle.tell(trial.id, 0.5)

    finish(first)
    third = oracle.ask()
    assert third.hparams == {"bool": False, "bool2": True}
    assert oracle.ask() is None  # nothing left between the first and the second trial
    finish(second)
    assert oracle.ask().hparams == {"bool": True, "bool2": True}
    assert oracle.ask() is None
    for trial in oracle.running:
        oracle.tell(trial.id, 0.5)
    assert oracle.ask() is None and oracle.finished and len(oracle.trials) == 4


def test_grid_order_linked_list():
    from archsearch.oracles.grid import LinkedList

    order = LinkedList()
    order.insert(0)
    order.insert(1)
    order.insert(2, 0)
    order.insert(3, 1)
    order.insert(4)
    walk, node = [0], 0
    while (node := order.next(node)) is not None:
        walk.append(node)
    assert walk == [0, 2, 1, 3, 4]


def test_hyperband_factor_below_2_names_the_field_and_keras_tuner_s_phrase():
    with pytest.raises(ValueError, match="factor needs") as info:
        kt.oracles.HyperbandOracle(objective=kt.Objective("score", "max"), max_epochs=8, factor=1)
    assert "tuner.factor" in str(info.value) and "got 1" in str(info.value)


def two_values() -> kt.HyperParameters:
    hp = kt.HyperParameters()
    hp.Choice("a", [1, 2])
    return hp


def test_hyperband_driven_by_hand_stops_when_its_first_bracket_runs_out_of_values():
    """KerasTuner's Hyperband wants 5 new trials in its first round (max_epochs=4, factor=3); with 2
    values its populate_space answers STOPPED once both ran, and create_trial gives a stopped trial."""
    from archsearch.core.trial import IDLE, STOPPED

    oracle = kt.oracles.HyperbandOracle(objective="loss", max_epochs=4, factor=3, hyperparameters=two_values(),
                                        seed=0)
    first, second = oracle.create_trial("t0"), oracle.create_trial("t1")
    assert oracle.create_trial("t2").status == IDLE  # out of values, but two trials still run
    for trial in (first, second):
        oracle.update_trial(trial.trial_id, {"loss": float(trial.hyperparameters.get("a"))}, step=2)
        oracle.end_trial(trial)
    stopped = oracle.create_trial("t2")
    assert stopped.status == STOPPED and stopped.trial_id not in oracle.trials
    assert oracle.populate_space("3") == {"status": "STOPPED"}
    assert sorted(t.status for t in oracle.trials.values()) == ["completed", "completed"]
    assert oracle.finished and oracle.checkpoints_to_keep() == set()
    assert [first.budget, second.budget] == [2, 2]  # KerasTuner's first round: 2 epochs


def test_hyperband_through_a_tuner_ends_when_its_first_bracket_runs_out_of_values(tmp_path):
    from archsearch.core.trial import STOPPED

    seen = []

    class Scored(kt.Tuner):
        def run_trial(self, trial, *args, **kwargs):
            hp = trial.hyperparameters
            seen.append((hp["tuner/epochs"], hp["tuner/initial_epoch"], "tuner/trial_id" in hp, kwargs["epochs"]))
            return float(hp.get("a"))

    oracle = kt.oracles.HyperbandOracle(objective="loss", max_epochs=4, factor=3, hyperparameters=two_values(),
                                        seed=0)
    tuner = Scored(oracle=oracle, directory=tmp_path, project_name="p")
    tuner.search()
    assert seen == [(2, 0, False, 2), (2, 0, False, 2)]  # no continuation: KerasTuner stops here too
    assert [r["status"] for r in tuner.store.rows()] == ["completed", "completed"]
    assert all(t.status == "completed" for t in oracle.trials.values())
    assert all("tuner/epochs" not in t.hparams for t in oracle.trials.values())
    assert oracle.create_trial("late").status == STOPPED


def test_a_custom_run_trial_reads_keras_tuner_s_hyperband_values(tmp_path):
    """KerasTuner's documented run_trial for its Hyperband oracle: tuner/trial_id names the trial to
    continue, tuner/initial_epoch and tuner/epochs the epochs to train."""
    seen = []

    class Manual(kt.Tuner):
        def run_trial(self, trial, *args, **kwargs):
            hp = trial.hyperparameters
            x = hp.Float("x", 0.0, 1.0)
            past = self.oracle.get_trial(hp["tuner/trial_id"]) if "tuner/trial_id" in hp else None
            seen.append((hp["tuner/initial_epoch"], hp["tuner/epochs"], None if past is None else past.budget))
            return abs(x - 0.3)

    tuner = Manual(oracle=kt.oracles.HyperbandOracle(objective="loss", max_epochs=4, factor=3, seed=0),
                   directory=tmp_path, project_name="p")
    tuner.search()
    assert seen == [(0, 2, None)] * 5 + [(2, 4, 2)] * 2 + [(0, 4, None)] * 3
