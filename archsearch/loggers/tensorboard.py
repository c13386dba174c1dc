"""``logger=tensorboard``: per-trial scalars and TensorBoard's HParams view of the search.

Layout (``<run>/tensorboard/``, ``logger.tensorboard.dir``), as the HParams plugin reads it:

* the root holds the experiment config: every searched hyperparameter with its domain, and the
  metrics (the trial's ``score``, the objective at its best epoch, and each per-epoch metric);
* ``trial_NNNN/`` is one session: its hyperparameters (session start), one scalar per metric and
  epoch (step: the 1-based epoch), its ``score`` and its status (session end).

Written with the ``tensorboard`` package's own protos and event writer, never TensorFlow, so it
works with any Keras backend (``pip install "archsearch[tensorboard]"``).  View with
``tensorboard --logdir <run>/tensorboard``.
"""

from __future__ import annotations

import itertools
import os
import socket
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
from tensorboard.compat.proto import event_pb2, summary_pb2
from tensorboard.plugins.hparams import api_pb2, metadata as hp_metadata, plugin_data_pb2, summary_v2 as hp
from tensorboard.plugins.scalar import metadata as scalar_metadata
from tensorboard.summary.writer.record_writer import RecordWriter
from tensorboard.util import tensor_util

from archsearch.loggers.base import SCORE, Logger, is_number, trial_folder
from archsearch.core.trial import COMPLETED, FAILED, PRUNED

EXPERIMENT_META = "tensorboard_experiment"  # trials.db meta: the experiment config was written (once per search)
_STATUS = {COMPLETED: api_pb2.STATUS_SUCCESS, PRUNED: api_pb2.STATUS_SUCCESS, FAILED: api_pb2.STATUS_FAILURE}



class TensorBoardLogger(Logger):
    """Writes the search as TensorBoard event files; one writer per running trial."""

    name = "tensorboard"

    def __init__(self, run_folder, config=None, options=None) -> None:
        super().__init__(run_folder, config, options)
        self.root = self.run_folder / str(self.options.get("dir") or "tensorboard")
        self.search: Any = None
        self._writers: dict[int, EventFile] = {}
        self._experiment_written = False

    # ------------------------------------------------------------ events
    def on_search_begin(self, search) -> None:
        self.search = search
        self.root.mkdir(parents=True, exist_ok=True)
        self._experiment_written = bool(search.store.get_meta(EXPERIMENT_META, False))

    def on_trial_begin(self, trial, spec, worker) -> None:
        folder = self.root / trial_folder(trial.id)
        continued = folder.exists() and any(folder.glob("events.out.tfevents.*"))
        writer = self._writer(trial.id)
        if not continued:  # a resumed or retried trial keeps the session it started with
            writer.add_event(_event(_session_start(trial, spec), 0))
            writer.flush()

    def on_epoch_end(self, trial, epoch, metrics, value) -> None:
        if not self._experiment_written:
            self._write_experiment(metrics)
        writer = self._writer(trial.id)
        values = [_scalar(name, v) for name, v in metrics.items() if is_number(v)]
        if values:
            writer.add_event(_event(summary_pb2.Summary(value=values), epoch))
        writer.flush()  # so a running search can be watched epoch by epoch

    def on_trial_end(self, trial, outcome) -> None:
        if not self._experiment_written and trial.metrics:  # (a trial failed before its first epoch says nothing)
            self._write_experiment(trial.metrics)
        writer = self._writer(trial.id)
        step = max(outcome.epochs_done, 0)
        if is_number(trial.value):
            writer.add_event(_event(summary_pb2.Summary(value=[_scalar(SCORE, trial.value)]), step))
        status = _STATUS.get(trial.status, api_pb2.STATUS_UNKNOWN)
        writer.add_event(_event(_session_end(status), step))
        self._close_writer(trial.id)

    def on_trial_interrupted(self, trial, reason) -> None:
        self._close_writer(trial.id)  # its session stays "running": the trial continues on resume

    def on_search_end(self, search) -> None:
        self.close()

    def close(self, error: BaseException | None = None) -> None:
        for trial_id in list(self._writers):
            self._close_writer(trial_id)

    # ------------------------------------------------------------ files
    def _writer(self, trial_id: int) -> EventFile:
        writer = self._writers.get(trial_id)
        if writer is None:
            folder = self.root / trial_folder(trial_id)
            folder.mkdir(parents=True, exist_ok=True)
            writer = self._writers[trial_id] = EventFile(str(folder))
        return writer

    def _close_writer(self, trial_id: int) -> None:
        writer = self._writers.pop(trial_id, None)
        if writer is not None:
            writer.close()

    def _write_experiment(self, metrics: Mapping[str, Any]) -> None:
        """The HParams experiment: the space's domains and the metrics (known from the first epoch)."""
        if self.search is None:
            return
        objective = self.search.oracle.objective
        names = [name for name in metrics if is_number(metrics[name])]
        infos = [hp.Metric(SCORE, display_name=f"score ({objective.name}, best epoch)",
                           description=f"The trial's {objective.name} at its best epoch: what the search ranks by")]
        infos += [hp.Metric(name) for name in names]
        params = [_hparam(name, p) for name, p in self.search.oracle.hyperparameters.space.items()]
        writer = EventFile(str(self.root))
        writer.add_event(_event(hp.hparams_config_pb([p for p in params if p is not None], infos), 0))
        writer.close()
        self._experiment_written = True
        self.search.store.set_meta(EXPERIMENT_META, True)


