"""The quiet start: which stderr lines are TensorFlow's start-up notices, and the filter that drops them."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from archsearch.training.backend_logs import is_backend_notice, stderr_filtered, wants_quiet_start
from tests.conftest import REPO

# Seen on a CPU machine with TensorFlow 2.20 (each twice, before absl's logging is set up).
NOTICES = [
    "WARNING: All log messages before absl::InitializeLog() is called are written to STDERR",
    "I0000 00:00:1796148114.672450   11034 port.cc:153] oneDNN custom operations are on. You may see slightly "
    "different numerical results due to floating-point round-off errors from different computation orders.",
    "I0000 00:00:1796148114.673096   11034 cudart_stub.cc:31] Could not find cuda drivers on your machine, GPU "
    "will not be used.",
    "E0000 00:00:1796148120.526379   11034 cuda_platform.cc:52] failed call to cuInit: INTERNAL: CUDA error: "
    "Failed call to cuInit: UNKNOWN ERROR (303)",
    "W1201 10:00:01.123456   42 some_op.cc:12] a warning",
]
KEPT = [
    "Traceback (most recent call last):",
    "E0000 00:00:1796148120.526379   11034 op_kernel.cc:1818] OP_REQUIRES failed: out of memory",
    "archsearch: error: trainer.epochs: 0 is not allowed",
    "UserWarning: something the user must see",
]


@pytest.mark.parametrize("line", NOTICES)
def test_start_up_notices_are_recognised(line):
    assert is_backend_notice(line + "\n")


@pytest.mark.parametrize("line", KEPT)
def test_real_problems_are_never_dropped(line):
    assert not is_backend_notice(line)


def test_the_user_decides_by_config_or_by_their_own_log_level():
    assert wants_quiet_start(False, {})
    assert not wants_quiet_start(True, {})
    assert not wants_quiet_start(False, {"TF_CPP_MIN_LOG_LEVEL": "0"})
    assert not wants_quiet_start(False, {"ARCHSEARCH_QUIET_BACKEND": "0"})  # a verbose driver's workers


def test_the_filter_works_on_the_file_descriptor_and_keeps_order():
    # C++ writes to fd 2 directly, so the filter must act there: run it in a child with its own stderr.
    code = (
        "import os, sys\n"
        "from archsearch.training.backend_logs import stderr_filtered, is_backend_notice\n"
        "with stderr_filtered(is_backend_notice):\n"
        f"    os.write(2, {(NOTICES[1] + chr(10)).encode()!r})\n"
        "    os.write(2, b'first kept\\n')\n"
        "    sys.stderr.write('second kept\\n')\n"
        f"    os.write(2, {(NOTICES[3] + chr(10)).encode()!r})\n"
        "os.write(2, b'after\\n')\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO,
                            env={**os.environ, "PYTHONPATH": str(REPO)}, timeout=600)
    assert result.returncode == 0, result.stderr
    assert result.stderr == "first kept\nsecond kept\nafter\n"


def test_the_filter_puts_stderr_back_when_the_block_raises(capfd):
    with pytest.raises(RuntimeError):
        with stderr_filtered(lambda line: False):
            os.write(2, b"kept despite the error\n")
            raise RuntimeError("boom")
    os.write(2, b"back to normal\n")
    assert capfd.readouterr().err == "kept despite the error\nback to normal\n"


# A KerasTuner user's script with only the import changed (archsearch first, then Keras), run as a user runs
# it: no TF_CPP_MIN_LOG_LEVEL of theirs.  It prints how many notices were filtered, then asks a second tuner
# for verbose_backend, which must show exactly those.
API_SEARCH = """
import sys
import archsearch as kt
import keras
import numpy as np
from archsearch.training import backend_logs
def build(hp):
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(hp.Int("units", 2, 4)), keras.layers.Dense(1)])
    model.compile(optimizer="adam", loss="mse")
    return model

x, y = np.zeros((8, 4), "float32"), np.zeros((8, 1), "float32")
tuner = kt.RandomSearch(build, objective="val_loss", max_trials=1, directory=sys.argv[1], overwrite=True)
tuner.search(x, y, epochs=1, validation_data=(x, y), verbose=0)
print("filtered", len(backend_logs.DROPPED), file=sys.stderr, flush=True)
kt.RandomSearch(build, objective="val_loss", max_trials=1, directory=sys.argv[1], project_name="again",
                verbose_backend=True)
"""


def test_the_python_api_starts_as_quietly_as_the_cli_and_verbose_backend_shows_the_notices(tmp_path):
    env = {k: v for k, v in os.environ.items() if k not in ("TF_CPP_MIN_LOG_LEVEL", "ARCHSEARCH_QUIET_BACKEND")}
    result = subprocess.run([sys.executable, "-c", API_SEARCH, str(tmp_path)], capture_output=True, text=True,
                            cwd=REPO, env=env, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    lines = result.stderr.splitlines(keepends=True)
    marker = next(i for i, line in enumerate(lines) if line.startswith("filtered "))
    assert not [line for line in lines[:marker] if is_backend_notice(line)], result.stderr  # the search: quiet
    shown = [line for line in lines[marker + 1:] if is_backend_notice(line)]
    assert len(shown) == int(lines[marker].split()[1])  # verbose_backend=True: what was held back, once
