"""Issue 10: the ways to lose work or get a wrong result without any kill, each pinned by a test.

* booleans are read strictly (``overwrite=no`` once deleted a finished search);
* a run folder belongs to one search process (an OS lock, released by the kernel on kill -9);
* a full disk is one clear error (exit 2), the store and every exported file stay whole, and the
  trial it interrupted continues on resume;
* a store killed in its first milliseconds never resumes with default settings;
* resumed trials see exactly the batches and dropout masks of an uninterrupted run;
* NaN weights or metrics fail a trial and are never exported;
* the smaller ones: a second Ctrl-C, Ctrl-C at start-up, builders that return no model or always
  raise, read-only folders, Hydra's own errors, resume into its own folder, no empty folders left.
"""

from __future__ import annotations

import contextlib
import shutil
import hashlib
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import threading
import time
import zipfile
from pathlib import Path

import keras
import numpy as np
import pytest
import yaml

import archsearch
from archsearch.core.checks import boolean
from archsearch.errors import ConfigError, DiskFullError, RunFolderBusy
from archsearch.core.lock import RunFolderLock
from archsearch.core.store import TrialStore
from cli_inprocess import run_cli_inprocess
from conftest import FINISHED_RUN_ARGS, REPO, run_cli
from test_reliability import SLOW, SLOW_MODELS, after_kill, epoch_rows, program, start_cli, wait_for_epoch

TINY = ["data.num_samples=160", "data.image_size=12", "trainer.epochs=1", "tuner.max_trials=2"]
INLINE = ["executor=inline"]  # trials in the test process, where the executor is not what a test checks
# CLI runs go through run_cli_inprocess (the entry point in the test process) unless the test needs a process of
# its own: one it kills, signals or locks against, or one started in another working directory.


