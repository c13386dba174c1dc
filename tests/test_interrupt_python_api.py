"""Ctrl-C in the Python API: ``search()`` stops at a safe point, records the running trial as
interrupted, raises ``KeyboardInterrupt``, and a new tuner on the same folder continues it.

Each moment (a trial building, training, between trials) runs a tiny search that presses Ctrl-C inside
a ``__del__``, as TensorFlow's clean-up functions run: before the fix Python's own handler raised the
KeyboardInterrupt there, where it was dropped, and the search trained every remaining trial and
returned normally.  They run in this process (``os.kill`` of itself, the handler runs in ``__del__``:
TensorFlow is imported once); with a worker process the search runs as a script started from a shell,
which prints a marker and waits on its stdin in that ``__del__``; the test sends SIGINT from outside,
then lets it go on, so where the signal lands is an event, not a sleep.
"""

from __future__ import annotations

import importlib.util
import os
import queue
import signal
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from archsearch.core.store import TrialStore
from archsearch.core.trial import COMPLETED, INTERRUPTED

REPO = Path(__file__).resolve().parents[1]
HANG = 300  # seconds: only catches a hang, never a slow machine

SCRIPT = '''
import sys
import numpy as np
import keras
import archsearch

MOMENT = None  # set when run as a script: where it stops to wait for the test's Ctrl-C
CURRENT = {"trial": None}


def mark(name):
    print("MARK", name, flush=True)


class CleanUp:
    """Waits in ``__del__``, where TensorFlow's clean-up functions run: a KeyboardInterrupt raised there
    is printed ("Exception ignored in") and dropped, which is how a Ctrl-C used to be lost."""

    def __init__(self, name):
        self.name = name

    def __del__(self):
        mark(self.name)
        WAIT()


def WAIT():
    """As a script: until the test has sent SIGINT and writes a line. In the test's process: the test's Ctrl-C."""
    sys.stdin.readline()


def wait_for_test(name):
    CleanUp(name)  # collected at once


def data():
    rng = np.random.default_rng(0)
    x = rng.random((64, 4)).astype("float32")
    return x, (x[:, 0] + x[:, 1] > 1.0).astype("int32")


def build(hp):
    if MOMENT == "build" and CURRENT["trial"] == 1:
        wait_for_test("build")
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(hp.Int("units", 4, 16, step=4), activation="relu"),
                              keras.layers.Dense(2, activation="softmax")])
    model.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
    return model


class MidEpoch(keras.callbacks.Callback):
    """Waits in the second epoch's third batch of trial 1 (inline) or of the worker's first trial."""

    fits = 0  # a class attribute: the runner deep-copies callbacks for every trial

    def __init__(self, moment):
        super().__init__()
        self.moment = moment  # pickled with it: a worker process does not run this script's main

    def on_train_begin(self, logs=None):
        MidEpoch.fits += 1
        self.epoch = 0

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch = epoch

    def on_train_batch_end(self, batch, logs=None):
        if self.epoch != 1 or batch != 2:
            return
        if self.moment == "epoch" and CURRENT["trial"] == 1:
            wait_for_test("epoch")
        if self.moment == "worker" and MidEpoch.fits == 1:  # in the worker process: the driver kills it
            mark("worker")
            import time
            while True:
                time.sleep(1)


class Tuner(archsearch.RandomSearch):
    def on_trial_begin(self, trial):
        CURRENT["trial"] = trial.trial_id if isinstance(trial.trial_id, int) else int(trial.trial_id)
        mark(f"begin {CURRENT['trial']}")

    def on_trial_end(self, trial):
        if MOMENT == "between" and CURRENT["trial"] == 0:
            wait_for_test("between")


def make_tuner(folder, **kwargs):
    return Tuner(build, objective="val_accuracy", max_trials=3, seed=1, directory=folder, project_name="p",
                 **kwargs)


def search(tuner, callbacks=(), verbose=0):
    x, y = data()
    tuner.search(x, y, epochs=3, batch_size=8, validation_split=0.25, verbose=verbose, callbacks=list(callbacks))


if __name__ == "__main__":
    MOMENT, folder = sys.argv[1], sys.argv[2]
    options = {"executor": "process"} if MOMENT == "worker" else {}
    try:
        search(make_tuner(folder, **options), [MidEpoch(MOMENT)])
    except KeyboardInterrupt:
        mark("interrupted")
        sys.exit(0)
    mark("finished")
'''


def _default_sigint() -> None:
    signal.signal(signal.SIGINT, signal.SIG_DFL)


