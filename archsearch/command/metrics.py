"""Where a command trial's metrics come from, with no change to the program: four collectors.

* :class:`StdoutMetrics`: ``name=value`` / ``name: value`` pairs on the lines the program prints
  (Katib's default), or the user's own regex.  Keras' own output works unchanged: an ``Epoch 3/10``
  line gives the step of the progress line that follows it.
* :class:`HypertuneFile`: the file ``cloudml-hypertune``'s ``report_hyperparameter_tuning_metric``
  writes at ``$CLOUD_ML_HP_METRIC_FILE``, so a program written for the cloud service runs as it is.
* :class:`TensorBoardEvents`: scalars in the TensorBoard event files the program writes (tf.summary,
  Keras' ``TensorBoard`` callback, PyTorch's ``SummaryWriter``, tensorboardX), read without TensorFlow.
* :class:`ClientFile`: the lines ``archsearch.report(...)`` appends to ``$ARCHSEARCH_METRICS_FILE``.

The runner feeds the program's output lines to :meth:`StdoutMetrics.feed` as they come and polls
the others every fraction of a second; each call returns only what is new, as
:class:`MetricReport` objects.  A collector never raises on what the program wrote (a half-written
file is read again at the next poll; a line that is not a metric is skipped); ``where`` says in a
few words where it looked, for the message of a trial whose objective never arrived.

One module though past 400 lines: the four collectors share one small protocol (``feed``/``poll``,
``where``) and one set of step and name rules, and are read side by side when one of them is changed.
"""

from __future__ import annotations

import json
import logging
import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable

from archsearch.errors import ConfigError

log = logging.getLogger("archsearch")


@dataclass(frozen=True)
class MetricReport:
    """Metrics the program reported at one step (None: it gave none; the runner numbers them)."""

    step: int | None
    metrics: dict[str, float]
    source: str  # "stdout", "hypertune", "tensorboard", "client"
    infeasible: str | None = None  # the program's reason, when it says the configuration cannot work


# ------------------------------------------------------------------ stdout / stderr lines

_NUMBER = r"[-+]?(?:(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?|(?i:nan|inf(?:inity)?))"
# ``loss=0.25``, ``Test accuracy: 0.9649``, ``val_loss = 1e-3``, ``"loss": 0.3`` (a printed dict or JSON):
# a name not glued to a word before it, a value not glued to one after it (a full stop may end a sentence;
# ``12:30:45`` is a time, not 12).
DEFAULT_PATTERN = (r"(?<![\w./-])['\"]?(?P<name>[A-Za-z_][\w./-]*)['\"]?[ \t]*[=:][ \t]*"
                   rf"(?P<value>{_NUMBER})(?!\w|[.:]\d)")
STEP_NAMES = ("epoch", "global_step", "step")  # in this order of preference when a line has several
_ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]|[\b]")  # colours (Keras 3's progress bar) and backspaces
_EPOCH_HEADER = re.compile(r"^\s*(?:epoch|step)\s+(\d+)(?:\s*/\s*\d+)?\s*[:,-]?", re.IGNORECASE)
_EPOCH_LINE = re.compile(r"^\s*(?:epoch|step)\s+(\d+)(?:\s*/\s*\d+)?\s*:?\s*$", re.IGNORECASE)  # Keras' ``Epoch 3/10``
_PROGRESS = re.compile(r"^\s*(\d+)/(\d+)\s")  # Keras' progress line: ``5/5 ━━━━ 0s 3ms/step - loss: 0.3``


