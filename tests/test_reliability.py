"""Issue 6: interrupts, crashes, bad input and resumed searches lose nothing.

* restore of every tuner type after a kill or Ctrl-C reproduces the uninterrupted search (no Keras);
* a store-only search killed with SIGKILL at random points stays consistent and resumes exactly;
* the real CLI killed with SIGKILL mid-trial resumes the trial from its checkpoint, epochs never repeated;
* SIGINT/SIGTERM stop cleanly (exit 130, trial marked interrupted, summary and export complete);
* resume with changed settings: safe ones noted, others refused by name;
* every kind of bad input is one clear error before the first trial;
* failures inside trials (builder, NaN, OOM) are recorded and the search goes on, until too many in a row.
"""

from __future__ import annotations

import math
import os
import random
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest
import yaml

from archsearch import HyperParameters
from archsearch.errors import ArchsearchError, ConfigError
from archsearch.space.values import values_key
from archsearch.oracles import create_oracle
from archsearch.oracles.base import FAILED, INTERRUPTED
from archsearch.core.store import TrialStore

from cli_inprocess import run_cli_inprocess
from conftest import REPO

# --------------------------------------------------------------------------- restore of every tuner type

SPACE = {
    "x": {"type": "float", "min": 0.0, "max": 1.0},
    "units": {"type": "int", "min": 8, "max": 64, "step": 8},
    "act": {"type": "choice", "values": ["relu", "tanh"]},
}

TUNERS = {
    "random": dict(seed=4, max_trials=9),
    "grid": dict(seed=4, max_trials=9, shuffle=True, float_points=3),
    "hyperband": dict(seed=4, max_epochs=9, factor=3),
    "bayesian": dict(seed=4, max_trials=8, num_initial_points=3),
    "bohb": dict(seed=4, max_epochs=9, factor=3, min_points_in_model=2, random_fraction=0.2),
    "asha": dict(seed=4, max_epochs=9, factor=3, max_trials=12),
    "asha-epoch-budget": dict(seed=4, max_epochs=9, factor=3, max_epochs_total=40),
}


def curve(hparams: dict, epoch: int) -> float:
    """A deterministic learning curve to maximise: every trial's result depends only on its values and budget."""
    final = hparams["x"] + hparams["units"] / 640 + (0.05 if hparams["act"] == "relu" else 0.0)
    return final * (1 - 0.5 ** epoch)


def budget_of(trial) -> int:
    return trial.budget if trial.budget is not None else 3


def drive(oracle, store: TrialStore | None = None, stop_after: int | None = None) -> None:
    """The search loop without Keras: a running (restored) trial first, then new ones, one at a time."""
    while True:
        running = oracle.running
        if running:
            trial = running[0]
        elif oracle.finished or (stop_after is not None and len(oracle.trials) >= stop_after):
            return
        else:
            trial = oracle.ask()
            if trial is None:
                return
        if store is not None and store.trial(trial.id) is None:
            store.create_trial(trial)
        for epoch in range(trial.initial_budget + 1, budget_of(trial) + 1):
            oracle.report(trial.id, epoch, curve(trial.hparams, epoch))
        if trial.id % 5 == 3:  # some trials fail, as real ones do
            oracle.tell(trial.id, None, status=FAILED, error="boom")
        else:
            oracle.tell(trial.id, {"score": curve(trial.hparams, budget_of(trial))})
        if store is not None:
            store.finish_trial(trial)


def trajectory(oracle) -> list[tuple]:
    return [(t.id, values_key(t.hparams), t.budget, t.initial_budget, t.resume_from, t.status, t.value)
            for t in oracle.trials.values()]


@pytest.mark.parametrize("how", ["killed", "interrupted"])
@pytest.mark.parametrize("name", sorted(TUNERS))
def test_every_tuner_resumes_to_the_uninterrupted_search(tmp_path, name, how):
    make = lambda: create_oracle(name.split("-")[0], HyperParameters.from_config(SPACE), "score", **TUNERS[name])  # noqa: E731
    whole = make()
    drive(whole)
    assert len(whole.trials) >= 8

    store = TrialStore(tmp_path / "trials.db")
    first = make()
    drive(first, store, stop_after=5)
    victim = first.ask()  # the trial that was training when the process stopped
    store.create_trial(victim)
    store.record_epoch(victim.id, victim.initial_budget + 1, {"score": 0.1}, 0.1)
    if how == "interrupted":  # Ctrl-C: the search marks it; SIGKILL leaves it "running"
        first.tell(victim.id, None, status=INTERRUPTED, error="interrupted by the user")
        store.finish_trial(first.trials[victim.id])
    assert store.problems() == []

    resumed = make()
    resumed.restore(TrialStore(tmp_path / "trials.db").events())
    assert [t.id for t in resumed.running] == [victim.id]
    again = resumed.trials[victim.id]
    assert (again.hparams, again.budget, again.resume_from) == (victim.hparams, victim.budget, victim.resume_from)
    assert trajectory(resumed)[:victim.id] == trajectory(first)[:victim.id]
    if hasattr(first, "checkpoints_to_keep"):
        assert resumed.checkpoints_to_keep() == first.checkpoints_to_keep()

    drive(resumed, store)
    assert trajectory(resumed) == trajectory(whole)  # same brackets, GP/TPE models and random stream
    assert store.count() == len(whole.trials)
    if whole.max_trials:  # max_trials counts the trials done before the stop
        assert store.count() == whole.max_trials


