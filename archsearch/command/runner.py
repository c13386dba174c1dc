"""The second trial runner: a trial is a run of the user's own training program (``trial=command``).

:class:`CommandRunner` implements :class:`~archsearch.core.trial_runner.TrialRunner`, so the oracles, the
driver, the executors (a slot per worker process, GPU per slot, Ray), the store, pruning, resume, the report
and the loggers are the same code as for Keras trials.  It starts the program with the trial's values
(:mod:`archsearch.command.arguments`), watches what it reports while it runs
(:mod:`archsearch.command.metrics`: stdout lines, the cloud service's hypertune file, TensorBoard events,
the client), hands every epoch to the driver — which may prune it — and tells the outcomes apart:
completed, failed (exit status and last lines), no_metric (exit 0, objective never seen), timeout,
infeasible (exit status 77 or ``archsearch.report_infeasible``), pruned, interrupted.

Checkpoints are the program's own: it saves and reloads in ``ARCHSEARCH_CHECKPOINT_DIR``.  The runner keeps
a small marker per trial (``resume.json``, the engine's "checkpoint" of this runner) saying which folder
and which epoch the trial reached, so a trial continued after a crash, or promoted by ASHA/Hyperband to a
larger budget, is started again on the same folder with ``ARCHSEARCH_INITIAL_EPOCH`` set.
"""

from __future__ import annotations

import json
import logging
import os
import queue
import shutil
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from archsearch.command import EXIT_INFEASIBLE
from archsearch.command.arguments import trial_environment, value_arguments
from archsearch.command.program import Program, describe_exit
from archsearch.command.settings import CommandSettings
from archsearch.core.atomic import write_text
from archsearch.core.checkpoints import TrialFiles
from archsearch.core.objective import Objective, is_finite
from archsearch.core.trial import COMPLETED, FAILED, PRUNED, Trial, TrialOutcome
from archsearch.core.trial_runner import RunnerNeeds
from archsearch.errors import ConfigError

log = logging.getLogger("archsearch")

POLL_SECONDS = 0.2  # how often the files a program writes (hypertune, the client's) are read
FOLDER_POLL_SECONDS = 1.0  # TensorBoard events: a walk of the trial's folder, so less often


class CommandTrialFiles(TrialFiles):
    """A command trial's files in ``trials/trial_NNNN/``: the program's output, its metric files, its
    checkpoint folder, and the marker the engine reads as this runner's checkpoint."""

    def checkpoint(self, trial_id: int) -> Path:
        return self.trial_dir(trial_id) / "resume.json"

    def program_checkpoints(self, trial_id: int) -> Path:
        return self.trial_dir(trial_id) / "checkpoint"

    def output_log(self, trial_id: int) -> Path:
        return self.trial_dir(trial_id) / "output.log"

    def metrics_file(self, trial_id: int) -> Path:
        return self.trial_dir(trial_id) / "metrics.jsonl"

    def hypertune_file(self, trial_id: int) -> Path:
        return self.trial_dir(trial_id) / "hypertune.metric"

    def stop_file(self, trial_id: int) -> Path:
        return self.trial_dir(trial_id) / "STOP"


@dataclass
class Epochs:
    """The epochs a trial has reported so far, in the driver's numbering (from 1)."""

    objective: Objective
    done: int = 0  # the last epoch handed to the driver
    offset: int | None = None  # added to the program's steps: 1 when it counts from 0
    pending: dict[str, float] = field(default_factory=dict)  # metrics seen before the objective of their epoch
    history: list[tuple[int, dict[str, float]]] = field(default_factory=list)
    seen: set[str] = field(default_factory=set)
    latest: dict[str, float] = field(default_factory=dict)  # every metric's last value, whenever it came
    infeasible: str | None = None

    def add(self, report: Any) -> tuple[int, dict[str, float]] | None:
        """A report from the program; the epoch it completes, or None (no objective in it, or an old epoch)."""
        if report.infeasible is not None:
            self.infeasible = str(report.infeasible) or "the program said so"
            return None
        metrics = {str(k): float(v) for k, v in report.metrics.items()}
        self.seen.update(metrics)
        self.latest.update(metrics)
        # An epoch completes with its objective's (first) metric; the other parts of a sum or a front may
        # have come earlier (a size reported once at the start): their last values go with it.
        carried = {n: self.latest[n] for n in self.objective.metric_names if n in self.latest}
        if self.objective.metric_names[0] not in metrics or \
                self.objective.value_from({**carried, **self.pending, **metrics}) is None:
            self.pending.update(metrics)
            return None
        if report.step is None:
            epoch = self.done + 1
        else:
            if self.offset is None:
                self.offset = 1 if int(report.step) == 0 and self.done == 0 else 0
            epoch = int(report.step) + self.offset
        if epoch <= self.done:  # a resumed program reporting an epoch the store already holds
            return None
        record = {**carried, **self.pending, **metrics}
        self.pending = {}
        self.done = epoch
        self.history.append((epoch, record))
        return epoch, record

    def chosen(self, measurement: str) -> tuple[int, dict[str, float]] | None:
        """The epoch whose objective is the trial's value: the best one, or the last (``trial.measurement``)."""
        scored = [(e, m) for e, m in self.history if is_finite(self.objective.value_from(m))]
        if not scored:
            return self.history[-1] if self.history else None
        if measurement == "last":
            return self.history[-1]
        best = scored[0]
        for epoch, metrics in scored[1:]:
            if self.objective.better(self.objective.value_from(metrics), self.objective.value_from(best[1])):
                best = (epoch, metrics)
        return best

    def outcome_metrics(self, chosen: tuple[int, dict[str, float]] | None) -> dict[str, float]:
        """The chosen epoch's metrics, with the last value of any metric reported outside it.

        A program may report a measure once (``params`` at the start, ``latency_ms`` after training):
        a Pareto objective or a constraint on it must still find it in the trial's metrics."""
        chosen_metrics = dict(chosen[1]) if chosen else {}
        return {**{k: v for k, v in self.latest.items() if k not in chosen_metrics}, **chosen_metrics}


