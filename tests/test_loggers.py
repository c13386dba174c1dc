"""Loggers (logger=[tensorboard,mlflow]): fed by a real search's events, read back with each tool's own reader.

The searches here train nothing (``search_doubles.FakeExecutor``); one CLI run checks the wiring.
"""

from __future__ import annotations

import csv
import importlib.util
import shutil

import pytest

from archsearch.errors import ConfigError
from archsearch.loggers import Logger, create_loggers
from archsearch.core.store import TrialStore
from search_doubles import metrics_of, run_search

CONFIG = {"tuner": {"name": "random", "max_trials": 3}, "objective": "val_accuracy"}


# ------------------------------------------------------------ the factory
def test_no_logger_and_csv_alone_build_nothing(tmp_path):
    assert create_loggers(None, tmp_path) is None
    assert create_loggers({"csv": {}}, tmp_path) is None  # trials.csv and epochs.csv are always written


def test_an_unknown_logger_is_refused_with_the_choices(tmp_path):
    with pytest.raises(ConfigError) as err:
        create_loggers({"wandb": {}}, tmp_path)
    assert err.value.field == "logger"
    assert "'wandb'" in err.value.problem and "tensorboard" in err.value.fix and "mlflow" in err.value.fix


def test_an_unknown_option_is_refused_by_name(tmp_path):
    with pytest.raises(ConfigError, match=r"logger\.tensorboard\.logdir: is not an option.*dir"):
        create_loggers({"tensorboard": {"logdir": "x"}}, tmp_path)


def test_a_missing_package_says_which_pip_command_installs_it(tmp_path, monkeypatch):
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "mlflow" else real(name, *a))
    with pytest.raises(ConfigError, match=r'pip install "archsearch\[mlflow\]"'):
        create_loggers({"tensorboard": {}, "mlflow": {}}, tmp_path)


class RecordingLogger(Logger):
    """What a user's own logger looks like (README: "Your own logger")."""

    def on_trial_end(self, trial, outcome):
        self.options.setdefault("seen", []).append((trial.id, trial.status))


def test_a_logger_of_your_own_is_named_by_its_class(tmp_path):
    loggers = create_loggers({"mine": {"class": f"{__name__}:RecordingLogger", "project": "p"}}, tmp_path, CONFIG)
    run_search(tmp_path, [loggers], fail=(1,))
    (mine,) = loggers.listeners
    assert mine.options["project"] == "p" and mine.config == CONFIG
    assert mine.options["seen"] == [(0, "completed"), (1, "failed"), (2, "completed")]
    with pytest.raises(ConfigError, match="not a subclass"):
        create_loggers({"mine": {"class": "archsearch.core.store:TrialStore"}}, tmp_path)


def test_logger_lists_compose_in_hydra():
    from hydra import compose, initialize_config_dir

    from conftest import REPO

    with initialize_config_dir(str(REPO / "conf"), version_base=None):
        assert "logger" not in compose("config")
        both = compose("config", overrides=["logger=[tensorboard,mlflow]", "logger.mlflow.experiment_name=x"])
        assert set(both.logger) == {"tensorboard", "mlflow"} and both.logger.mlflow.experiment_name == "x"
        assert set(compose("config", overrides=["logger=[csv,tensorboard]"]).logger) == {"csv", "tensorboard"}


def test_loggers_may_change_when_a_search_resumes():
    from archsearch.cli.resume import compare_for_resume

    safe, refused = compare_for_resume(CONFIG, {**CONFIG, "logger": {"tensorboard": {"dir": "tensorboard"}}})
    assert (safe, refused) == (["logger.tensorboard.dir: <unset> -> tensorboard"], [])