# --------------------------------------------------------------------------- SIGKILL at random points (store only)

DRIVER = textwrap.dedent('''
    """A search without Keras (Hyperband, store, resume of a running trial), slow enough to be killed."""
    import sys, time
    sys.path.insert(0, sys.argv[2])
    from test_reliability import SPACE, curve, drive
    from archsearch import HyperParameters
    from archsearch.oracles import create_oracle
    from archsearch.core.store import TrialStore

    class SlowCurves:
        def __init__(self, store):
            self.store = store
        def record(self, trial, epoch):
            time.sleep(0.004)
            value = curve(trial.hparams, epoch)
            self.store.record_epoch(trial.id, epoch, {"score": value}, value)

    store = TrialStore(sys.argv[1])
    oracle = create_oracle("hyperband", HyperParameters.from_config(SPACE), "score", max_epochs=9, factor=3,
                           hyperband_iterations=2, seed=11)
    oracle.restore(store.events())
    slow = SlowCurves(store)
    original_report = oracle.report
    def report(trial_id, epoch, value):
        trial = oracle.trials[trial_id]
        if not any(e["epoch"] == epoch for e in store.epochs(trial_id)):  # a resumed trial skips done epochs
            slow.record(trial, epoch)
        return original_report(trial_id, epoch, value)
    oracle.report = report
    drive(oracle, store)
    print("finished", len(oracle.trials))
''')


def test_sigkill_at_random_points_leaves_a_consistent_store_that_resumes_exactly(tmp_path):
    driver = tmp_path / "driver.py"
    driver.write_text(DRIVER)
    db = tmp_path / "trials.db"
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    command = [sys.executable, str(driver), str(db), str(Path(__file__).parent)]

    whole = create_oracle("hyperband", HyperParameters.from_config(SPACE), "score", max_epochs=9, factor=3,
                          hyperband_iterations=2, seed=11)
    drive(whole)
    planned_epochs = sum(budget_of(t) - t.initial_budget for t in whole.trials.values())

    rng = random.Random(6)
    targets = sorted(rng.sample(range(5, planned_epochs - 5), 4))
    kills = 0
    for target in targets:
        proc = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        deadline = time.monotonic() + 600  # a hang guard only
        while proc.poll() is None and time.monotonic() < deadline:
            if epochs_recorded(db) >= target:
                time.sleep(rng.uniform(0.0, 0.02))  # anywhere: mid-transaction, between trials, ...
                proc.kill()
                kills += 1
                break
            time.sleep(0.002)
        proc.wait(timeout=600)
        store = TrialStore(db)
        assert store.problems() == []
        assert store.count("running") <= 1
        store.close()
    assert kills >= 3

    finish = subprocess.run(command, env=env, capture_output=True, text=True, timeout=600)
    assert finish.returncode == 0, finish.stderr[-2000:]
    store = TrialStore(db)
    assert store.problems() == []
    stored = [(t.id, values_key(t.hparams), t.budget, t.initial_budget, t.resume_from, t.status, t.value)
              for t in store.trials()]
    assert stored == trajectory(whole)
    rows = sqlite3.connect(db).execute("SELECT trial_id, epoch FROM epochs").fetchall()
    assert len(rows) == planned_epochs  # every planned epoch recorded once, none lost


def epochs_recorded(db: Path) -> int:
    if not db.exists():
        return 0
    try:
        con = sqlite3.connect(db, timeout=5)
        try:
            return con.execute("SELECT COUNT(*) FROM epochs").fetchone()[0]
        finally:
            con.close()
    except sqlite3.OperationalError:  # tables not created yet
        return 0


# --------------------------------------------------------------------------- the real CLI: SIGKILL, SIGINT, SIGTERM

SLOW_MODELS = textwrap.dedent('''
    """A tiny MLP whose training steps sleep, so a test can stop the run in the middle of a trial."""
    import time

    import keras


    @keras.saving.register_keras_serializable(package="tests")
    class Pause(keras.layers.Layer):
        def call(self, x, training=None):
            if training:
                time.sleep(0.03)
            return x


    def build(hp):
        model = keras.Sequential([keras.Input((12, 12, 1)), keras.layers.Flatten(), Pause(),
                                  keras.layers.Dense(hp.Int("units", 4, 32, step=4), activation="relu"),
                                  keras.layers.Dense(4, activation="softmax")])
        model.compile(optimizer=keras.optimizers.Adam(hp.Choice("learning_rate", [1e-2, 1e-3])),
                      loss="sparse_categorical_crossentropy", metrics=["accuracy"], run_eagerly=True)
        return model
''')

SLOW = ["model=custom", "model.builder=slow_models:build", "data.num_samples=160", "data.image_size=12",
        "trainer.epochs=4", "tuner.max_trials=3"]
CHECKPOINTING = REPO / "examples" / "checkpointing" / "train.py"