class CommandRunner:
    """Runs ``settings.command`` once per trial and reads back what it reports."""

    needs = RunnerNeeds(gpu=True)  # a program may use a GPU: each worker is given its own, as Keras trials are

    def __init__(self, workdir: str | Path, settings: CommandSettings, objective: Objective,
                 start_dir: str | Path | None = None) -> None:
        self.files = CommandTrialFiles(workdir)
        self.settings = settings
        self.objective = objective
        # Relative paths in the command mean what they meant where archsearch was started.
        self.cwd = Path(settings.cwd or start_dir or os.getcwd()).resolve()

    def run(self, trial: Trial, hp: Any, reporter: Any = None, resume_checkpoint: Path | None = None,
            initial_epoch: int = 0, history: Sequence[Mapping[str, float]] = ()) -> TrialOutcome:
        values = active_values(hp)
        trial_dir = self.files.trial_dir(trial.id)
        checkpoints, epochs = self.prepare(trial, resume_checkpoint, initial_epoch, history)
        argv = [*self.settings.command, *value_arguments(self.settings, values, trial.budget)]
        env = trial_environment(self.settings, trial_id=trial.id, trial_dir=trial_dir, checkpoint_dir=checkpoints,
                                values=values, metrics_file=self.files.metrics_file(trial.id),
                                hypertune_file=self.files.hypertune_file(trial.id),
                                stop_file=self.files.stop_file(trial.id), budget=trial.budget,
                                initial_epoch=initial_epoch)
        try:
            program = Program(argv, self.cwd, env, self.files.output_log(trial.id))
        except FileNotFoundError:
            raise ConfigError("trial.command", f"{argv[0]!r} was not found (from {self.cwd})",
                              "give the program's path, or the interpreter first: trial.command='python train.py'"
                              ) from None
        except PermissionError:
            raise ConfigError("trial.command", f"{argv[0]!r} is not executable",
                              f"chmod +x {argv[0]}, or run it through its interpreter (python {argv[0]})") from None
        sources = Collectors(self, trial.id)
        try:
            ended = Watch(self, trial, program, epochs, checkpoints, sources).until_done(reporter)
        finally:
            _remove_if_empty(checkpoints)  # a program that saves nothing leaves no empty folder behind
        return self._outcome(trial, program, epochs, ended, sources)

    def command_line(self, trial: Trial) -> list[str]:
        """The program's arguments for ``trial`` (``best/command.sh`` runs the best one again)."""
        values = {k: v for k, v in trial.hparams.items() if not k.startswith("tuner/")}
        return [*self.settings.command, *value_arguments(self.settings, values, trial.budget)]

    # ------------------------------------------------------------ checkpoints
    def prepare(self, trial: Trial, resume_checkpoint: Path | None, initial_epoch: int,
                history: Sequence[Mapping[str, float]]) -> tuple[Path, Epochs]:
        """The trial's folder made and cleared of an earlier run's report files (their epochs are in the store
        already); the checkpoint folder it saves in; and its epochs so far (their best still counts)."""
        self.files.trial_dir(trial.id).mkdir(parents=True, exist_ok=True)
        checkpoints, offset = self._checkpoint_folder(trial.id, resume_checkpoint, initial_epoch)
        for stale in (self.files.stop_file(trial.id), self.files.metrics_file(trial.id),
                      self.files.hypertune_file(trial.id)):
            stale.unlink(missing_ok=True)
        epochs = Epochs(self.objective, done=int(initial_epoch), offset=offset)
        for record in history:
            epochs.history.append((int(record["epoch"]), {k: float(v) for k, v in record.items()
                                                          if k != "epoch" and isinstance(v, (int, float))}))
        return checkpoints, epochs

    def _checkpoint_folder(self, trial_id: int, resume_checkpoint: Path | None,
                           initial_epoch: int) -> tuple[Path, int | None]:
        """The folder the program saves in: its own, or (promoted, resumed) the one its marker names; and
        how its steps map to epochs, when the marker knows (a program counting from 0).

        A trial that starts from scratch (epoch 0, no marker) gets an empty folder: a program that finds
        a checkpoint there would otherwise continue a run the engine has forgotten."""
        own = self.files.program_checkpoints(trial_id)
        if resume_checkpoint is not None:
            try:
                marker = json.loads(Path(resume_checkpoint).read_text())
                folder = Path(marker["checkpoint_dir"])
                folder.mkdir(parents=True, exist_ok=True)
                offset = marker.get("step_offset")
                return folder, None if offset is None else int(offset)
            except (OSError, ValueError, KeyError, TypeError):
                log.warning("trial %s: cannot read %s; the program starts in its own folder", trial_id,
                            resume_checkpoint)
        elif initial_epoch == 0 and own.exists():
            shutil.rmtree(own, ignore_errors=True)
        own.mkdir(parents=True, exist_ok=True)
        return own, None

    def _mark(self, trial_id: int, checkpoints: Path, epochs: Epochs) -> None:
        """``resume.json``: where this trial continues from, written after each epoch is recorded."""
        write_text(self.files.checkpoint(trial_id),
                   json.dumps({"checkpoint_dir": str(checkpoints.resolve()), "epoch": epochs.done,
                               "step_offset": epochs.offset}))

    # ------------------------------------------------------------ the outcome
    def _outcome(self, trial: Trial, program: Program, epochs: Epochs, ended: str,
                 sources: Collectors) -> TrialOutcome:
        code = program.returncode if program.returncode is not None else -9
        chosen = epochs.chosen(self.settings.measurement)
        value = None if chosen is None else self.objective.value_from(chosen[1])
        common = {"epochs_done": epochs.done, "duration": program.seconds, "fit_seconds": program.seconds,
                  "hparams": dict(trial.hparams)}
        result = {"value": value, "metrics": epochs.outcome_metrics(chosen),
                  "best_epoch": chosen[0] if chosen else None}
        if ended == "pruned":
            return TrialOutcome(status=PRUNED, **result, **common)
        if epochs.infeasible is not None or code == EXIT_INFEASIBLE:
            reason = epochs.infeasible or _last_line(program) or f"exit status {EXIT_INFEASIBLE}"
            return TrialOutcome(status=FAILED, error=f"infeasible: {reason}", failure_kind="infeasible", **common)
        if ended == "timeout":
            return TrialOutcome(status=FAILED, failure_kind="timeout", **common, error=(
                f"ran past trial.timeout={self.settings.timeout:g} s and was stopped; see {program.log_path}"))
        if code != 0:
            last = _last_line(program)
            return TrialOutcome(status=FAILED, failure_kind="error", **common, error=(
                f"the program ended with {describe_exit(code)}" + (f": {last.strip()}" if last else "")
                + f" (its output: {program.log_path})\nits last lines:\n" + "\n".join(program.tail)))
        if not epochs.history:
            return TrialOutcome(status=FAILED, failure_kind="no_metric", **common,
                                error=self._no_metric_message(epochs, sources))
        return TrialOutcome(status=COMPLETED, **result, **common)

    def _no_metric_message(self, epochs: Epochs, sources: Collectors) -> str:
        seen = ", ".join(sorted(epochs.seen)) or "none"
        places = "; ".join(sources.where_looked())
        missing = [n for n in self.objective.metric_names if n not in epochs.seen] or list(self.objective.metric_names)
        name = missing[0]
        return (f"the program exited 0 but never reported the objective {', '.join(map(repr, missing))} (metrics it "
                f"did report: {seen}); looked in: {places}. Print '{name}=<value>', call "
                f"archsearch.report({name}=...), or set objective= to a metric it reports")


