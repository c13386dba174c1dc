"""Issue 11: trials in worker processes, several at a time, surviving dead workers and a dead driver.

Through the real CLI on tiny data, its driver in the test process (cli_inprocess) unless the test kills it:
two workers finish a search with no trial lost or duplicated and overlapping trials; a SIGKILLed worker's
trial continues from its checkpoint on a new worker; a SIGKILLed driver takes its workers with it and the
search resumes; every tuner runs with two workers; workers are recycled; the inline executor gives the
same results.

What a worker, the driver or a kill does is the engine's, whatever a trial trains: those tests run a tiny
program (``trial=command``, examples/checkpointing/train.py: numpy, a checkpoint every epoch), as a Keras
trial costs every worker process a TensorFlow start (~10 s of CPU). Keras keeps the runs where Keras is what
is checked: its results the same in a worker as inline, its promotions restored on two workers (asha), the
best model exported from a worker's trial; its resume after a kill is tests/test_hardening.py's.
"""

from __future__ import annotations

import os
import re
import signal
import sqlite3
import sys
import time
from pathlib import Path

import pytest

from archsearch.executors.process import parallel_trials, visible_gpus
from archsearch.core.store import TrialStore
from cli_inprocess import run_cli_inprocess  # the driver in the test process; its workers stay processes
from test_reliability import program, start_cli, wait_for_epoch

TINY = ["data.num_samples=160", "data.image_size=12", "trainer.epochs=2"]


@pytest.fixture
def program_env() -> dict[str, str]:
    """A CLI process's environment for a search of a program: no report at its end (not what is checked)."""
    return {**os.environ, "ARCHSEARCH_REPORT": "false"}


def rows(run: Path) -> list[dict]:
    store = TrialStore(run / "trials.db")
    try:
        assert store.problems() == []
        return store.rows()
    finally:
        store.close()


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:  # a zombie (exited, not yet reaped by its dead parent's reaper) is gone for our purpose
        return Path(f"/proc/{pid}/status").read_text().split("State:")[1].split()[0] != "Z"
    except (OSError, IndexError):
        return True


def worker_pids(run: Path) -> dict[int, int]:
    """trial id -> pid of the worker that trains (or trained) it, from the store's worker column."""
    con = sqlite3.connect(run / "trials.db", timeout=5)
    try:
        found = con.execute("SELECT id, worker FROM trials WHERE worker IS NOT NULL").fetchall()
    finally:
        con.close()
    return {i: int(re.search(r"pid (\d+)", w).group(1)) for i, w in found}


def test_parallel_trials_auto_is_one_per_gpu():
    assert parallel_trials(3) == 3
    assert parallel_trials("auto") == max(1, len(visible_gpus()))
    with pytest.raises(Exception, match="tuner.parallel_trials"):
        parallel_trials(0)


def test_two_workers_finish_a_search_with_overlapping_trials_and_nothing_lost(tmp_path):
    run = tmp_path / "run"
    result = run_cli_inprocess([*program("--epochs=2", "--seconds=0.3"), "tuner.max_trials=4",
                                "tuner.parallel_trials=2"], run)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "Running 2 trials at a time (2 worker processes, 1 CPU thread each)" in result.stdout
    stored = rows(run)
    assert [r["id"] for r in stored] == [0, 1, 2, 3]
    assert all(r["status"] == "completed" and r["epochs_done"] == 2 for r in stored)
    assert len({tuple(sorted(r["hparams"].items())) for r in stored}) == 4  # no configuration twice
    spans = sorted((r["started_at"], r["finished_at"]) for r in stored)
    assert any(later[0] < earlier[1] for earlier, later in zip(spans, spans[1:])), spans  # ran at the same time
    assert len({w for w in worker_pids(run).values()}) >= 2
    assert (run / "best" / "hparams.yaml").exists()  # a Keras trial's model.keras: the asha run below


def test_the_inline_executor_and_worker_processes_give_the_same_search(tmp_path):
    scores = []
    for executor in ("inline", "process"):
        run = tmp_path / executor
        result = run_cli_inprocess([*TINY, "tuner.max_trials=2", f"executor={executor}"], run)
        assert result.returncode == 0, result.stderr[-3000:]
        scores.append([(r["hparams"], r["value"]) for r in rows(run)])
    assert scores[0] == scores[1]


def test_workers_are_recycled_after_max_trials_per_worker(tmp_path):
    run = tmp_path / "run"
    result = run_cli_inprocess([*program("--epochs=1"), "tuner.max_trials=3", "executor.max_trials_per_worker=2"],
                               run)
    assert result.returncode == 0, result.stderr[-3000:]
    pids = worker_pids(run)
    assert pids[0] == pids[1] != pids[2]