def rows(db: Path) -> list[dict]:
    store = TrialStore(db)
    try:
        return store.rows()
    finally:
        store.close()


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture
def slow_env(tmp_path) -> dict[str, str]:
    (tmp_path / "slow_models.py").write_text(SLOW_MODELS)
    return {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONPATH": str(tmp_path)}


# --------------------------------------------------------------------------- 1. strict booleans

@pytest.mark.parametrize("text, value", [("true", True), ("False", False), ("YES", True), ("no", False),
                                         ("1", True), ("0", False), ("on", True), ("Off", False),
                                         (True, True), (0, False)])
def test_booleans_are_read_strictly(text, value):
    assert boolean(text, "overwrite") is value


@pytest.mark.parametrize("text", ["maybe", "", "2", "yes please", 3, None])
def test_anything_else_is_not_a_boolean(text):
    with pytest.raises(ConfigError, match=r"^overwrite: .* is not a boolean \(use true or false"):
        boolean(text, "overwrite")


def test_overwrite_no_keeps_a_finished_search_and_overwrite_maybe_is_refused(tmp_path, finished_run_copy):
    run = finished_run_copy  # conftest.FINISHED_RUN_ARGS' search, finished
    before = rows(run / "trials.db")
    again = run_cli_inprocess([*FINISHED_RUN_ARGS, "overwrite=no"], run)
    assert again.returncode == 0, again.stderr[-2000:]
    after = rows(run / "trials.db")
    assert [(r["id"], r["started_at"], r["value"]) for r in after] == [(r["id"], r["started_at"], r["value"])
                                                                       for r in before]
    assert "Trial 0 (" not in again.stdout  # nothing trained again
    for key in ("overwrite", "trainer.early_stopping.enabled", "tuner.shuffle"):
        extra = ["tuner=grid"] if key == "tuner.shuffle" else []
        refused = run_cli_inprocess([*TINY, *INLINE, *extra, f"{key}=maybe"], run if not extra else tmp_path / "grid")
        assert refused.returncode == 2, (key, refused.stderr[-2000:])
        assert f"{key}: 'maybe' is not a boolean" in refused.stderr
    assert [r["started_at"] for r in rows(run / "trials.db")] == [r["started_at"] for r in before]


# --------------------------------------------------------------------------- 3. one process per run folder

def test_a_second_search_in_the_same_folder_is_refused_and_kill_9_releases_the_lock(tmp_path):
    """The lock is the run folder's, whatever a trial trains: a tiny program's long trials (trial=command)."""
    run = tmp_path / "run"
    searching = [*program("--epochs=40", "--seconds=0.5"), "tuner.max_trials=3"]
    first = start_cli(searching, run, {**os.environ, "ARCHSEARCH_REPORT": "false"})
    try:
        wait_for_epoch(run / "trials.db", 0, 1, first)
        for second_args in (searching, ["tuner=bayesian", *searching[:-1], "tuner.max_trials=2"]):
            second = run_cli_inprocess(second_args, run)
            assert second.returncode == 2, second.stderr[-2000:]
            assert f"is in use by another search (process {first.pid}" in second.stderr
        resumed = run_cli_inprocess([f"resume={run}"], run)
        assert resumed.returncode == 2 and "is in use by another search" in resumed.stderr
        assert [r["id"] for r in rows(run / "trials.db")] == [0]  # the refused runs wrote nothing
    finally:
        first.kill()
        first.wait()
    with RunFolderLock(run):  # the kernel released the dead process's lock
        pass
    assert TrialStore(run / "trials.db").problems() == []


def test_the_lock_is_reentrant_within_a_process_and_exclusive_across_processes(tmp_path):
    folder = tmp_path / "run"
    with RunFolderLock(folder), RunFolderLock(folder):
        probe = subprocess.run(
            [sys.executable, "-c", "import sys; from archsearch.core.lock import RunFolderLock; "
             f"RunFolderLock({str(folder)!r}).acquire()"],
            capture_output=True, text=True, cwd=REPO)
        assert probe.returncode != 0 and "RunFolderBusy" in probe.stderr and f"process {os.getpid()}" in probe.stderr
    subprocess.run([sys.executable, "-c", "from archsearch.core.lock import RunFolderLock; "
                    f"RunFolderLock({str(folder)!r}).acquire()"], check=True, cwd=REPO)


def test_two_python_api_tuners_cannot_share_a_project_across_processes(tmp_path):
    with RunFolderLock(tmp_path / "p"):
        code = textwrap.dedent(f"""
            import archsearch, keras
            def build(hp):
                return keras.Sequential([keras.Input((2,)), keras.layers.Dense(hp.Int("u", 1, 4))])
            archsearch.RandomSearch(build, objective="loss", max_trials=1, directory={str(tmp_path)!r},
                                    project_name="p", overwrite=True)
        """)
        probe = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO)
    assert probe.returncode != 0 and "RunFolderBusy" in probe.stderr


def _blocking_tuner_class(started: threading.Event, go: threading.Event):
    import archsearch as kt

    class Blocking(kt.Tuner):
        def run_trial(self, trial, *args, **kwargs):
            started.set()
            assert go.wait(timeout=120), "the test never let the trial finish"
            return trial.hyperparameters.Float("x", 0.0, 1.0)

    return Blocking


def _tuner(cls, folder, max_trials):
    import archsearch as kt

    hp = kt.HyperParameters()
    hp.Float("x", 0.0, 1.0)
    return cls(oracle=kt.oracles.RandomSearchOracle(objective=kt.Objective("loss", "min"), max_trials=max_trials,
                                                    hyperparameters=hp, seed=1),
               directory=folder, project_name="shared")


def test_two_tuners_in_two_threads_cannot_search_one_folder(tmp_path):
    started, go = threading.Event(), threading.Event()
    cls = _blocking_tuner_class(started, go)
    first, second = _tuner(cls, tmp_path, 1), _tuner(cls, tmp_path, 1)  # both made before either searches
    errors: list[BaseException] = []
    searching = threading.Thread(target=lambda: _record(errors, first.search), name="first-search")
    searching.start()
    try:
        assert started.wait(timeout=120), "the first search never started its trial"
        with pytest.raises(RunFolderBusy) as info:
            second.search()
        message = str(info.value)
        assert "in use by another search in this process (thread 'first-search'" in message
        assert "wait for that search to finish" in message
        with pytest.raises(RunFolderBusy, match="in use by another search in this process"):
            _tuner(cls, tmp_path, 2)  # a new tuner would reopen the running search's trials
    finally:
        go.set()
        searching.join(timeout=120)
    assert not searching.is_alive() and errors == []
    assert [t.status for t in first.oracle.trials.values()] == ["completed"]
    third = _tuner(cls, tmp_path, 2)  # the first search ended: the folder is free for the next one
    third.search()
    assert sorted(t.status for t in third.oracle.trials.values()) == ["completed", "completed"]