class StdoutMetrics:
    """Metrics in the lines the program prints (stdout and stderr, fed by the runner line by line).

    Every match of the pattern is a metric; ``epoch``, ``global_step`` or ``step`` among a line's
    pairs is its step instead (the first of these three present), as is a leading ``Epoch 3:`` /
    ``Step 3 -`` before the pairs.  A line ``Epoch 3/10`` on its own, as Keras prints before each
    epoch, gives step 3 (as printed, counting from 1) to the metric lines that follow, until Keras'
    progress line reaches its end (``5/5 ...``: the epoch's last line) or the next such line; so
    ``model.fit`` reports per epoch unchanged, and the ``model.evaluate`` line after it has no step.
    (A line ``Epoch 3`` / ``Step 3`` on its own does the same for any program.)
    Carriage returns (progress bars redrawn in place) split lines; ANSI colours are dropped; NaN and
    infinities are kept.
    """

    source = "stdout"

    def __init__(self, pattern: str | None = None, name: str | None = None) -> None:
        """``pattern``: a regex with the named groups ``name`` and ``value`` (None: ``DEFAULT_PATTERN``);
        or with only ``value`` when ``name`` says which metric every match is."""
        self.pattern = DEFAULT_PATTERN if pattern is None else pattern
        self._regex = _compile(self.pattern, name)
        self._name = name
        self._named = "name" in self._regex.groupindex
        self._pending_step: int | None = None
        self._warned: set[str] = set()
        described = "name=value or name: value pairs" if pattern is None else f"the pattern '{self.pattern}'"
        self.where = f"stdout/stderr lines with {described}"

    def feed(self, line: str) -> list[MetricReport]:
        """The reports in one line of output (several where carriage returns split it)."""
        reports = []
        for piece in re.split(r"[\r\n]+", _ANSI.sub("", line)):
            report = self._piece(piece)
            if report is not None:
                reports.append(report)
        return reports

    def _piece(self, text: str) -> MetricReport | None:
        pairs = self._pairs(text)
        alone = None if pairs else _EPOCH_LINE.match(text)
        if alone:
            self._pending_step = int(alone.group(1))
            return None
        header = _EPOCH_HEADER.match(text)
        step = _step_of(pairs)
        metrics = {name: value for name, value in pairs if name.lower() not in STEP_NAMES}
        progress = _PROGRESS.match(text)
        if step is None and header:
            step = int(header.group(1))
        if step is None:
            step = self._pending_step
        if progress and progress.group(1) == progress.group(2):
            self._pending_step = None  # the epoch's last progress line: what follows is not this epoch's
        if not metrics:
            return None
        return MetricReport(step, metrics, self.source)

    def _pairs(self, text: str) -> list[tuple[str, float]]:
        pairs = []
        for match in self._regex.finditer(text):
            name = match.group("name") if self._named else self._name
            try:
                pairs.append((name, float(match.group("value"))))
            except (TypeError, ValueError):
                self._warn_once(name, match.group("value"))
        return pairs

    def _warn_once(self, name: str, value: Any) -> None:
        if name not in self._warned:
            self._warned.add(name)
            log.warning("trial.metrics.pattern matched %s = %r, which is not a number: skipped", name, value)


def _compile(pattern: str, name: str | None) -> re.Pattern:
    try:
        regex = re.compile(pattern)
    except re.error as exc:
        raise ConfigError("trial.metrics.pattern", f"'{pattern}' is not a regular expression ({exc})",
                          r"write a Python regex with the named groups (?P<name>...) and (?P<value>...)") from None
    groups = set(regex.groupindex)
    if "value" not in groups or ("name" not in groups and not name):
        missing = " and ".join(f"(?P<{g}>...)" for g in ("name", "value") if g not in groups)
        raise ConfigError("trial.metrics.pattern", f"'{pattern}' has no named group {missing}",
                          r"e.g. (?P<name>\w+)=(?P<value>[-+.\deE]+), or (?P<value>...) with trial.metrics.name")
    return regex


def _step_of(pairs: Iterable[tuple[str, float]]) -> int | None:
    found = {name.lower(): value for name, value in pairs}
    for key in STEP_NAMES:
        value = found.get(key)
        if value is not None and math.isfinite(value) and value == int(value):
            return int(value)
    return None


# ------------------------------------------------------------------ the hypertune file

# What cloudml-hypertune writes besides the metric (hypertune/hypertune.py).
_HYPERTUNE_KEYS = ("timestamp", "trial", "global_step", "checkpoint_path")


class HypertuneFile:
    """The metric file of ``cloudml-hypertune`` (``hypertune.HyperTune().report_hyperparameter_tuning_metric``).

    The library *rewrites* the whole file on every report with its last 100 entries, one JSON object
    a line: ``{"timestamp": t, "trial": "0", "<tag>": "0.25", "global_step": "3", "checkpoint_path": ""}``.
    So a poll reads the whole file and returns the entries after the last one seen (found again by
    its content; when it has scrolled away or the program started over, those newer than its
    timestamp).  A read that catches the rewrite half-way (a line cut short, a torn line) returns
    nothing new and is read again at the next poll.  Every key but timestamp, trial, global_step and
    checkpoint_path is a metric.  The library writes ``global_step`` 0 both when it is not given and
    when it is 0, as the service reads it: 0 is "no step" here too (None; the runner numbers the report).
    """

    source = "hypertune"

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.where = f"the hypertune metric file {self.path} (CLOUD_ML_HP_METRIC_FILE)"
        self._last: dict | None = None  # the last entry returned
        self._torn: bytes | None = None  # a read with a broken line, kept to tell a torn read from a broken file

    def poll(self) -> list[MetricReport]:
        entries = self._entries()
        if entries is None:
            return []
        new = self._after_last(entries)
        if new:
            self._last = new[-1]
        return [report for report in map(self._report, new) if report is not None]

    def _entries(self) -> list[dict] | None:
        """The file's complete entries; None while it is missing or caught half-written."""
        try:
            data = self.path.read_bytes()
        except OSError:
            return None
        lines = data.split(b"\n")
        tail = lines.pop()  # after the last newline: nothing, or a line the writer is still inside
        entries, broken = [], False
        for line in filter(bytes.strip, lines):
            entry = _json_object(line)
            broken |= entry is None
            if entry is not None:
                entries.append(entry)
        last = _json_object(tail) if tail.strip() else None  # whole (no newline at the end), or read next time
        if last is not None:
            entries.append(last)
        if broken and data != self._torn:
            self._torn = data  # a torn read of a rewrite, most likely; the same bytes again mean a broken line
            return None
        return entries

    def _after_last(self, entries: list[dict]) -> list[dict]:
        if self._last is None:
            return entries
        for index in range(len(entries) - 1, -1, -1):
            if entries[index] == self._last:
                return entries[index + 1:]
        since = _float(self._last.get("timestamp"))
        return [e for e in entries if since is None or (_float(e.get("timestamp")) or 0.0) > since]

    def _report(self, entry: dict) -> MetricReport | None:
        metrics = {}
        for name, value in entry.items():
            if name not in _HYPERTUNE_KEYS:
                number = _float(value)
                if number is None:
                    log.warning("%s: %s = %r is not a number: skipped", self.path, name, value)
                else:
                    metrics[name] = number
        if not metrics:
            return None
        step = _float(entry.get("global_step"))
        return MetricReport(int(step) if step and math.isfinite(step) else None, metrics, self.source)