def test_a_killed_worker_s_trial_continues_from_its_checkpoint_on_a_new_worker(tmp_path, program_env):
    run = tmp_path / "run"
    proc = start_cli([*program("--epochs=4", "--seconds=0.3"), "tuner.max_trials=2"], run, program_env)
    wait_for_epoch(run / "trials.db", 0, 2, proc)
    victim = worker_pids(run)[0]
    os.kill(victim, signal.SIGKILL)
    out, err = proc.communicate(timeout=600)
    assert proc.returncode == 0, err[-3000:]
    assert re.search(r"Trial 0: worker 0 \(pid \d+\) died \(killed by SIGKILL\); continuing from its last "
                     r"checkpoint on a new worker \(attempt 2\)", out), out
    assert re.search(r"Trial 0: resuming from its checkpoint at epoch [23]\.", out), out
    stored = rows(run)
    assert [(r["status"], r["epochs_done"]) for r in stored] == [("completed", 4), ("completed", 4)]
    assert worker_pids(run)[0] != victim


def test_a_trial_whose_workers_keep_dying_fails_with_the_cause_and_resume_can_retry_it(tmp_path):
    deadly = tmp_path / "deadly.py"
    deadly.write_text(
        "import os, signal, time\n"
        "if 'DEADLY' in os.environ:\n"
        "    os.kill(os.getppid(), signal.SIGKILL)  # its worker dies (and then the program, with its parent)\n"
        "    time.sleep(60)\n"
        "for epoch in (1, 2):\n"
        "    print(f'epoch={epoch} loss={1.0 / epoch}', flush=True)\n")
    run = tmp_path / "run"
    args = ["trial=command", f"trial.command='{sys.executable} {deadly}'", "objective=loss",
            "space={units: {type: int, min: 1, max: 8}}", "tuner.max_trials=1", "executor.max_retries=1",
            "max_consecutive_failed_trials=1"]
    result = run_cli_inprocess(args, run, env={"DEADLY": "1"})
    assert result.returncode == 2, result.stderr[-3000:]
    assert "died (killed by SIGKILL); 2 workers died training it (executor.max_retries=1)" in result.stderr
    assert [(r["status"], r["failure_kind"]) for r in rows(run)] == [("failed", "lost")]
    # The workers no longer die (say, the machine got its memory back): resume runs the lost trial again,
    # under its own id, without adding a trial.
    retried = run_cli_inprocess([f"resume={run}", "retry_failed=[lost]"], run)
    assert retried.returncode == 0, retried.stderr[-3000:]
    assert "Resume: retry_failed (lost): trial 0 runs again from the start." in retried.stdout
    assert [(r["id"], r["status"], r["failure_kind"], r["epochs_done"]) for r in rows(run)] == \
        [(0, "completed", None, 2)]
    # retry_failed was that resume's only
    again = run_cli_inprocess([f"resume={run}"], run)
    assert again.returncode == 0 and "retry_failed" not in again.stdout, again.stderr[-3000:]


def test_a_killed_driver_takes_its_workers_along_and_the_search_resumes(tmp_path, program_env):
    run = tmp_path / "run"
    proc = start_cli([*program("--epochs=4", "--seconds=0.3"), "tuner.parallel_trials=2", "tuner.max_trials=3"], run,
                     program_env)
    wait_for_epoch(run / "trials.db", 0, 1, proc)
    wait_for_epoch(run / "trials.db", 1, 1, proc)
    workers = set(worker_pids(run).values())
    proc.kill()
    proc.wait()
    deadline = time.monotonic() + 300  # a hang guard only
    while any(alive(pid) for pid in workers) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not any(alive(pid) for pid in workers), "workers outlived their driver"
    # Which trials were running depends on timing (on a loaded machine trial 0 may finish before the kill
    # and trial 2 start): the store must show at most the two workers' trials as running, at least one.
    running = [r["id"] for r in rows(run) if r["status"] == "running"]
    assert 1 <= len(running) <= 2 and set(running) <= {0, 1, 2}, running
    resumed = run_cli_inprocess([f"resume={run}"], run)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert resumed.stdout.count("resuming from its checkpoint at epoch") >= 1
    assert [(r["status"], r["epochs_done"]) for r in rows(run)] == [("completed", 4)] * 3


TUNERS_WITH_TWO_WORKERS = {
    "random": ["tuner=random", "tuner.max_trials=3"],
    "grid": ["tuner=grid", "tuner.max_trials=3", "tuner.shuffle=true"],
    "bayesian": ["tuner=bayesian", "tuner.max_trials=4", "tuner.num_initial_points=2"],
    "hyperband": ["tuner=hyperband", "tuner.max_epochs=3", "tuner.factor=3"],
    "bohb": ["tuner=bohb", "tuner.max_epochs=3", "tuner.factor=3"],
    "asha": ["tuner=asha", "tuner.max_epochs=3", "tuner.factor=3", "tuner.max_trials=4"],
    "nsga2": ["tuner=nsga2", "tuner.max_trials=5", "tuner.population_size=2"],
}


