"""The live progress display: its ETA arithmetic, when it is shown, and what it shows during a real
search loop (a Keras-free runner and a fake clock, so every number is exact)."""

from __future__ import annotations

import io

import pytest
from rich.console import Console

from archsearch.core.checkpoints import TrialFiles
from archsearch.core.events import SearchEvents
from archsearch.executors.inline import InlineExecutor
from archsearch.space.hyperparameters import HyperParameters
from archsearch.oracles import create_oracle
from archsearch.cli.progress import SearchProgress, clock, eta_seconds, live_display_wanted, remaining_epochs
from archsearch.engine.search import Search
from archsearch.core.store import TrialStore
from archsearch.core.trial import COMPLETED, TrialOutcome


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


class TickingRunner:
    """Each epoch takes ``seconds`` of the fake clock; the objective grows with the epoch."""

    def __init__(self, clock: FakeClock, epochs: int = 3, seconds: float = 10.0, interrupt_at: int | None = None,
                 files: TrialFiles | None = None, start_up: float = 0.0):
        self.clock, self.epochs, self.seconds, self.interrupt_at = clock, epochs, seconds, interrupt_at
        self.start_up = start_up  # build, compile and tracing: the first epoch of each run takes this longer
        self.files = files  # given: each trial leaves a checkpoint, so Hyperband's promotions continue from it

    def run(self, trial, hp, reporter=None, resume_checkpoint=None, initial_epoch=0, history=None):
        if self.interrupt_at is not None and trial.id == self.interrupt_at:
            raise KeyboardInterrupt
        target = trial.budget or self.epochs
        self.clock.now += self.start_up
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
        self.progress, self.shown, self.exits, self.times = progress, [], [], []

    def _shot(self) -> None:
        console = Console(file=io.StringIO(), width=160, color_system=None)
        console.print(self.progress.render())
        self.shown.append(console.file.getvalue())
        self.times.append(self.progress.clock_fn())

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
    assert eta_seconds(24, 5.0, 2, starts_left=3, seconds_per_start=20.0) == 90.0  # each run's build and compile
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
    # One epoch, the first of its run (with the model's build and compile): no training pace yet.
    assert "elapsed 0:00:10  ETA -" in first_epoch
    # 10 s an epoch; left: trial 0's last epoch + 2 trials of 3 = 7 epochs, one slot: 70 s.
    assert "elapsed 0:00:20  ETA 0:01:10" in screens.shown[1]
    after_first = screens.shown[3]  # trial 0 ended
    assert "1/3 trials" in after_first and "best val_accuracy=0.3000 (trial 0)" in after_first
    assert "ETA 0:01:00" in after_first
    last = screens.shown[-1]
    assert "3/3 trials" in last and "ETA 0:00:00" in last and "best val_accuracy=0.3200 (trial 2)" in last
    assert screens.exits == [None]


def test_a_slow_first_epoch_is_start_up_cost_not_training_pace(tmp_path):
    # Each trial spends 40 s building and compiling before 3 epochs of 10 s (issue 24: the first ETA said
    # 1:29 with 23 s left, the compile counted as pace).  From the first steady epoch on, the ETA is exact.
    fake = FakeClock()
    progress = SearchProgress(epochs_per_trial=3, clock_fn=fake, live=False)
    screens = Screens(progress)
    run_search(tmp_path, TickingRunner(fake, start_up=40.0), progress, screens)
    end = fake.now
    assert "ETA -" in screens.shown[0]  # after the first epoch alone the pace is unknown, not 50 s an epoch
    assert "elapsed 0:01:00  ETA 0:02:30" in screens.shown[1]  # 7 epochs of 10 s + 2 starts of 40 s
    for shown, at in zip(screens.shown[1:], screens.times[1:]):
        assert f"ETA {clock(end - at)}" in shown, shown


def test_one_epoch_trials_take_their_first_epoch_as_the_unit(tmp_path):
    fake = FakeClock()
    progress = SearchProgress(epochs_per_trial=1, clock_fn=fake, live=False)
    screens = Screens(progress)
    run_search(tmp_path, TickingRunner(fake, epochs=1, start_up=5.0), progress, screens)
    end = fake.now
    assert "ETA 0:00:30" in screens.shown[0]  # 2 trials left of 15 s each (5 s start-up, a 10 s epoch)
    for shown, at in zip(screens.shown, screens.times):
        assert f"ETA {clock(end - at)}" in shown, shown


