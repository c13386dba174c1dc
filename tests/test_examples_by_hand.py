"""The example training programs under examples/, run by hand as a user would (no search): what each prints,
writes and exits with, and that each flushes its metric lines as it goes (issue 26).

These protect the examples themselves; the searches that run them as command trials are tested elsewhere.
"""

from __future__ import annotations

import json
import os
import queue
import re
import signal
import subprocess
import sys
import threading
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
EXAMPLES = REPO / "examples"


def stdout_metrics(text: str) -> list:
    """What archsearch's stdout collector reads in ``text`` as metrics (a program's lines, by default pattern)."""
    from archsearch.command.metrics import StdoutMetrics

    collector = StdoutMetrics()
    return [report for line in text.splitlines() for report in collector.feed(line)]


def clean_env(**extra: str) -> dict[str, str]:
    """The environment of a program run by hand: none of a search's variables (unless given), and this
    checkout's archsearch first on the path (a script's own folder, not the cwd, is sys.path[0])."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("ARCHSEARCH_", "CLOUD_ML_")) and k != "PYTHONUNBUFFERED"}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    return {**env, **extra}


def run(script: str, *args: str, cwd: Path, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(EXAMPLES / script), *args], cwd=cwd, env=clean_env(**env),
                          capture_output=True, text=True, timeout=120)


def start(script: str, *args: str, cwd: Path, **env: str) -> subprocess.Popen:
    """A running program whose stdout is a pipe (block-buffered unless the program flushes)."""
    return subprocess.Popen([sys.executable, str(EXAMPLES / script), *args], cwd=cwd, env=clean_env(**env),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def next_line(proc: subprocess.Popen, timeout: float = 60) -> str:
    """The program's next stdout line; a program that does not flush fails here instead of hanging the test."""
    lines: queue.Queue[str] = queue.Queue()
    threading.Thread(target=lambda: lines.put(proc.stdout.readline()), daemon=True).start()
    try:
        return lines.get(timeout=timeout).strip()
    except queue.Empty:
        pytest.fail(f"no line from {proc.args} in {timeout} s: not flushed?")


def pairs(line: str) -> dict[str, float]:
    return {k: float(v) for k, v in re.findall(r"(\w+)=(\S+)", line)}


def quadratic(x: float, y: float, kind: str, epoch: int) -> float:
    """The documented loss of examples/quadratic/train.py."""
    return (x - 0.3) ** 2 + (y - 0.7) ** 2 + (0.0 if kind == "good" else 1.0) + 0.5 ** epoch


