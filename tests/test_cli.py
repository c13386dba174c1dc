"""The real command line, on tiny data, with real TensorFlow.

Most scenarios run the entry point in the test process (``cli_inprocess``, executor=inline): what they check is
what the CLI says and writes. One full search (the README's first command) and the checks of what a fresh
process imports run in subprocesses."""

from __future__ import annotations

import sqlite3
import textwrap

import numpy as np
import pytest
import yaml

TINY = ["data.num_samples=160", "trainer.epochs=2", "tuner.max_trials=2"]
INLINE = ["executor=inline"]  # trials in the test process: the executor is not what these tests check


def test_help_lists_the_config_groups(cli_inprocess, tmp_path):
    result = cli_inprocess(["--help"], tmp_path)
    assert result.returncode == 0, result.stderr
    for group in ("model:", "tuner:", "data:", "trainer:"):
        assert group in result.stdout
    for option in ("mlp", "cnn", "random", "grid", "shapes"):
        assert option in result.stdout


def test_cfg_job_shows_the_resolved_config(cli_inprocess, tmp_path):
    result = cli_inprocess(["--cfg", "job", "tuner.max_trials=7"], tmp_path)
    assert result.returncode == 0, result.stderr
    config = yaml.safe_load(result.stdout)
    assert config["tuner"]["max_trials"] == 7
    assert config["objective"] == "val_accuracy"
    assert config["model"]["name"] == "mlp"


def test_a_real_search_records_trials_and_exports_the_best_model(cli, tmp_path):
    run_dir = tmp_path / "run"
    result = cli(TINY, run_dir, env={"TF_CPP_MIN_LOG_LEVEL": None,  # as a user runs it: no log level of theirs
                                     "ARCHSEARCH_REPORT": "true"})
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.count("Trial ") >= 2
    # A quiet start: none of TensorFlow's start-up notices, in the driver or its worker.
    for notice in ("oneDNN", "cuInit", "absl::InitializeLog", "cuda drivers"):
        assert notice not in result.stderr, result.stderr
    assert "Results summary" in result.stdout

    db = sqlite3.connect(run_dir / "trials.db")
    rows = db.execute("SELECT id, status, value, epochs_done, hparams FROM trials ORDER BY id").fetchall()
    assert [r[1] for r in rows] == ["completed", "completed"]
    assert all(r[3] == 2 for r in rows)
    epochs = db.execute("SELECT COUNT(*) FROM epochs").fetchone()[0]
    assert epochs == 4

    best_dir = run_dir / "best"
    hparams = yaml.safe_load((best_dir / "hparams.yaml").read_text())
    best_value = max(r[2] for r in rows)
    assert hparams["score"] == pytest.approx(best_value)
    assert "num_layers" in hparams["values"]
    assert "Parameters:" in (best_dir / "summary.txt").read_text()
    assert (run_dir / "trials.csv").read_text().count("\n") == 3
    page = (run_dir / "report.html").read_text()
    assert "Report: " in result.stdout and "<table id='trials'" in page
    for plot in ("history", "curves", "parallel"):  # the default search's report has its plots (issue 24)
        assert f"data-plot='{plot}'" in page and f"id=\"plot-{plot}\"" in page
    assert (run_dir / "plots" / "history.png").stat().st_size > 1000

    from archsearch.export.best import load_model

    model = load_model(best_dir / "model.keras")
    predictions = model.predict(np.zeros((2, *model.input_shape[1:]), dtype="float32"), verbose=0)
    assert predictions.shape[0] == 2

    retrain = best_dir / "conf" / "model" / "best.yaml"
    assert yaml.safe_load(retrain.read_text())["space"]["num_layers"]["type"] == "fixed"


