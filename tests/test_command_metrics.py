"""How a command trial's metrics are collected with no change to the program (archsearch/command/metrics.py):
lines on stdout, the cloud service's hypertune file, TensorBoard event files, the client's file."""

from __future__ import annotations

import collections
import json
import math
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from archsearch.command.metrics import (DEFAULT_PATTERN, ClientFile, HypertuneFile, MetricReport, StdoutMetrics,
                                        TensorBoardEvents)
from archsearch.errors import ConfigError
from tests.conftest import REPO


def _seen(reports: list[MetricReport]) -> list[tuple]:
    return [(r.step, r.metrics) for r in reports]


# ------------------------------------------------------------------ stdout

KERAS3_LINE = "5/5 ━━━━━━━━━━━━━━━━━━━━ 0s 3ms/step - accuracy: 0.8750 - loss: 0.3012 - val_accuracy: 0.9 - val_loss: 0.25"
KERAS_METRICS = {"accuracy": 0.875, "loss": 0.3012, "val_accuracy": 0.9, "val_loss": 0.25}


@pytest.mark.parametrize("line, expected", [
    (KERAS3_LINE, [(None, KERAS_METRICS)]),
    ("\x1b[1m5/5\x1b[0m \x1b[32m━━━━\x1b[0m \x1b[1m0s\x1b[0m 3ms/step - accuracy: 0.8750 - loss: 0.3012 - val_accuracy: "
     "0.9 - val_loss: 0.25\n", [(None, KERAS_METRICS)]),  # Keras 3's colours on a terminal
    ("5/5 [==============================] - 0s 3ms/step - loss: 0.3012 - accuracy: 0.8750 - val_loss: 0.25 - "
     "val_accuracy: 0.9", [(None, KERAS_METRICS)]),  # tf.keras 2
    ("Test accuracy: 0.9649", [(None, {"accuracy": 0.9649})]),  # the seed's last line
    ("epoch=3 loss=0.25", [(3, {"loss": 0.25})]),
    ("step: 120, global_step: 7, loss: 1.5e-2", [(7, {"loss": 0.015})]),  # the step names are never metrics
    ("Epoch 4: train_loss=0.5 val-loss=0.6", [(4, {"train_loss": 0.5, "val-loss": 0.6})]),
    ("val_loss = 1e-3.", [(None, {"val_loss": 0.001})]),
    ("{'loss': 0.5, \"acc\": -2, 'lr': .001}", [(None, {"loss": 0.5, "acc": -2.0, "lr": 0.001})]),  # a dict, JSON
    ("INFO:trainer:epoch=4 metrics/auc=0.91", [(4, {"metrics/auc": 0.91})]),
    ("Epoch 3: 100%|██████████| 50/50 [00:01<00:00, 40.1it/s, loss=0.312, v_num=0]",  # Lightning's tqdm bar
     [(3, {"loss": 0.312, "v_num": 0.0})]),
    ("Epoch 3/10", []),
    ("Epoch 3: val_loss improved from 0.30 to 0.25, saving model to best.keras", []),
    ("loading 12 files from /data: done in 3.5s at 12:30:45", []),
    ("loss=0.25s ratio=1.2.3 id=x7", []),
    ("", []),
])
def test_default_pattern_lines(line, expected):
    assert _seen(StdoutMetrics().feed(line)) == expected


def test_nan_and_infinity_are_kept():
    [report] = StdoutMetrics().feed("loss=nan grad: inf lower=-Infinity")
    assert math.isnan(report.metrics["loss"]) and report.metrics["grad"] == math.inf
    assert report.metrics["lower"] == -math.inf and report.source == "stdout"


def test_carriage_returns_split_a_redrawn_progress_bar():
    line = "1/3 ━━ loss: 0.9\r2/3 ━━ loss: 0.7\r\x08\x083/3 ━━ loss: 0.5\n"
    assert _seen(StdoutMetrics().feed(line)) == [(None, {"loss": 0.9}), (None, {"loss": 0.7}), (None, {"loss": 0.5})]


