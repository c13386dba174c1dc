"""Issue 11: trials as Ray actors (``executor=ray``) on a local Ray with 2 CPUs.

The CLI's own local Ray stops on SIGTERM like on Ctrl-C and the search resumes; command trials report their program's values from Ray actors; a search with two actors finishes with every trial completed; the driver's pruning decisions stop
a trial in its actor after the epoch it was judged on; an actor killed mid-trial is a lost trial
that continues from its checkpoint in ``executor.storage`` on a new actor; without Ray installed,
and for a wrong option, ``executor=ray`` is a ConfigError naming the fix.

The builders and the callback live in this module: the actors import it by name (the executor
hands them the driver's import path), as they would import a user's builder module.
"""

from __future__ import annotations

import os
import signal
import sys
from pathlib import Path
from types import SimpleNamespace

import keras
import numpy as np
import pytest

import archsearch
from archsearch.core.checkpoints import TrialFiles
from archsearch.errors import ConfigError
from archsearch.executors import create_executor
from archsearch.core.store import TrialStore

pytestmark = pytest.mark.xdist_group("ray")  # its module fixture is built once, in one process


def make_data(n: int = 64, seed: int = 0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 4)).astype("float32")
    y = (x[:, 0] > 0).astype("int32")
    return x, y


def build_mlp(hp):
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(hp.Int("units", 2, 16), activation="relu"),
                              keras.layers.Dense(2, activation="softmax")])
    model.compile(optimizer=keras.optimizers.Adam(0.05), loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    return model


def build_good_or_bad(hp):
    """``good`` learns from a zero start (val_loss < ln 2 after one step); ``bad`` is frozen at a confident
    constant answer (val_loss ~ 2.3 on every epoch): a median pruner must stop ``bad`` at once."""
    bad = hp.Choice("quality", ["good", "bad"]) == "bad"
    bias = keras.initializers.Constant([4.6, 0.0]) if bad else "zeros"
    model = keras.Sequential([keras.Input((4,)),
                              keras.layers.Dense(2, activation="softmax", kernel_initializer="zeros",
                                                 bias_initializer=bias)])
    optimizer = keras.optimizers.SGD(learning_rate=0.0) if bad else keras.optimizers.Adam(0.1)
    model.compile(optimizer=optimizer, loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    return model


class KillFirstActor(keras.callbacks.Callback):
    """SIGKILLs the Ray actor training it after the first epoch (checkpoint written), once per marker file."""

    def __init__(self, marker: str) -> None:
        super().__init__()
        self.marker = marker

    def on_epoch_end(self, epoch, logs=None):
        import ray

        if epoch == 0 and ray.get_runtime_context().get_actor_id() is not None and not os.path.exists(self.marker):
            Path(self.marker).write_text(str(os.getpid()))
            os.kill(os.getpid(), signal.SIGKILL)


@pytest.mark.slow
def test_the_cli_on_a_local_ray_stops_on_sigterm_and_resumes(tmp_path, local_ray):
    """The CLI process starts its own local Ray (the module's Ray is this test process's, not the CLI's). Its
    trials run a tiny program (trial=command): the signal, the local Ray and the resume are the driver's, and a
    Keras trial would cost each actor a TensorFlow start; Keras on Ray actors is the tests below."""
    from test_reliability import program, start_cli, wait_for_epoch

    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "ARCHSEARCH_REPORT": "false"}
    run = tmp_path / "run"
    proc = start_cli([*program("--epochs=4", "--seconds=0.5"), "tuner.max_trials=2", "executor=ray",
                      "tuner.parallel_trials=2"], run, env)
    wait_for_epoch(run / "trials.db", 0, 1, proc)
    proc.send_signal(signal.SIGTERM)  # ray.init's own handler would sys.exit; the search's one must stay
    out, err = proc.communicate(timeout=600)
    assert proc.returncode == 130, err[-3000:]
    assert "Running 2 trials at a time (2 Ray actors on a local Ray, each with num_cpus=1)." in out
    assert "Trial 0: interrupted; it continues from its last checkpoint when the search resumes." in out
    # The resume needs no signal: in this process (cli_inprocess), on the Ray already running here (the module's),
    # which it leaves running; the CLI process above started and shut down its own.
    from cli_inprocess import run_cli_inprocess

    resumed = run_cli_inprocess([f"resume={run}"], run)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert "Trial 0: resuming from its checkpoint at epoch" in resumed.stdout
    store = TrialStore(run / "trials.db")
    try:
        # Not epochs_done == 4: a trial stopped between its last checkpoint and its end resumes with nothing left
        # to train, and the runner then counts the epochs the store recorded (one fewer).
        assert [r["status"] for r in store.rows()] == ["completed"] * 2
    finally:
        store.close()
    assert local_ray.is_initialized()


def test_command_trials_run_on_ray_workers(tmp_path, local_ray):
    """trial=command through the CLI (in this process, on the module's Ray): each trial's value is the program's
    own loss, read from its output on a Ray actor."""
    from cli_inprocess import run_cli_inprocess
    from test_command_trials import QUADRATIC, SPACE, quadratic_loss, rows

    run = tmp_path / "run"
    result = run_cli_inprocess(["trial=command", QUADRATIC, SPACE, "objective=loss", "tuner.max_trials=2",
                                "executor=ray", "tuner.parallel_trials=2"], run)
    assert result.returncode == 0, result.stderr[-3000:]
    assert [t["status"] for t in rows(run)] == ["completed", "completed"]
    for trial in rows(run):
        assert trial["value"] == pytest.approx(quadratic_loss(trial["hparams"], 5), rel=1e-9)


@pytest.fixture(scope="module")
def local_ray():
    ray = pytest.importorskip("ray", reason="Ray is not installed (pip install \".[ray]\"): executor=ray untested")
    ray.init(num_cpus=2, include_dashboard=False, logging_level="ERROR", log_to_driver=False,
             object_store_memory=100 * 1024**2)
    try:
        yield ray
    finally:
        ray.shutdown()


def test_a_search_on_two_ray_actors_completes_every_trial(tmp_path, local_ray, capsys):
    x, y = make_data()
    tuner = archsearch.RandomSearch(build_mlp, objective="val_accuracy", max_trials=4, seed=1, directory=tmp_path,
                                    project_name="p", executor="ray", parallel_trials=2,
                                    executor_options={"resources": {"num_cpus": 1}})
    tuner.search(x, y, epochs=2, validation_split=0.25, batch_size=16)
    lines = capsys.readouterr().out.splitlines()
    rows = tuner.store.rows()
    assert [(r["id"], r["status"], r["epochs_done"]) for r in rows] == [(i, "completed", 2) for i in range(4)]
    assert len({r["hparams"]["units"] for r in rows}) == 4  # no configuration twice
    assert all(r["worker"].startswith("ray worker ") for r in rows), [r["worker"] for r in rows]
    assert len({r["worker"] for r in rows}) == 2  # two actors, each reused (max_trials_per_worker=10)
    assert "Running 2 trials at a time (2 Ray actors on a local Ray, each with num_cpus=1)." in lines
    assert all((tmp_path / "p" / "trials" / f"trial_{i:04d}" / "best.weights.h5").exists() for i in range(4))
    assert tuner.get_best_models(1)[0].count_params() > 0
    assert local_ray.is_initialized()  # a Ray the caller started is left running


def test_a_killed_actor_s_trial_continues_from_storage_and_pruning_stops_trials_in_their_actors(tmp_path, local_ray,
                                                                                                 capsys):
    """One search (2 actor starts, each a TensorFlow start) for two behaviours: the first actor is SIGKILLed
    after its trial's first epoch and a new actor continues that trial from its checkpoint in
    ``executor.storage``; then the driver's median pruner stops the ``bad`` trial in that actor after the
    epoch it was judged on."""
    x, y = make_data()
    storage = tmp_path / "shared"
    marker = tmp_path / "killed.pid"
    tuner = archsearch.GridSearch(build_good_or_bad, objective="val_loss", directory=tmp_path, project_name="p",
                                  executor="ray", parallel_trials=1, pruner={"name": "median", "warmup_epochs": 0,
                                                                             "min_trials": 1},
                                  executor_options={"storage": str(storage), "max_retries": 1})
    tuner.search(x, y, epochs=3, validation_split=0.25, batch_size=16, callbacks=[KillFirstActor(str(marker))])
    lines = capsys.readouterr().out.splitlines()
    rows = tuner.store.rows()
    # The driver's pruning decisions stop trials in their actors.
    assert [(r["hparams"]["quality"], r["status"], r["epochs_done"]) for r in rows] == [
        ("good", "completed", 3), ("bad", "pruned", 1)]
    assert [e["epoch"] for e in tuner.store.epochs(1)] == [1]  # stopped in the actor, not only in the record
    # A killed actor's trial continues from its checkpoint in storage, on a new actor.
    assert marker.exists()
    row = rows[0]
    assert [e["epoch"] for e in tuner.store.epochs(0)] == [1, 2, 3]
    assert f"pid {marker.read_text()}" not in row["worker"]  # a new actor finished it
    assert any(ln.startswith("Trial 0: ray worker 0") and " died (" in ln and "(attempt 2)" in ln for ln in lines), lines
    assert "Trial 0: resuming from its checkpoint at epoch 1." in lines
    assert (storage / "trials" / "trial_0000" / "best.weights.h5").exists()  # written where the option says
    assert not (tmp_path / "p" / "trials").exists()


# ------------------------------------------------------------ configuration errors (no Ray needed)
def fake_runner(tmp_path: Path):
    return SimpleNamespace(workdir=tmp_path, files=TrialFiles(tmp_path))


def test_without_ray_installed_executor_ray_is_a_config_error_that_says_how_to_install(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` now raises ImportError
    with pytest.raises(ConfigError, match=r'executor: .*needs Ray.*pip install "archsearch\[ray\]"'):
        create_executor("ray", fake_runner(tmp_path), 2, {"resources": {"num_cpus": 1}})


@pytest.mark.parametrize("options, field", [
    ({"gpus": [0]}, "executor.gpus"),
    ({"resources": {"num_gpus": -1}}, "executor.resources.num_gpus"),
    ({"resources": {"GPU": 1}}, "executor.resources.GPU"),
    ({"resources": 4}, "executor.resources"),
    ({"address": 6379}, "executor.address"),
    ({"max_trials_per_worker": 0}, "executor.max_trials_per_worker"),
    ({"init": {"address": "auto"}}, "executor.init.address"),
])
def test_a_wrong_option_is_a_config_error_naming_it(tmp_path, options, field):
    with pytest.raises(ConfigError) as info:
        create_executor("ray", fake_runner(tmp_path), 2, options)
    assert info.value.field == field