def _record(errors: list, call) -> None:
    try:
        call()
    except BaseException as exc:  # noqa: BLE001 - the test reports it
        errors.append(exc)


# --------------------------------------------------------------------------- 4. a full disk

def small_data(n: int = 64):
    rng = np.random.default_rng(0)
    x = rng.random((n, 4)).astype("float32")
    return x, (x.sum(axis=1) > 2).astype("int32")


def small_builder(hp):
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(hp.Int("units", 2, 8, step=2), activation="relu"),
                              keras.layers.Dense(2, activation="softmax")])
    model.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
    return model


def test_a_full_disk_stops_the_search_and_its_trial_continues_on_resume(tmp_path, monkeypatch):
    import archsearch.core.disk as disk

    x, y = small_data()
    real_free = disk.free_bytes
    calls = {"n": 0}

    def filling_up(path):
        calls["n"] += 1
        return 0 if calls["n"] > 4 else real_free(path)  # full after a few checkpoints

    tuner = archsearch.RandomSearch(small_builder, objective="val_accuracy", max_trials=3, seed=1,
                                    directory=tmp_path, project_name="p")
    monkeypatch.setattr(disk, "free_bytes", filling_up)
    with pytest.raises(DiskFullError, match=r"^no space left on /.* while writing .*trial_0001; free space and "
                                            r"resume=.*p$"):
        tuner.search(x, y, epochs=3, validation_split=0.25, verbose=0)
    monkeypatch.setattr(disk, "free_bytes", real_free)
    stopped = {r["id"]: r for r in tuner.store.rows()}
    assert stopped[1]["status"] == "interrupted" and stopped[1]["failure_kind"] == "disk"
    assert tuner.store.problems() == []
    tuner._lock.release()
    del tuner

    again = archsearch.RandomSearch(small_builder, objective="val_accuracy", max_trials=3, seed=1,
                                    directory=tmp_path, project_name="p")
    again.search(x, y, epochs=3, validation_split=0.25, verbose=0)
    final = {r["id"]: r for r in again.store.rows()}
    assert [(r["status"], r["failure_kind"]) for r in final.values()] == [("completed", None)] * 3
    assert len(again.store.epochs(1)) == 3  # the epoch before the disk filled was not trained twice


def test_a_store_write_on_a_full_disk_is_a_disk_full_error(tmp_path, monkeypatch):
    store = TrialStore(tmp_path / "trials.db")
    real = store._conn()

    class FullConnection:
        in_transaction = False

        def execute(self, sql, *args):
            if sql.startswith("BEGIN"):
                raise sqlite3.OperationalError("database or disk is full")
            return real.execute(sql, *args)

    monkeypatch.setattr(store, "_conn", lambda: FullConnection())
    with pytest.raises(DiskFullError, match="no space left on"):
        store.set_meta("x", 1)


def test_a_disk_inside_the_safety_margin_is_not_called_full(tmp_path, monkeypatch):
    import pickle

    import archsearch.core.disk as disk

    monkeypatch.setattr(disk, "free_bytes", lambda path: 1536 * 1024)
    with pytest.raises(DiskFullError) as info:
        disk.ensure_space(tmp_path, file=tmp_path / "trials.db", run_folder=tmp_path)
    message = str(info.value)
    assert message.startswith("less than 2 MiB free on /") and "(1.5 MiB left; a search keeps 2 MiB spare" in message
    assert f"while writing {tmp_path / 'trials.db'}; free space and resume={tmp_path}" in message
    assert str(pickle.loads(pickle.dumps(info.value))) == message  # as a worker process sends it
    with pytest.raises(DiskFullError, match=r"less than 7 MiB free on /.* \(1.5 MiB left"):
        disk.ensure_space(tmp_path, needed=5 * 1024 * 1024)
    monkeypatch.setattr(disk, "free_bytes", lambda path: 0)
    with pytest.raises(DiskFullError, match="^no space left on /"):
        disk.ensure_space(tmp_path)


