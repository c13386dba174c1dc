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
    """Run ``python -m archsearch`` as a user would, with its outputs in ``run_dir``."""
    # No report.html at the end of each tiny search (~4 s each); tests of the report set ARCHSEARCH_REPORT=on.
    full_env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "ARCHSEARCH_REPORT": "off", **(env or {})}
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