def program(*flags: str) -> list[str]:
    """The CLI arguments of a search whose trials run examples/checkpointing/train.py with ``flags`` (numpy: it
    saves its state every epoch and continues from it when resumed; ``--seconds`` per epoch lets a test stop it
    mid-trial). For the tests of a driver, its workers, kills and signals where Keras is not what is checked:
    a Keras trial costs every process that trains it a TensorFlow start (~10 s of CPU)."""
    return ["trial=command", f"trial.command='{' '.join([sys.executable, str(CHECKPOINTING), *flags])}'",
            "objective=val_loss", "space={lr: {type: float, min: 1e-3, max: 0.3, sampling: log}}"]


@pytest.fixture
def slow_env(tmp_path) -> dict[str, str]:
    (tmp_path / "slow_models.py").write_text(SLOW_MODELS)
    return {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONPATH": str(tmp_path), "ARCHSEARCH_REPORT": "html"}


def start_cli(args: list[str], log_dir: Path, env: dict[str, str]) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "archsearch", *args, f"hydra.run.dir={log_dir}"], cwd=REPO,
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def wait_for_epoch(db: Path, trial_id: int, epoch: int, proc: subprocess.Popen, timeout: float = 900) -> None:
    """Poll the store (as a monitoring tool would) until ``trial_id`` has recorded ``epoch``; the timeout only
    catches a hang (a busy machine may take minutes to start a trial)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            out, err = proc.communicate()
            raise AssertionError(f"the search ended before trial {trial_id} reached epoch {epoch}:\n{out}\n{err[-3000:]}")
        if db.exists():
            try:
                con = sqlite3.connect(db, timeout=5)
                try:
                    row = con.execute("SELECT MAX(epoch) FROM epochs WHERE trial_id = ?", (trial_id,)).fetchone()
                finally:
                    con.close()
                if row[0] is not None and row[0] >= epoch:
                    return
            except sqlite3.OperationalError:
                pass
        time.sleep(0.01)
    proc.kill()
    raise AssertionError(f"trial {trial_id} did not reach epoch {epoch} in {timeout}s")


def epoch_rows(db: Path) -> dict[tuple[int, int], float]:
    con = sqlite3.connect(db)
    try:
        return {(t, e): at for t, e, at in con.execute("SELECT trial_id, epoch, recorded_at FROM epochs")}
    finally:
        con.close()


def after_kill(db: Path, trial_id: int, checkpoint: str = "checkpoint.weights.h5") -> tuple[dict, int]:
    """The store a SIGKILL left behind: readable, consistent, the trial still running, its ``checkpoint`` file (the
    Keras runner's; a command trial's is ``resume.json``) written. Returns the epochs' rows and the trial's last."""
    store = TrialStore(db)
    try:
        assert store.problems() == []
        assert store.trial(trial_id).status == "running"
        reached = max(e["epoch"] for e in store.epochs(trial_id))
    finally:
        store.close()
    assert (db.parent / "trials" / f"trial_{trial_id:04d}" / checkpoint).exists()
    return epoch_rows(db), reached


def test_sigkill_mid_trial_resumes_from_the_checkpoint_without_repeating_epochs(tmp_path, slow_env):
    """Killed mid-trial, then again mid-resume: the store stays whole and each resume continues the killed trial
    from its checkpoint, no epoch trained twice. The driver's and the store's, whatever a trial trains: a tiny
    program's trials (trial=command), in a worker as by default. A Keras trial killed and resumed (its
    checkpoint, the epochs not trained again, its best over the whole training, its export, the checkpoints
    cleaned) is tests/test_hardening.py's test_a_search_repeats_exactly_across_a_kill."""
    run = tmp_path / "run"
    db = run / "trials.db"

    proc = start_cli([*program("--epochs=4", "--seconds=0.3"), "tuner.max_trials=3"], run, slow_env)
    wait_for_epoch(db, 0, 2, proc)
    proc.send_signal(signal.SIGKILL)
    proc.communicate(timeout=600)
    first_rows, reached_0 = after_kill(db, 0, "resume.json")

    proc = start_cli([f"resume={run}"], tmp_path / "log1", slow_env)
    wait_for_epoch(db, 1, 1, proc)
    proc.send_signal(signal.SIGKILL)
    out, _ = proc.communicate(timeout=600)
    assert f"Trial 0: resuming from its checkpoint at epoch {reached_0}." in out
    second_rows, reached_1 = after_kill(db, 1, "resume.json")

    result = run_cli_inprocess([f"resume={run}"], tmp_path / "log2", env=slow_env)  # no kill here: in-process
    assert result.returncode == 0, result.stderr[-3000:]
    assert f"Trial 1: resuming from its checkpoint at epoch {reached_1}." in result.stdout
    assert "1 trials already done of max_trials=3, trial 1 to continue" in result.stdout

    store = TrialStore(db)
    assert store.problems() == []
    rows = store.rows()
    assert [r["status"] for r in rows] == ["completed"] * 3  # == max_trials, the killed ones included
    assert [r["epochs_done"] for r in rows] == [4, 4, 4]
    final = epoch_rows(db)
    assert sorted(final) == [(t, e) for t in range(3) for e in range(1, 5)]
    for key, recorded_at in {**first_rows, **second_rows}.items():
        assert final[key] == recorded_at, f"epoch {key} was trained again"
    for r in rows:  # a resumed trial's result is its best epoch over the whole training, before and after
        values = [e["val_loss"] for e in store.epochs(r["id"])]
        assert r["value"] == pytest.approx(min(values))
    assert (run / "best" / "command.sh").exists()