# What each tuner does with two workers is the engine's (ids, no configuration twice, each trial's own epochs
# from its parent's budget), whatever a trial trains: a tiny program (trial=command) stands in for Keras, whose
# worker processes cost a TensorFlow start each; asha keeps a Keras run (its promotions restore Keras weights).
COMMAND_TRIAL = [*program(), "trial.budget_arg=--epochs"]


@pytest.mark.slow
@pytest.mark.parametrize("name, trial", [(name, "command") for name in sorted(TUNERS_WITH_TWO_WORKERS)]
                         + [("asha", "keras")])
def test_every_tuner_runs_with_two_workers(tmp_path, name, trial):
    run = tmp_path / "run"
    kind = COMMAND_TRIAL if trial == "command" else TINY
    result = run_cli_inprocess([*kind, *TUNERS_WITH_TWO_WORKERS[name], "tuner.parallel_trials=2"], run)
    assert result.returncode == 0, result.stderr[-3000:]
    stored = rows(run)
    assert stored and all(r["status"] == "completed" for r in stored), [(r["id"], r["status"], r["error"])
                                                                        for r in stored]
    assert [r["id"] for r in stored] == list(range(len(stored)))
    news = [r for r in stored if r["parent"] is None]
    assert len({tuple(sorted(r["hparams"].items())) for r in news}) == len(news)  # no configuration twice
    for r in stored:  # each trained exactly its own epochs, from its parent's budget on
        epochs = [e["epoch"] for e in TrialStore(run / "trials.db").epochs(r["id"])]
        assert epochs == list(range(r["initial_budget"] + 1, r["epochs_done"] + 1)), (r["id"], epochs)
    if trial == "keras":  # the best trial's model, trained in a worker, is exported whole
        assert (run / "best" / "model.keras").exists()


def test_a_builder_that_cannot_reach_a_worker_process_says_how_to_run_inline(tmp_path):
    import keras
    import numpy as np

    import archsearch
    from archsearch.errors import ConfigError

    def closure_builder(hp):  # a local function: worker processes cannot import it
        model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(hp.Int("units", 2, 4)),
                                  keras.layers.Dense(2, activation="softmax")])
        model.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
        return model

    x = np.random.default_rng(0).random((32, 3)).astype("float32")
    y = (x[:, 0] > 0.5).astype("int32")
    tuner = archsearch.RandomSearch(closure_builder, objective="val_accuracy", max_trials=1, directory=tmp_path,
                                    project_name="p", executor="process")
    with pytest.raises(ConfigError, match=r"^executor: the model builder, data or callbacks cannot be sent to a "
                                          r"worker process .*executor=inline"):
        tuner.search(x, y, epochs=1, validation_split=0.25, verbose=0)
    assert tuner.store.count() == 0


def test_executor_settings_are_checked_by_name():
    from archsearch.errors import ConfigError
    from archsearch.executors import create_executor

    with pytest.raises(ConfigError, match="executor.name: unknown executor 'cluster'"):
        create_executor("cluster", runner=None)
    with pytest.raises(ConfigError, match="executor.workers: is not an option of the 'process' executor"):
        create_executor("process", runner=None, options={"workers": 3})
    with pytest.raises(ConfigError, match="tuner.parallel_trials: 2 trials at a time need worker processes"):
        create_executor("inline", runner=None, slots=2)


def test_parallel_trials_are_capped_at_the_trials_that_can_run(tmp_path, monkeypatch, capsys):
    import archsearch
    from archsearch import executors
    from kt_helpers import build_mlp, tiny_data

    asked: list[int] = []

    class Started(Exception):
        pass

    def capture(name, runner, slots=1, options=None):
        asked.append(slots)
        raise Started  # the executor's size is what this test checks: no worker is started

    monkeypatch.setattr(executors, "create_executor", capture)
    tuner = archsearch.RandomSearch(build_mlp, objective="val_loss", max_trials=2, directory=tmp_path,
                                    project_name="p", parallel_trials=64)
    x, y = tiny_data()
    with pytest.raises(Started):
        tuner.search(x, y, validation_split=0.25, epochs=1)
    assert asked == [2]
    lines = capsys.readouterr().out.splitlines()
    assert "Note: parallel_trials=64, but max_trials=2 leaves 2 trials: running at most 2 at a time." in lines
    wide = archsearch.RandomSearch(build_mlp, objective="val_loss", max_trials=8, directory=tmp_path,
                                   project_name="q", parallel_trials=3)
    with pytest.raises(Started):
        wide.search(x, y, validation_split=0.25, epochs=1)
    assert asked == [2, 3]  # enough trials: as many workers as asked
