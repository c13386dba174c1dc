"""The live progress display: its ETA arithmetic, when it is shown, and what it shows during a real
search loop (a Keras-free runner and a fake clock, so every number is exact)."""

from __future__ import annotations

import io

import pytest
from rich.console import Console

from archsearch.checkpoints import TrialFiles
from archsearch.events import SearchEvents
from archsearch.executors.inline import InlineExecutor
from archsearch.hyperparameters import HyperParameters
from archsearch.oracles import create_oracle
from archsearch.progress import SearchProgress, clock, eta_seconds, live_display_wanted, remaining_epochs
from archsearch.search import Search
from archsearch.store import TrialStore
from archsearch.trial import COMPLETED, TrialOutcome


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


class TickingRunner:
    """Each epoch takes ``seconds`` of the fake clock; the objective grows with the epoch."""

    def __init__(self, clock: FakeClock, epochs: int = 3, seconds: float = 10.0, interrupt_at: int | None = None,
                 files: TrialFiles | None = None):
        self.clock, self.epochs, self.seconds, self.interrupt_at = clock, epochs, seconds, interrupt_at
        self.files = files  # given: each trial leaves a checkpoint, so Hyperband's promotions continue from it

    def run(self, trial, hp, reporter=None, resume_checkpoint=None, initial_epoch=0, history=None):
        if self.interrupt_at is not None and trial.id == self.interrupt_at:
            raise KeyboardInterrupt
        target = trial.budget or self.epochs
        for epoch in range(initial_epoch + 1, target + 1):
            self.clock.now += self.seconds
            reporter.on_epoch(trial, epoch, {"val_accuracy": epoch / 10 + trial.id / 100}, epoch / 10 + trial.id / 100)
        if self.files is not None:
            self.files.checkpoint(trial.id).parent.mkdir(parents=True, exist_ok=True)
            self.files.checkpoint(trial.id).write_bytes(b"")
        value = target / 10 + trial.id / 100
        return TrialOutcome(status=COMPLETED, value=value, metrics={"val_accuracy": value}, epochs_done=target)


class Screens(SearchEvents):
    """Renders the display after every event, as the terminal would show it then."""

    def __init__(self, progress: SearchProgress) -> None:
        self.progress, self.shown, self.exits = progress, [], []

    def _shot(self) -> None:
        console = Console(file=io.StringIO(), width=160, color_system=None)
        console.print(self.progress.render())
        self.shown.append(console.file.getvalue())

    def on_epoch_end(self, trial, epoch, metrics, value):
        self._shot()

    def on_trial_end(self, trial, outcome):
        self._shot()

    def on_search_exit(self, search, error):
        self.exits.append(error)


def space() -> HyperParameters:
    hp = HyperParameters()
    hp.Int("units", 8, 64, step=8)
    return hp


def run_search(tmp_path, runner, progress, screens, max_trials=3):
    oracle = create_oracle("random", space(), "val_accuracy", max_trials=max_trials, seed=0)
    store = TrialStore(tmp_path / "trials.db")
    Search(oracle, InlineExecutor(runner), store, TrialFiles(tmp_path), listeners=[progress, screens]).run()


def test_remaining_epochs_for_trial_count_and_budgeted_tuners():
    # 10 trials, 4 done, 2 running with 1 and 3 epochs to go, 5 epochs per trial: 4 not started.
    assert remaining_epochs(total_epochs=None, epochs_spent=0, max_trials=10, trials_done=4, running_left=[1, 3],
                            epochs_per_trial=5) == 4 * 5 + 4
    # Hyperband's plan is known in epochs: what is left of it.
    assert remaining_epochs(total_epochs=90, epochs_spent=60, max_trials=None, trials_done=12, running_left=[2],
                            epochs_per_trial=9) == 30
    assert remaining_epochs(total_epochs=None, epochs_spent=0, max_trials=None, trials_done=1, running_left=[],
                            epochs_per_trial=3) is None


def test_eta_is_the_epochs_left_at_the_measured_pace_over_the_slots():
    assert eta_seconds(24, 5.0, 2) == 60.0
    assert eta_seconds(None, 5.0, 1) is None
    assert eta_seconds(10, None, 1) is None
    assert clock(3725) == "1:02:05" and clock(None) == "-"


class Stream:
    def __init__(self, tty: bool) -> None:
        self.tty = tty

    def isatty(self) -> bool:
        return self.tty