@contextlib.contextmanager
def tmpfs(path: Path, size: str = "48m"):
    path.mkdir(parents=True, exist_ok=True)
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)],
                             capture_output=True, text=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here (needs root): {mounted.stderr.strip()}")
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], check=False)


def fill(folder: Path) -> Path:
    filler = folder / "filler.bin"
    with open(filler, "wb") as fh:
        block = b"\0" * (1 << 20)
        try:
            while True:
                fh.write(block)
                fh.flush()
        except OSError:
            pass
    return filler


@pytest.mark.slow
def test_a_real_full_disk_exits_2_keeps_the_exports_whole_and_resumes(tmp_path):
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    with tmpfs(tmp_path / "disk") as disk:
        run = disk / "run"
        # Trained here (executor=inline, kept on resume): the full disk is found by the resume's check before its
        # first trial (archsearch/cli/preflight.py), wherever trials train; a worker's start would cost TensorFlow's.
        first = run_cli_inprocess([*TINY, *INLINE], run)
        assert first.returncode == 0, first.stderr[-2000:]
        exported = {p: digest(run / p) for p in ("best/model.keras", "best/hparams.yaml", "trials.csv")}
        filler = fill(disk)
        full = run_cli_inprocess([f"resume={run}", "tuner.max_trials=4"], run)
        assert full.returncode == 2, full.stderr[-3000:]
        assert f"no space left on {disk}" in full.stderr and f"resume={run}" in full.stderr
        assert "Traceback" not in full.stderr
        assert {p: digest(run / p) for p in exported} == exported  # the old complete files
        filler.unlink()
        assert TrialStore(run / "trials.db").problems() == []
        done = run_cli_inprocess([f"resume={run}", "tuner.max_trials=4"], run)
        assert done.returncode == 0, done.stderr[-3000:]
        assert [r["status"] for r in rows(run / "trials.db")] == ["completed"] * 4


# --------------------------------------------------------------------------- 5. killed while starting

def test_resume_of_a_store_without_its_config_is_refused(tmp_path):
    run = tmp_path / "run"
    store = TrialStore(run / "trials.db")
    store.set_meta("fingerprint", {"oracle": "random"})
    store.close()
    result = run_cli_inprocess([f"resume={run}"], run)
    assert result.returncode == 2
    assert "holds no stored config" in result.stderr and "overwrite=true" in result.stderr


def test_a_search_killed_before_its_first_trial_resumes_with_its_own_settings(tmp_path):
    """The config and the fingerprint are stored together, first: resume runs 3 x 2 epochs, not the defaults."""
    run = tmp_path / "run"
    args = ["data.num_samples=160", "data.image_size=12", "trainer.epochs=2", "tuner.max_trials=3",
            "model=custom", "model.builder=never_builds:build", "+model.space.units={type:int,min:1,max:8}",
            *INLINE]  # killed in the driver's check build either way; the resume trains here
    (tmp_path / "never_builds.py").write_text(textwrap.dedent('''
        import os, signal
        def build(hp, input_shape=None, num_classes=None):
            os.kill(os.getpid(), signal.SIGKILL)  # killed right after the store was created
    '''))
    env = {"PYTHONPATH": str(tmp_path)}
    killed = run_cli(args, run, env=env)  # a process of its own: its builder kills it
    assert killed.returncode == -signal.SIGKILL
    store = TrialStore(run / "trials.db")
    assert store.count() == 0 and store.get_meta("config")["trainer"]["epochs"] == 2
    assert store.get_meta("fingerprint") is not None
    store.close()
    (tmp_path / "never_builds.py").write_text(textwrap.dedent('''
        import keras
        def build(hp, input_shape=None, num_classes=None):
            model = keras.Sequential([keras.Input(input_shape), keras.layers.Flatten(),
                                      keras.layers.Dense(num_classes, activation="softmax")])
            return model
    '''))
    resumed = run_cli_inprocess([f"resume={run}"], run, env=env)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert [(r["status"], r["epochs_done"]) for r in rows(run / "trials.db")] == [("completed", 2)] * 3


