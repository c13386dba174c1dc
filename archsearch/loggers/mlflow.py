"""``logger=mlflow``: one parent run for the search, one nested run per trial.

The parent run holds the config (as parameters, and ``config.yaml``), the objective, the best
score so far (a metric whose step counts the finished trials), and at the end the best model and
``hparams.yaml`` as artifacts.  Each trial's nested run (tag ``archsearch.trial_id``) holds its
hyperparameters, every epoch's metrics with the epoch as step, its ``score``, status and duration.

A resumed search continues the same parent run (its id is kept in ``trials.db``) and a trial that
continues reuses its nested run, so nothing is logged twice.  ``logger.mlflow.tracking_uri``:
default a file store in ``<run>/mlruns`` (MLflow >= 3.7 refuses file stores unless
``MLFLOW_ALLOW_FILE_STORE=true``, which is set for that default; ``mlflow-skinny`` reads and writes
them), or any MLflow URI (``http://...``, ``sqlite:///...`` with the full ``mlflow`` package).
"""

from __future__ import annotations

import logging
import os
import re
import time
from collections.abc import Mapping
from typing import Any

import yaml

from archsearch.errors import ConfigError
from archsearch.loggers.base import SCORE, Logger, is_number, trial_folder
from archsearch.core.trial import COMPLETED, FAILED, PRUNED

log = logging.getLogger("archsearch")

PARENT_META = "mlflow_parent_run"  # trials.db meta: {"run_id", "tracking_uri"} of the search's parent run
TRIAL_TAG = "archsearch.trial_id"
PARENT_TAG = "mlflow.parentRunId"
_BATCH = 100  # MLflow's limit of parameters per log_batch call
_MAX_VALUE = 500  # the shortest parameter value length MLflow versions accept
_TERMINAL = {COMPLETED: "FINISHED", PRUNED: "FINISHED", FAILED: "FAILED"}
# The start-up check's HTTP settings (unless the user set them): one try, a short wait.  MLflow's
# defaults (7 retries with back-off, 120 s each) would keep a wrong URI silent for minutes.
CHECK_ENV = {"MLFLOW_HTTP_REQUEST_MAX_RETRIES": "0", "MLFLOW_HTTP_REQUEST_TIMEOUT": "10"}