def test_keras_epoch_lines_give_the_step_of_the_progress_line_after_them():
    """Keras prints ``Epoch 3/10`` on its own line, then the epoch's metrics: an unchanged script reports per
    epoch.  The ``evaluate`` line after ``fit`` and the script's own last line have no step."""
    collector = StdoutMetrics()
    output = ["Epoch 1/2", KERAS3_LINE.replace("0.25", "0.5"),
              "Epoch 1: val_loss improved from inf to 0.50000, saving model to m.keras",
              "Epoch 2/2", "3/5 ━━━━━━━━━━━━ 0s 3ms/step - accuracy: 0.8 - loss: 0.4", KERAS3_LINE,
              "1/1 ━━━━━━━━━━━━━━━━━━━━ 0s 5ms/step - accuracy: 0.93 - loss: 0.28", "Test accuracy: 0.93"]
    reports = [r for line in output for r in collector.feed(line)]
    assert _seen(reports) == [(1, {**KERAS_METRICS, "val_loss": 0.5}), (2, {"accuracy": 0.8, "loss": 0.4}),
                              (2, KERAS_METRICS), (None, {"accuracy": 0.93, "loss": 0.28}), (None, {"accuracy": 0.93})]


def test_an_epoch_line_of_any_program_numbers_the_lines_after_it():
    collector = StdoutMetrics()
    reports = [r for line in ["Epoch 7", "loss=0.3", "val_loss=0.4", "epoch 8:", "loss=0.2"]
               for r in collector.feed(line)]
    assert _seen(reports) == [(7, {"loss": 0.3}), (7, {"val_loss": 0.4}), (8, {"loss": 0.2})]


def test_a_users_pattern_with_name_and_value_groups():
    collector = StdoutMetrics(r"\[(?P<name>\w+)\]\s+(?P<value>\S+)")
    assert _seen(collector.feed("[loss] 0.5 [auc] 0.9 loss=3")) == [(None, {"loss": 0.5, "auc": 0.9})]
    assert collector.feed("loss=3") == []
    assert collector.where == r"stdout/stderr lines with the pattern '\[(?P<name>\w+)\]\s+(?P<value>\S+)'"


def test_a_pattern_with_only_a_value_group_and_the_metric_named():
    collector = StdoutMetrics(r"objective is (?P<value>[\d.]+)", name="score")
    assert _seen(collector.feed("Epoch 2: objective is 0.75 (loss=3)")) == [(2, {"score": 0.75})]


def test_a_value_the_pattern_captures_that_is_not_a_number_is_skipped(caplog):
    collector = StdoutMetrics(r"(?P<name>\w+)=(?P<value>\S+)")
    assert _seen(collector.feed("kind=good loss=0.5")) == [(None, {"loss": 0.5})]
    assert "kind = 'good', which is not a number" in caplog.text


@pytest.mark.parametrize("pattern, problem", [
    (r"(?P<name>\w+=(?P<value>", "is not a regular expression"),
    (r"(?P<name>\w+)=([\d.]+)", r"has no named group \(\?P<value>...\)"),
    (r"loss=(?P<value>[\d.]+)", r"has no named group \(\?P<name>...\)"),
])
def test_a_bad_pattern_is_refused_naming_the_field(pattern, problem):
    with pytest.raises(ConfigError, match=r"^trial\.metrics\.pattern: .*" + problem) as caught:
        StdoutMetrics(pattern)
    assert caught.value.field == "trial.metrics.pattern" and pattern in str(caught.value)


def test_default_where():
    assert StdoutMetrics().where == "stdout/stderr lines with name=value or name: value pairs"
    assert StdoutMetrics().pattern == DEFAULT_PATTERN


# ------------------------------------------------------------------ the hypertune file

