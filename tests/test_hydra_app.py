"""The example Hydra app (examples/hydra_app), run without archsearch's sweeper: by hand, swept by Hydra's own
basic sweeper through the basic and joblib launchers, failing on purpose, stopped by the reporting client,
continued from its checkpoint (issue 27).

These protect the app the sweeper tests and bench/sweeper_bench.py run. Process runs are the user's commands;
what the task function returns, and how it behaves under a search's variables, is checked in this process
(``main(cfg)`` calls the task function directly, as Hydra's ``cfg_passthrough`` allows).
"""

from __future__ import annotations

import importlib.util
import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

pytestmark = pytest.mark.xdist_group("hydra_app")  # its module fixture is built once, in one process

REPO = Path(__file__).resolve().parent.parent
APP = REPO / "examples" / "hydra_app"


def clean_env(**extra: str) -> dict[str, str]:
    """A user's shell: none of a search's variables, this checkout's archsearch importable."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("ARCHSEARCH_")}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    return {**env, **extra}


def run_app(*overrides: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(APP / "train.py"), *overrides], cwd=cwd, env=clean_env(),
                          capture_output=True, text=True, timeout=300)


def metrics_lines(folder: Path) -> list[dict]:
    return [json.loads(line) for line in (folder / "metrics.jsonl").read_text().splitlines()]


@pytest.fixture(scope="module")
def app():
    spec = importlib.util.spec_from_file_location("hydra_app_train", APP / "train.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def call(app, tmp_path, monkeypatch):
    """Compose the app's config with ``overrides`` and call its task function here; its output folder is
    ``tmp_path/<name>``. A search's variables are cleared unless the test sets them."""
    from hydra import compose, initialize_config_dir
    from hydra.core.hydra_config import HydraConfig
    from omegaconf import open_dict

    for name in [k for k in os.environ if k.startswith("ARCHSEARCH_")]:
        monkeypatch.delenv(name)

    def call(*overrides: str, name: str = "job"):
        with initialize_config_dir(version_base=None, config_dir=str(APP / "conf")):
            cfg = compose("config", overrides=list(overrides), return_hydra_config=True)
        output_dir = tmp_path / name
        output_dir.mkdir()
        with open_dict(cfg):
            cfg.hydra.runtime.output_dir = str(output_dir)
        HydraConfig.instance().set_config(cfg)
        return app.main(cfg), output_dir

    yield call
    HydraConfig.instance().cfg = None  # no Hydra config left behind for the next test in this process