@pytest.mark.parametrize("stop", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_ctrl_c_or_sigterm_stops_cleanly_and_resume_continues(tmp_path, slow_env, stop):
    """The driver's stop, whatever a trial trains: a tiny program's trials (trial=command) in a worker. A Keras
    search stopped by Ctrl-C exports a whole .keras archive: tests/test_hardening.py's
    test_a_second_ctrl_c_still_exits_130_with_a_complete_export; a Keras trial resumed from its checkpoint:
    test_api_resume_continues_an_interrupted_trial_from_its_checkpoint below, and test_hardening's
    test_a_search_repeats_exactly_across_a_kill."""
    run = tmp_path / "run"
    db = run / "trials.db"
    proc = start_cli([*program("--epochs=4", "--seconds=0.5"), "tuner.max_trials=3"], run, slow_env)
    wait_for_epoch(db, 1, 1, proc)
    proc.send_signal(stop)
    out, err = proc.communicate(timeout=600)

    assert proc.returncode == 130, err[-3000:]
    assert "Traceback" not in err
    assert f"continue with resume={run}" in err
    assert "Trial 1: interrupted; it continues from its last checkpoint" in out
    assert "Results summary" in out and "Trials: 1 completed, 1 interrupted" in out
    store = TrialStore(db)
    assert store.trial(1).status == "interrupted" and store.trial(1).error == "interrupted by the user"
    assert store.trial(0).status == "completed"
    assert store.problems() == []
    reached = max(e["epoch"] for e in store.epochs(1))
    store.close()
    # What finished is exported completely: the best trial's command, the CSV lists every trial.
    assert str(CHECKPOINTING) in (run / "best" / "command.sh").read_text()
    assert yaml.safe_load((run / "best" / "hparams.yaml").read_text())["trial"] == 0
    assert (run / "trials.csv").read_text().count("\n") == 3
    assert "<tr class='status-interrupted'><td data-v='1.0'>1</td>" in (run / "report.html").read_text()
    if stop == signal.SIGTERM:
        return

    before = epoch_rows(db)
    result = run_cli_inprocess([f"resume={run}"], tmp_path / "log", env=slow_env)  # no signal here: in-process
    assert result.returncode == 0, result.stderr[-3000:]
    assert f"Trial 1: resuming from its checkpoint at epoch {reached}." in result.stdout
    after = epoch_rows(db)
    assert all(after[k] == v for k, v in before.items())  # no epoch of trial 1 trained twice
    assert sorted(e for t, e in after if t == 1) == [1, 2, 3, 4]
    assert TrialStore(db).count("completed") == 3


# --------------------------------------------------------------------------- Python API: interrupt and resume in-process


def small_data(n: int = 96):
    rng = np.random.default_rng(0)
    x = rng.random((n, 6)).astype("float32")
    return x, (x[:, :3].sum(axis=1) > 1.5).astype("int32")


def small_builder(hp):
    import keras

    model = keras.Sequential([keras.Input((6,)), keras.layers.Dense(hp.Int("units", 4, 16, step=4), activation="relu"),
                              keras.layers.Dense(2, activation="softmax")])
    model.compile(keras.optimizers.Adam(hp.Choice("learning_rate", [1e-2, 3e-2])),
                  "sparse_categorical_crossentropy", metrics=["accuracy"])
    return model


def interrupt_at(trial_number: int, epoch: int):
    """A callback that presses Ctrl-C at the end of ``epoch`` of the ``trial_number``-th fit."""
    import keras

    class CtrlC(keras.callbacks.Callback):
        fits = 0  # class attribute: the runner deep-copies callbacks for every trial

        def on_train_begin(self, logs=None):
            CtrlC.fits += 1

        def on_epoch_end(self, e, logs=None):
            if CtrlC.fits == trial_number + 1 and e + 1 == epoch:
                raise KeyboardInterrupt

    return CtrlC()


@pytest.mark.parametrize("epoch", [1, 3])  # mid-trial, and after its last epoch but before it was told
def test_api_resume_continues_an_interrupted_trial_from_its_checkpoint(tmp_path, epoch, capsys):
    import archsearch

    x, y = small_data()
    kwargs = dict(objective="val_accuracy", max_trials=3, seed=2, directory=tmp_path, project_name="p")
    first = archsearch.RandomSearch(small_builder, **kwargs)
    with pytest.raises(KeyboardInterrupt):
        first.search(x, y, epochs=3, validation_split=0.25, verbose=0, callbacks=[interrupt_at(1, epoch)])
    assert first.store.trial(1).status == INTERRUPTED
    assert len(first.store.epochs(1)) == epoch
    before = epoch_rows(first.store.path)
    first.store.close()

    again = archsearch.RandomSearch(small_builder, **kwargs)  # overwrite=False: continue
    assert capsys.readouterr().out.splitlines()[-1].endswith("1 trials already done of max_trials=3, trial 1 to continue.")
    again.search(x, y, epochs=3, validation_split=0.25, verbose=2)  # the search's own lines shown
    assert f"Trial 1: resuming from its checkpoint at epoch {epoch}." in capsys.readouterr().out.splitlines()
    assert again.store.count("completed") == 3 and again.store.count() == 3
    after = epoch_rows(again.store.path)
    assert all(after[k] == v for k, v in before.items())
    assert sorted(e for t, e in after if t == 1) == [1, 2, 3]
    trial = again.oracle.trials[1]
    assert trial.value == pytest.approx(max(e["val_accuracy"] for e in again.store.epochs(1)))


# --------------------------------------------------------------------------- resume with changed settings


def first_run(cli, run: Path) -> None:
    result = cli(["data.num_samples=160", "data.image_size=12", "trainer.epochs=1", "tuner.max_trials=2",
                  "executor=inline"], run)
    assert result.returncode == 0, result.stderr[-3000:]


def test_resume_applies_safe_changes_and_refuses_other_changes_or_another_search(cli_inprocess, tmp_path):
    cli = cli_inprocess
    run = tmp_path / "run"
    first_run(cli, run)

    more = cli([f"resume={run}", "tuner.max_trials=3", "trainer.verbose=0"], tmp_path / "log1")
    assert more.returncode == 0, more.stderr[-3000:]
    assert "Resume: tuner.max_trials: 2 -> 3 (takes effect now)" in more.stdout
    assert "trainer.verbose" not in more.stdout  # unchanged: the stored config is the base, not the defaults
    assert "2 trials already done of max_trials=3" in more.stdout
    assert TrialStore(run / "trials.db").count("completed") == 3

    changed = cli([f"resume={run}", "model.space.units_1.max=64", "objective=val_loss"], tmp_path / "log2")
    assert changed.returncode == 2
    assert "model.space.units_1.max: 512 -> 64" in changed.stderr and "objective: val_accuracy -> val_loss" in changed.stderr
    assert "Traceback" not in changed.stderr
    assert TrialStore(run / "trials.db").count() == 3

    # Starting a different search in that folder (no resume=) is refused, saying how to resume or overwrite.
    other = cli(["data.num_samples=160", "data.image_size=12", "trainer.epochs=1", "tuner=grid"], run)
    assert other.returncode == 2
    assert "tuner: random -> grid" in other.stderr
    assert f"resume={run}" in other.stderr and "overwrite=true" in other.stderr
    assert "Traceback" not in other.stderr
    assert TrialStore(run / "trials.db").count() == 3


def test_compare_for_resume_ignores_harmless_differences():
    from archsearch.cli.resume import compare_for_resume

    stored = {"model": {"name": "mlp", "space": {"u": {"min": 1}}}, "tuner": {"name": "random", "max_trials": 2},
              "trainer": {"verbose": 0, "early_stopping": {"patience": 3}, "epochs": 5}, "resume": None,
              "overwrite": False}
    current = {**stored, "resume": "/somewhere", "overwrite": True, "hydra": {"run": {"dir": "x"}},
               "trainer": {"verbose": 2, "early_stopping": {"patience": 5}, "epochs": 5},
               "tuner": {"name": "random", "max_trials": 9}}
    safe, refused = compare_for_resume(stored, current)
    assert refused == []
    assert safe == ["trainer.early_stopping.patience: 3 -> 5", "trainer.verbose: 0 -> 2", "tuner.max_trials: 2 -> 9"]
    _, refused = compare_for_resume(stored, {**current, "trainer": {**current["trainer"], "epochs": 6},
                                             "model": {"name": "cnn"}})
    assert refused == ["model: mlp -> cnn", "trainer.epochs: 5 -> 6"]


def test_resume_config_is_the_stored_one_changed_only_by_the_command_line():
    from omegaconf import OmegaConf

    from archsearch.cli.resume import resume_config

    stored = {"tuner": {"name": "hyperband", "max_epochs": 9, "seed": 3}, "data": {"name": "shapes", "num_samples": 160},
              "objective": "val_accuracy", "resume": None}
    composed = OmegaConf.create({"tuner": {"name": "random", "max_trials": 20, "seed": 0},
                                 "data": {"name": "shapes", "num_samples": 1200}, "objective": "val_accuracy",
                                 "resume": "/run", "overwrite": False})
    merged = resume_config(composed, stored, ["resume=/run", "+tuner.max_trials=20", "hydra.run.dir=/log"])
    assert OmegaConf.to_container(merged) == {
        "tuner": {"name": "hyperband", "max_epochs": 9, "seed": 3, "max_trials": 20},
        "data": {"name": "shapes", "num_samples": 160}, "objective": "val_accuracy", "resume": "/run",
        "overwrite": False}
    swapped = resume_config(composed, stored, ["resume=/run", "tuner=random"])
    assert swapped.tuner.name == "random"  # another group choice replaces the section (and is then refused)


def test_retry_failed_is_read_strictly_and_needs_a_search_to_resume(tmp_path):
    from omegaconf import OmegaConf

    from archsearch.cli.resume import RETRYABLE_KINDS, continue_stored_search, retry_kinds

    assert retry_kinds(False) == () and retry_kinds("true") == RETRYABLE_KINDS == ("lost", "oom", "error", "nan", "timeout",
                                                                                     "no_metric")
    assert retry_kinds(OmegaConf.create({"k": ["lost", "oom"]}).k) == ("lost", "oom")
    with pytest.raises(ConfigError, match="retry_failed: 'infeasible' is not a failure kind that can run again"):
        retry_kinds(["infeasible"])
    with pytest.raises(ConfigError, match="retry_failed: 'maybe'"):
        retry_kinds("maybe")
    cfg = OmegaConf.create({"resume": None, "retry_failed": True})
    with pytest.raises(ConfigError, match=r"retry_failed: is set, but .* holds no search .*resume=<run folder"):
        continue_stored_search(cfg, tmp_path)


# --------------------------------------------------------------------------- bad input, caught before training


def compose(overrides: list[str]):
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir

    with initialize_config_dir(config_dir=str(REPO / "conf"), version_base=None):
        return hydra_compose(config_name="config", overrides=overrides)


def write_image(path: Path, value: int = 128) -> None:
    import cv2

    path.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(path), np.full((16, 16), value, dtype=np.uint8))