def test_the_display_is_for_terminals_only_and_never_fights_keras_bars():
    assert live_display_wanted(True, 0, Stream(True)) == (True, None)
    assert live_display_wanted(True, 2, Stream(True)) == (True, None)
    assert live_display_wanted(True, 0, Stream(False)) == (False, None)  # CI, nohup, a log file
    assert live_display_wanted(False, 0, Stream(True)) == (False, None)  # progress=false
    shown, note = live_display_wanted(True, 1, Stream(True))
    assert not shown and "trainer.verbose=1" in note
    assert live_display_wanted(True, 0, io.StringIO()) == (False, None)


def test_the_display_follows_a_search_with_exact_eta(tmp_path):
    fake = FakeClock()
    progress = SearchProgress(epochs_per_trial=3, clock_fn=fake, live=False)
    screens = Screens(progress)
    run_search(tmp_path, TickingRunner(fake), progress, screens)

    first_epoch = screens.shown[0]
    assert "random" in first_epoch and "0/3 trials" in first_epoch
    assert "trial 0" in first_epoch and "epoch 1/3" in first_epoch and "units=" in first_epoch
    # 10 s an epoch; left: trial 0's 2 epochs + 2 trials of 3 = 8 epochs, one slot: 80 s.
    assert "elapsed 0:00:10  ETA 0:01:20" in first_epoch
    after_first = screens.shown[3]  # trial 0 ended
    assert "1/3 trials" in after_first and "best val_accuracy=0.3000 (trial 0)" in after_first
    assert "ETA 0:01:00" in after_first
    last = screens.shown[-1]
    assert "3/3 trials" in last and "ETA 0:00:00" in last and "best val_accuracy=0.3200 (trial 2)" in last
    assert screens.exits == [None]


def test_budgeted_tuners_count_epochs_of_their_plan(tmp_path):
    fake = FakeClock()
    progress = SearchProgress(epochs_per_trial=3, clock_fn=fake, live=False)
    screens = Screens(progress)
    oracle = create_oracle("hyperband", space(), "val_accuracy", max_epochs=3, factor=3, seed=0)
    store = TrialStore(tmp_path / "trials.db")
    files = TrialFiles(tmp_path)
    Search(oracle, InlineExecutor(TickingRunner(fake, files=files)), store, files, listeners=[progress, screens]).run()
    total = oracle.total_epochs
    assert f"/{total} epochs" in screens.shown[0]
    assert f"{total}/{total} epochs" in screens.shown[-1]


def test_an_interrupted_search_closes_the_live_display(tmp_path):
    fake = FakeClock()
    output = io.StringIO()
    progress = SearchProgress(epochs_per_trial=3, clock_fn=fake,
                              console=Console(file=output, force_terminal=True, width=120))
    screens = Screens(progress)
    with pytest.raises(KeyboardInterrupt):
        run_search(tmp_path, TickingRunner(fake, interrupt_at=1), progress, screens)
    assert progress._live is None  # stopped: the terminal gets its cursor back
    assert len(screens.exits) == 1 and isinstance(screens.exits[0], KeyboardInterrupt)
    assert "random" in output.getvalue()


@pytest.mark.slow
def test_the_cli_shows_the_display_on_a_terminal_and_keeps_the_log_plain(tmp_path):
    """A real search in a pseudo-terminal: the display draws, the plain lines stay, the log has no escapes."""
    import os
    import pty
    import select
    import subprocess
    import sys

    from tests.conftest import REPO

    run_dir = tmp_path / "run"
    master, slave = pty.openpty()
    process = subprocess.Popen(
        [sys.executable, "-m", "archsearch", "data.num_samples=160", "trainer.epochs=2", "tuner.max_trials=2",
         "executor=inline", f"hydra.run.dir={run_dir}"],
        cwd=REPO, stdin=slave, stdout=slave, stderr=slave, env={**os.environ, "COLUMNS": "160", "TERM": "xterm"})
    os.close(slave)
    chunks = []
    while True:
        ready, _, _ = select.select([master], [], [], 1.0)
        if ready:
            try:
                data = os.read(master, 65536)
            except OSError:  # the child closed the terminal
                break
            if not data:
                break
            chunks.append(data)
        elif process.poll() is not None:
            break
    os.close(master)
    assert process.wait(timeout=600) == 0
    screen = b"".join(chunks).decode("utf-8", "replace")
    assert "trials" in screen and "ETA" in screen and "\x1b[" in screen  # the live display drew
    assert "Trial 1 (2/2)" in screen and "Results summary" in screen  # the plain lines, above it
    log = (run_dir / "archsearch.log").read_text()
    assert "Trial 0 (1/2)" in log and "Trial 1 (2/2)" in log
    assert "\x1b[" not in log and "ETA" not in log