class HypertuneCopy:
    """cloudml-hypertune's writer, as hypertune/hypertune.py (0.1.0.dev6) has it: the whole file rewritten
    with the last 100 reports on every report."""

    def __init__(self, path: Path, trial_id: str = "0") -> None:
        self.path, self.trial_id, self.queue = path, trial_id, collections.deque(maxlen=100)

    def report_hyperparameter_tuning_metric(self, hyperparameter_metric_tag, metric_value, global_step=None,
                                            checkpoint_path=""):
        self.queue.append({"timestamp": time.time(), "trial": self.trial_id,
                           hyperparameter_metric_tag or "training/hptuning/metric": str(float(metric_value)),
                           "global_step": str(int(global_step) if global_step else 0),
                           "checkpoint_path": checkpoint_path})
        with open(self.path, "w") as file:
            for metric in self.queue:
                file.write(json.dumps(metric, sort_keys=True) + "\n")


def _real_hypertune(path: Path, monkeypatch):
    hypertune = pytest.importorskip("hypertune")
    monkeypatch.setenv("CLOUD_ML_HP_METRIC_FILE", str(path))
    monkeypatch.setenv("CLOUD_ML_TRIAL_ID", "3")
    return hypertune.HyperTune()


@pytest.fixture(params=["copy", "cloudml-hypertune"])
def writer(request, tmp_path, monkeypatch):
    """A hypertune writer on tmp_path/hypertune.metric: the test's copy of the format, and the real package."""
    path = tmp_path / "hypertune.metric"
    if request.param == "copy":
        return HypertuneCopy(path)
    return _real_hypertune(path, monkeypatch)


def test_hypertune_reports_only_what_is_new(writer, tmp_path):
    collector = HypertuneFile(tmp_path / "hypertune.metric")
    assert collector.poll() == []  # no file yet
    writer.report_hyperparameter_tuning_metric("accuracy", 0.5, global_step=1)
    writer.report_hyperparameter_tuning_metric("accuracy", 0.75, global_step=2)
    assert collector.poll() == [MetricReport(1, {"accuracy": 0.5}, "hypertune"),
                                MetricReport(2, {"accuracy": 0.75}, "hypertune")]
    assert collector.poll() == []
    writer.report_hyperparameter_tuning_metric("accuracy", float("nan"), global_step=3)
    [report] = collector.poll()
    assert report.step == 3 and math.isnan(report.metrics["accuracy"])


def test_hypertune_without_a_step_and_the_default_tag(writer, tmp_path):
    """hypertune writes global_step 0 when none is given: no step.  An empty tag is the library's default."""
    collector = HypertuneFile(tmp_path / "hypertune.metric")
    writer.report_hyperparameter_tuning_metric("", 0.25)
    assert collector.poll() == [MetricReport(None, {"training/hptuning/metric": 0.25}, "hypertune")]


def test_hypertune_reports_scrolled_past_the_last_100_are_all_new(writer, tmp_path):
    collector = HypertuneFile(tmp_path / "hypertune.metric")
    for step in range(1, 6):
        writer.report_hyperparameter_tuning_metric("loss", 1.0 / step, global_step=step)
    assert [r.step for r in collector.poll()] == [1, 2, 3, 4, 5]
    for step in range(6, 156):  # 150 more between two polls: the first 50 of them are gone from the file
        writer.report_hyperparameter_tuning_metric("loss", 1.0 / step, global_step=step)
    assert [r.step for r in collector.poll()] == list(range(56, 156))


def test_hypertune_a_half_written_last_line_is_read_at_the_next_poll(tmp_path):
    path = tmp_path / "hypertune.metric"
    HypertuneCopy(path).report_hyperparameter_tuning_metric("loss", 0.5, global_step=1)
    whole = path.read_text()
    collector = HypertuneFile(path)
    path.write_text(whole + whole.replace("0.5", "0.4").replace('"1"', '"2"')[:40])
    assert collector.poll() == [MetricReport(1, {"loss": 0.5}, "hypertune")]
    path.write_text(whole + whole.replace("0.5", "0.4").replace('"1"', '"2"'))
    assert collector.poll() == [MetricReport(2, {"loss": 0.4}, "hypertune")]


