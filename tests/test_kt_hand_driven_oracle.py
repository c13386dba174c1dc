"""KerasTuner's hand-driven oracle protocol and its extension points (issue 12, item 7).

Written from KerasTuner's documented behaviour: a custom oracle overrides ``populate_space`` (and
maybe ``score_trial``); code drives one with create_trial / update_trial / end_trial; INVALID trials
run again under their id, FAILED ones never; too many failures in a row stop the search.
"""

from __future__ import annotations

import math
import threading
import time

import pytest

import archsearch as kt
from archsearch.oracles.base import Oracle, synchronized
from archsearch.core.trial import TrialStatus


class CountingOracle(Oracle):
    """A KerasTuner-style custom oracle: values from populate_space, nothing else."""

    def populate_space(self, trial_id):
        return {"values": {"n": int(trial_id) * 10}, "status": TrialStatus.RUNNING}


def test_populate_space_override_chooses_the_values_even_for_undeclared_names():
    oracle = CountingOracle(objective="loss", max_trials=3)
    trials = [oracle.create_trial(f"t{i}") for i in range(3)]
    assert [t.hparams for t in trials] == [{"n": 0}, {"n": 10}, {"n": 20}]
    assert oracle.create_trial("t9").status == "stopped"  # max_trials reached
    assert oracle.start_order == [0, 1, 2] and set(oracle.ongoing_trials) == {"t0", "t1", "t2"}


def test_populate_space_stopped_ends_the_search_and_idle_waits():
    class Once(Oracle):
        def populate_space(self, trial_id):
            if trial_id == "0":
                return {"values": {"a": 1}, "status": "RUNNING"}
            return {"status": "STOPPED" if not self.running else "IDLE"}

    oracle = Once(objective="loss")
    first = oracle.create_trial("a")
    assert oracle.create_trial("b").status == "idle"
    oracle.update_trial(first.trial_id, {"loss": 1.0})
    oracle.end_trial(first)
    assert oracle.create_trial("b").status == "stopped" and oracle.finished


def test_the_same_tuner_id_gets_its_ongoing_trial_back():
    oracle = CountingOracle(objective="loss", max_trials=5)
    first = oracle.create_trial("a")
    assert oracle.create_trial("a") is first
    assert oracle.create_trial("b").trial_id != first.trial_id


def test_score_trial_override_sets_the_score():
    class Doubled(CountingOracle):
        def score_trial(self, trial):
            trial.score = 2 * trial.metrics["loss"]

    oracle = Doubled(objective="loss", max_trials=2)
    trial = oracle.create_trial("a")
    oracle.update_trial(trial.trial_id, {"loss": 0.25})
    assert oracle.end_trial(trial).score == 0.5
    assert oracle.get_best_trials()[0].score == 0.5


def test_update_trial_without_the_objective_is_refused():
    oracle = CountingOracle(objective="val_loss", max_trials=2)
    trial = oracle.create_trial("a")
    with pytest.raises(ValueError, match="Objective value missing.*val_loss"):
        oracle.update_trial(trial.trial_id, {"loss": 0.5})
    multi = CountingOracle(objective=["val_loss", "mse"], max_trials=2)
    trial = multi.create_trial("a")
    multi.update_trial(trial.trial_id, {"val_loss": 0.5, "mse": 0.1})


def test_an_invalid_trial_runs_again_under_its_id_and_a_failed_one_never():
    oracle = CountingOracle(objective="loss", max_trials=5, max_retries_per_trial=1)
    trial = oracle.create_trial("a")
    trial.status = TrialStatus.INVALID
    trial.message = "raised once"
    ended = oracle.end_trial(trial)
    assert ended.status == "INVALID" and ended.error == "raised once"
    assert not oracle.finished
    again = oracle.create_trial("b")
    assert again.trial_id == trial.trial_id and again.status == "running"
    again.status = TrialStatus.INVALID
    assert oracle.end_trial(again).status == "failed"  # no retries left: it failed for good
    fresh = oracle.create_trial("a")
    assert fresh.trial_id != trial.trial_id
    fresh.status = TrialStatus.FAILED
    oracle.end_trial(fresh)
    assert oracle.create_trial("a").trial_id not in (trial.trial_id, fresh.trial_id)