@pytest.fixture
def bad_files(tmp_path) -> Path:
    np.savez(tmp_path / "empty.npz", x=np.zeros((0, 8, 8), "uint8"), y=np.zeros((0,), "int64"))
    np.savez(tmp_path / "masks_mismatch.npz", x=np.zeros((10, 8, 8), "uint8"), y=np.zeros((10, 6, 6), "uint8"))
    (tmp_path / "garbage.npz").write_text("not an archive")
    for name in ("a", "b"):
        write_image(tmp_path / "docs" / "images" / f"{name}.png")
    write_image(tmp_path / "docs" / "masks" / "a.png", 1)
    (tmp_path / "empty_folder" / "images").mkdir(parents=True)
    (tmp_path / "empty_folder" / "masks").mkdir()
    (tmp_path / "broken_models.py").write_text("import keras\nraise RuntimeError('needs a GPU')\n")
    (tmp_path / "typo_models.py").write_text("def build(hp:\n    pass\n")
    return tmp_path


NPZ = ["data=npz", "data.path={}/"]
BAD_INPUT = [
    (["data.name=imagenet"], "data.name", "choose one of: shapes"),
    (["tuner.name=annealing"], "tuner.name", "choose one of: asha, bayesian, bohb, grid, hyperband, nsga2, random"),
    (["+model.space.units_4={type: int, min: 5}"], "units_4", "max"),
    (["model.space.units_1.min=600"], "units_1", "600"),
    (["model.space.units_1.min=abc"], "model.space.units_1.min", "is 'abc', not a number"),
    (["model.space.learning_rate.max=high"], "model.space.learning_rate.max",
     "e.g. model.space.learning_rate.max=0.001"),
    (["model.space.dropout.values=[]"], "dropout", "empty"),
    (["+model.space.act={type: choice, values: [relu], when: {nope: [1]}}"], "nope", "not in the search space"),
    (["data=npz", "data.path=/no/such/file.npz"], "data.path", "/no/such/file.npz does not exist"),
    (["data=npz", "data.path={files}/garbage.npz"], "data.path", "cannot read"),
    (["data=npz", "data.path={files}/empty.npz"], "data", "is empty"),
    (["data=npz", "data.path={files}/masks_mismatch.npz"], "data", "masks (n, h, w)"),
    (["data=folder", "data.path=/no/such/folder"], "data.path", "does not exist"),
    (["data=folder", "data.path={files}/docs"], "data.path", "b.png has no mask"),
    (["data=folder", "data.path={files}/empty_folder"], "data.path", "no images found"),
    (["data.num_samples=0"], "data.num_samples", "0"),
    (["data.validation_split=1.5"], "data.validation_split", "1.5"),
    (["tuner=hyperband", "tuner.max_epochs=2", "tuner.min_epochs=3"], "tuner.max_epochs", "tuner.min_epochs"),
    (["tuner=hyperband", "tuner.factor=1"], "tuner.factor", "at least 2"),
    (["tuner=bohb", "tuner.factor=1.5"], "tuner.factor", "1.5"),
    (["tuner.max_trials=abc"], "tuner.max_trials", "'abc'"),
    (["tuner.max_trials=0"], "tuner.max_trials", "0"),
    (["tuner=grid", "tuner.float_points=many"], "tuner.float_points", "'many'"),
    (["tuner.seed=-1"], "tuner.seed", "-1"),
    (["+tuner.bogus=1"], "tuner.bogus", "its options are"),
    (["trainer.epochs=0"], "trainer.epochs", "whole number >= 1"),
    (["trainer.batch_size=0"], "trainer.batch_size", "0"),
    (["trainer.learning_rate=-0.1"], "trainer.learning_rate", "-0.1"),
    (["trainer.optimizer=adamax_bogus"], "trainer.optimizer", "adamax_bogus"),
    (["trainer.executions_per_trial=0"], "trainer.executions_per_trial", "0"),
    (["max_consecutive_failed_trials=0"], "max_consecutive_failed_trials", "0"),
    (["objective={name: val_loss, direction: sideways}"], "objective.direction", "sideways"),
    (["model=custom"], "model.builder", "is not set"),
    (["model=custom", "model.builder=no_such_module:build"], "model.builder", "cannot import module 'no_such_module'"),
    (["model=custom", "model.builder=hypermodels.mlp:nothing"], "model.builder", "has no function 'nothing'"),
    (["model=custom", "model.builder=broken_models:build"], "model.builder",
     "RuntimeError: needs a GPU (broken_models.py, line 2)"),
    (["model=custom", "model.builder=typo_models:build"], "model.builder", "SyntaxError"),
    (["resume=/no/such/run"], "resume", "does not exist"),
    (["logger=mlflow", "logger.mlflow.tracking_uri=http://127.0.0.1:9"], "logger.mlflow.tracking_uri",
     "no MLflow server answers there"),
]