class Collectors:
    """The collectors of one trial's metrics (archsearch.command.metrics); ``extra``: more files to read."""

    def __init__(self, runner: CommandRunner, trial_id: int, extra: list[Any] | None = None) -> None:
        from archsearch.command import metrics as M

        sources = runner.settings.metrics
        files = runner.files
        # A pattern with only a ``value`` group reads the objective.
        single = sources.pattern is not None and "(?P<name>" not in sources.pattern
        self.stdout = (M.StdoutMetrics(sources.pattern, name=runner.objective.metric_names[0] if single else None)
                       if sources.stdout else None)
        self.files: list[Any] = list(extra or [])
        self.folders: list[Any] = []  # walked, so read at most every FOLDER_POLL_SECONDS
        self._walked = -FOLDER_POLL_SECONDS
        if sources.client:
            self.files.append(M.ClientFile(files.metrics_file(trial_id)))
        if sources.hypertune:
            self.files.append(M.HypertuneFile(files.hypertune_file(trial_id)))
        if sources.tensorboard is not None:
            self.folders.append(M.TensorBoardEvents(files.trial_dir(trial_id) / sources.tensorboard))

    def where_looked(self) -> list[str]:
        return [s.where for s in ([self.stdout] if self.stdout else []) + self.files + self.folders]

    def due(self, final: bool) -> list[Any]:
        """The sources to read now: the files always, the folders every FOLDER_POLL_SECONDS (and at the end)."""
        now = time.monotonic()
        if final or now - self._walked >= FOLDER_POLL_SECONDS:
            self._walked = now
            return self.files + self.folders
        return self.files


