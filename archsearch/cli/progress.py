"""The live progress display of a search on a terminal: how far it is, what runs, when it ends.

One more :class:`~archsearch.core.events.SearchEvents` listener.  It shows trials done of ``max_trials``
(or, for the budgeted tuners, epochs spent of their planned total), a line per running trial (its
worker, epoch and values), the best score so far with its trial, the elapsed time and an ETA from
the epochs measured in this session: a run's first epoch also builds, compiles and traces its model,
so that start-up cost is measured apart from the pace of the epochs after it.  The plain one-line-per-trial output goes on above it (and
into the run's log file) as before; off a terminal the CLI does not use this display at all.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TextIO

from archsearch.core.events import SearchEvents
from archsearch.core.measures import RUN_FIGURES
from archsearch.core.objective import is_finite
from archsearch.core.trial import Trial, TrialOutcome, TrialSpec

if TYPE_CHECKING:  # pragma: no cover
    from rich.console import Console, RenderableType

    from archsearch.engine.search import Search


def live_display_wanted(enabled: bool, keras_verbose: int, stream: TextIO) -> tuple[bool, str | None]:
    """Whether to show the live display, and the note to print when it is turned off for a reason.

    Keras' dynamic progress bar (``trainer.verbose=1``) redraws the same terminal line, which would
    fight the display; the plain lines are kept then, and the user is told why.
    """
    if not enabled or not _is_terminal(stream):
        return False, None
    if keras_verbose == 1:
        return False, "Note: the live progress display is off while Keras draws its own bars (trainer.verbose=1)."
    return True, None


def _is_terminal(stream: TextIO) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):
        return False


def remaining_epochs(*, total_epochs: int | None, epochs_spent: int, max_trials: int | None, trials_done: int,
                     running_left: list[int], epochs_per_trial: float) -> float | None:
    """Epochs the search still has to train (None when its end is unknown, e.g. no ``max_trials``).

    ``running_left``: the epochs each running trial still has to go.  A budgeted tuner's planned total
    counts the running trials' epochs as spent once they are trained; a trial-count tuner expects
    ``epochs_per_trial`` of each trial it has not started (measured: early stopping and pruning
    make it less than ``trainer.epochs``).
    """
    if total_epochs:
        return float(max(0, total_epochs - epochs_spent))
    if max_trials is None:
        return None
    not_started = max(0, max_trials - trials_done - len(running_left))
    return not_started * max(0.0, epochs_per_trial) + float(sum(max(0, n) for n in running_left))


def eta_seconds(epochs_left: float | None, seconds_per_epoch: float | None, slots: int, starts_left: float = 0.0,
                seconds_per_start: float = 0.0) -> float | None:
    """Seconds to the end: the epochs left at the measured pace of one epoch, plus the start-up cost
    (build, compile, first trace) of each run still to start, ``slots`` at a time."""
    if epochs_left is None or seconds_per_epoch is None:
        return None
    work = epochs_left * seconds_per_epoch + max(0.0, starts_left) * max(0.0, seconds_per_start)
    return work / max(1, int(slots))


def pace_and_start_cost(steady: list[float], first: list[tuple[float, int]],
                        only_first_epochs_left: bool) -> tuple[float | None, float]:
    """(seconds per epoch, extra seconds per run start) from the measured epochs.

    ``steady``: epochs after a run's first; ``first``: (seconds, epochs) of each run's first report,
    which also holds the model's build and compile.  Until a steady epoch is measured the pace is
    unknown (None), unless what is left is only first epochs (one-epoch runs): then a first epoch is
    the unit.
    """
    if steady:
        pace = sum(steady) / len(steady)
        starts = [max(0.0, seconds - epochs * pace) for seconds, epochs in first]
        return pace, (sum(starts) / len(starts) if starts else 0.0)
    if first and only_first_epochs_left:
        return sum(seconds for seconds, _ in first) / sum(epochs for _, epochs in first), 0.0
    return None, 0.0


def clock(seconds: float | None) -> str:
    """``h:mm:ss`` (``-`` for an unknown time)."""
    if seconds is None or not math.isfinite(seconds):
        return "-"
    seconds = int(round(seconds))
    return f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"


_PACE_WINDOW = 50  # the pace is the mean of the last epochs measured: it follows a search whose models grow


@dataclass
class _Running:
    trial: Trial
    worker: str | None
    initial_epoch: int
    target: int
    epoch: int
    last_tick: float  # when it started, or reported its last epoch
    first: bool = True  # its first epoch (with the model's build and compile) is still to come
    figures: dict[str, float] | None = None  # its last epoch's speed and GPU figures (samples_per_second, ...)


class SearchProgress(SearchEvents):
    """A rich ``Live`` display fed by the search's events.

    ``epochs_per_trial``: the trainer's epochs, what a trial with no budget of its own trains.
    ``console``: where to draw (tests give one writing to a string); ``clock_fn``: the time source.
    """

    def __init__(self, epochs_per_trial: int, console: Console | None = None, *,
                 clock_fn: Callable[[], float] = time.monotonic, refresh_per_second: float = 2.0,
                 live: bool = True) -> None:
        self.epochs_per_trial = max(1, int(epochs_per_trial))
        self.console = console
        self.clock_fn = clock_fn
        self.refresh_per_second = refresh_per_second
        self.use_live = live  # False: render on demand only (tests)
        self.search: Search | None = None
        self.started = 0.0
        self.epoch_seconds: list[float] = []  # measured epochs after each run's first: the training pace
        self.first_epochs: list[tuple[float, int]] = []  # (seconds, epochs) of each run's first report
        self.finished_epochs: list[int] = []  # epochs each trial finished in this session trained
        self.running: dict[int, _Running] = {}
        self._live: Any = None

    # ------------------------------------------------------------ events
    def on_search_begin(self, search: Search) -> None:
        self.search = search
        self.started = self.clock_fn()
        if not self.use_live:
            return
        from rich.console import Console

        # soft_wrap: the plain trial lines printed above the display wrap as the terminal wraps them.
        self._live = _fresh_live()(console=self.console or Console(soft_wrap=True), get_renderable=self.render, transient=True,
                          refresh_per_second=self.refresh_per_second, redirect_stdout=True, redirect_stderr=True)
        self._live.start()

    def on_trial_begin(self, trial: Trial, spec: TrialSpec, worker: str | None) -> None:
        target = int(trial.budget) if trial.budget is not None else self.epochs_per_trial
        self.running[trial.id] = _Running(trial, worker, spec.initial_epoch, target, spec.initial_epoch,
                                          self.clock_fn())

    def on_epoch_end(self, trial: Trial, epoch: int, metrics: Mapping[str, float], value: float | None) -> None:
        running = self.running.get(trial.id)
        if running is None:
            return
        now = self.clock_fn()
        epochs = max(1, int(epoch) - running.epoch)
        if running.first:  # build, compile and tracing happen before it: its own measurement
            self.first_epochs.append((now - running.last_tick, epochs))
            del self.first_epochs[:-_PACE_WINDOW]
            running.first = False
        else:
            self.epoch_seconds.extend([(now - running.last_tick) / epochs] * epochs)
            del self.epoch_seconds[:-_PACE_WINDOW]
        running.epoch, running.last_tick = max(running.epoch, int(epoch)), now
        running.figures = {k: float(v) for k, v in metrics.items() if k in RUN_FIGURES and is_finite(v)}

    def on_trial_end(self, trial: Trial, outcome: TrialOutcome) -> None:
        running = self.running.pop(trial.id, None)
        if running is not None and outcome.epochs_done:
            self.finished_epochs.append(max(0, outcome.epochs_done - running.initial_epoch))
        if self._live is not None:
            self._live.refresh()  # the trial leaves the running rows now, not at the next tick

    def on_trial_interrupted(self, trial: Trial, reason: str) -> None:
        self.running.pop(trial.id, None)

    def on_trial_retried(self, trial: Trial, reason: str, attempt: int) -> None:
        self.running.pop(trial.id, None)  # it starts again on another worker: on_trial_begin follows

    def on_trial_rerun(self, trial: Trial, error: str, run: int) -> None:
        self.running.pop(trial.id, None)

    def on_search_exit(self, search: Search, error: BaseException | None) -> None:
        if self._live is not None:
            self._live.stop()
            self._live = None

    # ------------------------------------------------------------ what is shown
    def eta(self) -> float | None:
        search = self.search
        if search is None:
            return None
        oracle = search.oracle
        measured = self.finished_epochs
        per_trial = sum(measured) / len(measured) if measured else float(self.epochs_per_trial)
        total = getattr(oracle, "total_epochs", None)
        running_left = [max(0, r.target - r.epoch) for r in self.running.values()]
        done = sum(1 for t in oracle.trials.values() if t.done)
        left = remaining_epochs(total_epochs=total, epochs_spent=self._epochs_spent(), max_trials=oracle.max_trials,
                                trials_done=done, running_left=running_left, epochs_per_trial=per_trial)
        if left is None:
            return None
        if total:  # a budgeted plan: its runs still to start, at the epochs a run has trained so far
            not_started = max(0.0, left - sum(running_left)) / max(per_trial, 1.0)
        else:
            not_started = float(max(0, (oracle.max_trials or 0) - done - len(self.running)))
        starts_left = not_started + sum(1 for r in self.running.values() if r.first)
        only_first = per_trial <= 1 and all(r.first or r.target <= r.epoch for r in self.running.values())
        pace, start_cost = pace_and_start_cost(self.epoch_seconds, self.first_epochs, only_first)
        return eta_seconds(left, pace, search.executor.slots, starts_left, start_cost)

    def _epochs_spent(self) -> int:
        spent = self.search.epochs_spent if self.search is not None else 0
        return spent + sum(max(0, r.epoch - r.initial_epoch) for r in self.running.values())

    def render(self) -> RenderableType:
        from rich.console import Group
        from rich.progress_bar import ProgressBar
        from rich.table import Table
        from rich.text import Text

        search = self.search
        if search is None:
            return Text("archsearch: starting")
        oracle = search.oracle
        total = getattr(oracle, "total_epochs", None)
        done = sum(1 for t in oracle.trials.values() if t.done)
        if total:
            completed, of, unit = self._epochs_spent(), int(total), "epochs"
        else:
            completed, of, unit = done, oracle.max_trials, "trials"
        head = Table.grid(padding=(0, 1))
        head.add_row(
            Text(f"{oracle.name}", style="bold"),
            Text(f"{completed}/{of} {unit}" if of else f"{completed} {unit}"),
            ProgressBar(total=float(of or 1), completed=float(min(completed, of or 0)), width=30),
            Text(f"elapsed {clock(self.clock_fn() - self.started)}  ETA {clock(self.eta())}"),
        )
        objective = oracle.objective
        if objective.is_pareto:  # no one best: the front's size, and its best trial by the main objective
            front = oracle.best_trials()
            name = objective.monitor
            best = sorted(front, key=lambda t: (-objective.sign * t.value, t.id)) if front else []
            prefix = f"front {len(front)} trial{'s' if len(front) != 1 else ''}, best "
        else:
            best, name, prefix = oracle.best_trials(1), objective.name, "best "
        best_line = (Text(f"{prefix}{name}={best[0].value:.4f} (trial {best[0].id})", style="green")
                     if best and is_finite(best[0].value) else Text(f"{prefix}{name}: -"))
        rows = Table.grid(padding=(0, 2))
        for running in sorted(self.running.values(), key=lambda r: (r.worker or "", r.trial.id)):
            values = " ".join(f"{k}={_short(v)}" for k, v in running.trial.hparams.items())
            rows.add_row(Text(running.worker or "trial", style="cyan"), Text(f"trial {running.trial.id}"),
                         Text(f"epoch {running.epoch}/{running.target}"), Text(speed_text(running.figures)),
                         Text(values, overflow="ellipsis", no_wrap=True))
        parts: list[Any] = [head, best_line]
        if self.running:
            parts.append(rows)
        elif oracle.finished:
            parts.append(Text("finishing: stopping the workers, then the summary and the export", style="dim"))
        return Group(*parts)


def speed_text(figures: Mapping[str, float] | None) -> str:
    """A running trial's last epoch's figures, e.g. ``GPU 87% 5.2 GB 3,400 samples/s`` (GPU parts only where
    NVML measured them; empty before the first epoch)."""
    figures = figures or {}
    parts = []
    if "gpu_utilization" in figures:
        gpu = f"GPU {figures['gpu_index']:.0f}" if "gpu_index" in figures else "GPU"
        parts.append(f"{gpu} {figures['gpu_utilization']:.0f}%")
    if "gpu_memory_mb" in figures:
        parts.append(f"{figures['gpu_memory_mb'] / 1024:.1f} GB")
    if "samples_per_second" in figures:
        parts.append(f"{figures['samples_per_second']:,.0f} samples/s")
    return " ".join(parts)


def _short(v: Any) -> str:
    return f"{v:.4g}" if isinstance(v, float) else str(v)


def _fresh_live():
    """rich's ``Live``, but the frame it draws under a printed line is rendered at that moment.

    rich redraws the display under each printed line from the frame of its last refresh (up to half a
    second old): the trial-end line said the new best while the frame under it still showed the old one.
    """
    from rich.live import Live

    class FreshLive(Live):
        def process_renderables(self, renderables):
            if self.is_started and self.console.is_interactive:
                with self._lock:
                    self._live_render.set_renderable(self.renderable)
            return super().process_renderables(renderables)

    return FreshLive