def test_a_new_tuner_stores_config_and_fingerprint_in_one_transaction(tmp_path, monkeypatch):
    written: list[set] = []
    real = TrialStore.set_meta_many

    def spy(self, values):
        written.append(set(values))
        return real(self, values)

    monkeypatch.setattr(TrialStore, "set_meta_many", spy)
    monkeypatch.setattr(TrialStore, "set_meta", lambda *a: pytest.fail("a separate meta write"))
    archsearch.RandomSearch(small_builder, objective="val_accuracy", max_trials=1, directory=tmp_path,
                            project_name="p", config={"trainer": {"epochs": 4}})
    assert written == [{"fingerprint", "config"}]


# --------------------------------------------------------------------------- 6. resumed trials reproduce

@pytest.mark.slow
def test_a_search_repeats_exactly_across_a_kill(tmp_path, slow_env):
    """Kill mid-trial, resume, and compare every epoch's loss with an uninterrupted run (dropout included); the
    Keras trial continues from its checkpoint, trains no epoch twice, keeps its best over the whole training,
    and the search exports its model and cleans the resume checkpoints (the same kill on a command trial,
    killed twice: tests/test_reliability.py's test_sigkill_mid_trial_resumes_...)."""
    # Trained inline (kept on resume): the process killed is the one that trains and writes the checkpoint, and no
    # worker starts TensorFlow. A worker trains exactly what inline trains, and loads a Keras checkpoint when
    # promoted (tests/test_executors.py: inline against workers, asha on two workers).
    args = [*SLOW[:-2], "trainer.epochs=4", "tuner.max_trials=2", "executor=inline"]
    env = {"PYTHONPATH": slow_env["PYTHONPATH"]}
    whole = tmp_path / "whole"
    assert run_cli_inprocess(args, whole, env=env).returncode == 0
    cut = tmp_path / "cut"
    proc = start_cli(args, cut, slow_env)
    wait_for_epoch(cut / "trials.db", 1, 2, proc)
    proc.kill()
    proc.wait()
    before, reached = after_kill(cut / "trials.db", 1)
    resumed = run_cli_inprocess([f"resume={cut}"], cut, env=env)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert f"Trial 1: resuming from its checkpoint at epoch {reached}." in resumed.stdout
    after = epoch_rows(cut / "trials.db")
    assert all(after[key] == recorded_at for key, recorded_at in before.items()), "an epoch was trained again"
    store = TrialStore(cut / "trials.db")
    for r in store.rows():  # a resumed trial's result is its best epoch over the whole training, before and after
        assert r["value"] == pytest.approx(max(e["val_accuracy"] for e in store.epochs(r["id"])))
    store.close()
    assert (cut / "best" / "model.keras").exists()
    assert not list((cut / "trials").glob("*/checkpoint.weights.h5"))  # resume checkpoints cleaned at the end

    def losses(run):
        store = TrialStore(run / "trials.db")
        return {(t["id"], e["epoch"]): (e["loss"], e["val_loss"]) for t in store.rows() for e in store.epochs(t["id"])}

    expected, got = losses(whole), losses(cut)
    assert expected.keys() == got.keys()
    for key in expected:
        assert np.allclose(expected[key], got[key], rtol=1e-5, atol=1e-6), (key, expected[key], got[key])


DROPOUT_MODELS = textwrap.dedent('''
    import keras

    def build(hp):
        model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(16, activation="relu"),
                                  keras.layers.Dropout(0.5), keras.layers.Dense(2, activation="softmax")])
        model.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
        return model
''')


def test_dropout_masks_depend_on_the_epoch_not_on_how_the_trial_got_there(tmp_path):
    from archsearch.training.callbacks import reseed_layers

    model = keras.Sequential([keras.Input((4,)), keras.layers.Dropout(0.5)])
    x = np.ones((1, 64), "float32")[:, :4].repeat(16, axis=0)

    def masks(key):
        reseed_layers(model, key)
        return [keras.ops.convert_to_numpy(model(x, training=True)) for _ in range(2)]

    first = masks((0, 3, 0, 2))
    masks((0, 3, 0, 1))  # other epochs in between change nothing
    again = masks((0, 3, 0, 2))
    assert all(np.array_equal(a, b) for a, b in zip(first, again))
    assert not np.array_equal(first[0], masks((0, 3, 0, 3))[0])


