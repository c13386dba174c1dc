"""A Keras-free trial runner for the GPU-sharing tests (tests/test_gpu_sharing.py), in a module of its own: each
worker process imports it, so it imports nothing but archsearch's light core (a worker starts in ~1 s, not ~3)."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

from archsearch.core.checkpoints import TrialFiles
from archsearch.core.trial import COMPLETED, FAILED, TrialOutcome
from archsearch.core.trial_runner import RunnerNeeds
from archsearch.executors import gpu_sharing as sharing

BACKEND_MODULES = ("keras", "tensorflow", "jax", "torch")
SEEN: dict[str, str] = {}  # in a worker: what its set-up saw, before the runner (and any library) was loaded


def record_setup(threads, quiet) -> None:
    """The doubles' ``worker_setup``: runs in each worker before it unpickles the runner."""
    SEEN.update({k: os.environ.get(k, "") for k in (sharing.FRACTION_ENV, sharing.SHARED_ENV, "CUDA_VISIBLE_DEVICES",
                                                    "XLA_PYTHON_CLIENT_MEM_FRACTION", "TF_FORCE_GPU_ALLOW_GROWTH")})
    SEEN["backend_loaded"] = "1" if any(m in sys.modules for m in BACKEND_MODULES) else "0"


class GpuRunner:
    """Trains nothing: ``epochs`` epochs whose metrics say what the worker's set-up saw; ``oom`` trials fail as a
    GPU out of memory; ``after_oom`` trials wait until one has (so they overlap it, whichever worker starts first);
    ``rates`` maps a memory fraction (which says how many share the GPU) to samples/s."""

    def __init__(self, folder: Path, epochs: int = 1, oom: tuple[int, ...] = (), after_oom: tuple[int, ...] = (),
                 rates: dict[str, float] | None = None) -> None:
        self.files = TrialFiles(folder)
        self.needs = RunnerNeeds(gpu=True, worker_setup="gpu_doubles:record_setup")
        self.epochs, self.oom, self.after_oom, self.rates = epochs, oom, after_oom, rates or {}
        self.marker = Path(folder) / "an_oom_happened"

    def run(self, trial, hp, reporter=None, resume_checkpoint=None, initial_epoch=0, history=()):
        metrics = {"val_accuracy": 0.5 + 0.01 * trial.id, "fraction": float(SEEN[sharing.FRACTION_ENV]),
                   "shared": float(SEEN[sharing.SHARED_ENV]), "backend_loaded": float(SEEN["backend_loaded"])}
        if SEEN[sharing.FRACTION_ENV] in self.rates:
            metrics[sharing.SAMPLES_PER_SECOND] = self.rates[SEEN[sharing.FRACTION_ENV]]
        if trial.id in self.after_oom:
            deadline = time.monotonic() + 300  # only catches a hang
            while not self.marker.exists() and time.monotonic() < deadline:
                time.sleep(0.02)
        if trial.id in self.oom:
            self.marker.touch()
            return TrialOutcome(status=FAILED, error="ResourceExhaustedError: OOM when allocating tensor",
                                failure_kind="oom", metrics=metrics, hparams=dict(trial.hparams))
        for epoch in range(initial_epoch + 1, self.epochs + 1):
            if reporter is not None and reporter.on_epoch(trial, epoch, metrics, metrics["val_accuracy"]):
                break
        return TrialOutcome(status=COMPLETED, value=metrics["val_accuracy"], metrics=metrics, epochs_done=self.epochs,
                            best_epoch=self.epochs, hparams=dict(trial.hparams))
