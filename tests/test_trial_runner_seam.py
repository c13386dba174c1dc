"""The trial runner is a seam: a runner that trains nothing Keras goes through the whole engine.

``tests/numpy_runner.py`` implements :class:`~archsearch.core.trial_runner.TrialRunner` with a numpy
objective; here its trials run on the process executor's two workers (which import neither Keras
nor TensorFlow), a median pruner stops the hopeless ones, a search killed with ``kill -9`` resumes
in a fresh process with nothing lost, and the report lists the trials.  The executors know the
runner only through the protocol: none imports a runner's package.
"""

from __future__ import annotations

import ast
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from archsearch.core.store import TrialStore
from archsearch.core.trial import COMPLETED, PRUNED
from archsearch.core.trial_runner import NO_NEEDS, RunnerNeeds, TrialRunner, needs_of
from tests.conftest import REPO
from tests.numpy_runner import NumpyRunner, expected_loss, modules_of, run_search

EPOCHS = 4
HANG = 120.0  # seconds: only catches a hang, never a slow machine


def rows(folder: Path) -> dict[int, dict]:
    with TrialStore.open_read_only(folder) as store:
        return {r["id"]: r for r in store.rows()}


def epochs(folder: Path) -> dict[int, list[dict]]:
    with TrialStore.open_read_only(folder) as store:
        return store.epochs_by_trial()


def assert_every_epoch_is_the_objective_s(folder: Path) -> None:
    """Each trial's epochs, once each and in order, report exactly the loss of an uninterrupted run."""
    found = rows(folder)
    for trial_id, records in epochs(folder).items():
        numbers = [r["epoch"] for r in records]
        assert numbers == sorted(set(numbers)), (trial_id, numbers)  # no epoch trained twice
        for r in records:
            assert r["loss"] == pytest.approx(expected_loss(trial_id, found[trial_id]["hparams"], r["epoch"]),
                                               abs=1e-12), (trial_id, r)


# ------------------------------------------------------------ the protocol
def test_the_numpy_runner_is_a_trial_runner_that_needs_nothing(tmp_path):
    runner = NumpyRunner(tmp_path)
    assert isinstance(runner, TrialRunner)
    assert needs_of(runner) == RunnerNeeds(gpu=False, worker_setup=None) == NO_NEEDS
    assert needs_of(object()) is NO_NEEDS  # a runner that states no needs needs nothing


