"""Shared test set-up: quiet TensorFlow, a helper to run the real CLI."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
# numpy's BLAS on one thread (read when numpy loads, which no plugin does before this file): xdist runs three
# test processes on CI's two cores, and the oracles' Gaussian-process fits oversubscribed them -- MO-ASHA's replay
# test took 1.49 s with BLAS threads and 0.48 s without, on an idle machine.  TensorFlow's own pools are untouched.
for _name in ("OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_name, "1")

REPO = Path(__file__).resolve().parent.parent


def run_cli(args: list[str], run_dir: Path, env: dict | None = None, timeout: int = 600) -> subprocess.CompletedProcess:
    """Run ``python -m archsearch`` as a user would, with its outputs in ``run_dir``.

    A variable given as None in ``env`` is removed (``{"TF_CPP_MIN_LOG_LEVEL": None}``: the CLI's own
    quiet start, as on a user's machine)."""
    # No report.html at the end of each tiny search (~4 s each): the config's `report` default comes
    # from ARCHSEARCH_REPORT; tests of the report set it back to true.
    full_env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "ARCHSEARCH_REPORT": "false", **(env or {})}
    full_env = {k: v for k, v in full_env.items() if v is not None}
    return subprocess.run(
        [sys.executable, "-m", "archsearch", *args, f"hydra.run.dir={run_dir}"],
        cwd=REPO,
        env=full_env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


@pytest.fixture
def cli():
    return run_cli


@pytest.fixture
def cli_inprocess():
    """The CLI run in this process (tests/cli_inprocess.py): for tests of what a search does, not of its process."""
    from tests.cli_inprocess import run_cli_inprocess

    return run_cli_inprocess


# A tiny finished search (2 trials x 2 epochs of the default MLP on 160 shapes images, 40 test images held out),
# trained once per test process and read by the export, retrain and report tests. A test that writes into a
# run folder (mode=retrain logs and writes retrain/ there) copies it first: finished_run_copy.
FINISHED_RUN_ARGS = ["data.num_samples=160", "data.test_samples=40", "trainer.epochs=2", "tuner.max_trials=2",
                     "executor=inline"]


@pytest.fixture(scope="session")
def finished_run(tmp_path_factory) -> Path:
    from tests.cli_inprocess import run_cli_inprocess

    run_dir = tmp_path_factory.mktemp("finished") / "run"
    result = run_cli_inprocess(FINISHED_RUN_ARGS, run_dir)
    assert result.returncode == 0, result.stderr[-3000:]
    return run_dir


# A tiny finished Pareto search (accuracy against parameters) under a constraint that some trials break, with
# model measures recorded, trained once and read by the measures and Pareto results tests. Its tests share
# one xdist_group (the run is built in one process): @pytest.mark.xdist_group("pareto_run").
PARETO_RUN_ARGS = ["data.num_samples=160", "data.test_samples=40", "data.image_size=12", "trainer.epochs=1",
                   "tuner.max_trials=5", "executor=inline", "max_consecutive_failed_trials=1",
                   "model.space.units_1={type: int, min: 4, max: 64}", "constraints=[\"params <= 20000\"]",
                   "search.measures=[flops,latency_ms]", "objective=[val_accuracy:max,params:min]",
                   "search.mode=pareto", "search.reference_point={val_accuracy: 0.0, params: 1e6}",
                   "trainer.keep_top_models=1"]


@pytest.fixture(scope="session")
def pareto_run(tmp_path_factory) -> tuple[Path, subprocess.CompletedProcess]:
    """The shared Pareto run's folder and its CLI result (read only: copy the folder to write into it)."""
    from tests.cli_inprocess import run_cli_inprocess

    run_dir = tmp_path_factory.mktemp("pareto") / "run"
    result = run_cli_inprocess(PARETO_RUN_ARGS, run_dir)
    assert result.returncode == 0, result.stderr[-3000:]
    return run_dir, result


# A tiny U-Net Hyperband search (16 pages of 32x32 pixels, 2 test pages; factor 2, max_epochs 2: brackets
# 2@1 -> 1@2 | 2@2, max_trials=3 stops after the first bracket; mish only, so the exported model holds the custom
# layer), with report.html: the Hyperband U-Net test reads its plan and pictures, the exports test loads its
# model in a fresh process. Its tests share one xdist_group, test_cli_tuners' ("cli_tuners").
UNET_RUN_ARGS = [
    "tuner=hyperband", "model=unet", "data.num_samples=16", "data.test_samples=2", "data.image_size=32",
    "tuner.max_epochs=2", "tuner.factor=2", "tuner.max_trials=3",
    "model.space.start_neurons.min=4", "model.space.start_neurons.max=8", "model.space.start_neurons.step=4",
    "model.space.net_depth.max=3", "model.space.activation.values=[mish]", "executor=inline",
]


@pytest.fixture(scope="session")
def unet_run(tmp_path_factory) -> tuple[Path, subprocess.CompletedProcess]:
    """The shared U-Net run's folder and its CLI result (read only)."""
    from tests.cli_inprocess import run_cli_inprocess

    run_dir = tmp_path_factory.mktemp("unet") / "run"
    result = run_cli_inprocess(UNET_RUN_ARGS, run_dir, env={"ARCHSEARCH_REPORT": "html"})
    assert result.returncode == 0, result.stderr[-3000:]
    return run_dir, result


@pytest.fixture
def finished_run_copy(finished_run, tmp_path) -> Path:
    """A copy of the shared finished run that a test may change (its own path, so the original stays whole)."""
    import shutil

    copy = tmp_path / "run"
    shutil.copytree(finished_run, copy)
    return copy