def _json_object(line: bytes) -> dict | None:
    try:
        value = json.loads(line)
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


def _float(value: Any) -> float | None:
    """A number written as a number or as text (hypertune writes ``str(float)``); None otherwise."""
    if isinstance(value, bool) or value is None:
        return None
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


# ------------------------------------------------------------------ TensorBoard event files

EVENT_FILES = "events.out.tfevents.*"
# Keras' TensorBoard callback writes ``epoch_loss`` in ``<log_dir>/train`` and ``<log_dir>/validation``: read
# as ``loss`` and ``val_loss``, the names of Keras' own history (and of the objective a Keras user writes).
_KERAS_RUNS = {"train": "", "validation": "val_"}
_KERAS_EPOCH = "epoch_"
# ... and the same validation values again against the optimizer's iterations: another x-axis, not other steps.
_KERAS_BY_ITERATION = re.compile(r"^evaluation_.+_vs_iterations$")


class TensorBoardEvents:
    """Scalars in the TensorBoard event files under ``folder`` (recursively; files that appear later
    are found at the next poll), read with the ``tensorboard`` package's own record reader, without
    TensorFlow.

    Both forms of a scalar count: ``simple_value`` (PyTorch's ``SummaryWriter``, tensorboardX, TF1) and
    a 0-d number tensor (TF2's ``tf.summary.scalar``, Keras' ``TensorBoard`` callback); a tag whose
    plugin is not the scalars one (histograms, images, hparams) is left out.  A metric's name is its
    tag, except for the Keras callback's layout: ``train/epoch_loss`` is ``loss`` and
    ``validation/epoch_loss`` is ``val_loss`` (its ``epoch_`` tags in its ``train`` and ``validation``
    folders), as Keras' history names them; its ``evaluation_loss_vs_iterations`` (the validation values
    again, at the optimizer's iteration as step) is left out.  The step is the event's step (the callback's epochs count
    from 0).  Each file is read from where the last poll stopped; a record still being written is
    read at the next poll.  Tags from several runs under the folder that map to the same name and step:
    the last read wins.
    """

    source = "tensorboard"

    def __init__(self, folder: str | Path) -> None:
        self.folder = Path(folder)
        self.where = f"TensorBoard event files under {self.folder}"
        self._readers: dict[Path, _EventFile] = {}
        self._unavailable: str | None = None

    def poll(self) -> list[MetricReport]:
        if self._unavailable or not self.folder.is_dir():
            return []
        values: list[tuple[int, str, float]] = []
        for path in sorted(self.folder.rglob(EVENT_FILES)):
            reader = self._readers.get(path)
            if reader is None:
                reader = self._open(path)
                if self._unavailable:
                    return []
                if reader is None:
                    continue
                self._readers[path] = reader
            values.extend(reader.read())
        return _by_step(values, self.source)

    def _open(self, path: Path) -> _EventFile | None:
        try:
            return _EventFile(path, self._name_for(path))
        except OSError:  # gone between the listing and the opening
            return None
        except ImportError as exc:  # tensorboard comes with TensorFlow; a torch-only machine may lack it
            self._unavailable = f"the tensorboard package is not installed ({exc}): pip install tensorboard"
            self.where += f" (not read: {self._unavailable})"
            log.warning("%s are not read: %s", self.where.split(" (")[0], self._unavailable)
            return None

    def _name_for(self, path: Path):
        prefix = _KERAS_RUNS.get(path.parent.name) if path.parent != self.folder else None

        def name(tag: str) -> str | None:
            if prefix is not None and tag.startswith(_KERAS_EPOCH):
                return prefix + tag[len(_KERAS_EPOCH):]
            if prefix is not None and _KERAS_BY_ITERATION.match(tag):
                return None
            return tag

        return name