# --------------------------------------------------------------------------- 2. NaN weights are never exported

def test_a_nan_metric_fails_the_trial_as_nan(tmp_path):
    x, y = small_data()

    class NanMetric(keras.metrics.Metric):
        def update_state(self, *args, **kwargs):
            pass

        def result(self):
            return keras.ops.convert_to_tensor(float("nan"))

    def builder(hp):
        model = small_builder(hp)
        model.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy", NanMetric(name="odd")])
        return model

    tuner = archsearch.RandomSearch(builder, objective="val_accuracy", max_trials=2, directory=tmp_path,
                                    project_name="p", max_consecutive_failed_trials=5)
    tuner.search(x, y, epochs=2, validation_split=0.25, verbose=0)
    stored = tuner.store.rows()
    assert [(r["status"], r["failure_kind"]) for r in stored] == [("failed", "nan")] * 2
    assert "odd became nan at epoch 1" in stored[0]["error"]


def test_a_trial_with_nan_weights_is_never_exported(tmp_path):
    import h5py

    from archsearch.export.best import export_best

    x, y = small_data()
    tuner = archsearch.RandomSearch(small_builder, objective="val_accuracy", max_trials=3, seed=2,
                                    directory=tmp_path, project_name="p")
    tuner.search(x, y, epochs=2, validation_split=0.25, verbose=0)
    ranked = tuner.best_trials(3)
    with h5py.File(tuner.runner.best_weights_path(ranked[0].id), "a") as fh:
        def poison(name, item):
            if isinstance(item, h5py.Dataset) and item.dtype.kind == "f":
                item[...] = np.nan
        fh.visititems(poison)
    best = export_best(tuner, tmp_path / "export")
    import yaml

    assert yaml.safe_load((best / "hparams.yaml").read_text())["trial"] == ranked[1].id


# --------------------------------------------------------------------------- 7. the smaller ones

BUILDERS = textwrap.dedent('''
    def returns_int(hp):
        hp.Int("units", 1, 4)
        return 3

    def family_returns_text(hp, input_shape=None, num_classes=None):
        return "abc"

    def always_raises(hp):
        hp.Int("units", 1, 4)
        return 1 / 0
''')


@pytest.mark.parametrize("builder, text", [
    ("returns_int", "the model builder returned int 3, not a Keras model"),
    ("family_returns_text", "the model builder returned str 'abc', not a Keras model"),
    ("always_raises", "the model builder failed when run once with default values to learn its search space: "
                      "ZeroDivisionError: division by zero (user_builders.py, line 11)"),
])
def test_a_builder_that_returns_no_model_or_always_raises_stops_with_one_line(tmp_path, builder, text):
    (tmp_path / "user_builders.py").write_text(BUILDERS)
    run = tmp_path / "run"
    result = run_cli_inprocess([*TINY, *INLINE, "model=custom", f"model.builder=user_builders:{builder}"], run,
                               env={"PYTHONPATH": str(tmp_path)})
    assert result.returncode == 2, result.stderr[-2000:]
    assert text in result.stderr
    assert "Traceback" not in result.stderr and "Trial 0" not in result.stdout
    assert not run.exists()  # a run that failed before training leaves no folder behind


@pytest.mark.parametrize("args, text", [
    (["tuner=annealing"], "Could not find 'tuner/annealing'"),
    (["no_such_key=1"], "Could not override 'no_such_key'"),
    (["trainer.epochs=abc"], "trainer.epochs: 'abc' is not allowed"),
])
def test_every_config_error_exits_with_status_2(tmp_path, args, text):
    result = run_cli_inprocess(args, tmp_path / "run")
    assert result.returncode == 2, result.stderr[-2000:]
    assert text in result.stderr


def test_resume_of_a_missing_folder_says_it_does_not_exist(tmp_path):
    result = run_cli_inprocess([f"resume={tmp_path / 'nowhere'}"], tmp_path / "run")
    assert result.returncode == 2
    assert f"resume: {tmp_path / 'nowhere'} does not exist" in result.stderr
    assert not (tmp_path / "nowhere").exists()