class Watch:
    """Runs alongside one program: reads its reports, hands each epoch to the driver, stops it when told."""

    def __init__(self, runner: CommandRunner, trial: Trial, program: Program, epochs: Epochs,
                 checkpoints: Path, sources: Collectors) -> None:
        self.runner, self.trial, self.program, self.epochs, self.checkpoints = runner, trial, program, epochs, checkpoints
        self.sources = sources
        self._held: list[str] = []  # a line taken while waiting, read first next time

    def until_done(self, reporter: Any) -> str:
        """``exited``, ``pruned`` or ``timeout``; a Ctrl-C (KeyboardInterrupt) stops the program, then goes on up."""
        settings = self.runner.settings
        try:
            while True:
                exited = self.program.returncode is not None
                if exited:
                    self.program.finish_output()
                if self._take_reports(reporter, final=exited):
                    self._stop()
                    return "pruned"
                if exited:
                    return "exited"
                if settings.timeout is not None and self.program.seconds > settings.timeout:
                    self._stop()
                    return "timeout"
                self._wait_for_output()
        except BaseException:
            self._stop()
            raise

    def _wait_for_output(self) -> None:
        """Until the program prints a line or the poll interval passes (stdout lines are read at once)."""
        try:
            line = self.program.lines.get(timeout=POLL_SECONDS)
        except queue.Empty:
            return
        if line is None:  # its output ended: it is exiting, so wait for that rather than poll
            self.program.wait(POLL_SECONDS)
        else:
            self._held.append(line)

    def _take_reports(self, reporter: Any, final: bool = False) -> bool:
        """Every report that arrived; True when the driver says stop (pruned)."""
        reports: list[Any] = []
        lines, self._held = self._held, []
        while True:
            try:
                lines.append(self.program.lines.get_nowait())
            except queue.Empty:
                break
        for line in lines:
            if line is not None and self.sources.stdout is not None:
                reports += self.sources.stdout.feed(line)
        for source in self.sources.due(final):
            try:
                reports += source.poll()
            except Exception as exc:  # noqa: BLE001 - one unreadable source must not lose the others
                log.warning("trial %s: could not read %s: %s", self.trial.id, source.where, exc)
        for report in reports:
            completed = self.epochs.add(report)
            if completed is None:
                continue
            epoch, metrics = completed
            self.runner._mark(self.trial.id, self.checkpoints, self.epochs)
            value = self.runner.objective.value_from(metrics)
            if reporter is not None and reporter.on_epoch(self.trial, epoch, metrics, value):
                return True
        return False

    def _stop(self) -> None:
        if self.program.returncode is None:
            self.program.stop(self.runner.files.stop_file(self.trial.id), self.runner.settings.grace_period)
        self.program.finish_output(timeout=5.0)


def active_values(hp: Any) -> dict[str, Any]:
    """The values this trial's program receives: those of its active parameters (a conditional one whose
    parent has another value is left out, as the cloud service leaves it out)."""
    values = dict(getattr(hp, "values", hp))
    is_active = getattr(hp, "is_active", None)
    if is_active is None:
        return values
    active = {}
    for name, value in values.items():
        if name.startswith("tuner/"):  # KerasTuner's Hyperband bookkeeping (tuner/epochs, ...), not a value
            continue
        try:
            keep = is_active(name)
        except (KeyError, ValueError):
            keep = True
        if keep:
            active[name] = value
    return active


def _remove_if_empty(folder: Path) -> None:
    try:
        folder.rmdir()
    except OSError:  # it holds the program's checkpoint (or is gone)
        pass


def _last_line(program: Program) -> str | None:
    return program.tail[-1] if program.tail else None