# ---------------------------------------------------------------- quadratic (stdout)
def test_quadratic_prints_the_documented_loss_each_epoch(tmp_path):
    result = run("quadratic/train.py", "--x=0.2", "--y", "0.5", "--kind=bad", "--epochs", "3", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert [pairs(line) for line in lines] == [
        {"epoch": e, "loss": pytest.approx(quadratic(0.2, 0.5, "bad", e), rel=1e-9)} for e in (1, 2, 3)]
    assert all(re.fullmatch(r"epoch=\d+ loss=\S+", line) for line in lines)


def test_quadratic_takes_its_budget_from_the_environment_and_refuses_unknown_arguments(tmp_path):
    budget = run("quadratic/train.py", "--x", "0.3", "--y=0.7", cwd=tmp_path, ARCHSEARCH_BUDGET="2")
    assert [pairs(line)["epoch"] for line in budget.stdout.splitlines()] == [1, 2]
    unknown = run("quadratic/train.py", "--lr=0.1", cwd=tmp_path)
    assert unknown.returncode == 2 and "unrecognized arguments: --lr=0.1" in unknown.stderr
    bad_choice = run("quadratic/train.py", "--kind=best", cwd=tmp_path)
    assert bad_choice.returncode == 2 and "--kind" in bad_choice.stderr


# ---------------------------------------------------------------- hypertune's file
def test_hypertune_example_writes_the_services_file_format(tmp_path):
    metric_file = tmp_path / "trial" / "hypertune.metric"
    result = run("hypertune/train.py", "--x=0.2", "--epochs=3", cwd=tmp_path,
                 CLOUD_ML_HP_METRIC_FILE=str(metric_file), CLOUD_ML_TRIAL_ID="7")
    assert result.returncode == 0, result.stderr
    assert not stdout_metrics(result.stdout)  # the metric goes through the file only
    lines = metric_file.read_text().splitlines()
    entries = [json.loads(line) for line in lines]
    assert [list(e) for e in entries] == [["accuracy", "checkpoint_path", "global_step", "timestamp", "trial"]] * 3
    assert lines[0] == json.dumps(entries[0], sort_keys=True)
    assert [(e["global_step"], e["trial"], e["checkpoint_path"]) for e in entries] == [
        ("1", "7", ""), ("2", "7", ""), ("3", "7", "")]
    assert [float(e["accuracy"]) for e in entries] == [
        pytest.approx(1 / (1 + quadratic(0.2, 0.0, "good", step))) for step in (1, 2, 3)]
    assert all(isinstance(e["accuracy"], str) and isinstance(e["timestamp"], float) for e in entries)


def test_hypertune_example_keeps_the_last_100_entries(tmp_path):
    metric_file = tmp_path / "hypertune.metric"
    run("hypertune/train.py", "--epochs=103", cwd=tmp_path, CLOUD_ML_HP_METRIC_FILE=str(metric_file))
    steps = [json.loads(line)["global_step"] for line in metric_file.read_text().splitlines()]
    assert steps == [str(s) for s in range(4, 104)]


def load_example(relative: str):
    import importlib.util

    spec = importlib.util.spec_from_file_location(f"example_{relative.replace('/', '_')[:-3]}", EXAMPLES / relative)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_local_copy_of_the_format_matches_the_cloudml_hypertune_package(tmp_path, monkeypatch):
    hypertune = pytest.importorskip("hypertune", reason="the cloudml-hypertune package is not installed")
    example = load_example("hypertune/train.py")
    monkeypatch.setattr("time.time", lambda: 1700000000.25)
    monkeypatch.setenv("CLOUD_ML_TRIAL_ID", "3")
    files = []
    for name, reporter in [("package", hypertune.HyperTune), ("copy", example._HyperTuneFile)]:
        monkeypatch.setenv("CLOUD_ML_HP_METRIC_FILE", str(tmp_path / name / "metric"))
        hpt = reporter()
        for step, tag in [(None, "accuracy"), (0, "accuracy"), (5, ""), (6.0, "loss")]:
            hpt.report_hyperparameter_tuning_metric(hyperparameter_metric_tag=tag, metric_value=0.5 + (step or 0),
                                                    global_step=step, checkpoint_path="ck" if step else "")
        files.append(Path(hpt.metric_path).read_bytes())
    assert files[0] == files[1]


# ---------------------------------------------------------------- TensorBoard events
_READ_EVENTS = """
import json, sys, types
# TensorBoard's own reader, on its TensorFlow-free file I/O (as when TensorFlow is not installed).
sys.modules["tensorboard.compat.notf"] = types.ModuleType("tensorboard.compat.notf")
from tensorboard.backend.event_processing.event_file_loader import EventFileLoader
from tensorboard.util import tensor_util
out = []
for path in sys.argv[1:]:
    for event in EventFileLoader(path).Load():
        for value in event.summary.value:
            out.append([event.step, value.tag, float(tensor_util.make_ndarray(value.tensor)),
                        value.metadata.plugin_data.plugin_name])
print(json.dumps(out))
"""


@pytest.mark.parametrize("summary", ["simple_value", "tensor"])
def test_tensorboard_example_writes_scalars_tensorboard_reads_back(tmp_path, summary):
    pytest.importorskip("tensorboard")
    trial_dir = tmp_path / "trial"
    trial_dir.mkdir()
    result = run("tensorboard/train.py", "--x=0.2", "--epochs=3", f"--summary={summary}", cwd=tmp_path,
                 ARCHSEARCH_TRIAL_DIR=str(trial_dir))
    assert result.returncode == 0, result.stderr
    assert not stdout_metrics(result.stdout)  # the metrics go through the event file only
    files = sorted((trial_dir / "logs").glob("events.out.tfevents.*"))
    assert len(files) == 1
    read = subprocess.run([sys.executable, "-c", _READ_EVENTS, *map(str, files)], capture_output=True, text=True,
                          timeout=120)
    assert read.returncode == 0, read.stderr
    scalars = {(step, tag): value for step, tag, value, plugin in json.loads(read.stdout)}
    assert {plugin for *_, plugin in json.loads(read.stdout)} == {"scalars"}
    assert scalars == {(step, tag): pytest.approx(factor * quadratic(0.2, 0.0, "good", step), rel=1e-6)
                       for step in (1, 2, 3) for tag, factor in [("loss", 0.8), ("val_loss", 1.0)]}


def test_tensorboard_example_honours_logdir(tmp_path):
    result = run("tensorboard/train.py", "--epochs=1", "--logdir", str(tmp_path / "tb"), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert len(list((tmp_path / "tb").glob("events.out.tfevents.*"))) == 1


# ---------------------------------------------------------------- checkpointing
def test_checkpointing_example_continues_from_its_state_as_an_unbroken_run(tmp_path):
    ckpt = tmp_path / "ckpt"
    unbroken = run("checkpointing/train.py", "--lr=0.1", "--epochs=5", cwd=tmp_path)
    first = run("checkpointing/train.py", "--lr=0.1", "--epochs=3", cwd=tmp_path, ARCHSEARCH_CHECKPOINT_DIR=str(ckpt))
    assert first.returncode == 0, first.stderr
    assert sorted(p.name for p in ckpt.iterdir()) == ["state.npz"]  # no temporary file left behind
    second = run("checkpointing/train.py", "--lr=0.1", cwd=tmp_path, ARCHSEARCH_CHECKPOINT_DIR=str(ckpt),
                 ARCHSEARCH_BUDGET="5")
    assert second.returncode == 0, second.stderr
    assert first.stdout.splitlines() + second.stdout.splitlines()[1:] == unbroken.stdout.splitlines()
    assert second.stdout.splitlines()[0] == "resumed from epoch 3"
    losses = [pairs(line)["val_loss"] for line in unbroken.stdout.splitlines()]
    assert losses[0] > losses[1] > losses[2] and losses[0] - losses[1] > losses[3] - losses[4]  # diminishing returns

    done = run("checkpointing/train.py", "--lr=0.1", "--epochs=5", cwd=tmp_path, ARCHSEARCH_CHECKPOINT_DIR=str(ckpt))
    assert done.stdout.splitlines() == ["resumed from epoch 5", unbroken.stdout.splitlines()[-1]]


def test_checkpointing_example_stops_when_the_stop_file_exists(tmp_path):
    stop = tmp_path / "stop"
    stop.touch()
    result = run("checkpointing/train.py", "--epochs=4", "--checkpoint-dir", str(tmp_path / "ckpt"), cwd=tmp_path,
                 ARCHSEARCH_STOP_FILE=str(stop))
    assert result.returncode == 0, result.stderr
    assert [line.split()[0] for line in result.stdout.splitlines()] == ["epoch=1", "stopping"]
    import numpy as np

    with np.load(tmp_path / "ckpt" / "state.npz") as state:
        assert int(state["epoch"]) == 1


def test_checkpointing_example_says_when_a_continued_trial_finds_no_state(tmp_path):
    result = run("checkpointing/train.py", "--epochs=1", cwd=tmp_path, ARCHSEARCH_CHECKPOINT_DIR=str(tmp_path / "c"),
                 ARCHSEARCH_INITIAL_EPOCH="3")
    assert result.returncode == 0, result.stderr
    assert f"after epoch 3 but there is no checkpoint at {tmp_path / 'c' / 'state.npz'}" in result.stderr
    assert not stdout_metrics(result.stderr)  # a warning, not a metric
    assert result.stdout.startswith("epoch=1 val_loss=")


def test_checkpointing_example_dies_on_sigterm_keeping_its_last_state(tmp_path):
    ckpt = tmp_path / "ckpt"
    run("checkpointing/train.py", "--epochs=2", cwd=tmp_path, ARCHSEARCH_CHECKPOINT_DIR=str(ckpt))
    proc = start("checkpointing/train.py", "--epochs=5", "--seconds=600", cwd=tmp_path,
                 ARCHSEARCH_CHECKPOINT_DIR=str(ckpt))
    try:
        assert next_line(proc) == "resumed from epoch 2"  # flushed while it runs
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=60) == -signal.SIGTERM
    finally:
        proc.kill()
        proc.communicate()
    again = run("checkpointing/train.py", "--epochs=3", cwd=tmp_path, ARCHSEARCH_CHECKPOINT_DIR=str(ckpt))
    assert again.stdout.splitlines()[0] == "resumed from epoch 2"
    assert [line.split()[0] for line in again.stdout.splitlines()[1:]] == ["epoch=3"]


# ---------------------------------------------------------------- faulty programs
def test_fail_exits_1_with_a_traceback_after_a_metric(tmp_path):
    result = run("faulty/fail.py", "--x=0.1", cwd=tmp_path)
    assert result.returncode == 1
    assert "epoch=1 loss=0.5" in result.stdout
    assert "Traceback (most recent call last)" in result.stderr and "RuntimeError: corrupt record" in result.stderr


def test_silent_exits_0_with_no_metric_anywhere(tmp_path):
    result = run("faulty/silent.py", "--x=0.1", "--kind", "good", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() and not stdout_metrics(result.stdout + result.stderr)
    assert list(tmp_path.iterdir()) == []  # no hypertune file, no event file


def test_infeasible_exits_77_with_its_reason_and_no_metric(tmp_path):
    result = run("faulty/infeasible.py", "--x=0.1", cwd=tmp_path)
    assert result.returncode == 77
    assert "infeasible: the model needs more memory" in result.stderr
    assert not stdout_metrics(result.stdout + result.stderr)


def test_infeasible_through_the_client_appends_its_reason(tmp_path):
    metrics = tmp_path / "metrics.jsonl"
    result = run("faulty/infeasible.py", "--via=client", "--x=0.1", cwd=tmp_path, ARCHSEARCH_METRICS_FILE=str(metrics))
    assert result.returncode == 0, result.stderr
    records = [json.loads(line) for line in metrics.read_text().splitlines()]
    assert [r["infeasible"] for r in records] == ["the model needs more memory than the device has (simulated)"]


def test_hang_reports_a_metric_then_dies_promptly_on_sigterm(tmp_path):
    proc = start("faulty/hang.py", "--x=0.1", cwd=tmp_path)
    try:
        lines = [next_line(proc) for _ in range(2)]  # flushed while it runs
        assert lines[1] == "epoch=1 loss=0.5"
        assert proc.poll() is None
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=60) == -signal.SIGTERM
    finally:
        proc.kill()
        proc.communicate()


# ---------------------------------------------------------------- scikit-learn, PyTorch
def test_sklearn_example_prints_its_cross_validated_accuracy(tmp_path):
    pytest.importorskip("sklearn")
    result = run("sklearn/train.py", "--learning_rate_init=0.01", "--hidden_units=16.0", "--max_iter=10",
                 "--activation", "tanh", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    values = pairs(result.stdout.strip())
    assert set(values) == {"accuracy", "accuracy_std"} and 0.5 < values["accuracy"] <= 1.0


def test_pytorch_example_reports_val_loss_each_epoch_and_resumes(tmp_path):
    pytest.importorskip("torch")
    metrics, ckpt = tmp_path / "metrics.jsonl", tmp_path / "ckpt"
    env = {"ARCHSEARCH_METRICS_FILE": str(metrics), "ARCHSEARCH_CHECKPOINT_DIR": str(ckpt)}
    args = ["--lr=0.05", "--hidden=16", "--optimizer=sgd", "--momentum=0.9"]
    first = run("pytorch/train.py", *args, "--epochs=2", cwd=tmp_path, **env)
    assert first.returncode == 0, first.stderr
    second = run("pytorch/train.py", *args, "--epochs=3", cwd=tmp_path, **env)
    assert second.returncode == 0, second.stderr
    assert second.stdout.splitlines()[0] == "resumed from epoch 2"
    reports = [json.loads(line) for line in metrics.read_text().splitlines()]
    assert [(r["step"], list(r["metrics"])) for r in reports] == [(s, ["val_loss"]) for s in (1, 2, 3)]
    assert reports[2]["metrics"]["val_loss"] < reports[0]["metrics"]["val_loss"]
    unbroken = run("pytorch/train.py", *args, "--epochs=3", cwd=tmp_path)
    assert unbroken.stdout.splitlines()[-1] == second.stdout.splitlines()[-1]  # continued, not restarted
    adam_momentum = run("pytorch/train.py", "--optimizer=adam", "--momentum=0.9", cwd=tmp_path)
    assert adam_momentum.returncode == 2 and "--momentum applies to --optimizer=sgd only" in adam_momentum.stderr