class _EventFile:
    """One event file, read incrementally: tensorboard's pure-Python record reader keeps its offset
    and the bytes of a record cut short, and reads on from there when called again."""

    def __init__(self, path: Path, name) -> None:
        from tensorboard.compat.proto import event_pb2
        from tensorboard.compat.tensorflow_stub import errors, pywrap_tensorflow
        from tensorboard.util import tensor_util

        self._event_pb2, self._errors, self._tensor_util = event_pb2, errors, tensor_util
        try:
            self._reader = pywrap_tensorflow.PyRecordReader_New(str(path), 0, None, None)
        except errors.OpError as exc:  # NotFoundError: the file went away since it was listed
            raise FileNotFoundError(str(exc)) from None
        self.path, self._name = path, name
        self._plugins: dict[str, str] = {}  # tag -> its plugin (written with the tag's first value only)

    def read(self) -> list[tuple[int, str, float]]:
        values = []
        while True:
            try:
                self._reader.GetNext()
            except self._errors.OutOfRangeError:
                break  # the end of what is written so far
            except self._errors.DataLossError:
                break  # a record being written: its bytes are kept and read on next time
            try:
                event = self._event_pb2.Event.FromString(self._reader.record())
            except Exception:  # noqa: BLE001 - a record that is not an event (protobuf's DecodeError)
                log.warning("%s: a record that is not a TensorBoard event: skipped", self.path)
                continue
            values.extend((event.step, name, value) for tag, value in self._scalars(event)
                          if (name := self._name(tag)) is not None)
        return values

    def _scalars(self, event) -> Iterable[tuple[str, float]]:
        for value in event.summary.value:
            plugin = value.metadata.plugin_data.plugin_name
            if plugin:
                self._plugins[value.tag] = plugin
            if self._plugins.get(value.tag, "scalars") != "scalars":
                continue
            kind = value.WhichOneof("value")
            if kind == "simple_value":
                yield value.tag, float(value.simple_value)
            elif kind == "tensor":
                number = self._tensor_scalar(value.tensor)
                if number is not None:
                    yield value.tag, number

    def _tensor_scalar(self, tensor) -> float | None:
        try:
            array = self._tensor_util.make_ndarray(tensor)
        except Exception:  # noqa: BLE001 - a dtype the stub cannot read (strings, resources)
            return None
        if array.ndim != 0 or array.dtype.kind not in "fiu":
            return None
        return float(array)


def _by_step(values: list[tuple[int, str, float]], source: str) -> list[MetricReport]:
    """One report per step, in the order the steps were first read (the last value of a name wins)."""
    steps: dict[int, dict[str, float]] = {}
    for step, name, value in values:
        steps.setdefault(step, {})[name] = value
    return [MetricReport(step, metrics, source) for step, metrics in steps.items()]


# ------------------------------------------------------------------ the client's file

class ClientFile:
    """The JSON lines :func:`archsearch.report` and :func:`archsearch.report_infeasible` append to
    ``$ARCHSEARCH_METRICS_FILE``: ``{"step": 3, "metrics": {"loss": 0.25}, "time": t}`` and
    ``{"infeasible": "why"}``.  Read from where the last poll stopped; a last line without its newline
    is being written and is read next time; a file that shrank was started over and is read anew."""

    source = "client"

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.where = f"archsearch.report() calls (the file {self.path}, ARCHSEARCH_METRICS_FILE)"
        self._offset = 0

    def poll(self) -> list[MetricReport]:
        try:
            with open(self.path, "rb") as file:
                if file.seek(0, 2) < self._offset:
                    self._offset = 0
                file.seek(self._offset)
                data = file.read()
        except OSError:
            return []
        complete = data[:data.rfind(b"\n") + 1]
        self._offset += len(complete)
        return [report for line in complete.splitlines() if line.strip()
                for report in [self._report(line)] if report is not None]

    def _report(self, line: bytes) -> MetricReport | None:
        entry = _json_object(line)
        if entry is None:
            log.warning("%s: a line that is not one of archsearch.report()'s: %r", self.path, line[:200])
            return None
        if "infeasible" in entry:
            return MetricReport(None, {}, self.source, infeasible=str(entry["infeasible"]))
        raw = entry.get("metrics")
        metrics = {name: number for name, value in (raw.items() if isinstance(raw, dict) else ())
                   if (number := _float(value)) is not None}
        if not metrics:
            return None
        step = entry.get("step")
        return MetricReport(step if isinstance(step, int) and not isinstance(step, bool) else None, metrics,
                            self.source)