def test_a_completed_trial_with_a_nan_score_is_invalid():
    oracle = CountingOracle(objective="loss", max_trials=3, max_retries_per_trial=1)
    trial = oracle.create_trial("a")
    oracle.update_trial(trial.trial_id, {"loss": math.nan})
    trial.status = TrialStatus.COMPLETED
    oracle.end_trial(trial)
    assert oracle.trials[trial.trial_id].status == TrialStatus.INVALID
    assert oracle.create_trial("a").trial_id == trial.trial_id  # its retry


def test_too_many_failures_in_a_row_stop_the_search_but_retries_count_once():
    oracle = CountingOracle(objective="loss", max_trials=20, max_retries_per_trial=2,
                            max_consecutive_failed_trials=3)
    for _ in range(6):  # two trials, each run three times
        trial = oracle.create_trial("a")
        trial.status = TrialStatus.INVALID
        oracle.end_trial(trial)
    assert [t.status for t in oracle.trials.values()] == ["failed", "failed"]
    with pytest.raises(RuntimeError, match="(?s)Number of consecutive failures exceeded the limit of 3.*custom"):
        for _ in range(3):
            trial = oracle.create_trial("a")
            trial.status = TrialStatus.INVALID
            trial.message = "custom"
            oracle.end_trial(trial)


def test_the_old_end_trial_signature_with_a_status():
    oracle = CountingOracle(objective="loss", max_trials=2)
    trial = oracle.create_trial("a")
    oracle.update_trial(trial.trial_id, {"loss": 1.0})
    assert oracle.end_trial(trial.trial_id, "COMPLETE").status == "completed"


def test_a_tune_new_entries_false_oracle_needs_hyperparameters():
    with pytest.raises(ValueError, match="tune_new_entries=False"):
        CountingOracle(objective="loss", tune_new_entries=False)
    with pytest.raises(ValueError, match="allow_new_entries=False"):
        CountingOracle(objective="loss", allow_new_entries=False)