def test_resume_logs_into_the_run_it_continues(tmp_path):
    """Where a resume logs is the CLI's, whatever a trial trains: a tiny program's trials (trial=command), so that
    the resume's process of its own (started in another folder) needs no TensorFlow."""
    run = tmp_path / "run"
    assert run_cli_inprocess([*program("--epochs=1"), "tuner.max_trials=2", *INLINE], run).returncode == 0
    elsewhere = tmp_path / "cwd"
    elsewhere.mkdir()
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONPATH": str(REPO)}
    resumed = subprocess.run([sys.executable, "-m", "archsearch", f"resume={run}", "tuner.max_trials=3"],
                             cwd=elsewhere, env=env, capture_output=True, text=True, timeout=600)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert list(elsewhere.iterdir()) == []  # no new near-empty run folder
    log = (run / "archsearch.log").read_text()
    assert "Resuming the search" in log and "Trial 2 (3/3)" in log
    assert (run / ".hydra" / "config.yaml").exists()  # the first run's Hydra files are kept
    assert len(list((run / ".hydra").glob("resume_*/overrides.yaml"))) == 1


def test_help_names_the_real_trial_folders_and_the_exit_statuses(tmp_path):
    result = subprocess.run([sys.executable, "-m", "archsearch", "--help"], cwd=REPO, capture_output=True,
                            text=True, timeout=600)
    assert "trials/trial_NNNN/" in result.stdout and "trials/<id>/" not in result.stdout
    assert "2 a config, data or run-folder error" in result.stdout


@contextlib.contextmanager
def read_only(folder: Path):
    """A read-only bind mount: even root cannot write through it."""
    view = folder.parent / f"{folder.name}_ro"
    view.mkdir()
    for command in (["mount", "--bind", str(folder), str(view)], ["mount", "-o", "remount,bind,ro", str(view)]):
        done = subprocess.run(command, capture_output=True, text=True)
        if done.returncode != 0:
            subprocess.run(["umount", str(view)], check=False, capture_output=True)
            pytest.skip(f"cannot make a read-only mount here: {done.stderr.strip()}")
    try:
        yield view
    finally:
        subprocess.run(["umount", "-l", str(view)], check=False)


def test_read_only_folders_are_named_never_overwritten(tmp_path, finished_run):
    shutil.copytree(finished_run, tmp_path / "done" / "run")  # a finished search (conftest.finished_run)
    with read_only(tmp_path / "done") as view:
        resumed = run_cli_inprocess([f"resume={view / 'run'}"], view / "run")
        assert resumed.returncode == 2, resumed.stderr[-2000:]
        assert "is not writable" in resumed.stderr and "overwrite" not in resumed.stderr
        fresh = run_cli_inprocess(TINY, view / "new")
        assert fresh.returncode == 2, fresh.stderr[-2000:]
        assert f"cannot create the run folder {view / 'new'}" in fresh.stderr and "not writable" in fresh.stderr
        assert "Traceback" not in fresh.stderr


def test_a_second_ctrl_c_still_exits_130_with_a_complete_export(tmp_path, slow_env):
    run = tmp_path / "run"
    proc = start_cli(SLOW, run, slow_env)
    wait_for_epoch(run / "trials.db", 1, 1, proc)  # trial 0 is complete: there is a best model to export
    deadline = time.monotonic() + 900  # a hang guard only
    while proc.poll() is None and time.monotonic() < deadline:  # Ctrl-C every 0.1 s until it has stopped
        proc.send_signal(signal.SIGINT)
        time.sleep(0.1)
    out, err = proc.communicate(timeout=600)
    assert proc.returncode == 130, err[-3000:]
    assert "Traceback" not in err
    with zipfile.ZipFile(run / "best" / "model.keras") as archive:  # a whole .keras archive, however many Ctrl-Cs
        assert archive.testzip() is None and {"config.json", "model.weights.h5"} <= set(archive.namelist())
    assert yaml.safe_load((run / "best" / "hparams.yaml").read_text())["trial"] == 0
    assert (run / "trials.csv").exists()
    assert [r["status"] for r in rows(run / "trials.db")] == ["completed", "interrupted"]
    assert TrialStore(run / "trials.db").problems() == []