@pytest.mark.parametrize("overrides, field, text", BAD_INPUT, ids=[" ".join(o) for o, _, _ in BAD_INPUT])
def test_bad_input_is_reported_before_any_trial(overrides, field, text, bad_files, monkeypatch):
    from archsearch.cli.app import prepare

    monkeypatch.chdir(bad_files)
    monkeypatch.syspath_prepend(str(bad_files))
    cfg = compose([o.replace("{files}", str(bad_files)) for o in overrides])
    with pytest.raises(ArchsearchError) as info:
        prepare(cfg)
    message = str(info.value)
    assert message.startswith(field) or f"{field}:" in message or f"'{field}'" in message, message
    assert text in message, message
    assert not list(bad_files.rglob("trials.db"))  # nothing recorded, nothing to clean up


def test_an_empty_mapping_override_is_refused_where_hydra_would_merge_it_away():
    from archsearch.cli.config import check_overrides

    cfg = compose(["model=mlp", "model.space={}"])
    assert len(cfg.model.space) > 0  # what Hydra does with it: nothing
    with pytest.raises(ConfigError) as info:
        check_overrides(cfg, ["model=mlp", "model.space={}"])
    message = str(info.value)
    assert message.startswith("model.space: the override model.space={} does not empty it")
    assert "'~model.space' '+model.space={...}'" in message and "model.space.units_1=64" in message
    check_overrides(cfg, ["model=mlp", "model.space.units_1.max=64", "~model.params"])  # others pass
    custom = compose(["model=custom", "model.space={}"])
    check_overrides(custom, ["model=custom", "model.space={}"])  # already empty: a define-by-run builder's space