def test_hypertune_a_rewrite_caught_half_way_repeats_nothing(tmp_path):
    """The reader may see the first lines of the rewrite only: those were reported already."""
    path = tmp_path / "hypertune.metric"
    writer, collector = HypertuneCopy(path), HypertuneFile(path)
    for step in (1, 2, 3):
        writer.report_hyperparameter_tuning_metric("loss", step / 10, global_step=step)
    assert len(collector.poll()) == 3
    writer.report_hyperparameter_tuning_metric("loss", 0.4, global_step=4)
    full = path.read_text()
    path.write_text(full[:full.index("\n") + 1])  # the rewrite's first line, the rest still to come
    assert collector.poll() == []
    path.write_text(full)
    assert collector.poll() == [MetricReport(4, {"loss": 0.4}, "hypertune")]


def test_hypertune_a_torn_line_is_retried_then_skipped(tmp_path, caplog):
    path = tmp_path / "hypertune.metric"
    writer, collector = HypertuneCopy(path), HypertuneFile(path)
    writer.report_hyperparameter_tuning_metric("loss", 0.5, global_step=1)
    writer.report_hyperparameter_tuning_metric("loss", 0.4, global_step=2)
    lines = path.read_text().splitlines(keepends=True)
    path.write_text(lines[0][:30] + "\n" + lines[1])  # a read that met a truncation half-way
    assert collector.poll() == []
    path.write_text("".join(lines))
    assert [r.step for r in collector.poll()] == [1, 2]
    writer.report_hyperparameter_tuning_metric("loss", 0.3, global_step=3)
    lines = path.read_text().splitlines(keepends=True)
    path.write_text("{broken\n" + "".join(lines))  # the same broken bytes twice: a broken file, not a torn read
    assert collector.poll() == []
    assert collector.poll() == [MetricReport(3, {"loss": 0.3}, "hypertune")]


def test_hypertune_a_program_started_over_is_read_anew(tmp_path):
    """A promoted trial runs the program again: a new writer starts the file over with its own reports."""
    path = tmp_path / "hypertune.metric"
    collector = HypertuneFile(path)
    first = HypertuneCopy(path)
    for step in (1, 2, 3):
        first.report_hyperparameter_tuning_metric("loss", step / 10, global_step=step)
    assert len(collector.poll()) == 3
    HypertuneCopy(path).report_hyperparameter_tuning_metric("loss", 0.05, global_step=4)
    assert collector.poll() == [MetricReport(4, {"loss": 0.05}, "hypertune")]


def test_hypertune_several_metrics_in_one_entry_and_text_that_is_not_a_number(tmp_path, caplog):
    path = tmp_path / "hypertune.metric"
    path.write_text(json.dumps({"timestamp": 1.0, "trial": "0", "global_step": "5", "checkpoint_path": "/c",
                                "loss": "0.5", "accuracy": 0.9, "note": "fine"}))  # a copy with no newline at the end
    collector = HypertuneFile(path)
    assert collector.poll() == [MetricReport(5, {"loss": 0.5, "accuracy": 0.9}, "hypertune")]
    assert "note = 'fine' is not a number" in caplog.text
    assert str(path) in collector.where


def test_hypertune_program_in_a_subprocess(tmp_path):
    """The real package in the program's own process, reading CLOUD_ML_HP_METRIC_FILE as the runner sets it."""
    pytest.importorskip("hypertune")
    path = tmp_path / "out" / "hypertune.metric"
    code = ("import hypertune\nht = hypertune.HyperTune()\n"
            "for step in range(1, 4):\n"
            "    ht.report_hyperparameter_tuning_metric('val_loss', 1 / step, global_step=step)\n")
    subprocess.run([sys.executable, "-c", code], env={**os.environ, "CLOUD_ML_HP_METRIC_FILE": str(path),
                   "CLOUD_ML_TRIAL_ID": "2"}, check=True, timeout=600)
    assert _seen(HypertuneFile(path).poll()) == [(1, {"val_loss": 1.0}), (2, {"val_loss": 0.5}),
                                                 (3, {"val_loss": 1 / 3})]


