"""Shared test set-up: quiet TensorFlow, a helper to run the real CLI."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

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


@pytest.fixture
def finished_run_copy(finished_run, tmp_path) -> Path:
    """A copy of the shared finished run that a test may change (its own path, so the original stays whole)."""
    import shutil

    copy = tmp_path / "run"
    shutil.copytree(finished_run, copy)
    return copy
