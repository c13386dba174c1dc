"""How a worker process starts Keras' backend: the Keras runner's ``worker_setup`` (see RunnerNeeds).

Called by a local worker or a Ray actor *before* it unpickles the runner (and so imports Keras):
thread pools can only be sized before the backend's first op, and the CLI's quiet start (TensorFlow's
start-up notices filtered, :mod:`archsearch.training.backend_logs`) must wrap that first import.
The executor has already set the thread variables (``OMP_NUM_THREADS``, ...) from ``threads``.
"""

from __future__ import annotations

import os


def prepare_worker(threads: int | None, quiet: bool) -> None:
    """Size the backend's thread pools to ``threads`` (None: its default), importing it quietly if asked."""
    if quiet:
        from archsearch.training.backend_logs import start_backend_quietly

        start_backend_quietly(lambda: limit_backend_threads(threads))
    else:
        limit_backend_threads(threads)


def limit_backend_threads(threads: int | None) -> None:
    """Give this worker its share of the CPU cores in the backend's own pools (TensorFlow, torch, JAX)."""
    if not threads:
        return
    backend = os.environ.get("KERAS_BACKEND", "tensorflow")
    if backend == "tensorflow":
        try:
            import tensorflow as tf

            tf.config.threading.set_intra_op_parallelism_threads(int(threads))
            tf.config.threading.set_inter_op_parallelism_threads(1 if int(threads) == 1 else 2)
        except (ImportError, RuntimeError):
            pass
    elif backend == "torch":
        try:
            import torch

            torch.set_num_threads(int(threads))
        except ImportError:
            pass
    elif backend == "jax":
        flags = os.environ.get("XLA_FLAGS", "")
        if int(threads) == 1 and "xla_cpu_multi_thread_eigen" not in flags:
            os.environ["XLA_FLAGS"] = (flags + " --xla_cpu_multi_thread_eigen=false").strip()