# ------------------------------------------------------------------ TensorBoard event files

class Events:
    """An event file written with tensorboard's pure-Python record writer (no TensorFlow), as
    archsearch/loggers/tensorboard.py writes its own."""

    def __init__(self, folder: Path, suffix: str = "") -> None:
        from tensorboard.compat.proto import event_pb2
        from tensorboard.summary.writer.record_writer import RecordWriter

        folder.mkdir(parents=True, exist_ok=True)
        self.path = folder / f"events.out.tfevents.{time.time():.6f}.host.{os.getpid()}{suffix}"
        self.file = open(self.path, "wb")
        self.records = RecordWriter(self.file)
        self.records.write(event_pb2.Event(wall_time=time.time(), file_version="brain.Event:2").SerializeToString())
        self.file.flush()

    def scalars(self, step: int, tensor: bool = True, **values) -> None:
        from tensorboard.compat.proto import event_pb2, summary_pb2
        from tensorboard.plugins.scalar import metadata
        from tensorboard.util import tensor_util

        def value(tag, number):
            if not tensor:
                return summary_pb2.Summary.Value(tag=tag, simple_value=number)
            return summary_pb2.Summary.Value(tag=tag, metadata=metadata.create_summary_metadata("", ""),
                                             tensor=tensor_util.make_tensor_proto(np.float32(number)))

        self.write(event_pb2.Event(step=step, wall_time=time.time(),
                                   summary=summary_pb2.Summary(value=[value(t, v) for t, v in values.items()])))

    def write(self, event) -> None:
        self.records.write(event.SerializeToString())
        self.file.flush()


def test_tensorboard_scalars_both_forms_incrementally_and_new_files(tmp_path):
    logs = tmp_path / "logs"
    collector = TensorBoardEvents(logs)
    assert collector.poll() == []  # no folder yet
    writer = Events(logs)
    writer.scalars(0, loss=0.5, acc=0.25)  # TF2's form: a 0-d float tensor
    writer.scalars(1, tensor=False, loss=0.25)  # PyTorch's SummaryWriter / tensorboardX: simple_value
    assert _seen(collector.poll()) == [(0, {"loss": 0.5, "acc": 0.25}), (1, {"loss": 0.25})]
    assert collector.poll() == []
    writer.scalars(2, loss=0.125)
    Events(logs / "run2" / "deep").scalars(2, tensor=False, other=1.5)  # a file that appears later, nested
    assert _seen(collector.poll()) == [(2, {"loss": 0.125, "other": 1.5})]
    assert collector.where == f"TensorBoard event files under {logs}"


def test_tensorboard_keras_callback_layout_is_read_as_keras_names(tmp_path):
    """Keras' TensorBoard callback: train/epoch_loss is loss, validation/epoch_loss is val_loss."""
    train, validation = Events(tmp_path / "train"), Events(tmp_path / "validation")
    for epoch in (0, 1):
        train.scalars(epoch, epoch_loss=1.0 / (epoch + 1), epoch_accuracy=0.5, epoch_learning_rate=0.125)
        validation.scalars(epoch, epoch_loss=2.0 / (epoch + 1), epoch_accuracy=0.375)
        validation.scalars(10 * epoch + 10, evaluation_loss_vs_iterations=0.75)  # at the iteration: left out
    Events(tmp_path / "elsewhere").scalars(0, epoch_loss=0.25)  # the names change in train/ and validation/ only
    assert _seen(TensorBoardEvents(tmp_path).poll()) == [
        (0, {"epoch_loss": 0.25, "loss": 1.0, "accuracy": 0.5, "learning_rate": 0.125, "val_loss": 2.0,
             "val_accuracy": 0.375}),
        (1, {"loss": 0.5, "accuracy": 0.5, "learning_rate": 0.125, "val_loss": 1.0, "val_accuracy": 0.375})]