def test_an_objective_the_model_does_not_produce_lists_what_it_does(tmp_path, monkeypatch, capsys):
    from archsearch.cli.app import run

    monkeypatch.chdir(tmp_path)
    cfg = compose(["objective=val_f1", "data.num_samples=160", "data.image_size=12"])
    with pytest.raises(ArchsearchError, match=r"'val_f1'.*accuracy, loss, val_accuracy, val_loss"):
        run(cfg)
    assert TrialStore(tmp_path / "outputs" / "archsearch" / "trials.db").count() == 0  # before the first trial
    lines = capsys.readouterr().out.splitlines()
    assert not any(line.startswith("Trial") or "Results summary" in line for line in lines)


@pytest.mark.parametrize("group", ["model=transformer", "tuner=annealing", "data=imagenet"])
def test_unknown_group_choices_list_the_choices_without_a_traceback(cli_inprocess, tmp_path, group):
    result = cli_inprocess([group], tmp_path / "bad")
    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    assert "Available options in" in result.stderr
    expected = {"model": "mlp", "tuner": "hyperband", "data": "shapes"}[group.split("=")[0]]
    assert f"\t{expected}\n" in result.stderr


def test_an_internal_bug_still_shows_its_traceback(cli, tmp_path):
    module = tmp_path / "buggy_sitecustomize"
    module.mkdir()
    (module / "sitecustomize.py").write_text(textwrap.dedent('''
        import archsearch.cli.app
        def run(cfg):
            raise ZeroDivisionError("an internal bug")
        archsearch.cli.app.run = run
    '''))
    result = cli(["tuner.max_trials=1"], tmp_path / "run", env={"PYTHONPATH": str(module)})
    assert result.returncode != 0 and result.returncode != 2
    assert "ZeroDivisionError: an internal bug" in result.stderr


# --------------------------------------------------------------------------- failures inside trials


FLAKY_MODELS = textwrap.dedent('''
    import keras


    def build(hp):
        units = hp.Choice("units", [8, 16, 24, 32, 40])
        if units > 8:
            raise ValueError(f"cannot build {units} units")
        model = keras.Sequential([keras.Input((12, 12, 1)), keras.layers.Flatten(),
                                  keras.layers.Dense(units, activation="relu"), keras.layers.Dense(4, activation="softmax")])
        model.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
        return model
''')