def wait_for_signal_handlers(pid: int, timeout: float = 300.0) -> None:
    """Until the CLI has put in its own handlers (it catches SIGTERM, which Python leaves alone): before that,
    a Ctrl-C lands in the interpreter's start-up, which no program can make one line.  Linux's /proc says."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            status = Path(f"/proc/{pid}/status").read_text()
        except OSError:
            return  # exited already: the assertions say why
        caught = int(next(line.split()[1] for line in status.splitlines() if line.startswith("SigCgt:")), 16)
        if caught & (1 << (signal.SIGTERM - 1)):
            return
        time.sleep(0.01)
    raise AssertionError(f"the CLI put in no signal handler within {timeout:.0f} s")


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="reads /proc to know the handlers are in")
@pytest.mark.parametrize("delay", [0.2, 0.7, 1.4])  # composing the config; importing TensorFlow; later
def test_ctrl_c_while_starting_is_one_line(tmp_path, delay):
    proc = subprocess.Popen([sys.executable, "-m", "archsearch", f"hydra.run.dir={tmp_path / 'run'}"], cwd=REPO,
                            env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    wait_for_signal_handlers(proc.pid)
    time.sleep(delay)  # importing Hydra and numpy, then composing, then importing TensorFlow
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=600)
    assert proc.returncode == 130, err[-2000:]
    assert "Traceback" not in err
    assert "archsearch: interrupted" in err



def test_a_ctrl_c_that_an_import_turns_into_an_import_error_is_still_one_line(tmp_path):
    """TensorFlow's C start-up turns a KeyboardInterrupt raised inside it into ``ImportError: initialization
    failed``; the builder's module here does the same, deterministically (the sleep is where the signal lands)."""
    (tmp_path / "c_extension_like.py").write_text(
        "import os, signal, time\n"
        "try:\n"
        "    os.kill(os.getpid(), signal.SIGINT)\n"
        "    time.sleep(60)\n"
        "except KeyboardInterrupt:\n"
        "    raise ImportError('initialization failed') from None\n"
        "def build(hp):\n"
        "    raise AssertionError('never built')\n")
    result = run_cli(["model=custom", "model.builder=c_extension_like:build", "executor=inline"], tmp_path / "run",
                     env={"PYTHONPATH": str(tmp_path)}, timeout=600)
    assert result.returncode == 130, result.stderr[-2000:]
    assert "Traceback" not in result.stderr and "initialization failed" not in result.stderr
    assert "archsearch: interrupted" in result.stderr


def dropout_builder(hp):
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(hp.Int("units", 4, 16, step=4), activation="relu"),
                              keras.layers.Dropout(0.3), keras.layers.Dense(2, activation="softmax")])
    model.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
    return model


def test_the_python_api_repeats_exactly_across_an_interrupt(tmp_path):
    """tuner.search(x, y, validation_split=...): a trial interrupted at epoch 2 and resumed matches the whole run."""
    from test_reliability import interrupt_at

    x, y = small_data(96)

    def search(project, callbacks=()):
        tuner = archsearch.RandomSearch(dropout_builder, objective="val_accuracy", max_trials=2, seed=5,
                                        directory=tmp_path, project_name=project)
        tuner.search(x, y, epochs=4, batch_size=16, validation_split=0.25, verbose=0, callbacks=list(callbacks))
        return tuner

    whole = search("whole")
    with pytest.raises(KeyboardInterrupt):
        search("cut", [interrupt_at(1, 2)])
    resumed = search("cut")
    assert resumed.store.count("completed") == 2

    def losses(tuner):
        return {(t, e["epoch"]): (e["loss"], e["val_loss"]) for t in (0, 1) for e in tuner.store.epochs(t)}

    expected, got = losses(whole), losses(resumed)
    assert expected.keys() == got.keys() and len(expected) == 8
    for key in expected:
        assert np.allclose(expected[key], got[key], rtol=1e-5, atol=1e-6), (key, expected[key], got[key])