def test_tensorboard_what_is_not_a_scalar_is_left_out(tmp_path):
    from tensorboard.compat.proto import event_pb2, summary_pb2
    from tensorboard.util import tensor_util

    writer = Events(tmp_path)
    histogram = summary_pb2.SummaryMetadata(plugin_data=summary_pb2.SummaryMetadata.PluginData(plugin_name="histograms"))
    hparams = summary_pb2.SummaryMetadata(plugin_data=summary_pb2.SummaryMetadata.PluginData(plugin_name="hparams"))
    writer.write(event_pb2.Event(step=0, summary=summary_pb2.Summary(value=[
        summary_pb2.Summary.Value(tag="weights", metadata=histogram,
                                  tensor=tensor_util.make_tensor_proto(np.ones((3, 3), np.float32))),
        summary_pb2.Summary.Value(tag="_hparams_/session_start_info", metadata=hparams,
                                  tensor=tensor_util.make_tensor_proto(np.float32(0))),
        summary_pb2.Summary.Value(tag="note", tensor=tensor_util.make_tensor_proto(np.array(b"text"))),
        summary_pb2.Summary.Value(tag="loss", tensor=tensor_util.make_tensor_proto(np.float64(0.5)))])))
    # the plugin is written with a tag's first value only: later values of that tag stay out too
    writer.write(event_pb2.Event(step=1, summary=summary_pb2.Summary(value=[
        summary_pb2.Summary.Value(tag="_hparams_/session_start_info", tensor=tensor_util.make_tensor_proto(np.float32(0))),
        summary_pb2.Summary.Value(tag="steps", tensor=tensor_util.make_tensor_proto(np.int64(7)))])))
    assert _seen(TensorBoardEvents(tmp_path).poll()) == [(0, {"loss": 0.5}), (1, {"steps": 7.0})]


def test_tensorboard_a_record_cut_short_is_read_when_complete(tmp_path):
    writer = Events(tmp_path)
    writer.scalars(0, loss=0.5)
    collector = TensorBoardEvents(tmp_path)
    assert _seen(collector.poll()) == [(0, {"loss": 0.5})]
    size = writer.path.stat().st_size
    writer.scalars(1, loss=0.25)
    whole = writer.path.read_bytes()
    for cut in (size + 5, size + 14, len(whole) - 2):  # inside the header, the data, the data's checksum
        writer.path.write_bytes(whole[:cut])
        assert collector.poll() == []
    writer.path.write_bytes(whole)
    assert _seen(collector.poll()) == [(1, {"loss": 0.25})]


def test_tensorboard_without_the_package_says_so_in_where(tmp_path, monkeypatch, caplog):
    Events(tmp_path).scalars(0, loss=0.5)
    monkeypatch.setitem(sys.modules, "tensorboard.compat.tensorflow_stub", None)  # as if it were not installed
    collector = TensorBoardEvents(tmp_path)
    assert collector.poll() == [] and collector.poll() == []
    assert "not read: the tensorboard package is not installed" in collector.where
    assert "pip install tensorboard" in caplog.text


def test_tensorboard_files_are_read_without_tensorflow(tmp_path):
    """TensorFlow is installed here, and tensorboard's own loader would import it (seconds, and memory, in the
    search's driver): the collector must not."""
    Events(tmp_path).scalars(3, loss=0.5)
    code = ("import json, sys\nfrom archsearch.command.metrics import TensorBoardEvents\n"
            f"reports = TensorBoardEvents({str(tmp_path)!r}).poll()\n"
            "print(json.dumps([[(r.step, r.metrics) for r in reports],\n"
            "                  sorted({m.split('.')[0] for m in sys.modules} & {'tensorflow', 'keras', 'hydra'})]))")
    result = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-2000:]
    assert json.loads(result.stdout.strip().splitlines()[-1]) == [[[3, {"loss": 0.5}]], []]