def test_retraining_the_exported_architecture(cli_inprocess, finished_run, tmp_path):
    first = finished_run  # read only: a search of TINY's size (conftest.FINISHED_RUN_ARGS)
    again = tmp_path / "again"
    result = cli_inprocess(["--config-dir", str(first / "best" / "conf"), "model=best", "tuner=grid",
                            "data.num_samples=160", "trainer.epochs=1", *INLINE], again)
    assert result.returncode == 0, result.stderr[-3000:]
    stored = yaml.safe_load((first / "best" / "hparams.yaml").read_text())["values"]
    retrained = yaml.safe_load((again / "best" / "hparams.yaml").read_text())["values"]
    assert retrained == stored


@pytest.mark.parametrize(
    "args, expected",
    [
        (["model=nonexistent"], "model"),
        (["tuner.max_trials=0"], "tuner.max_trials"),
        (["tuner.bogus_option=1"], "bogus_option"),
        (["+model.space.units_1.min=600"], "units_1"),
        (["objective=val_f1"], "val_f1"),
        (["trainer.optimizer=adamax_bogus"], "optimizer"),
        (["verbose_backend=maybe"], "verbose_backend"),
        (["progress=sometimes"], "progress"),
        (["report=pdf"], "report"),
        (["data=npz", "data.path=/nonexistent/file.npz"], "/nonexistent/file.npz"),
        (["model=custom", "model.builder=no_such_module:build"], "no_such_module"),
    ],
)
def test_bad_input_is_one_clear_line_without_traceback(cli_inprocess, tmp_path, args, expected):
    # The bad value comes last so that TINY's defaults cannot override it; data.* keys are the shapes set's.
    tiny = [a for a in TINY if not a.startswith("data.")] if any(a.startswith("data=") for a in args) else TINY
    result = cli_inprocess([*tiny, *INLINE, *args], tmp_path / "bad")
    assert result.returncode != 0
    assert expected in result.stderr
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "bad" / "best").exists()


# Runs the CLI as `python -m archsearch` does, and says at exit which backend modules were ever imported.
_BACKEND_AT_EXIT = (
    "import atexit, runpy, sys\n"
    "atexit.register(lambda: print('backend imported:', sorted(m for m in ('tensorflow', 'keras') if m in sys.modules),"
    " file=sys.stderr))\n"
    "sys.argv = ['archsearch', *sys.argv[1:]]\n"
    "runpy.run_module('archsearch', run_name='__main__', alter_sys=True)\n"
)


@pytest.mark.parametrize(
    "args, expected",
    [
        (["data=npz", "data.path=missing.npz"], "data.path: missing.npz does not exist"),
        (["data=folder", "data.path=missing_folder"], "data.path: folder missing_folder does not exist"),
        (["trainer.epochs=abc"], "trainer.epochs: 'abc' is not allowed"),
        (["tuner.max_trials=abc"], "tuner.max_trials: 'abc' is not allowed"),
        (["trainer.optimizer=adamax_bogus"], "trainer.optimizer: unknown optimizer 'adamax_bogus'"),
        (["model=custom", "model.builder=no_such_module:build"], "model.builder: cannot import module 'no_such_module'"),
    ],
)
def test_errors_that_need_no_backend_answer_before_tensorflow_is_imported(tmp_path, args, expected):
    # TensorFlow's import is most of a start-up (14 of 18 s on a busy machine): a typo must not wait for it.
    import os
    import subprocess
    import sys

    from tests.conftest import REPO

    env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}  # as a user runs it: quiet start on
    result = subprocess.run([sys.executable, "-c", _BACKEND_AT_EXIT, *args, f"hydra.run.dir={tmp_path / 'run'}"],
                            cwd=REPO, env={**env, "ARCHSEARCH_REPORT": "false"}, capture_output=True, text=True,
                            timeout=300)
    assert result.returncode == 2, result.stderr[-3000:]
    lines = result.stderr.splitlines()
    assert len(lines) == 2 and lines[0].startswith("archsearch: error: ") and expected in lines[0], result.stderr
    assert lines[1] == "backend imported: []"
    assert result.stdout == "archsearch: starting...\n"  # said at once, before the checks and TensorFlow
    assert not (tmp_path / "run").exists()  # nothing left behind either


