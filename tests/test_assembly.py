"""One assembly builds a search from typed settings, whatever trains its trials (archsearch/engine/assembly.py).

The CLI, ``mode=retrain`` and the Python ``Tuner`` build their search through it; here a runner that trains
nothing Keras goes through it, so the assembly's own behaviour (run folder, store, fingerprint, resume,
executor, driver) is checked in milliseconds.
"""

from __future__ import annotations

import contextlib
import io

import pytest

from archsearch.core.checkpoints import TrialFiles
from archsearch.core.console import ConsoleEvents
from archsearch.core.store import TrialStore
from archsearch.core.trial import COMPLETED, TrialOutcome
from archsearch.engine.assembly import Assembly, create_search_oracle
from archsearch.engine.settings import ExecutorSettings, SearchSettings, TunerSettings
from archsearch.errors import ConfigRuntimeError
from archsearch.space.hyperparameters import HyperParameters


class CountingRunner:
    """A trial runner without Keras: the objective is a function of the values and the epoch."""

    def __init__(self, folder) -> None:
        self.files = TrialFiles(folder)

    def run(self, trial, hp, reporter=None, resume_checkpoint=None, initial_epoch=0, history=None):
        value = 0.0
        for epoch in range(initial_epoch + 1, 3):
            value = hp.get("x") * epoch / 2
            reporter.on_epoch(trial, epoch, {"score": value}, value)
        return TrialOutcome(status=COMPLETED, value=value, metrics={"score": value}, epochs_done=2)


def space() -> HyperParameters:
    hp = HyperParameters()
    hp.Float("x", 0.0, 1.0)
    return hp


def search_once(folder, tuner: dict, lines: list[str], overwrite: bool = False) -> Assembly:
    assembly = Assembly(folder, overwrite)
    try:
        oracle = create_search_oracle(TunerSettings.from_config(tuner), space(), "score")
        assembly.open(oracle, config={"tuner": tuner})
        said = assembly.restore()
        if said:
            lines.append(said)
        shown = io.StringIO()
        with contextlib.redirect_stdout(shown):  # the console channel's lines, as the user would see them
            assembly.search(CountingRunner(folder), ExecutorSettings(), 1, SearchSettings(), [ConsoleEvents()]).run()
        lines += shown.getvalue().splitlines()
    finally:
        assembly.lock.release()
    return assembly


def test_the_assembly_runs_a_search_whatever_trains_its_trials(tmp_path):
    lines: list[str] = []
    tuner = {"name": "random", "max_trials": 3, "seed": 0}
    search_once(tmp_path, tuner, lines)
    with TrialStore.open_read_only(tmp_path / "trials.db") as store:
        assert [t.status for t in store.trials()] == [COMPLETED] * 3
        assert store.get_meta("config") == {"tuner": tuner}
    assert sum(line.startswith("Trial ") for line in lines) == 3

    # The same search again: the store is replayed, and the oracle has nothing left to propose.
    again: list[str] = []
    search_once(tmp_path, tuner, again)
    assert again[0] == f"Resuming the search in {tmp_path}: 3 trials already done of max_trials=3."
    assert not any(line.startswith("Trial ") for line in again)


def test_a_different_search_in_the_folder_is_refused_unless_overwritten(tmp_path):
    search_once(tmp_path, {"name": "random", "max_trials": 2, "seed": 0}, [])
    with pytest.raises(ConfigRuntimeError, match=r"holds a different search \(changed: oracle\)"):
        search_once(tmp_path, {"name": "grid", "max_trials": 2}, [])
    search_once(tmp_path, {"name": "grid", "max_trials": 2}, [], overwrite=True)
    with TrialStore.open_read_only(tmp_path / "trials.db") as store:
        assert store.get_meta("fingerprint")["oracle"] == "grid" and store.count() == 2


def test_parallel_slots_are_capped_at_the_trials_left(tmp_path):
    assembly = Assembly(tmp_path)
    try:
        assembly.open(create_search_oracle(TunerSettings("random", {"max_trials": 2}), space(), "score"))
        assert assembly.slots_for_the_trials_left(1) == (1, None)
        slots, note = assembly.slots_for_the_trials_left(8)
        assert slots == 2 and note == ("Note: parallel_trials=8, but max_trials=2 leaves 2 trials: "
                                       "running at most 2 at a time.")
    finally:
        assembly.lock.release()


def test_an_objectives_log_scale_is_part_of_the_search_and_linear_keeps_the_stored_form():
    """A resume with another scale is a different search (refused by ``changed: objective``); the default,
    linear, fingerprints as stores before scales did, so they resume as they are."""
    from types import SimpleNamespace

    from archsearch.core.objective import ParetoObjective
    from archsearch.engine.assembly import fingerprint

    def printed(*objectives):
        oracle = SimpleNamespace(name="random", objective=ParetoObjective.of(list(objectives)),
                                 hyperparameters=SimpleNamespace(get_config=lambda: {}))
        return fingerprint(oracle)["objective"]

    assert printed("val_accuracy:max", "params:min") == ["pareto", "max", ["val_accuracy", "max"], ["params", "min"]]
    assert printed("val_accuracy:max", "params:min:log") == [
        "pareto", "max", ["val_accuracy", "max"], ["params", "min", "log"]]