class Script:
    """The tiny search running in a subprocess, read line by line on a thread (so waits can time out)."""

    def __init__(self, path: Path, moment: str, folder: Path) -> None:
        env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONPATH": str(REPO)}
        # As a script started from a shell: Ctrl-C at its default, whatever this test process inherited
        # (an ignored SIGINT is inherited across exec, and Python then leaves it ignored).
        self.proc = subprocess.Popen([sys.executable, str(path), moment, str(folder)], cwd=REPO, env=env,
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                     preexec_fn=_default_sigint)
        self.lines: queue.Queue[str | None] = queue.Queue()
        self.seen: list[str] = []
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        for line in self.proc.stdout:
            self.lines.put(line.strip())
        self.lines.put(None)

    def wait_for(self, marker: str) -> None:
        while True:
            try:
                line = self.lines.get(timeout=HANG)
            except queue.Empty:
                self.proc.kill()
                pytest.fail(f"no {marker!r} within {HANG} s; seen: {self.seen}")
            if line is None:
                pytest.fail(f"the script ended before {marker!r}; seen: {self.seen}; "
                            f"stderr: {self.proc.stderr.read()[-3000:]}")
            self.seen.append(line)
            if line == f"MARK {marker}":
                return

    def ctrl_c_then_go_on(self) -> None:
        self.proc.send_signal(signal.SIGINT)
        self.proc.stdin.write("go\n")
        self.proc.stdin.flush()

    def finish(self) -> str:
        self.wait_for("interrupted")
        try:
            self.proc.wait(timeout=HANG)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            pytest.fail("the script did not exit after search() raised KeyboardInterrupt")
        stderr = self.proc.stderr.read()
        assert self.proc.returncode == 0, stderr[-3000:]
        return stderr


@pytest.fixture
def script(tmp_path):
    path = tmp_path / "tiny_search.py"
    path.write_text(SCRIPT)
    return path


def load(script: Path):
    """The script as a module (its search does not run), for the resume in this process."""
    spec = importlib.util.spec_from_file_location("tiny_search", script)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def statuses(folder: Path) -> dict[int, str]:
    store = TrialStore(folder / "p" / "trials.db")
    try:
        return {int(r["id"]): r["status"] for r in store.rows()}
    finally:
        store.close()


def resume(script: Path, folder: Path, capsys) -> tuple[list[str], object]:
    """Resume the search in this process; its console lines (verbose=2: the search's own lines are shown)."""
    module = load(script)
    capsys.readouterr()
    tuner = module.make_tuner(folder)
    module.search(tuner, verbose=2)
    return capsys.readouterr().out.splitlines(), tuner


def interrupted_in_this_process(script: Path, moment: str, folder: Path, capfd) -> tuple[list[str], str]:
    """The tiny search run here, as the script runs it, with a Ctrl-C pressed inside ``__del__`` at ``moment``
    (the signal's handler runs there, where a KeyboardInterrupt is dropped); its MARK lines and stderr.

    The signal comes from this process, not a terminal: what is checked is where it lands, as in
    ``test_a_second_ctrl_c_stops_at_once_and_the_handler_is_given_back``; a Ctrl-C from outside, to a script
    started as from a shell, is the worker test's."""
    module = load(script)
    module.MOMENT = moment
    module.WAIT = lambda: os.kill(os.getpid(), signal.SIGINT)
    capfd.readouterr()
    with pytest.raises(KeyboardInterrupt):
        module.search(module.make_tuner(folder), [module.MidEpoch(moment)])
    out, err = capfd.readouterr()
    return [line for line in out.splitlines() if line.startswith("MARK")], err


@pytest.mark.parametrize("moment", ["build", "epoch"])
def test_ctrl_c_while_a_trial_builds_or_trains_interrupts_it_and_resume_continues_it(script, tmp_path, moment,
                                                                                     capfd, python_sigint):
    marks, stderr = interrupted_in_this_process(script, moment, tmp_path, capfd)
    assert f"MARK {moment}" in marks  # the Ctrl-C came where it was meant to
    assert "stopping at the next safe point" in stderr
    assert "Traceback" not in stderr and "Exception ignored" not in stderr
    assert [line for line in marks if line.startswith("MARK begin")] == ["MARK begin 0", "MARK begin 1"]
    assert statuses(tmp_path) == {0: COMPLETED, 1: INTERRUPTED}  # no further trial started

    lines, tuner = resume(script, tmp_path, capfd)
    assert lines[0].endswith("1 trials already done of max_trials=3, trial 1 to continue.")
    if moment == "epoch":  # its first epoch was kept: training goes on from there
        assert "Trial 1: resuming from its checkpoint at epoch 1." in lines
    assert statuses(tmp_path) == {0: COMPLETED, 1: COMPLETED, 2: COMPLETED}
    assert [e["epoch"] for e in tuner.store.epochs(1)] == [1, 2, 3]


