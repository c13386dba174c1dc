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