@pytest.mark.parametrize("args, expected", [
    (["model.space={}"], "model.space: the override model.space={} does not empty it"),
    (["model.space.units_1.min=abc"], "model.space.units_1.min: is 'abc', not a number"),
])
def test_space_mistakes_exit_2_with_one_line(cli_inprocess, tmp_path, args, expected):
    result = cli_inprocess([*TINY, *INLINE, *args], tmp_path / "bad")
    assert result.returncode == 2, result.stderr[-2000:]
    assert expected in result.stderr and "Traceback" not in result.stderr


def test_a_kerastuner_builder_runs_through_the_cli(cli_inprocess, tmp_path):
    module = tmp_path / "my_models.py"
    module.write_text(textwrap.dedent('''
        import keras

        def build(hp):
            model = keras.Sequential([keras.Input((16, 16, 1)), keras.layers.Flatten(),
                                      keras.layers.Dense(hp.Int("units", 8, 32, step=8), activation="relu"),
                                      keras.layers.Dense(4, activation="softmax")])
            model.compile(optimizer=keras.optimizers.Adam(hp.Choice("learning_rate", [1e-2, 1e-3])),
                          loss="sparse_categorical_crossentropy", metrics=["accuracy"])
            return model
    '''))
    run_dir = tmp_path / "run"
    result = cli_inprocess(["model=custom", "model.builder=my_models:build", "data.image_size=16", *TINY, *INLINE],
                           run_dir, env={"PYTHONPATH": str(tmp_path)})
    assert result.returncode == 0, result.stderr[-3000:]
    values = yaml.safe_load((run_dir / "best" / "hparams.yaml").read_text())["values"]
    assert set(values) == {"units", "learning_rate"}


def test_multirun_sweep_gives_each_job_its_own_search(cli_inprocess, tmp_path):
    sweep = tmp_path / "sweep"
    result = cli_inprocess(["-m", "tuner=random,bayesian", "tuner.max_trials=1", "trainer.epochs=1",
                            "data.num_samples=160", *INLINE, f"hydra.sweep.dir={sweep}"], tmp_path / "unused")
    assert result.returncode == 0, result.stderr[-3000:]
    for job, tuner in (("0", "random"), ("1", "bayesian")):
        hparams = yaml.safe_load((sweep / job / "best" / "hparams.yaml").read_text())
        assert hparams["trial"] == 0
        stored = sqlite3.connect(sweep / job / "trials.db").execute("SELECT value FROM meta WHERE key='config'")
        assert f'"name": "{tuner}"' in stored.fetchone()[0]


def test_the_console_channel_shows_each_line_once_and_copies_it_into_the_run_s_log(tmp_path, capsys):
    """What ``python -m archsearch`` sets up around a job (Hydra's file handler on the root logger, as its
    job_logging does): lines on stdout and in the log once, an error on stderr and in the log, then back."""
    import logging

    from archsearch.cli.console import console_and_log_file, error_line
    from archsearch.core.console import console_logger, say

    root, log_file = logging.getLogger(), tmp_path / "archsearch.log"
    hydra_file = logging.FileHandler(log_file)
    hydra_file.setFormatter(logging.Formatter("[%(name)s][%(levelname)s] - %(message)s"))
    root.addHandler(hydra_file)
    before = list(console_logger().handlers)
    try:
        with console_and_log_file():
            say("Trial 0 (1/2) | units=8")
            error_line(ValueError("data.path: no such file"))
    finally:
        root.removeHandler(hydra_file)
        hydra_file.close()
    shown = capsys.readouterr()
    assert shown.out.splitlines() == ["Trial 0 (1/2) | units=8"]
    assert shown.err.splitlines() == ["archsearch: error: data.path: no such file"]
    assert log_file.read_text().splitlines() == ["[archsearch.console][INFO] - Trial 0 (1/2) | units=8",
                                                 "[archsearch.console][ERROR] - error: data.path: no such file"]
    assert console_logger().handlers == before  # the Python API's channel again: stdout only
    say("after the job")
    assert capsys.readouterr().out == "after the job\n" and "after" not in log_file.read_text()