class MLflowLogger(Logger):
    name = "mlflow"

    def __init__(self, run_folder, config=None, options=None) -> None:
        super().__init__(run_folder, config, options)
        given = self.options.get("tracking_uri")
        self.tracking_uri = str(given) if given else (self.run_folder / "mlruns").resolve().as_uri()
        self.experiment_name = str(self.options.get("experiment_name") or "archsearch")
        self.client: Any = None
        self.search: Any = None
        self.experiment_id: str | None = None
        self.parent_id: str | None = None  # set once the parent run is ready: every other event needs it
        self._parent_done = False
        self._trial_runs: dict[int, str] = {}  # trial id -> its nested run
        self._open: set[int] = set()  # trials whose nested run is running

    # ------------------------------------------------------------ the search
    def check(self) -> None:
        """Ask the tracking store for the experiment, with one short try: a server that does not
        answer or a URI MLflow cannot use is a ConfigError before training, not two tracebacks
        and a search that logs nothing."""
        from mlflow.tracking import MlflowClient

        self._allow_file_store()
        quick = {name: value for name, value in CHECK_ENV.items() if name not in os.environ}
        os.environ.update(quick)
        try:
            MlflowClient(tracking_uri=self.tracking_uri).get_experiment_by_name(self.experiment_name)
        except Exception as exc:  # MLflow raises many kinds (MlflowException, OSError, ...): all mean unusable
            raise ConfigError(
                "logger.mlflow.tracking_uri",
                f"cannot use {self.tracking_uri!r}: {_first_line(exc)}",
                "start the tracking server, or correct the URI (http://host:port, sqlite:///mlflow.db, a "
                "folder), or leave it unset for a file store in <run>/mlruns",
            ) from None
        finally:
            for name in quick:
                os.environ.pop(name, None)

    def _allow_file_store(self) -> None:
        if self.tracking_uri.startswith("file:") or "://" not in self.tracking_uri:
            os.environ.setdefault("MLFLOW_ALLOW_FILE_STORE", "true")

    def on_search_begin(self, search) -> None:
        self._allow_file_store()
        from mlflow.tracking import MlflowClient

        self.search = search
        self.client = MlflowClient(tracking_uri=self.tracking_uri)
        experiment = self.client.get_experiment_by_name(self.experiment_name)
        experiment_id = experiment.experiment_id if experiment is not None else \
            self.client.create_experiment(self.experiment_name)
        parent_id = self._stored_parent(search.store)
        if parent_id is not None:
            self.client.update_run(parent_id, status="RUNNING")
            self._trial_runs = self._nested_runs(experiment_id, parent_id)
        else:
            objective = search.oracle.objective
            run = self.client.create_run(experiment_id, run_name=self.run_folder.name, tags={
                "archsearch.run_folder": str(self.run_folder.resolve()),
                "archsearch.objective": f"{objective.name} ({objective.direction})",
                "archsearch.tuner": search.oracle.name,
            })
            parent_id = run.info.run_id
            search.store.set_meta(PARENT_META, {"run_id": parent_id, "tracking_uri": self.tracking_uri})
        self._log_params(parent_id, _flatten(self.config))
        self.client.log_text(parent_id, yaml.safe_dump(self.config, sort_keys=False), "config.yaml")
        # Only now: if the tracking store cannot be reached, the trials' events find no run and pass
        # quietly (the failure above was logged once), instead of one traceback per epoch.
        self.experiment_id, self.parent_id = experiment_id, parent_id

    def on_search_end(self, search) -> None:
        self._log_best()
        self._finish_parent("FINISHED")

    def on_results(self, best_dir) -> None:
        if self.parent_id is None:
            return
        for name in ("trials.csv", "epochs.csv"):
            if (self.run_folder / name).exists():
                self.client.log_artifact(self.parent_id, str(self.run_folder / name))
        if best_dir is not None:
            for name in ("model.keras", "hparams.yaml"):
                if (best_dir / name).exists():
                    self.client.log_artifact(self.parent_id, str(best_dir / name), "best")

    def close(self, error: BaseException | None = None) -> None:
        if self.client is None:
            return
        for trial_id in list(self._open):
            self._end_trial_run(trial_id, "KILLED", {"archsearch.status": "interrupted"})
        if error is not None:
            self._log_best()
            self._finish_parent("KILLED" if isinstance(error, KeyboardInterrupt) else "FAILED")

    # ------------------------------------------------------------ trials
    def on_trial_begin(self, trial, spec, worker) -> None:
        if self.parent_id is None:
            return
        run_id = self._trial_runs.get(trial.id)
        tags = {"archsearch.status": "running", **({"archsearch.worker": worker} if worker else {})}
        if run_id is not None:  # a resumed or retried trial continues its own run
            self.client.update_run(run_id, status="RUNNING")
            self._set_tags(run_id, tags)
        else:
            info = {"archsearch.budget": trial.budget, "archsearch.resume_from": trial.resume_from}
            run = self.client.create_run(self.experiment_id, run_name=trial_folder(trial.id), tags={
                PARENT_TAG: self.parent_id, TRIAL_TAG: str(trial.id), **tags,
                **{k: str(v) for k, v in info.items() if v is not None}})
            run_id = self._trial_runs[trial.id] = run.info.run_id
            self._log_params(run_id, trial.hparams)
        self._open.add(trial.id)

    def on_epoch_end(self, trial, epoch, metrics, value) -> None:
        run_id = self._trial_runs.get(trial.id)
        if run_id is not None:
            self._log_metrics(run_id, metrics, int(epoch))

    def on_trial_end(self, trial, outcome) -> None:
        if self.parent_id is None:
            return
        run_id = self._trial_runs.get(trial.id)
        if run_id is None:  # ended without starting (a lost worker's last try): still one run per trial
            self.on_trial_begin(trial, None, None)
            run_id = self._trial_runs[trial.id]
        self._log_params(run_id, trial.hparams)  # a define-by-run builder may have declared more
        final = {SCORE: trial.value, "duration_s": outcome.duration, "epochs_done": outcome.epochs_done}
        self._log_metrics(run_id, final, max(int(outcome.epochs_done), 0))
        tags = {"archsearch.status": trial.status, "archsearch.failure_kind": trial.failure_kind,
                "archsearch.error": (trial.error or "")[:5000] or None}
        self._end_trial_run(trial.id, _TERMINAL.get(trial.status, "FINISHED"), tags)
        self._log_best()

    def on_trial_interrupted(self, trial, reason) -> None:
        self._end_trial_run(trial.id, "KILLED", {"archsearch.status": "interrupted", "archsearch.error": reason})

    def on_trial_rerun(self, trial, error, run) -> None:
        run_id = self._trial_runs.get(trial.id)
        if run_id is not None:
            self._set_tags(run_id, {"archsearch.rerun": str(run), "archsearch.rerun_after": error[:5000]})

    # ------------------------------------------------------------ helpers
    def _stored_parent(self, store) -> str | None:
        stored = store.get_meta(PARENT_META)
        if not isinstance(stored, Mapping) or stored.get("tracking_uri") != self.tracking_uri:
            return None
        try:
            self.client.get_run(stored["run_id"])
        except Exception:  # deleted, or another store: a new parent run
            log.warning("MLflow run %s of this search is gone from %s; starting a new one",
                        stored.get("run_id"), self.tracking_uri)
            return None
        return str(stored["run_id"])

    def _nested_runs(self, experiment_id: str, parent_id: str) -> dict[int, str]:
        runs: dict[int, str] = {}
        token = None
        while True:
            page = self.client.search_runs([experiment_id], filter_string=f"tags.`{PARENT_TAG}` = '{parent_id}'",
                                           max_results=1000, page_token=token)
            for run in page:
                trial_id = run.data.tags.get(TRIAL_TAG)
                if trial_id is not None and trial_id.isdigit():
                    runs.setdefault(int(trial_id), run.info.run_id)
            token = getattr(page, "token", None)
            if not token:
                return runs

    def _end_trial_run(self, trial_id: int, status: str, tags: Mapping[str, Any]) -> None:
        run_id = self._trial_runs.get(trial_id)
        if run_id is None or trial_id not in self._open:
            return
        self._set_tags(run_id, tags)
        self.client.set_terminated(run_id, status)
        self._open.discard(trial_id)

    def _log_best(self) -> None:
        if self.search is None or self.parent_id is None:
            return
        best = self.search.oracle.best_trials(1)
        if not best:
            return
        done = sum(1 for t in self.search.oracle.trials.values() if t.done)
        self._log_metrics(self.parent_id, {f"best_{SCORE}": best[0].value}, done)
        self._set_tags(self.parent_id, {"archsearch.best_trial": str(best[0].id)})

    def _finish_parent(self, status: str) -> None:
        if self.parent_id is not None and not self._parent_done:
            self.client.set_terminated(self.parent_id, status)
            self._parent_done = True

    def _log_params(self, run_id: str, values: Mapping[str, Any]) -> None:
        """Parameters not logged yet (MLflow refuses to change one: a resumed search's new
        values are in its ``config.yaml`` artifact)."""
        from mlflow.entities import Param

        logged = self.client.get_run(run_id).data.params
        new = [Param(str(k)[:250], _text(v)) for k, v in values.items() if str(k)[:250] not in logged]
        for start in range(0, len(new), _BATCH):
            self.client.log_batch(run_id, params=new[start:start + _BATCH])

    def _log_metrics(self, run_id: str, values: Mapping[str, Any], step: int) -> None:
        from mlflow.entities import Metric

        now = int(time.time() * 1000)
        metrics = [Metric(str(k), float(v), now, step) for k, v in values.items() if is_number(v)]
        for start in range(0, len(metrics), 1000):
            self.client.log_batch(run_id, metrics=metrics[start:start + 1000])

    def _set_tags(self, run_id: str, tags: Mapping[str, Any]) -> None:
        from mlflow.entities import RunTag

        given = [RunTag(k, str(v)) for k, v in tags.items() if v is not None]
        if given:
            self.client.log_batch(run_id, tags=given)



def _flatten(data: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(data, Mapping):
        out: dict[str, Any] = {}
        for key, value in data.items():
            out.update(_flatten(value, f"{prefix}{key}."))
        return out
    return {prefix[:-1]: data} if prefix else {}


def _first_line(exc: BaseException) -> str:
    """What went wrong in a few words: MLflow's messages run to many lines, whole URLs and links."""
    text = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
    if "HTTPConnectionPool" in text or "HTTPSConnectionPool" in text:
        cause = re.search(r"Caused by (\w+)", text)
        return f"no MLflow server answers there ({cause.group(1) if cause else 'the connection failed'})"
    text = text.split(" See http")[0]
    return text if len(text) <= 300 else text[:297] + "..."


def _text(value: Any) -> str:
    text = str(value)
    return text if len(text) <= _MAX_VALUE else text[:_MAX_VALUE - 3] + "..."