def test_the_frame_under_a_trial_line_shows_the_best_that_line_prints(tmp_path, monkeypatch):
    # rich draws the display under each printed line; it used the frame of the last refresh, so a frame
    # showed the best score a trial behind the "Trial N | ... | best" line right above it.
    import re

    from archsearch.core.console import ConsoleEvents

    fake = FakeClock()
    output = io.StringIO()
    progress = SearchProgress(epochs_per_trial=3, clock_fn=fake, refresh_per_second=0.1,
                              console=Console(file=output, force_terminal=True, width=200, color_system=None))
    oracle = create_oracle("random", space(), "val_accuracy", max_trials=4, seed=0)
    listeners = [ConsoleEvents(), progress]  # as the CLI orders them: the trial line first
    Search(oracle, InlineExecutor(TickingRunner(fake)), TrialStore(tmp_path / "trials.db"), TrialFiles(tmp_path),
           listeners=listeners).run()
    text = output.getvalue()
    lines = list(re.finditer(r"Trial (\d+) \(\d+/4\) \|[^\n]*\| best ([\d.]+) \(trial (\d+)\)", text))
    assert len(lines) == 4
    for line in lines:
        frame = re.search(r"best val_accuracy(=[\d.]+ \(trial \d+\)|: -)", text[line.end():])
        assert frame.group(1) == f"={line.group(2)} (trial {line.group(3)})", text[line.start():line.end() + 400]


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
    """A real search in a pseudo-terminal: the display draws, the plain lines stay, the log has no escapes. Its
    trials run a tiny program (trial=command, 2 epochs of 0.3 s): the display is the driver's, whatever a trial
    trains, and a Keras trial would cost the CLI process a TensorFlow start."""
    import os
    import pty
    import select
    import subprocess
    import sys

    from tests.conftest import REPO
    from test_reliability import program

    run_dir = tmp_path / "run"
    master, slave = pty.openpty()
    process = subprocess.Popen(
        [sys.executable, "-m", "archsearch", *program("--epochs=2", "--seconds=0.3"), "tuner.max_trials=2",
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


class TwoObjectiveRunner(TickingRunner):
    """val_accuracy grows with the units, and so does the model's size: a trade-off."""

    def run(self, trial, hp, reporter=None, resume_checkpoint=None, initial_epoch=0, history=None):
        units = trial.hparams["units"]
        metrics = {"val_accuracy": units / 100, "params": units * 10.0}
        reporter.on_epoch(trial, 1, metrics, metrics["val_accuracy"])
        self.clock.now += self.seconds
        return TrialOutcome(status=COMPLETED, value=metrics["val_accuracy"], metrics=metrics, epochs_done=1,
                            hparams=dict(trial.hparams))


def test_a_pareto_search_shows_the_front_s_size_and_its_best_trial_by_the_main_objective(tmp_path):
    from archsearch.core.objective import ParetoObjective

    fake = FakeClock()
    progress = SearchProgress(epochs_per_trial=1, clock_fn=fake, live=False)
    screens = Screens(progress)
    objective = ParetoObjective.of(["params:min", "val_accuracy:max"])  # main: val_accuracy, a trained metric
    oracle = create_oracle("random", space(), objective, max_trials=4, seed=0)
    Search(oracle, InlineExecutor(TwoObjectiveRunner(fake)), TrialStore(tmp_path / "trials.db"), TrialFiles(tmp_path),
           listeners=[progress, screens]).run()
    best = max(oracle.trials.values(), key=lambda t: t.value)
    front = oracle.best_trials()
    assert len(front) == len({t.hparams["units"] for t in oracle.trials.values()})  # every distinct size trades off
    assert (f"front {len(front)} trials, best val_accuracy={best.value:.4f} (trial {best.id})"
            in screens.shown[-1]), screens.shown[-1]
    assert "pareto=" not in "".join(screens.shown)


class _FiguresRunner(TickingRunner):
    """Reports each epoch's speed and GPU figures too, as the Keras runner does on a GPU NVML reads."""

    def run(self, trial, hp, reporter=None, resume_checkpoint=None, initial_epoch=0, history=None):
        outer = reporter

        class WithFigures:
            def on_epoch(self, trial, epoch, metrics, value):
                figures = {"samples_per_second": 12345.0, "gpu_utilization": 86.6, "gpu_memory_mb": 5324.8,
                           "gpu_index": 1.0} if trial.id == 0 else {"samples_per_second": 800.0}
                return outer.on_epoch(trial, epoch, {**metrics, **figures}, value)

        return super().run(trial, hp, WithFigures(), resume_checkpoint, initial_epoch, history)


def test_a_running_trial_shows_its_gpu_and_speed_when_measured(tmp_path):
    fake = FakeClock()
    progress = SearchProgress(epochs_per_trial=3, clock_fn=fake, live=False)
    screens = Screens(progress)
    run_search(tmp_path, _FiguresRunner(fake), progress, screens, max_trials=2)

    assert "GPU 1 87% 5.2 GB 12,345 samples/s" in screens.shown[0]  # trial 0: NVML's figures
    on_cpu = screens.shown[4]  # trial 1's first epoch: no GPU figures (a CPU), its speed alone
    assert "trial 1" in on_cpu and "800 samples/s" in on_cpu and "GPU" not in on_cpu