# ------------------------------------------------------------ csv
def test_epochs_csv_has_one_row_per_trial_and_epoch(tmp_path):
    run_search(tmp_path, [], fail=(1,))
    store = TrialStore(tmp_path / "trials.db")
    with open(store.export_epochs_csv(tmp_path / "epochs.csv"), newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert [(r["trial_id"], r["epoch"]) for r in rows] == [("0", "1"), ("0", "2"), ("0", "3"),
                                                           ("2", "1"), ("2", "2"), ("2", "3")]
    assert float(rows[4]["val_accuracy"]) == pytest.approx(metrics_of(2, 2)["val_accuracy"])
    assert list(rows[0])[:4] == ["trial_id", "epoch", "loss", "val_accuracy"]


# ------------------------------------------------------------ tensorboard


def _tensor_values(folder, tag):
    from tensorboard.backend.event_processing import event_accumulator as ea
    from tensorboard.util import tensor_util

    acc = ea.EventAccumulator(str(folder), size_guidance={ea.TENSORS: 0})
    acc.Reload()
    return acc, [(e.step, tensor_util.make_ndarray(e.tensor_proto).item()) for e in acc.Tensors(tag)] \
        if tag in acc.Tags()["tensors"] else []


def test_tensorboard_writes_scalars_and_one_hparams_session_per_trial(tmp_path):
    pytest.importorskip("tensorboard")
    from tensorboard.plugins.hparams import api_pb2, metadata

    loggers = create_loggers({"tensorboard": {}}, tmp_path, CONFIG)
    with pytest.raises(KeyboardInterrupt):  # Ctrl-C in trial 1's second epoch, then resume
        run_search(tmp_path, [loggers], stop_at=(1, 2), fail=(2,))
    loggers.close(KeyboardInterrupt())
    loggers = create_loggers({"tensorboard": {}}, tmp_path, CONFIG)
    run_search(tmp_path, [loggers], fail=(2,))
    root = tmp_path / "tensorboard"
    assert sorted(p.name for p in root.iterdir() if p.is_dir()) == ["trial_0000", "trial_0001", "trial_0002"]

    acc, values = _tensor_values(root / "trial_0001", "val_accuracy")
    assert values == [(e, pytest.approx(metrics_of(1, e)["val_accuracy"])) for e in (1, 2, 3)]  # resumed at 3
    assert _tensor_values(root / "trial_0001", "score")[1] == [(3, pytest.approx(metrics_of(1, 3)["val_accuracy"]))]
    content = acc.PluginTagToContent(metadata.PLUGIN_NAME)
    start = metadata.parse_session_start_info_plugin_data(content[metadata.SESSION_START_INFO_TAG])
    stored = TrialStore(tmp_path / "trials.db").trial(1).hparams
    assert start.group_name == "trial_0001"
    assert start.hparams["units"].number_value == stored["units"] and start.hparams["act"].string_value == stored["act"]
    assert metadata.parse_session_end_info_plugin_data(content[metadata.SESSION_END_INFO_TAG]).status == \
        api_pb2.STATUS_SUCCESS
    failed, _ = _tensor_values(root / "trial_0002", "score")
    end = failed.PluginTagToContent(metadata.PLUGIN_NAME)[metadata.SESSION_END_INFO_TAG]
    assert metadata.parse_session_end_info_plugin_data(end).status == api_pb2.STATUS_FAILURE

    experiment, _ = _tensor_values(root, "none")
    config = metadata.parse_experiment_plugin_data(experiment.PluginTagToContent(metadata.PLUGIN_NAME)
                                                   [metadata.EXPERIMENT_TAG])
    assert [h.name for h in config.hparam_infos] == ["units", "lr", "act"]
    assert (config.hparam_infos[0].domain_interval.min_value, config.hparam_infos[0].domain_interval.max_value) == (8, 64)
    assert [m.name.tag for m in config.metric_infos] == ["score", "loss", "val_accuracy"]
    assert len(list(root.glob("events.out.tfevents.*"))) == 1  # written once, not again on resume


NO_TENSORFLOW = """
import sys
class Refuse:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in ("tensorflow", "keras"):
            raise ImportError("no " + name)
sys.meta_path.insert(0, Refuse())
from pathlib import Path
from archsearch.loggers import create_loggers
from search_doubles import run_search
folder = Path(sys.argv[1])
run_search(folder, [create_loggers({"tensorboard": {}}, folder)])
print(sorted(p.name for p in (folder / "tensorboard").iterdir()))
"""


def test_tensorboard_logging_needs_neither_tensorflow_nor_keras(tmp_path):
    """KERAS_BACKEND=jax machines may lack TensorFlow; the driver must not import it to write events."""
    pytest.importorskip("tensorboard")
    import os
    import subprocess
    import sys

    from conftest import REPO

    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), str(REPO / "tests")])}
    result = subprocess.run([sys.executable, "-c", NO_TENSORFLOW, str(tmp_path)], env=env, capture_output=True,
                            text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "trial_0002" in result.stdout


def test_the_hparams_dashboard_lists_every_trial_with_its_status(tmp_path):
    """What TensorBoard's HParams table shows, asked through the plugin's own handler."""
    pytest.importorskip("tensorboard")
    from tensorboard import context
    from tensorboard.backend.event_processing import data_provider, plugin_event_multiplexer
    from tensorboard.plugins import base_plugin
    from tensorboard.plugins.hparams import api_pb2, backend_context, list_session_groups

    run_search(tmp_path, [create_loggers({"tensorboard": {}}, tmp_path, CONFIG)], fail=(2,))
    logdir = str(tmp_path / "tensorboard")
    mux = plugin_event_multiplexer.EventMultiplexer()
    mux.AddRunsFromDirectory(logdir)
    mux.Reload()
    tb = base_plugin.TBContext(logdir=logdir, multiplexer=mux,
                               data_provider=data_provider.MultiplexerDataProvider(mux, logdir))
    request = api_pb2.ListSessionGroupsRequest(start_index=0, slice_size=100, include_metrics=True,
                                               allowed_statuses=[0, 1, 2, 3])
    groups = list_session_groups.Handler(context.RequestContext(), backend_context.Context(tb), "", request).run()
    found = {g.name: g for g in groups.session_groups}
    assert sorted(found) == ["trial_0000", "trial_0001", "trial_0002"]
    assert [s.status for s in found["trial_0002"].sessions] == [api_pb2.STATUS_FAILURE]
    score = {m.name.tag: m.value for m in found["trial_0000"].metric_values}["score"]
    assert score == pytest.approx(metrics_of(0, 3)["val_accuracy"])


# ------------------------------------------------------------ mlflow
def _mlflow_runs(tmp_path):
    from mlflow.tracking import MlflowClient

    client = MlflowClient((tmp_path / "mlruns").resolve().as_uri())
    experiment = client.get_experiment_by_name("archsearch")
    return client, client.search_runs([experiment.experiment_id])


def test_mlflow_one_parent_run_and_one_nested_run_per_trial_across_a_resume(tmp_path):
    pytest.importorskip("mlflow")
    loggers = create_loggers({"mlflow": {}}, tmp_path, CONFIG)
    with pytest.raises(KeyboardInterrupt):
        run_search(tmp_path, [loggers], stop_at=(1, 2), fail=(2,))
    loggers.close(KeyboardInterrupt())
    client, runs = _mlflow_runs(tmp_path)
    assert sorted((r.info.run_name, r.info.status) for r in runs if r.info.run_name.startswith("trial")) == \
        [("trial_0000", "FINISHED"), ("trial_0001", "KILLED")]

    resumed = {**CONFIG, "tuner": {"name": "random", "max_trials": 4}}  # a resume may change max_trials
    loggers = create_loggers({"mlflow": {}}, tmp_path, resumed)
    run_search(tmp_path, [loggers], max_trials=4, fail=(2,))
    best = tmp_path / "best"
    best.mkdir()
    (best / "hparams.yaml").write_text("trial: 3\n")
    loggers.on_results(best)
    loggers.close(None)

    client, runs = _mlflow_runs(tmp_path)
    parents = [r for r in runs if "mlflow.parentRunId" not in r.data.tags]
    assert len(parents) == 1
    parent = parents[0]
    assert parent.info.status == "FINISHED"
    assert parent.data.params["tuner.max_trials"] == "3"  # parameters never change; config.yaml is the latest
    assert "max_trials: 4" in (tmp_path / "mlruns").joinpath(
        parent.info.experiment_id, parent.info.run_id, "artifacts", "config.yaml").read_text()
    artifacts = {a.path for a in client.list_artifacts(parent.info.run_id, "best")}
    assert artifacts == {"best/hparams.yaml"}
    trials = {r.data.tags["archsearch.trial_id"]: r for r in runs if r is not parent}
    assert sorted(trials) == ["0", "1", "2", "3"]
    assert {r.data.tags["mlflow.parentRunId"] for r in trials.values()} == {parent.info.run_id}
    assert {k: r.info.status for k, r in trials.items()} == {"0": "FINISHED", "1": "FINISHED", "2": "FAILED",
                                                              "3": "FINISHED"}
    history = client.get_metric_history(trials["1"].info.run_id, "val_accuracy")
    assert [(m.step, m.value) for m in history] == [(e, pytest.approx(metrics_of(1, e)["val_accuracy"]))
                                                    for e in (1, 2, 3)]
    one = trials["1"].data
    stored = TrialStore(tmp_path / "trials.db").trial(1)
    assert one.params == {k: str(v) for k, v in stored.hparams.items()}
    assert one.metrics["score"] == pytest.approx(stored.value) and one.metrics["duration_s"] == 0.5
    assert one.tags["archsearch.status"] == "completed" and trials["2"].data.tags["archsearch.error"] == "ValueError: boom"
    best_value = max(t.value for t in TrialStore(tmp_path / "trials.db").trials("completed"))
    assert parent.data.metrics["best_score"] == pytest.approx(best_value)


@pytest.mark.parametrize("uri, problem", [
    ("http://127.0.0.1:9", "no MLflow server answers there"),  # a closed local port: no network needed
    ("htp://127.0.0.1:5000", "unsupported URI 'htp://127.0.0.1:5000'"),
    ("{blocked}/mlruns", "Not a directory"),
])
def test_a_tracking_uri_that_cannot_be_used_is_refused_before_the_search(tmp_path, uri, problem):
    pytest.importorskip("mlflow")
    blocked = tmp_path / "a_file"
    blocked.write_text("")
    uri = uri.format(blocked=blocked.as_uri())
    with pytest.raises(ConfigError) as info:
        create_loggers({"mlflow": {"tracking_uri": uri}}, tmp_path / "run", CONFIG)
    message = str(info.value)
    assert message.startswith(f"logger.mlflow.tracking_uri: cannot use {uri!r}: ") and problem in message
    assert "start the tracking server, or correct the URI" in message and "\n" not in message


def test_a_tracking_store_lost_after_the_start_is_said_once_and_the_search_goes_on(tmp_path, caplog):
    pytest.importorskip("mlflow")
    store = tmp_path / "store"
    loggers = create_loggers({"mlflow": {"tracking_uri": (store / "mlruns").as_uri()}}, tmp_path, CONFIG)
    shutil.rmtree(store)
    store.write_text("")  # the store's folder became a file after the check
    search = run_search(tmp_path, [loggers])
    loggers.close(None)
    assert search.store.count("completed") == 3
    assert [r.message for r in caplog.records if "failed in" in r.message] == \
        ["search listener MLflowLogger failed in on_search_begin"]


# ------------------------------------------------------------ the CLI
@pytest.mark.slow
def test_cli_with_tensorboard_and_mlflow(cli_inprocess, tmp_path):
    pytest.importorskip("tensorboard")
    pytest.importorskip("mlflow")
    run = tmp_path / "run"
    result = cli_inprocess(["logger=[tensorboard,mlflow]", "tuner.max_trials=2", "trainer.epochs=2",
                            "executor=inline", "data.num_samples=160", "data.test_samples=40"], run)
    assert result.returncode == 0, result.stderr[-3000:]
    assert sorted(p.name for p in (run / "tensorboard").iterdir() if p.is_dir()) == ["trial_0000", "trial_0001"]
    with open(run / "epochs.csv", newline="") as fh:
        assert len(list(csv.DictReader(fh))) == 4
    client, runs = _mlflow_runs(run)
    assert len(runs) == 3
    parent = next(r for r in runs if "mlflow.parentRunId" not in r.data.tags)
    assert parent.info.status == "FINISHED"
    assert {a.path for a in client.list_artifacts(parent.info.run_id, "best")} == {"best/model.keras",
                                                                                   "best/hparams.yaml"}


# ------------------------------------------------------------ a user's own keras.callbacks.TensorBoard
def test_a_users_tensorboard_callback_logs_each_trial_in_its_own_folder(tmp_path):
    keras = pytest.importorskip("keras")
    import numpy as np

    import archsearch

    def build(hp):
        model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(hp.Int("units", 2, 8, step=2)),
                                  keras.layers.Dense(1)])
        model.compile(optimizer="adam", loss="mse")
        return model

    x = np.random.default_rng(0).random((32, 4)).astype("float32")
    given = keras.callbacks.TensorBoard(str(tmp_path / "logs"))
    tuner = archsearch.RandomSearch(build, objective="val_loss", max_trials=2, directory=tmp_path, project_name="p")
    tuner.search(x, x[:, :1], epochs=1, validation_split=0.25, callbacks=[given], verbose=0)
    assert sorted(p.name for p in (tmp_path / "logs").iterdir()) == ["trial_0000", "trial_0001"]
    assert (tmp_path / "logs" / "trial_0000" / "train").is_dir()  # Keras' own layout, inside the trial's folder
    assert given.log_dir == str(tmp_path / "logs")  # each trial got a copy; the user's callback is unchanged

    # A custom run_trial calling the default one places its copy again: not nested twice; executions apart.
    from archsearch.training.callbacks import per_trial_log_dir

    placed = keras.callbacks.TensorBoard(str(tmp_path / "logs"))
    per_trial_log_dir(placed, 3)
    per_trial_log_dir(placed, 3, execution=1)
    assert placed.log_dir == str(tmp_path / "logs" / "trial_0003" / "execution_1")
