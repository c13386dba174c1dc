"""A trial that is one Hydra job: launched through the app's own launcher, watched while it runs.

:class:`HydraJobRunner` is a :class:`~archsearch.core.trial_runner.TrialRunner` (the command runner's
sibling: same files, markers, metric collectors and epoch bookkeeping, archsearch/command/runner.py).  It
hands one job to ``launcher.launch`` in a thread of its own — basic, joblib, submitit, Ray: whichever the app
configured, unchanged — and meanwhile reads what the job reports through the client
(``archsearch.report``, ``ARCHSEARCH_METRICS_FILE``) or writes to ``hydra.sweeper.metrics_file``, handing
every epoch to the driver, which may prune it: the job's ``archsearch.should_stop()`` then turns True.
The job's environment reaches it through ``hydra.job.env_set``, which Hydra applies wherever the job runs.
When it ends, its return value (a number, or a dict of metrics) is its final result; an exception is a
failed trial with the exception recorded, never a score of infinity.
"""

from __future__ import annotations

import json
import logging
import queue
import threading
import time
from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from archsearch.cli.console_script import hydra_quoted
from archsearch.command import arguments as A
from archsearch.command.runner import Collectors, CommandRunner, CommandTrialFiles, Epochs, Watch, active_values
from archsearch.command.settings import MetricSources
from archsearch.core.objective import Objective
from archsearch.core.trial import COMPLETED, FAILED, PRUNED, Trial, TrialOutcome
from archsearch.core.trial_runner import RunnerNeeds

log = logging.getLogger("archsearch")


@dataclass(frozen=True)
class JobSettings:
    """What the watcher reads of a job's settings (the command runner's names, so the two share it)."""

    measurement: str = "best"
    budget_param: str | None = None  # a config key that receives the trial's epoch budget
    metrics_file: str | None = None  # a file the job writes in its output folder
    metrics: MetricSources = field(default_factory=lambda: MetricSources(stdout=False, tensorboard=None))
    timeout: float | None = None
    grace_period: float = 0.0


class _LaunchedJob:
    """One job being launched, shaped as the watcher expects a program to be (archsearch/command/program.py)."""

    def __init__(self, launcher: Any, overrides: list[str], job_idx: int, output_dir: Path) -> None:
        self.lines: queue.Queue[str | None] = queue.Queue()
        self.tail: deque[str] = deque(maxlen=1)
        self.log_path = output_dir
        self.started = time.monotonic()
        self.result: Any = None
        self.error: BaseException | None = None
        self._thread = threading.Thread(target=self._launch, args=(launcher, overrides, job_idx),
                                        name=f"archsearch-job-{job_idx}", daemon=True)
        self._thread.start()

    def _launch(self, launcher: Any, overrides: list[str], job_idx: int) -> None:
        try:
            returns = launcher.launch([overrides], initial_job_idx=job_idx)
            self.result = returns[0] if returns else None
        except BaseException as exc:  # noqa: BLE001 - the launcher itself failed: the trial says why
            self.error = exc
        finally:
            self.lines.put(None)

    @property
    def returncode(self) -> int | None:
        return None if self._thread.is_alive() else 0

    @property
    def seconds(self) -> float:
        return time.monotonic() - self.started

    def wait(self, timeout: float) -> None:
        self._thread.join(timeout)

    def finish_output(self, timeout: float = 30.0) -> None:
        return None

    def stop(self, stop_file: Path, grace_period: float) -> None:
        """A launched job cannot be killed from here: it is asked to stop (``archsearch.should_stop()``), and
        its slot stays taken until it ends (a job that never asks runs to its end)."""
        try:
            stop_file.touch()
        except OSError:
            pass
        self._thread.join()