class EventFile:
    """One event file, written synchronously with plain file I/O.

    TensorBoard's own ``EventFileWriter`` goes through ``tf.io.gfile``, which imports all of
    TensorFlow whenever it is installed (seconds, and memory, in a JAX search's driver); the
    records and their checksums come from ``tensorboard`` itself, the file is a local one.
    """

    _numbers = itertools.count()

    def __init__(self, folder: str | Path) -> None:
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        name = f"events.out.tfevents.{int(time.time()):010d}.{socket.gethostname()}.{os.getpid()}.{next(self._numbers)}"
        self.path = folder / name
        self._records = RecordWriter(open(self.path, "wb"))
        self.add_event(event_pb2.Event(wall_time=time.time(), file_version="brain.Event:2"))
        self.flush()

    def add_event(self, event: event_pb2.Event) -> None:
        self._records.write(event.SerializeToString())

    def flush(self) -> None:
        self._records.flush()

    def close(self) -> None:
        self._records.close()


def _session_start(trial, spec) -> summary_pb2.Summary:
    values = dict(trial.hparams)
    if spec is not None and spec.hyperparameters is not None:
        values = {**getattr(spec.hyperparameters, "values", {}), **values}
    return hp.hparams_pb({k: _hparam_value(v) for k, v in values.items() if v is not None},
                         trial_id=trial_folder(trial.id))


def _session_end(status: int) -> summary_pb2.Summary:
    info = plugin_data_pb2.SessionEndInfo(status=status, end_time_secs=time.time())
    content = plugin_data_pb2.HParamsPluginData(session_end_info=info)
    meta = hp_metadata.create_summary_metadata(content)
    return summary_pb2.Summary(value=[summary_pb2.Summary.Value(
        tag=hp_metadata.SESSION_END_INFO_TAG, metadata=meta, tensor=hp_metadata.NULL_TENSOR)])


def _scalar(tag: str, value: Any) -> summary_pb2.Summary.Value:
    return summary_pb2.Summary.Value(tag=tag, metadata=scalar_metadata.create_summary_metadata("", ""),
                                     tensor=tensor_util.make_tensor_proto(np.float32(value)))


def _event(summary: summary_pb2.Summary, step: int) -> event_pb2.Event:
    return event_pb2.Event(wall_time=time.time(), step=int(step), summary=summary)



def _hparam_value(value: Any) -> bool | int | float | str:
    if hasattr(value, "item"):
        value = value.item()
    return value if isinstance(value, (bool, int, float, str)) else str(value)


def _hparam(name: str, param: Any) -> hp.HParam | None:
    """The HParams domain of one searched parameter (the table filters and the axes use it)."""
    kind = type(param).__name__
    try:
        if kind == "Int":
            return hp.HParam(name, hp.IntInterval(int(param.min_value), int(param.max_value)))
        if kind == "Float":
            return hp.HParam(name, hp.RealInterval(float(param.min_value), float(param.max_value)))
        if kind == "Boolean":
            return hp.HParam(name, hp.Discrete([False, True]))
        values = list(param.values) if kind == "Choice" else [param.value] if kind == "Fixed" else None
        if values is not None:
            values = [_hparam_value(v) for v in values]
            if len({type(v) for v in values}) > 1:  # mixed types: the plugin's domain must have one
                values = [str(v) for v in values]
            return hp.HParam(name, hp.Discrete(values))
    except (TypeError, ValueError):
        pass
    return hp.HParam(name)