# ---------------------------------------------------------------- by hand, in a process
def test_one_job_reports_every_epoch_and_its_wall_times(tmp_path):
    result = run_app("trainer.epochs=3", f"hydra.run.dir={tmp_path / 'run'}", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    lines = metrics_lines(tmp_path / "run")
    assert [line["step"] for line in lines] == [1, 2, 3]
    assert all(set(line) == {"step", "metrics"} and set(line["metrics"]) == {"val_loss", "train_loss"}
               for line in lines)
    assert lines[-1]["metrics"]["val_loss"] < lines[0]["metrics"]["val_loss"]  # it learns
    times = json.loads((tmp_path / "run" / "job_times.json").read_text())
    assert times["status"] == "completed" and times["start"] <= times["end"]
    printed = result.stdout.splitlines()
    assert printed[0] == f"job started t={times['start']:.6f}"
    assert printed[-1] == f"job ended t={times['end']:.6f} status=completed"


@pytest.mark.parametrize("launcher", [[], ["hydra/launcher=joblib", "hydra.launcher.n_jobs=2"]],
                         ids=["basic", "joblib"])
def test_hydras_basic_sweeper_runs_one_job_per_value(tmp_path, launcher):
    sweep = tmp_path / "sweep"
    result = run_app("-m", "model.lr=0.01,0.1", "trainer.epochs=2", *launcher, f"hydra.sweep.dir={sweep}", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    for job, lr in [("0", "0.01"), ("1", "0.1")]:
        assert f"model.lr={lr}" in yaml.safe_load((sweep / job / ".hydra" / "overrides.yaml").read_text())
        assert [line["step"] for line in metrics_lines(sweep / job)] == [1, 2]
        assert json.loads((sweep / job / "job_times.json").read_text())["status"] == "completed"
    first = metrics_lines(sweep / "0")[-1]["metrics"]
    assert first != metrics_lines(sweep / "1")[-1]["metrics"]  # the value reached the job
    assert (sweep / "multirun.yaml").exists()


def test_fail_when_makes_the_job_fail_before_training(tmp_path):
    result = run_app("fail_when={model.act: relu, model.depth: 2}", f"hydra.run.dir={tmp_path / 'run'}", cwd=tmp_path)
    assert result.returncode == 1
    assert "DeliberateFailure: deliberate failure: the config matches fail_when" in result.stderr
    assert json.loads((tmp_path / "run" / "job_times.json").read_text())["status"] == "failed"
    assert not (tmp_path / "run" / "metrics.jsonl").exists()
    assert result.stdout.splitlines()[-1].endswith("status=failed")


# ---------------------------------------------------------------- the task function, in this process
def test_the_task_returns_the_last_epochs_metrics_or_the_optimized_metric(call):
    metrics, folder = call("trainer.epochs=2", "model.act=gelu", "model.depth=3")
    assert metrics == metrics_lines(folder)[-1]["metrics"]
    value, _ = call("trainer.epochs=2", "model.act=gelu", "model.depth=3", "optimized_metric=val_loss", name="opt")
    assert value == metrics["val_loss"]


def test_fail_when_needs_every_key_to_match_and_refuses_an_unknown_key(app, call):
    metrics, _ = call("trainer.epochs=1", "fail_when={model.act: relu, model.depth: 3}")
    assert math.isfinite(metrics["val_loss"])
    with pytest.raises(app.DeliberateFailure):
        call("model.act=gelu", "fail_when={model.act: gelu}", name="failed")
    with pytest.raises(ValueError, match="fail_when: 'model.activation' is not a key of the config"):
        call("fail_when={model.activation: gelu}", name="typo")


@pytest.mark.parametrize("override, message", [
    ("model.act=swish", "model.act='swish': expected one of relu, gelu, tanh"),
    ("trainer.epochs=0", "trainer.epochs=0: expected a positive integer"),
    ("optimized_metric=accuracy", "optimized_metric='accuracy': expected null or one of val_loss, train_loss"),
])
def test_bad_values_fail_before_training_naming_the_key(call, override, message):
    with pytest.raises(ValueError, match=message.replace("(", r"\(")):
        call(override)


def test_it_stops_after_the_first_epoch_once_the_search_asks(call, tmp_path, monkeypatch):
    stop, client_file = tmp_path / "stop", tmp_path / "client.jsonl"
    stop.touch()
    monkeypatch.setenv("ARCHSEARCH_STOP_FILE", str(stop))
    monkeypatch.setenv("ARCHSEARCH_METRICS_FILE", str(client_file))
    metrics, folder = call("trainer.epochs=5")
    client = [json.loads(line) for line in client_file.read_text().splitlines()]
    assert [(line["step"], line["metrics"]) for line in client] == [(1, metrics)]
    assert [line["step"] for line in metrics_lines(folder)] == [1]
    assert json.loads((folder / "job_times.json").read_text())["status"] == "stopped"


def test_it_continues_from_its_checkpoint_as_an_unbroken_run(call, tmp_path, monkeypatch):
    unbroken, folder = call("trainer.epochs=4", name="unbroken")
    monkeypatch.setenv("ARCHSEARCH_CHECKPOINT_DIR", str(tmp_path))
    call("trainer.epochs=2", name="rung1")
    continued, second = call("trainer.epochs=4", name="rung2")
    assert [line["step"] for line in metrics_lines(second)] == [3, 4]
    assert metrics_lines(second) == metrics_lines(folder)[2:] and continued == unbroken


def test_the_optuna_config_is_the_archsearch_search_in_the_optuna_sweepers_keys():
    """conf/optuna_sweep.yaml stays the same search as conf/archsearch_sweep.yaml, in the Optuna sweeper's own
    documented keys, so a sweep of it under archsearch (only the sweeper's name changed) tunes what the user meant."""
    def load(name: str) -> dict:
        return yaml.safe_load((APP / "conf" / name).read_text())

    archsearch, optuna = load("archsearch_sweep.yaml"), load("optuna_sweep.yaml")
    assert optuna["hydra"]["sweeper"]["params"] == archsearch["hydra"]["sweeper"]["params"]
    assert {"override hydra/sweeper": "optuna"} in optuna["defaults"]
    assert {"override hydra/sweeper": "archsearch"} in archsearch["defaults"]
    assert set(optuna["hydra"]["sweeper"]) == {"sampler", "direction", "study_name", "storage", "n_trials", "n_jobs",
                                              "max_failure_rate", "params"}
    assert optuna["optimized_metric"] == "val_loss"  # the Optuna sweeper needs a number back