class HydraJobRunner(CommandRunner):
    """Runs each trial as one job of the app, through ``launcher``, with the trial's values as overrides."""

    needs = RunnerNeeds()  # the launcher places the job; this process only waits

    def __init__(self, workdir: str | Path, launcher: Any, sweep_space: Any, objective: Objective,
                 settings: JobSettings, sweep_dir: Path, job_subdir: str | None = None) -> None:
        self.files = CommandTrialFiles(workdir)
        self.launcher = launcher
        self.sweep_space = sweep_space
        self.objective = objective
        self.settings = settings  # type: ignore[assignment]  (read as the command runner's, duck-typed)
        self.sweep_dir = Path(sweep_dir)
        self.job_subdir = job_subdir
        self.cwd = self.sweep_dir

    def job_overrides(self, trial: Trial, values: Mapping[str, Any], checkpoints: Path, initial_epoch: int) -> list[str]:
        """The job's overrides: the fixed ones, the trial's values, its budget, and archsearch's environment."""
        overrides = list(self.sweep_space.overrides(values))
        if trial.budget is not None and self.settings.budget_param:
            overrides.append(f"{self.settings.budget_param}={int(trial.budget)}")
        env = {
            A.TRIAL_ID: str(trial.id), A.TRIAL_DIR: str(self.files.trial_dir(trial.id).resolve()),
            A.CHECKPOINT_DIR: str(checkpoints.resolve()), A.VALUES: json.dumps(dict(values), default=str),
            A.METRICS_FILE: str(self.files.metrics_file(trial.id).resolve()),
            A.STOP_FILE: str(self.files.stop_file(trial.id).resolve()), A.INITIAL_EPOCH: str(int(initial_epoch)),
            A.CLOUD_TRIAL_ID: str(trial.id), A.CLOUD_METRIC_FILE: str(self.files.hypertune_file(trial.id).resolve()),
        }
        if trial.budget is not None:
            env[A.BUDGET] = str(int(trial.budget))
        overrides += [f"++hydra.job.env_set.{name}={hydra_quoted(value)}" for name, value in env.items()]
        return overrides

    def command_line(self, trial: Trial) -> list[str]:
        return self.sweep_space.overrides(trial.hparams)  # a tuner's own values (tuner/epochs) are left out there

    def job_dir(self, trial_id: int) -> Path:
        """Where Hydra puts the job's output: ``hydra.sweep.subdir`` (by default the job's number)."""
        return self.sweep_dir / (self.job_subdir.replace("${hydra.job.num}", str(trial_id)) if self.job_subdir
                                 else str(trial_id))

    def run(self, trial: Trial, hp: Any, reporter: Any = None, resume_checkpoint: Path | None = None,
            initial_epoch: int = 0, history: Sequence[Mapping[str, float]] = ()) -> TrialOutcome:
        from archsearch.command import metrics as M

        values = active_values(hp)
        checkpoints, epochs = self.prepare(trial, resume_checkpoint, initial_epoch, history)
        extra = []
        if self.settings.metrics_file:
            path = self.job_dir(trial.id) / self.settings.metrics_file
            path.unlink(missing_ok=True)  # an earlier run of this job's
            reader = M.HypertuneFile if path.suffix == ".metric" or "hypertune" in path.name else M.ClientFile
            extra.append(reader(path))
        collectors = Collectors(self, trial.id, extra=extra)
        job = _LaunchedJob(self.launcher, self.job_overrides(trial, values, checkpoints, initial_epoch), trial.id,
                           self.job_dir(trial.id))
        ended = Watch(self, trial, job, epochs, checkpoints, collectors).until_done(reporter)
        return self._job_outcome(trial, job, epochs, ended, reporter)

    def _job_outcome(self, trial: Trial, job: _LaunchedJob, epochs: Epochs, ended: str, reporter: Any) -> TrialOutcome:
        from hydra.core.utils import JobStatus

        common = {"duration": job.seconds, "fit_seconds": job.seconds, "hparams": dict(trial.hparams)}
        if job.error is not None:
            return TrialOutcome(status=FAILED, failure_kind="error", epochs_done=epochs.done, **common,
                                error=f"the launcher failed: {type(job.error).__name__}: {job.error}")
        result = job.result
        if result is not None and result.status == JobStatus.FAILED:
            exc = result._return_value
            return TrialOutcome(status=FAILED, failure_kind="error", epochs_done=epochs.done, **common,
                                error=f"the job raised {type(exc).__name__}: {exc}")
        if epochs.infeasible is not None:
            return TrialOutcome(status=FAILED, failure_kind="infeasible", epochs_done=epochs.done, **common,
                                error=f"infeasible: {epochs.infeasible}")
        miscounted = _miscounted(None if result is None else result.return_value, self.objective)
        if miscounted:
            return TrialOutcome(status=FAILED, failure_kind="no_metric", epochs_done=epochs.done, **common,
                                error=miscounted)
        returned = _returned_metrics(None if result is None else result.return_value, self.objective)
        if returned and ended != "pruned":
            # The task function's return value is the trial's result; an epoch for it unless it was reported.
            final = epochs.done if epochs.history and epochs.history[-1][0] == epochs.done else None
            if final is None:
                epoch = max(epochs.done + 1, int(trial.budget or 0))
                epochs.history.append((epoch, returned))
                epochs.done = epoch
                if reporter is not None:
                    reporter.on_epoch(trial, epoch, returned, self.objective.value_from(returned))
            else:
                epochs.history[-1] = (final, {**epochs.history[-1][1], **returned})
            value = self.objective.value_from(returned)
            if value is not None:
                return TrialOutcome(status=COMPLETED, value=value, metrics=dict(epochs.history[-1][1]),
                                    epochs_done=epochs.done, best_epoch=epochs.done, **common)
        chosen = epochs.chosen(self.settings.measurement)
        value = None if chosen is None else self.objective.value_from(chosen[1])
        if ended == "pruned":
            return TrialOutcome(status=PRUNED, value=value, metrics=dict(chosen[1]) if chosen else {},
                                epochs_done=epochs.done, best_epoch=chosen[0] if chosen else None, **common)
        if chosen is None or value is None:
            seen = ", ".join(sorted(epochs.seen | set(returned or {}))) or "none"
            return TrialOutcome(status=FAILED, failure_kind="no_metric", epochs_done=epochs.done, **common, error=(
                f"the job returned {None if result is None else type(result.return_value).__name__} and never "
                f"reported the objective {', '.join(map(repr, self.objective.metric_names))} (metrics seen: {seen}); "
                f"return it from the task function (a number or a dict; one value per direction in a Pareto sweep), "
                f"or call archsearch.report({self.objective.metric_names[0]}=...)"))
        return TrialOutcome(status=COMPLETED, value=value, metrics=dict(chosen[1]), epochs_done=epochs.done,
                            best_epoch=chosen[0], **common)