def test_too_many_failures_in_a_row_stop_the_search_and_keep_what_finished(cli_inprocess, tmp_path):
    (tmp_path / "flaky_models.py").write_text(FLAKY_MODELS)
    run = tmp_path / "run"
    result = cli_inprocess(["model=custom", "model.builder=flaky_models:build", "tuner=grid", "data.num_samples=160",
                            "data.image_size=12", "trainer.epochs=1", "executor=inline"], run,
                           env={"PYTHONPATH": str(tmp_path)})
    assert result.returncode == 2
    assert "3 trials failed in a row; the last error was: ValueError: cannot build 32 units" in result.stderr
    assert "max_consecutive_failed_trials" in result.stderr and "Traceback" not in result.stderr
    assert "FAILED: ValueError: cannot build 16 units" in result.stdout
    store = TrialStore(run / "trials.db")
    assert [r["status"] for r in store.rows()] == ["completed", "failed", "failed", "failed"]
    assert "cannot build 24 units" in store.trial(2).error
    assert yaml.safe_load((run / "best" / "hparams.yaml").read_text())["values"] == {"units": 8}
    assert (run / "trials.csv").read_text().count("\n") == 5
    assert "FAILED: ValueError: cannot build 16 units" in (run / "archsearch.log").read_text()


def test_out_of_memory_names_the_hyperparameters_and_suggests_a_smaller_batch(tmp_path, capsys):
    import keras
    import tensorflow as tf

    import archsearch

    def hungry(hp):
        units = hp.Choice("units", [4, 4096])
        if units == 4096:
            raise tf.errors.ResourceExhaustedError(None, None, "OOM when allocating tensor with shape[4096,4096]")
        model = keras.Sequential([keras.Input((6,)), keras.layers.Dense(units), keras.layers.Dense(2, activation="softmax")])
        model.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
        return model

    x, y = small_data()
    tuner = archsearch.GridSearch(hungry, objective="val_accuracy", directory=tmp_path, project_name="oom")
    tuner.search(x, y, epochs=1, validation_split=0.25, verbose=2)  # the search's own lines shown
    lines = capsys.readouterr().out.splitlines()
    failed = tuner.store.trial(1)
    assert failed.status == "failed"
    assert "out of memory with hyperparameters {'units': 4096}" in failed.error
    assert "smaller trainer.batch_size" in failed.error
    assert any("FAILED: out of memory" in line for line in lines)
    assert tuner.store.trial(0).status == "completed"


def test_nan_and_builder_failures_are_recorded_and_the_search_goes_on(tmp_path):
    import keras

    import archsearch

    def builder(hp):
        kind = hp.Choice("kind", ["ok", "nan", "broken", "ok2"])
        if kind == "broken":
            raise RuntimeError("builder bug for kind=broken")
        model = keras.Sequential([keras.Input((6,)), keras.layers.Dense(2)])
        if kind == "nan":
            model.add(keras.layers.Lambda(lambda t: t * math.nan))
        model.compile("adam", keras.losses.SparseCategoricalCrossentropy(from_logits=True), metrics=["accuracy"])
        return model

    x, y = small_data()
    tuner = archsearch.GridSearch(builder, objective="val_accuracy", directory=tmp_path, project_name="f")
    tuner.search(x, y, epochs=2, validation_split=0.25, verbose=0)
    by_kind = {r["hparams"]["kind"]: r for r in tuner.store.rows()}
    assert [by_kind[k]["status"] for k in ("ok", "nan", "broken", "ok2")] == ["completed", "failed", "failed",
                                                                                "completed"]
    assert "loss became nan at epoch 1" in by_kind["nan"]["error"]
    assert "RuntimeError: builder bug for kind=broken" in by_kind["broken"]["error"]


def test_the_checkpoint_knows_its_epoch_when_the_store_lags_behind(tmp_path):
    """Killed between saving epoch 3's checkpoint and recording epoch 3: continue after epoch 3, not 2."""
    import h5py

    from archsearch.core.checkpoints import EPOCH_ATTRIBUTE, TrialFiles
    from archsearch.executors import InlineExecutor
    from archsearch.engine.search import Search

    store = TrialStore(tmp_path / "trials.db")
    oracle = create_oracle("random", HyperParameters.from_config(SPACE), "val_accuracy", max_trials=2)
    files = TrialFiles(tmp_path)
    search = Search(oracle, InlineExecutor(runner=None), store, files, listeners=[])
    trial = oracle.ask()
    store.create_trial(trial)
    for epoch, value in ((1, 0.5), (2, 0.7)):
        store.record_epoch(trial.id, epoch, {"val_accuracy": value}, value)
    assert search._resume_point(trial) == (None, 0, [])  # no checkpoint yet: from scratch

    path = files.checkpoint(trial.id)
    path.parent.mkdir(parents=True)
    with h5py.File(path, "w") as fh:
        fh.attrs[EPOCH_ATTRIBUTE] = 3
    checkpoint, initial, history = search._resume_point(trial)
    assert (checkpoint, initial) == (path, 3)
    assert [e["epoch"] for e in history] == [1, 2]

    with h5py.File(path, "w") as fh:  # a checkpoint without its epoch (older files): the store decides
        fh.attrs["other"] = 1
    assert search._resume_point(trial)[1] == 2