def _imports(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    return names


@pytest.mark.parametrize("package, forbidden", [
    ("executors", ("archsearch.training", "archsearch.cli", "archsearch.keras_tuner", "keras", "tensorflow")),
    ("engine", ("archsearch.training", "archsearch.cli", "archsearch.keras_tuner", "keras", "tensorflow")),
    ("core", ("archsearch.training", "archsearch.cli", "archsearch.executors", "archsearch.keras_tuner")),
])
def test_the_engine_knows_the_runner_only_through_the_protocol(package, forbidden):
    # Every import, lazy ones included: a worker reaches Keras only through the runner's own worker_setup.
    for path in sorted((REPO / "archsearch" / package).glob("*.py")):
        bad = sorted(name for name in _imports(path) if name.startswith(forbidden))
        assert not bad, f"archsearch/{package}/{path.name} imports {bad}"


# ------------------------------------------------------------ through the engine
def test_numpy_trials_train_on_two_worker_processes_without_keras_and_the_pruner_stops_the_bad_ones(tmp_path,
                                                                                                    monkeypatch):
    # As the CLI runs workers: quiet backend start-up asked for, CPU threads split between the workers
    # (executor.threads=auto); a Keras runner's worker_setup would import TensorFlow for both.
    monkeypatch.setenv("ARCHSEARCH_QUIET_BACKEND", "1")
    # Seed 0 proposes good, good, bad, bad, bad, good: each bad trial starts after a good one completed
    # (two slots), so the median pruner must stop it at its first judged epoch (warmup 1: epoch 2).
    run_search(tmp_path, max_trials=6, slots=2, epochs=EPOCHS, seed=0)
    found = rows(tmp_path)
    assert sorted(found) == list(range(6))
    assert [found[i]["hparams"]["kind"] for i in range(6)] == ["good", "good", "bad", "bad", "bad", "good"]
    for i in (2, 3, 4):
        assert (found[i]["status"], found[i]["epochs_done"]) == (PRUNED, 2), found[i]
    assert any(r["status"] == COMPLETED and r["epochs_done"] == EPOCHS for r in found.values())
    assert {re.sub(r" \(pid \d+\)", "", r["worker"]) for r in found.values()} == {"worker 0", "worker 1"}
    assert_every_epoch_is_the_objective_s(tmp_path)
    kept = sorted(tmp_path.glob("trials/trial_*/best.weights.h5"))
    assert kept, "the best trials keep their best state"
    for path in kept:  # written in a worker process that never imported a deep-learning library
        assert modules_of(path) == [], path


def _search_process(folder: Path, *args: str) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(REPO), "ARCHSEARCH_QUIET_BACKEND": "1"}
    return subprocess.Popen([sys.executable, "-m", "tests.numpy_runner", str(folder), "--max-trials", "6",
                             "--epochs", str(EPOCHS), *args], cwd=REPO, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def _wait_for(condition, process: subprocess.Popen, poll: float = 0.05) -> None:
    """Poll ``condition`` while the search runs; a bounded number of polls (HANG seconds' worth) only
    catches a hang."""
    for _ in range(int(HANG / poll)):
        if condition():
            return
        assert process.poll() is None, f"the search ended before the kill:\n{process.stdout.read()}"
        time.sleep(poll)
    pytest.fail("the search made no progress")


def test_a_numpy_search_killed_with_kill_9_resumes_in_a_fresh_process_with_nothing_lost_and_reports(tmp_path):
    folder = tmp_path / "run"
    first = _search_process(folder, "--seconds", "1.0")  # an epoch long enough that the kill lands mid-trial on a busy machine

    def one_done_and_one_mid_trial() -> bool:
        if not (folder / "trials.db").exists():
            return False
        try:
            found, trained = rows(folder), epochs(folder)
        except Exception:  # noqa: BLE001 - the store is being created
            return False
        done = [r for r in found.values() if r["status"] in (COMPLETED, PRUNED)]
        # Mid-trial with two epochs (two seconds) still to go: the kill must land before it ends, even on a
        # loaded machine where the parallel trial 1 ends right after trial 0.
        mid = [i for i, r in found.items() if r["status"] == "running" and 0 < len(trained.get(i, ())) <= EPOCHS - 2]
        return bool(done) and bool(mid)

    _wait_for(one_done_and_one_mid_trial, first)
    first.send_signal(signal.SIGKILL)
    first.wait(timeout=HANG)
    before = rows(folder)
    finished_before = {i: r for i, r in before.items() if r["status"] in (COMPLETED, PRUNED)}
    cut = [i for i, r in before.items() if r["status"] == "running" and epochs(folder).get(i)]
    assert finished_before and cut

    second = _search_process(folder)
    out, _ = second.communicate(timeout=HANG)
    assert second.returncode == 0, out
    assert "deep-learning modules in the driver: []" in out

    after = rows(folder)
    assert len(after) == 6 and all(r["status"] in (COMPLETED, PRUNED) for r in after.values()), after
    for i, r in finished_before.items():  # what finished before the kill is kept as it was
        assert {k: after[i][k] for k in ("status", "value", "hparams", "epochs_done")} == \
               {k: r[k] for k in ("status", "value", "hparams", "epochs_done")}
    trained = epochs(folder)
    for i in cut:  # continued from its checkpoint: the epochs before the kill stay, the rest follow them
        numbers = [e["epoch"] for e in trained[i]]
        assert numbers == sorted(set(numbers)) and numbers[0] == 1, trained[i]  # none repeated, none reordered
        assert numbers[-1] <= after[i]["epochs_done"], trained[i]
        # A kill after an epoch's checkpoint and before its report loses that one epoch's row (its weights
        # are kept and training goes on after it: engine/search.py _resume_point); never more than that one.
        assert len(set(range(1, after[i]["epochs_done"] + 1)) - set(numbers)) <= 1, trained[i]
    assert_every_epoch_is_the_objective_s(folder)  # the state came back exactly (w halves from where it was)

    from archsearch.report.html import write_report

    page = write_report(folder, png=False).read_text()
    row = re.compile(r"<tr class='status-(\w+)'><td data-v='[^']*'>(\d+)</td>")
    listed = {int(trial): status for status, trial in row.findall(page)}  # the Trials table, one row each
    assert listed == {i: r["status"] for i, r in after.items()}


# ------------------------------------------------------------ what a runner needs
def test_a_gpu_given_to_a_runner_that_trains_without_one_is_a_config_error(tmp_path):
    from archsearch.errors import ConfigError
    from archsearch.executors import create_executor

    with pytest.raises(ConfigError) as info:
        create_executor("process", NumpyRunner(tmp_path), 2, {"gpus": ["0"]})
    assert info.value.field == "executor.gpus" and "NumpyRunner trains without a GPU" in str(info.value)
    with pytest.raises(ConfigError) as info:
        create_executor("ray", NumpyRunner(tmp_path), 2, {"resources": {"num_cpus": 1, "num_gpus": 1}})
    assert info.value.field == "executor.resources.num_gpus"


def test_workers_of_a_runner_without_gpu_use_see_no_gpu(tmp_path, monkeypatch):
    from archsearch.executors.process import ProcessExecutor

    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "0,1")  # a machine with two GPUs
    executor = ProcessExecutor(NumpyRunner(tmp_path), 2, threads=None)
    assert executor.gpus == []  # one worker per GPU only for a runner that uses them
    assert "GPU" not in executor.describe()


@pytest.mark.parametrize("failing, in_all, expected", [
    ((0, 2, 4), 3, "3 trials failed (max_failed_trials=3)"),  # never two in a row: only the total stops it
    ((0, 2), None, None),                                       # no limit in all: the search runs to its end
])
def test_max_failed_trials_counts_failures_in_all(tmp_path, failing, in_all, expected):
    """The cloud service's maxFailedTrials: a total, beside max_consecutive_failed_trials (in a row)."""
    from search_doubles import FakeExecutor, space

    from archsearch.core.checkpoints import TrialFiles
    from archsearch.core.store import TrialStore
    from archsearch.engine.search import Search, SearchAborted
    from archsearch.oracles import create_oracle

    files = TrialFiles(tmp_path)
    search = Search(create_oracle("random", space(), "val_accuracy", max_trials=6, seed=1),
                    FakeExecutor(files, epochs=1, fail=failing), TrialStore(tmp_path / "trials.db"), files,
                    max_consecutive_failed_trials=2, max_failed_trials=in_all)
    if expected is None:
        search.run()
        assert search.store.count("failed") == len(failing) and search.store.count("completed") == 6 - len(failing)
    else:
        with pytest.raises(SearchAborted, match=re.escape(expected)):
            search.run()
        assert search.store.count("failed") == 3 and search.store.count() == 5