@pytest.mark.slow
def test_tensorboard_files_written_by_tf_summary_keras_and_tensorboards_writer(tmp_path):
    """The writers users run: tf.summary.scalar, Keras' TensorBoard callback (with validation) and tensorboard's
    own EventFileWriter, written in this process (a process of their own would cost a TensorFlow start); that the
    collector reads them without TensorFlow is test_tensorboard_files_are_read_without_tensorflow's."""
    import keras
    import tensorflow as tf
    from tensorboard.compat.proto import event_pb2, summary_pb2
    from tensorboard.summary.writer.event_file_writer import EventFileWriter

    summaries = tf.summary.create_file_writer(str(tmp_path / "tfsummary"))
    with summaries.as_default():
        for step in range(3):
            tf.summary.scalar("val_loss", 1.0 / (step + 1), step=step)
            tf.summary.histogram("weights", tf.ones([4]), step=step)
    summaries.close()
    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    model.compile("sgd", "mse")
    x = np.ones((8, 2), "float32")
    model.fit(x, x[:, :1], validation_data=(x, x[:, :1]), epochs=2, verbose=0,
              callbacks=[keras.callbacks.TensorBoard(str(tmp_path / "keras"), write_graph=False)])
    writer = EventFileWriter(str(tmp_path / "tbwriter"))
    writer.add_event(event_pb2.Event(step=4, wall_time=time.time(), summary=summary_pb2.Summary(
        value=[summary_pb2.Summary.Value(tag="accuracy", simple_value=0.75)])))
    writer.close()
    assert _seen(TensorBoardEvents(tmp_path / "tfsummary").poll()) == [
        (0, {"val_loss": 1.0}), (1, {"val_loss": 0.5}), (2, {"val_loss": pytest.approx(1 / 3)})]
    keras_reports = TensorBoardEvents(tmp_path / "keras").poll()
    assert [(r.step, sorted(r.metrics)) for r in keras_reports] == [(0, ["learning_rate", "loss", "val_loss"]),
                                                                    (1, ["learning_rate", "loss", "val_loss"])]
    assert _seen(TensorBoardEvents(tmp_path / "tbwriter").poll()) == [(4, {"accuracy": 0.75})]


def test_tensorboard_files_written_by_pytorch(tmp_path):
    tensorboard = pytest.importorskip("torch.utils.tensorboard")
    writer = tensorboard.SummaryWriter(str(tmp_path))
    for step in range(3):
        writer.add_scalar("val_loss", 1.0 / (step + 1), step)
    writer.close()
    assert _seen(TensorBoardEvents(tmp_path).poll()) == [(0, {"val_loss": 1.0}), (1, {"val_loss": 0.5}),
                                                         (2, {"val_loss": pytest.approx(1 / 3)})]


# ------------------------------------------------------------------ the client's file

def test_client_file_lines_partial_last_line_and_a_file_started_over(tmp_path, caplog):
    path = tmp_path / "metrics.jsonl"
    collector = ClientFile(path)
    assert collector.poll() == []  # no file yet
    first = json.dumps({"step": 1, "metrics": {"loss": 0.5}, "time": 1.0})
    second = json.dumps({"step": None, "metrics": {"loss": float("nan")}, "time": 2.0})
    path.write_text(first + "\n" + second[:10])
    assert collector.poll() == [MetricReport(1, {"loss": 0.5}, "client")]
    path.write_text(first + "\n" + second + "\nnot json\n" + json.dumps({"infeasible": "too deep"}) + "\n")
    second_report, infeasible = collector.poll()
    assert second_report.step is None and math.isnan(second_report.metrics["loss"])
    assert infeasible == MetricReport(None, {}, "client", infeasible="too deep")
    assert "not one of archsearch.report()'s" in caplog.text
    path.write_text(json.dumps({"step": 0, "metrics": {"loss": 0.9}}) + "\n")  # shorter: a new file
    assert collector.poll() == [MetricReport(0, {"loss": 0.9}, "client")]
    assert "archsearch.report()" in collector.where and str(path) in collector.where