def test_synchronized_serialises_one_oracle_and_is_reentrant():
    class Slow(CountingOracle):
        def __init__(self, **kwargs):
            super().__init__(**kwargs)
            self.log = []

        @synchronized
        def create_trial(self, tuner_id):
            self.log.append(tuner_id)
            time.sleep(0.05)
            self.log.append(tuner_id)
            return super().create_trial(tuner_id)  # itself synchronized: must not deadlock

    oracle = Slow(objective="loss", max_trials=10)
    threads = [threading.Thread(target=oracle.create_trial, args=(str(i),)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=600)  # a hang guard only
    assert all(oracle.log[2 * i] == oracle.log[2 * i + 1] for i in range(4))
    assert len({t.trial_id for t in oracle.trials.values()}) == 4
    assert kt.synchronized is synchronized


def test_a_project_folder_keeps_the_trials_and_reload_continues(tmp_path):
    def make():
        oracle = CountingOracle(objective="loss", max_trials=5, max_retries_per_trial=1)
        oracle._set_project_dir(tmp_path, "p")
        return oracle

    oracle = make()
    for loss in (0.3, 0.1):
        trial = oracle.create_trial("a")
        oracle.update_trial(trial.trial_id, {"loss": loss}, step=1)
        oracle.end_trial(trial)
    running = oracle.create_trial("a")
    assert (tmp_path / "p" / "trials.db").exists()

    again = make()
    again.reload()
    assert [t.status for t in again.trials.values()][:2] == ["completed", "completed"]
    assert again.get_best_trials()[0].score == 0.1 and again.end_order == [0, 1]
    resumed = again.create_trial("b")
    assert resumed.trial_id == running.trial_id  # the trial that was running runs again
    again.update_trial(resumed.trial_id, {"loss": 0.05})
    again.end_trial(resumed)
    assert again.get_trial(running.trial_id).status == "completed"
    assert again.create_trial("b").hparams == {"n": 30}

    with pytest.raises(RuntimeError, match="already holds trials"):
        again.reload()
    with pytest.raises(RuntimeError, match="needs a project folder"):
        CountingOracle(objective="loss").reload()


def test_a_tuner_refuses_an_oracle_whose_hand_driving_overrides_it_would_never_call(tmp_path):
    from kt_helpers import build_mlp

    class Logging(CountingOracle):
        def end_trial(self, trial, status=None, message=None):
            return super().end_trial(trial, status, message)

    with pytest.raises(kt.ConfigError, match="overrides end_trial.*populate_space / score_trial"):
        kt.Tuner(hypermodel=build_mlp, oracle=Logging(objective="loss", max_trials=1), directory=tmp_path)


def test_a_tuner_searches_with_a_populate_space_oracle(tmp_path):
    from kt_helpers import tiny_data

    class Units(Oracle):
        def populate_space(self, trial_id):
            if len(self.trials) >= 2:
                return {"status": "STOPPED"}
            return {"values": {"units": 4 + 4 * int(trial_id)}, "status": "RUNNING"}

    seen = []

    def build(hp):
        import keras

        seen.append(hp.Int("units", 2, 16))
        model = keras.Sequential([keras.Input((6,)), keras.layers.Dense(seen[-1]), keras.layers.Dense(2)])
        model.compile("adam", keras.losses.SparseCategoricalCrossentropy(from_logits=True), metrics=["accuracy"])
        return model

    tuner = kt.Tuner(hypermodel=build, oracle=Units(objective="val_accuracy"), directory=tmp_path,
                     project_name="p")
    x, y = tiny_data()
    tuner.search(x, y, epochs=1, validation_split=0.25, verbose=0)
    trials = list(tuner.oracle.trials.values())
    assert sorted(t.hparams["units"] for t in trials) == [4, 8] and all(t.status == "completed" for t in trials)
    assert 4 in seen and 8 in seen


def test_an_update_trial_override_stops_a_tuner_s_trial_early(tmp_path):
    from kt_helpers import build_mlp, tiny_data

    steps = []

    class StopAfterOne(kt.oracles.RandomSearchOracle):
        def update_trial(self, trial_id, metrics, step=0):
            super().update_trial(trial_id, metrics, step)
            steps.append(step)
            self.trials[trial_id].status = "STOPPED"
            return "STOPPED"

    oracle = StopAfterOne(objective="val_loss", max_trials=2, seed=0)
    tuner = kt.Tuner(hypermodel=build_mlp, oracle=oracle, directory=tmp_path, project_name="p")
    x, y = tiny_data()
    tuner.search(x, y, epochs=3, validation_split=0.25, verbose=0)
    assert steps == [1, 1]
    for trial in oracle.trials.values():
        assert sorted(trial.intermediate) == [1] and trial.status == "pruned" and trial.score is not None


def test_start_and_end_order_are_kept_for_a_tuner_s_search_too():
    oracle = kt.oracles.RandomSearchOracle(objective="loss", max_trials=3, seed=0,
                                           hyperparameters=kt.HyperParameters.from_config({"x": [1, 2, 3, 4]}))
    first, second = oracle.ask(), oracle.ask()
    assert oracle.start_order == [first.id, second.id] and oracle.end_order == []
    oracle.tell(second.id, 1.0)
    oracle.tell(first.id, status="failed", error="boom")
    assert oracle.end_order == [second.id, first.id]


def test_a_tuner_given_something_that_is_not_an_oracle_says_so(tmp_path):
    from kt_helpers import build_mlp

    with pytest.raises(kt.ConfigError, match="oracle: is 'invalid', not an Oracle"):
        kt.Tuner(hypermodel=build_mlp, oracle="invalid", directory=tmp_path)


def test_a_populate_space_override_of_a_built_in_oracle_changes_what_its_algorithm_drew():
    """KerasTuner's pattern: subclass RandomSearchOracle, call super().populate_space, edit the values.
    The override must be used (it was silently skipped once) and the algorithm's draw must reach it."""
    seen = []

    class Pinned(kt.oracles.RandomSearchOracle):
        def populate_space(self, trial_id):
            result = super().populate_space(trial_id)
            seen.append(dict(result["values"]))
            result["values"]["layers"] = 2
            return result

    space = kt.HyperParameters()
    space.Int("layers", 0, 2)
    space.Float("lr", 1e-4, 1e-1, sampling="log")
    oracle = Pinned(objective="loss", max_trials=4, hyperparameters=space, seed=3)
    plain = kt.oracles.RandomSearchOracle(objective="loss", max_trials=4, hyperparameters=space.copy(), seed=3)
    for _ in range(4):
        trial, reference = oracle.ask(), plain.ask()
        assert trial.hparams["layers"] == 2
        assert trial.hparams["lr"] == reference.hparams["lr"]  # the rest is the algorithm's own draw
        oracle.tell(trial.id, 1.0)
        plain.tell(reference.id, 1.0)
    assert len(seen) == 4 and seen[0]["lr"] == oracle.trials[0].hparams["lr"]


def test_a_populate_space_override_of_hyperband_keeps_its_budgets():
    class Tweaked(kt.oracles.HyperbandOracle):
        def populate_space(self, trial_id):
            result = super().populate_space(trial_id)
            if "values" in result:
                result["values"]["x"] = 0.5
            return result

    space = kt.HyperParameters()
    space.Float("x", 0.0, 1.0)
    tweaked = Tweaked(objective="loss", max_epochs=9, factor=3, hyperparameters=space, seed=0)
    plain = kt.oracles.HyperbandOracle(objective="loss", max_epochs=9, factor=3, hyperparameters=space.copy(), seed=0)
    budgets, plain_budgets = [], []
    while not plain.finished:
        a, b = tweaked.ask(), plain.ask()
        budgets.append((a.budget, a.resume_from))
        plain_budgets.append((b.budget, b.resume_from))
        assert a.hparams["x"] == 0.5
        tweaked.tell(a.id, float(a.id))
        plain.tell(b.id, float(b.id))
    assert budgets == plain_budgets and len(set(b for b, _ in budgets)) == 3


class Remembering(CountingOracle):
    """KerasTuner's get_state/set_state extension point: ``notes`` are not rebuilt by replaying trials."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.notes = []
        self.restored = None

    def get_state(self):
        state = super().get_state()
        state["notes"] = list(self.notes)
        return state

    def set_state(self, state):
        super().set_state(state)
        self.notes = list(state["notes"])
        self.restored = state


def test_a_get_state_override_is_saved_with_each_trial_and_set_state_gets_it_back_on_reload(tmp_path):
    oracle = Remembering(objective="loss", max_trials=5)
    oracle._set_project_dir(tmp_path, "p")
    for loss in (0.3, 0.1):
        trial = oracle.create_trial("a")
        oracle.notes.append(f"saw {trial.trial_id}")
        oracle.update_trial(trial.trial_id, {"loss": loss})
        oracle.end_trial(trial)
    oracle.notes.append("after the last trial")  # never saved: no trial ended since

    again = Remembering(objective="loss", max_trials=5)
    again._set_project_dir(tmp_path, "p")
    again.reload()
    assert again.notes == ["saw 0", "saw 1"]
    assert again.restored["end_order"] == [0, 1] and again.restored["seed"] == 0


def test_a_state_that_is_not_json_is_refused_before_it_is_lost(tmp_path):
    import datetime

    class Dated(CountingOracle):
        def get_state(self):
            return {**super().get_state(), "started": datetime.datetime(2026, 1, 1)}

    oracle = Dated(objective="loss", max_trials=2)
    oracle._set_project_dir(tmp_path, "p")
    trial = oracle.create_trial("a")
    oracle.update_trial(trial.trial_id, {"loss": 0.3})
    with pytest.raises(kt.errors.FatalTypeError, match=r"Dated.get_state\(\) must return JSON values.*isoformat"):
        oracle.end_trial(trial)
    again = CountingOracle(objective="loss", max_trials=2)
    again._set_project_dir(tmp_path, "p")
    again.reload()
    assert again.get_trial(trial.trial_id).status == "completed"  # the trial's end was kept

    class Scored(kt.BaseTuner):
        def run_trial(self, trial, *args, **kwargs):
            return float(trial.hyperparameters["n"])

    tuner = Scored(oracle=Dated(objective="loss", max_trials=2), directory=tmp_path, project_name="t")
    with pytest.raises(kt.errors.FatalTypeError, match="must return JSON values"):
        tuner.search()
    assert tuner.oracle.trials == {}  # refused before the first trial


def test_a_tuner_s_resumed_search_gives_set_state_the_saved_state(tmp_path):
    class Scored(kt.BaseTuner):
        def run_trial(self, trial, *args, **kwargs):
            self.oracle.notes.append(f"ran {trial.trial_id}")
            return float(trial.hyperparameters["n"])

    first = Scored(oracle=Remembering(objective="loss", max_trials=2), directory=tmp_path, project_name="p")
    first.search()
    assert first.oracle.notes == ["ran 0", "ran 1"]
    again = Scored(oracle=Remembering(objective="loss", max_trials=3), directory=tmp_path, project_name="p")
    assert again.oracle.notes == ["ran 0", "ran 1"]  # from the store, not from replaying trials
    again.search()
    assert again.oracle.notes == ["ran 0", "ran 1", "ran 2"] and len(again.oracle.trials) == 3


def test_statuses_equal_keras_tuner_s_names_wherever_a_user_reads_them(tmp_path):
    """Trial.status, the oracle's answers and TrialStatus compare equal to KerasTuner's strings, while
    trials.db keeps archsearch's lower-case text (issue 24).  archsearch-only statuses take KerasTuner's
    nearest meaning: pruned is STOPPED (stopped early by the oracle), interrupted INVALID (runs again)."""
    import sqlite3

    from archsearch.core.trial import KERAS_TUNER_NAMES, Status

    assert (TrialStatus.RUNNING, TrialStatus.IDLE, TrialStatus.INVALID, TrialStatus.STOPPED, TrialStatus.COMPLETED,
            TrialStatus.FAILED) == ("RUNNING", "IDLE", "INVALID", "STOPPED", "COMPLETED", "FAILED")
    oracle = CountingOracle(objective="loss", max_trials=4, max_retries_per_trial=1)
    oracle._set_project_dir(tmp_path, "p")
    trial = oracle.create_trial("a")
    assert trial.status == "RUNNING" and trial.status == TrialStatus.RUNNING and trial.status != "COMPLETED"
    assert oracle.update_trial(trial.trial_id, {"loss": 0.5}, step=1) == "RUNNING"
    oracle.end_trial(trial)
    best = oracle.get_best_trials(1)[0]
    assert best.status == "COMPLETED" and best.status == TrialStatus.COMPLETED and best.status in ("COMPLETED",)
    assert [t.status for t in oracle.trials.values()] == ["COMPLETED"]

    retried = oracle.create_trial("a")
    retried.status = TrialStatus.INVALID
    assert oracle.end_trial(retried).status == "INVALID" and retried.status != "FAILED"  # runs again
    again = oracle.create_trial("a")
    again.status = "FAILED"
    assert oracle.end_trial(again).status == TrialStatus.FAILED and again.status != "INVALID"

    assert Status("pruned") == "STOPPED" and Status("interrupted") == "INVALID"
    assert Status("pruned") != "stopped" and Status("pruned") != Status("stopped")  # archsearch's own: the text
    assert {Status(s).keras_tuner for s in KERAS_TUNER_NAMES} == set(vars(TrialStatus)) - {
        n for n in vars(TrialStatus) if n.startswith("_")}
    assert {Status("completed"): 1}["completed"] == 1  # hashed as the stored text

    with sqlite3.connect(tmp_path / "p" / "trials.db") as db:
        stored = {row[0] for row in db.execute("SELECT status FROM trials")}
    assert stored == {"completed", "failed"}
    assert all(type(value) is str for value in stored)

    over = CountingOracle(objective="loss", max_trials=1)
    only = over.create_trial("a")
    over.update_trial(only.trial_id, {"loss": 0.1})
    over.end_trial(only, "COMPLETED")
    assert over.create_trial("a").status == TrialStatus.STOPPED  # the search is over


def test_save_keeps_the_state_now_in_the_store_and_reload_gives_it_back(tmp_path):
    """KerasTuner's ``oracle.save()`` (missing, issue 24): the state a ``get_state`` override adds is kept
    when save() is called, not only when a trial ends, in trials.db (no second record, no oracle.json)."""
    oracle = Remembering(objective="loss", max_trials=5, max_retries_per_trial=1)
    oracle._set_project_dir(tmp_path, "p")
    trial = oracle.create_trial("a")
    oracle.update_trial(trial.trial_id, {"loss": 0.3})
    oracle.end_trial(trial)
    oracle.notes.append("after the last trial")
    oracle.save()
    assert not (tmp_path / "p" / "oracle.json").exists()

    again = Remembering(objective="loss", max_trials=5)
    again._set_project_dir(tmp_path, "p")
    again.reload()
    assert again.notes == ["after the last trial"]

    with pytest.raises(RuntimeError, match=r"save\(\) needs a project folder"):
        Remembering(objective="loss").save()


def test_a_tuner_s_save_keeps_the_oracle_s_state_for_the_next_tuner_on_the_folder(tmp_path):
    class Scored(kt.BaseTuner):
        def run_trial(self, trial, *args, **kwargs):
            return float(trial.hyperparameters["n"])

    first = Scored(oracle=Remembering(objective="loss", max_trials=1), directory=tmp_path, project_name="p")
    first.search()
    first.oracle.notes.append("noted after the search")
    first.oracle.save()
    again = Scored(oracle=Remembering(objective="loss", max_trials=2), directory=tmp_path, project_name="p")
    assert again.oracle.notes == ["noted after the search"]
    again.oracle.notes.append("and saved by the tuner")
    again.save()
    third = Scored(oracle=Remembering(objective="loss", max_trials=2), directory=tmp_path, project_name="p")
    assert third.oracle.notes == ["noted after the search", "and saved by the tuner"]