def test_ctrl_c_between_trials_starts_no_further_trial(script, tmp_path, capfd, python_sigint):
    marks, _ = interrupted_in_this_process(script, "between", tmp_path, capfd)  # trial 0 ended, 1 not started
    assert "MARK between" in marks
    assert [line for line in marks if line.startswith("MARK begin")] == ["MARK begin 0"]
    assert statuses(tmp_path) == {0: COMPLETED}

    lines, tuner = resume(script, tmp_path, capfd)
    assert statuses(tmp_path) == {0: COMPLETED, 1: COMPLETED, 2: COMPLETED}


def test_ctrl_c_with_a_worker_process_interrupts_its_trial_and_resume_continues_it(script, tmp_path, capsys):
    run = Script(script, "worker", tmp_path)
    run.wait_for("worker")  # the worker trains trial 0's second epoch, and never finishes it
    run.proc.send_signal(signal.SIGINT)  # the driver only: a terminal's Ctrl-C reaches workers too (they ignore it)
    run.finish()
    assert statuses(tmp_path) == {0: INTERRUPTED}

    lines, tuner = resume(script, tmp_path, capsys)  # inline this time: the store does not care where trials trained
    assert "Trial 0: resuming from its checkpoint at epoch 1." in lines
    assert statuses(tmp_path) == {0: COMPLETED, 1: COMPLETED, 2: COMPLETED}


# ------------------------------------------------------------------ in this process


@pytest.fixture
def python_sigint():
    """Python's own SIGINT handler, as a script or notebook has it (a test runner may have changed it)."""
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    signal.signal(signal.SIGINT, previous)


def test_a_second_ctrl_c_stops_at_once_and_the_handler_is_given_back(script, tmp_path, python_sigint):
    module = load(script)
    reached: list[str] = []

    def impatient(hp):
        if module.CURRENT["trial"] == 1:
            os.kill(os.getpid(), signal.SIGINT)  # deferred to a safe point
            reached.append("after the first")
            os.kill(os.getpid(), signal.SIGINT)  # raises here, inside the builder
            reached.append("after the second")
        return module.build(hp)

    tuner = module.Tuner(impatient, objective="val_accuracy", max_trials=3, seed=1, directory=tmp_path,
                         project_name="p")
    with pytest.raises(KeyboardInterrupt):
        module.search(tuner)
    assert reached == ["after the first"]
    assert statuses(tmp_path) == {0: COMPLETED, 1: INTERRUPTED}
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_a_ctrl_c_after_the_last_trial_is_not_lost(script, tmp_path, python_sigint):
    module = load(script)

    class LateCtrlC(module.Tuner):
        def on_search_end(self):
            os.kill(os.getpid(), signal.SIGINT)

    tuner = LateCtrlC(module.build, objective="val_accuracy", max_trials=1, seed=1, directory=tmp_path,
                      project_name="p")
    with pytest.raises(KeyboardInterrupt):
        module.search(tuner)
    assert statuses(tmp_path) == {0: COMPLETED}


def test_a_ctrl_c_held_through_a_backend_import_is_raised_after_it_not_dropped_in_a_clean_up():
    """TensorFlow's first import runs weakref callbacks from C: a KeyboardInterrupt raised in one is printed as
    "Exception ignored" and dropped (the CLI's one-line Ctrl-C then showed a traceback).  Held, it is raised
    right after the block, by the handler that was in place."""
    import time
    import weakref

    from archsearch.core.interrupts import signals_held

    def stop(signum, frame):
        raise KeyboardInterrupt

    class CleanedUp:
        pass

    steps = []
    previous = signal.signal(signal.SIGINT, stop)
    try:
        with pytest.raises(KeyboardInterrupt):
            with signals_held():
                thing = CleanedUp()
                guard = weakref.ref(thing, lambda ref: (os.kill(os.getpid(), signal.SIGINT), time.sleep(0.05)))
                del thing  # the callback runs here, Ctrl-C pressed inside it
                steps.append("import finished")
        assert guard() is None and steps == ["import finished"]
        assert signal.getsignal(signal.SIGINT) is stop
    finally:
        signal.signal(signal.SIGINT, previous)


def test_the_first_backend_import_is_guarded_even_when_its_notices_are_shown():
    """With the user's own TF_CPP_MIN_LOG_LEVEL nothing is filtered, but Ctrl-C is still held through the import."""
    code = ("import sys, archsearch\n"
            "from archsearch.training.backend_logs import _QuietFirstImport\n"
            "print([h.quiet for h in sys.meta_path if isinstance(h, _QuietFirstImport)])\n")
    shown = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=HANG,
                           env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "1"})
    quiet = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=HANG,
                           env={k: v for k, v in os.environ.items() if k not in ("TF_CPP_MIN_LOG_LEVEL",
                                                                                 "ARCHSEARCH_QUIET_BACKEND")})
    assert shown.stdout.strip() == "[False]", shown.stderr
    assert quiet.stdout.strip() == "[True]", quiet.stderr