def _miscounted(value: Any, objective: Objective) -> str | None:
    """A Pareto sweep's task function returning a list or tuple of the wrong length: the trial's error."""
    if not objective.is_pareto or not isinstance(value, (list, tuple)):
        return None
    names = [p.name for p in objective.components]
    if len(value) == len(names):
        return None
    return (f"the job returned {len(value)} values for the {len(names)} objectives {names} "
            "(hydra.sweeper.direction): return one value per direction, in its order")


def _returned_metrics(value: Any, objective: Objective) -> dict[str, float]:
    """The task function's return value as metrics: a number is the objective, a dict its metrics; in a Pareto
    sweep a list or tuple gives each objective's value in order (Optuna's multi-objective return value)."""
    if value is None:
        return {}
    if objective.is_pareto and isinstance(value, (list, tuple)) and not _miscounted(value, objective):
        try:
            return {p.name: float(item) for p, item in zip(objective.components, value)}
        except (TypeError, ValueError):
            return {}
    if isinstance(value, Mapping):
        out = {}
        for name, item in value.items():
            try:
                out[str(name)] = float(item)
            except (TypeError, ValueError):
                continue
        return out
    if isinstance(value, (list, tuple)) and len(value) == 1:
        value = value[0]
    try:
        return {objective.name: float(value)}
    except (TypeError, ValueError):
        return {}
