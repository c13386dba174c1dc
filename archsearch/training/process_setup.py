"""How a worker process starts Keras' backend: the Keras runner's ``worker_setup`` (see RunnerNeeds).

Called by a local worker or a Ray actor *before* it unpickles the runner (and so imports Keras):
thread pools can only be sized before the backend's first op, and the CLI's quiet start (TensorFlow's
start-up notices filtered, :mod:`archsearch.training.backend_logs`) must wrap that first import.
The executor has already set the thread variables (``OMP_NUM_THREADS``, ...) from ``threads``, and, on a GPU,
the worker's memory share (:mod:`archsearch.executors.gpu_sharing`): JAX and a TensorFlow alone on its GPU take
it from the environment; a TensorFlow that shares its GPU and torch need the calls made here, before either
touches the device.
"""

from __future__ import annotations

import logging
import os

from archsearch.executors.gpu_sharing import FRACTION_ENV, SHARED_ENV, gpu_total_mb

log = logging.getLogger("archsearch")


def prepare_worker(threads: int | None, quiet: bool) -> None:
    """Size the backend's thread pools to ``threads`` (None: its default), importing it quietly if asked."""
    if quiet:
        from archsearch.training.backend_logs import start_backend_quietly

        start_backend_quietly(lambda: _set_up_backend(threads))
    else:
        _set_up_backend(threads)


def _set_up_backend(threads: int | None) -> None:
    limit_backend_threads(threads)
    limit_gpu_memory()


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


def limit_gpu_memory() -> None:
    """Bound this worker's GPU memory to its share (``ARCHSEARCH_GPU_MEMORY_FRACTION``), when the executor gave one.

    TensorFlow sharing its GPU: a logical device of ``fraction x`` the GPU's memory (the total read through
    NVML or nvidia-smi; when neither answers, memory growth only, with a warning).  torch: its per-process
    fraction.  JAX (and a TensorFlow alone on its GPU) already took theirs from the environment.
    """
    text = os.environ.get(FRACTION_ENV)
    if not text:
        return
    fraction = float(text)
    backend = os.environ.get("KERAS_BACKEND", "tensorflow")
    if backend == "tensorflow" and os.environ.get(SHARED_ENV) == "1":
        _limit_tensorflow(fraction)
    elif backend == "torch":
        try:
            import torch
        except ImportError:
            return
        if torch.cuda.is_available():
            torch.cuda.set_per_process_memory_fraction(fraction)


def _limit_tensorflow(fraction: float) -> None:
    import tensorflow as tf

    gpus = tf.config.list_physical_devices("GPU")
    if not gpus:
        return
    device = (os.environ.get("CUDA_VISIBLE_DEVICES") or "0").split(",")[0].strip()
    total = gpu_total_mb(device)
    if total is None:
        log.warning("GPU %s: its memory size is unknown (install nvidia-ml-py), so this worker's TensorFlow grows "
                    "its memory as needed instead of keeping to %.0f%% of it", device, fraction * 100)
        for gpu in gpus:
            tf.config.experimental.set_memory_growth(gpu, True)
        return
    limit = max(1, int(total * fraction))
    try:
        for gpu in gpus:
            tf.config.set_logical_device_configuration(gpu, [tf.config.LogicalDeviceConfiguration(memory_limit=limit)])
    except RuntimeError as exc:  # the runtime started before this set-up (a user's import hook): say so
        log.warning("GPU %s: TensorFlow started before its memory limit (%s MB) could be set: %s", device, limit, exc)
