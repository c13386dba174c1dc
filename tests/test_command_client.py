"""The client a command trial's program may call (archsearch/command/client.py): ``archsearch.report``,
``trial_values``, ``should_stop``, ``checkpoint_dir``, ``report_infeasible``.  It must stay light (a PyTorch
script imports it), do nothing outside a search, and refuse a value it cannot store, naming it."""

from __future__ import annotations

import json
import math
import subprocess
import sys

import numpy as np
import pytest

import archsearch
from archsearch import command
from archsearch.command import client
from archsearch.command.metrics import ClientFile, MetricReport
from tests.conftest import REPO

HEAVY = ("numpy", "keras", "tensorflow", "hydra", "omegaconf", "torch", "jax", "plotly", "matplotlib")


def _fresh(code: str, env: dict | None = None) -> subprocess.CompletedProcess:
    import os

    full_env = {k: v for k, v in os.environ.items() if not k.startswith("ARCHSEARCH_")}
    result = subprocess.run([sys.executable, "-c", code], cwd=REPO, env={**full_env, **(env or {})},
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-2000:]
    return result


@pytest.fixture
def in_a_search(tmp_path, monkeypatch):
    """The environment the command runner gives a trial's program."""
    paths = {"ARCHSEARCH_METRICS_FILE": tmp_path / "metrics.jsonl", "ARCHSEARCH_STOP_FILE": tmp_path / "stop",
             "ARCHSEARCH_CHECKPOINT_DIR": tmp_path / "checkpoint"}
    for name, path in paths.items():
        monkeypatch.setenv(name, str(path))
    monkeypatch.setenv("ARCHSEARCH_VALUES", json.dumps({"lr": 0.01, "layers": 3, "kind": "good"}))
    return paths


def test_the_client_in_a_fresh_interpreter_writes_its_lines_and_imports_nothing_heavy(tmp_path):
    metrics, stop = tmp_path / "metrics.jsonl", tmp_path / "stop"
    code = ("import json, sys, archsearch\n"
            "archsearch.report(step=1, loss=0.5)\n"
            "archsearch.report(accuracy=0.75)\n"
            "archsearch.report_infeasible('too wide')\n"
            "print(json.dumps([archsearch.trial_values(), archsearch.should_stop(), str(archsearch.checkpoint_dir()),\n"
            f"                  sorted({{m.split('.')[0] for m in sys.modules}} & set({list(HEAVY)!r}))]))\n")
    env = {"ARCHSEARCH_METRICS_FILE": str(metrics), "ARCHSEARCH_STOP_FILE": str(stop),
           "ARCHSEARCH_VALUES": '{"lr": 0.01}', "ARCHSEARCH_CHECKPOINT_DIR": str(tmp_path)}
    values, stopping, checkpoint, heavy = json.loads(_fresh(code, env).stdout.strip().splitlines()[-1])
    assert (values, stopping, checkpoint, heavy) == ({"lr": 0.01}, False, str(tmp_path), [])
    lines = [json.loads(line) for line in metrics.read_text().splitlines()]
    assert [(line.get("step"), line.get("metrics"), line.get("infeasible")) for line in lines] == [
        (1, {"loss": 0.5}, None), (None, {"accuracy": 0.75}, None), (None, None, "too wide")]
    assert all(isinstance(line["time"], float) for line in lines)


def test_outside_a_search_the_client_does_nothing(tmp_path, monkeypatch):
    for name in ("ARCHSEARCH_METRICS_FILE", "ARCHSEARCH_VALUES", "ARCHSEARCH_STOP_FILE", "ARCHSEARCH_CHECKPOINT_DIR"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)
    archsearch.report(step=1, loss=0.5)
    archsearch.report_infeasible("no")
    assert (archsearch.trial_values(), archsearch.should_stop(), archsearch.checkpoint_dir()) == ({}, False, None)
    assert list(tmp_path.iterdir()) == []


def test_values_stop_and_checkpoint_folder_in_a_search(in_a_search):
    assert archsearch.trial_values() == {"lr": 0.01, "layers": 3, "kind": "good"}
    assert archsearch.checkpoint_dir() == in_a_search["ARCHSEARCH_CHECKPOINT_DIR"]
    assert archsearch.should_stop() is False
    in_a_search["ARCHSEARCH_STOP_FILE"].touch()
    assert archsearch.should_stop() is True


@pytest.mark.parametrize("value", ["0.5", None, True, np.bool_(False), [0.5], {"a": 1}, b"1", np.zeros(3)])
def test_a_value_that_is_not_a_number_is_refused_naming_the_metric(in_a_search, value):
    with pytest.raises(TypeError, match="metric 'val_loss' must be a number"):
        archsearch.report(step=1, loss=0.5, val_loss=value)
    assert not in_a_search["ARCHSEARCH_METRICS_FILE"].exists()  # nothing half-reported


def test_a_bad_value_is_refused_outside_a_search_too(monkeypatch):
    monkeypatch.delenv("ARCHSEARCH_METRICS_FILE", raising=False)
    with pytest.raises(TypeError, match="metric 'acc'"):
        archsearch.report(acc="high")


@pytest.mark.parametrize("step", [1.5, "3", True])
def test_a_step_that_is_not_an_integer_is_refused(in_a_search, step):
    with pytest.raises(TypeError, match="step"):
        archsearch.report(step=step, loss=0.5)


def test_a_report_without_a_metric_is_refused(in_a_search):
    with pytest.raises(TypeError, match="at least one metric"):
        archsearch.report(step=3)


def test_numpy_numbers_nan_and_infinity_arrive_as_floats(in_a_search):
    archsearch.report(step=np.int64(2), loss=np.float32(0.25), acc=np.array(0.5), gap=float("nan"),
                      grad=float("inf"), count=7)
    [report] = ClientFile(in_a_search["ARCHSEARCH_METRICS_FILE"]).poll()
    assert report.step == 2 and report.source == "client"
    assert report.metrics["loss"] == 0.25 and report.metrics["acc"] == 0.5 and report.metrics["count"] == 7.0
    assert math.isnan(report.metrics["gap"]) and report.metrics["grad"] == math.inf


def test_report_infeasible_reaches_the_collector(in_a_search):
    archsearch.report(step=0, loss=1.0)
    archsearch.report_infeasible(ValueError("batch 512 does not fit"))
    assert ClientFile(in_a_search["ARCHSEARCH_METRICS_FILE"]).poll() == [
        MetricReport(0, {"loss": 1.0}, "client"), MetricReport(None, {}, "client", infeasible="batch 512 does not fit")]


def test_the_public_names_are_the_clients():
    assert command.EXIT_INFEASIBLE == 77
    for name in ("trial_values", "should_stop", "checkpoint_dir", "report_infeasible"):
        assert getattr(archsearch, name) is getattr(client, name) is getattr(command, name)
        assert name in archsearch.__all__ and name in dir(archsearch)
    assert callable(archsearch.report) and archsearch.report is sys.modules["archsearch.report"]


def test_the_report_package_stays_light_and_its_command_still_runs(tmp_path):
    code = ("import json, sys, archsearch.report as r\n"
            f"print(json.dumps([callable(r), sorted({{m.split('.')[0] for m in sys.modules}} & set({list(HEAVY)!r}))]))")
    assert json.loads(_fresh(code).stdout.strip().splitlines()[-1]) == [True, []]
    result = subprocess.run([sys.executable, "-m", "archsearch.report", str(tmp_path)], cwd=REPO,
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 2 and "no trials.db" in result.stderr  # main() ran: the folder holds no search
