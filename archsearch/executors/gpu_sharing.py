"""Several trials per GPU: the settings, each worker's memory share, and the ``auto`` probe.

A small trial leaves a big GPU mostly idle, so the process executor can run N workers on each GPU
(``executor.trials_per_gpu``).  They must not starve each other: each worker's memory is bounded
*before* its deep-learning library starts, through environment variables the executor sets when it
spawns the worker (this module's :func:`worker_gpu_env`), and, where a library takes its limit only
from a call, by the worker's set-up (``archsearch/training/process_setup.py`` reads
:data:`FRACTION_ENV`).  Per library:

- TensorFlow: alone on its GPU (N = 1) it grows its memory as needed (``TF_FORCE_GPU_ALLOW_GROWTH``);
  shared (N > 1) it gets a hard limit, a logical device of ``fraction x`` the GPU's memory.
- JAX: ``XLA_PYTHON_CLIENT_MEM_FRACTION`` instead of its 75% preallocation (and no preallocation
  at all when alone on the GPU).
- torch: ``torch.cuda.set_per_process_memory_fraction(fraction)``.

``auto`` runs a probe over the search's first trials (:class:`SharingProbe`): 1, 2, 4, ... workers per
GPU, each level measured from the epochs its trials report, until the throughput stops growing
(:func:`choose_trials_per_gpu`).  Everything here is pure or cheap: a worker imports this module
before its library, and the tests drive the probe with recorded figures.
"""

from __future__ import annotations

import math
import os
import shutil
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from archsearch.errors import ConfigError

AUTO = "auto"
# What all the workers of one GPU may take together; the rest is the driver's and the CUDA context's.
GPU_MEMORY_SHARE = 0.9
# The most workers per GPU the auto probe tries (1, 2, 4, 8) unless tuner.parallel_trials caps it lower.
MAX_AUTO_TRIALS_PER_GPU = 8
# A level of the probe is measured over this many epoch reports per worker (each worker's first epoch
# included: a one-epoch trial still counts).
PROBE_EPOCHS_PER_WORKER = 2
# The key whose value is the worker's own throughput in an epoch's metrics (added by the Keras runner).
SAMPLES_PER_SECOND = "samples_per_second"

# Read by a worker's set-up (training/process_setup.py) and by a trial=command program.
FRACTION_ENV = "ARCHSEARCH_GPU_MEMORY_FRACTION"
SHARED_ENV = "ARCHSEARCH_GPU_SHARED"  # "1": other workers use the same GPU (TensorFlow: a hard limit)
BACKENDS = ("tensorflow", "jax", "torch")
META_KEY = "gpu_sharing"


# ------------------------------------------------------------------ settings
def trials_per_gpu_setting(value: Any, field_name: str = "executor.trials_per_gpu") -> int | str:
    """``executor.trials_per_gpu`` checked: a whole number >= 1, or ``auto``."""
    if isinstance(value, str) and value.strip().lower() == AUTO:
        return AUTO
    ok = isinstance(value, (int, str)) and not isinstance(value, bool)
    try:
        number = int(str(value).strip()) if ok else 0
    except ValueError:
        number = 0
    if number < 1:
        raise ConfigError(field_name, f"{value!r} is not allowed",
                          "use a whole number >= 1 (workers sharing each GPU), or auto to measure it")
    return number


def memory_fraction_setting(value: Any, field_name: str = "executor.gpu_memory_fraction") -> float | str:
    """``executor.gpu_memory_fraction`` checked: a number in (0, 1], or ``auto`` (0.9 / workers per GPU)."""
    if value is None or (isinstance(value, str) and value.strip().lower() == AUTO):
        return AUTO
    try:
        number = float(value) if not isinstance(value, bool) else math.nan
    except (TypeError, ValueError):
        number = math.nan
    if not (0.0 < number <= 1.0):
        raise ConfigError(field_name, f"{value!r} is not allowed",
                          "use a fraction of each GPU's memory in (0, 1], e.g. 0.4, or auto (0.9 / trials_per_gpu)")
    return number


def memory_fraction(setting: float | str, per_gpu: int) -> float:
    """Each worker's share of its GPU: the setting, or ``auto``: 0.9 split between the GPU's workers."""
    if setting == AUTO:
        return round(GPU_MEMORY_SHARE / max(1, per_gpu), 4)
    return float(setting)


# ------------------------------------------------------------------ per-worker environment
def backend_memory_env(backend: str, fraction: float, shared: bool) -> dict[str, str]:
    """The environment that bounds ``backend``'s memory on a GPU, set before the library is imported.

    A library whose limit needs a call (TensorFlow shared, torch) gets it from the worker's set-up,
    which reads :data:`FRACTION_ENV`; its entry here is then empty.
    """
    if backend == "tensorflow":
        return {} if shared else {"TF_FORCE_GPU_ALLOW_GROWTH": "true"}
    if backend == "jax":
        env = {"XLA_PYTHON_CLIENT_MEM_FRACTION": _number(fraction)}
        if not shared:
            env["XLA_PYTHON_CLIENT_PREALLOCATE"] = "false"  # alone: take what it uses, up to the fraction
        return env
    if backend == "torch":
        return {}
    raise ConfigError("KERAS_BACKEND", f"{backend!r} is not a backend archsearch knows",
                      f"use one of: {', '.join(BACKENDS)}")


def memory_env(fraction: float, shared: bool) -> dict[str, str]:
    """Every library's variables at once: a worker may train with any of them (a ``trial=command``
    program chooses its own), and each library reads only its own."""
    env = {FRACTION_ENV: _number(fraction), SHARED_ENV: "1" if shared else "0"}
    for backend in BACKENDS:
        env.update(backend_memory_env(backend, fraction, shared))
    return env


def worker_gpu_env(gpu: str, per_gpu: int, fraction: float, environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment of a worker on ``gpu`` that shares it with ``per_gpu - 1`` others.

    GPUs found through ``nvidia-smi`` are numbered in PCI order, as NVML numbers them; CUDA numbers
    the fastest first unless ``CUDA_DEVICE_ORDER=PCI_BUS_ID``, so that is set too, unless the user chose
    the GPUs (``CUDA_VISIBLE_DEVICES``) or the order (``CUDA_DEVICE_ORDER``) themselves: their numbering stays.
    """
    env = {"CUDA_VISIBLE_DEVICES": str(gpu), **memory_env(fraction, shared=per_gpu > 1)}
    given = os.environ if environ is None else environ
    if "CUDA_VISIBLE_DEVICES" not in given and "CUDA_DEVICE_ORDER" not in given:
        env["CUDA_DEVICE_ORDER"] = "PCI_BUS_ID"
    return env


def ray_actor_env(num_gpus: float) -> dict[str, str]:
    """A Ray actor's: Ray pins its GPU; a fraction of one (``num_gpus: 0.5``) shares the device, so its memory
    is bounded as a shared worker's, at ``num_gpus x 0.9`` of the GPU."""
    if num_gpus <= 0:
        return {}
    if num_gpus >= 1:
        return memory_env(GPU_MEMORY_SHARE, shared=False)
    return memory_env(round(num_gpus * GPU_MEMORY_SHARE, 4), shared=True)


def _number(value: float) -> str:
    return f"{value:.4g}"


def gpu_total_mb(device: str) -> int | None:
    """The memory of one GPU (an index or a ``GPU-...`` UUID, as in CUDA_VISIBLE_DEVICES), in MB: through
    NVML (``pip install nvidia-ml-py``) when installed, else ``nvidia-smi``; None when neither answers."""
    try:
        import pynvml

        pynvml.nvmlInit()
        try:
            handle = (pynvml.nvmlDeviceGetHandleByUUID(device) if not device.isdigit()
                      else pynvml.nvmlDeviceGetHandleByIndex(int(device)))
            return int(pynvml.nvmlDeviceGetMemoryInfo(handle).total // (1024 * 1024))
        finally:
            pynvml.nvmlShutdown()
    except Exception:  # noqa: BLE001 - not installed, no driver, an unknown id: try nvidia-smi
        pass
    if shutil.which("nvidia-smi") is None:
        return None
    try:
        out = subprocess.run(["nvidia-smi", "--query-gpu=memory.total", "--format=csv,noheader,nounits",
                              "-i", device], capture_output=True, text=True, timeout=20).stdout
        return int(float(out.split()[0]))
    except (OSError, subprocess.SubprocessError, ValueError, IndexError):
        return None


# ------------------------------------------------------------------ the auto probe
def choose_trials_per_gpu(throughput: Mapping[int, float], min_gain: float = 0.1) -> int:
    """The workers per GPU to keep: going up the levels tried (1, 2, 4, ...), the largest whose throughput
    (summed over its workers) grew by at least ``min_gain`` (10%) over the level before; 1 if none was tried."""
    levels = sorted(n for n, value in throughput.items() if value is not None and math.isfinite(value))
    if not levels:
        return 1
    chosen = levels[0]
    for previous, level in zip(levels, levels[1:]):
        if throughput[level] < throughput[previous] * (1.0 + min_gain):
            break
        chosen = level
    return chosen


def probe_levels(max_per_gpu: int) -> list[int]:
    """1, 2, 4, ... up to ``max_per_gpu`` (which ends the list even when it is not a power of two)."""
    levels, level = [], 1
    while level < max_per_gpu:
        levels.append(level)
        level *= 2
    return levels + [max(1, max_per_gpu)]


@dataclass
class SharingProbe:
    """The ``auto`` probe's state: which level runs now, and the rates its trials reported.

    Fed by the executor with the driver's clock (``now``): a trial starting, its epochs.  Only trials
    started at the current level count for it, so a level's figures are its own workers' (a trial
    from the previous level that still runs only loads the GPU meanwhile).  A worker's rate is its
    epoch's ``samples_per_second`` when the runner reports it, else epochs per second (from the trial's
    start for its first epoch, then between epochs); a level's throughput is the mean rate times its
    workers.
    """

    levels: list[int]
    gpus: int
    max_slots: int
    min_gain: float = 0.1
    index: int = 0
    unit: str | None = None
    throughput: dict[int, float] = field(default_factory=dict)
    chosen: int | None = None
    ended_by: str | None = None
    _rates: list[float] = field(default_factory=list)
    _trials: dict[int, tuple[int, float]] = field(default_factory=dict)  # trial -> (level, last event time)

    @property
    def level(self) -> int:
        return self.chosen if self.chosen is not None else self.levels[self.index]

    @property
    def running(self) -> bool:
        return self.chosen is None

    def workers(self, level: int) -> int:
        return max(1, min(self.max_slots, level * self.gpus))

    def trial_started(self, trial_id: int, now: float) -> None:
        if self.running:
            self._trials[trial_id] = (self.level, now)

    def restart_clock(self, trial_id: int, now: float) -> None:
        """The trial's worker has only now started (a fresh process): its first epoch counts from here."""
        if trial_id in self._trials:
            self._trials[trial_id] = (self._trials[trial_id][0], now)

    def epoch(self, trial_id: int, metrics: Mapping[str, Any], now: float) -> bool:
        """Record one epoch report; True when the level changed (the next one, or the probe's end)."""
        if not self.running or trial_id not in self._trials:
            return False
        level, since = self._trials[trial_id]
        self._trials[trial_id] = (level, now)
        if level != self.level:
            return False
        if self.unit is None:
            self.unit = "samples/s" if _positive(metrics.get(SAMPLES_PER_SECOND)) else "epochs/s"
        if self.unit == "samples/s":
            if not _positive(metrics.get(SAMPLES_PER_SECOND)):
                return False
            self._rates.append(float(metrics[SAMPLES_PER_SECOND]))
        elif now > since:
            self._rates.append(1.0 / (now - since))
        if len(self._rates) < PROBE_EPOCHS_PER_WORKER * self.workers(level):
            return False
        self.throughput[level] = sum(self._rates) / len(self._rates) * self.workers(level)
        self._rates = []
        best = choose_trials_per_gpu(self.throughput, self.min_gain)
        if best < level or self.index + 1 >= len(self.levels):
            self._end(best, "measured")
        else:
            self.index += 1
        return True

    def out_of_memory(self) -> int:
        """A trial of the current level ran out of GPU memory: the probe ends at the best level below it."""
        level = self.level
        below = {n: v for n, v in self.throughput.items() if n < level}
        self._end(choose_trials_per_gpu(below, self.min_gain) if below else max(1, level // 2),
                  f"out of GPU memory at {level} per GPU")
        return self.level

    def stop(self) -> None:
        """The search ended first: the level running now stays the choice."""
        if self.running:
            self._end(self.level, "the search ended during the probe")

    def _end(self, chosen: int, why: str) -> None:
        self.chosen, self.ended_by = chosen, why
        self._trials.clear()
        self._rates = []

    def figures(self) -> str:
        """``1: 120, 2: 210, 4: 215 samples/s``: what each level measured."""
        shown = ", ".join(f"{n}: {v:.0f}" if v >= 100 else f"{n}: {v:.3g}" for n, v in sorted(self.throughput.items()))
        return f"{shown} {self.unit}" if shown else "nothing measured"


def _positive(value: Any) -> bool:
    try:
        return value is not None and math.isfinite(float(value)) and float(value) > 0
    except (TypeError, ValueError):
        return False


def sharing_record(gpus: Sequence[str], per_gpu: int, fraction_setting: float | str, how: str,
                   probe: SharingProbe | None, reductions: Sequence[Mapping[str, int]]) -> dict[str, Any]:
    """What the store's meta keeps under :data:`META_KEY`: the N chosen, how, the probe's figures, the reductions."""
    record: dict[str, Any] = {
        "gpus": list(gpus), "trials_per_gpu": per_gpu, "how": how,
        "memory_fraction": memory_fraction(fraction_setting, per_gpu),
        "reductions": [dict(r) for r in reductions],
    }
    if probe is not None:
        record["probe"] = {"levels": list(probe.levels), "throughput": {str(n): v for n, v in probe.throughput.items()},
                           "unit": probe.unit, "chosen": probe.chosen, "ended_by": probe.ended_by}
    return record


def no_gpu_error(per_gpu: int | str, why: str = "") -> ConfigError:
    """Several trials per GPU where there is none: CPU workers are counted by ``tuner.parallel_trials``."""
    return ConfigError("executor.trials_per_gpu", f"{per_gpu} is set, but no GPU is visible{why}",
                       "use tuner.parallel_trials for CPU workers, or name the GPUs in executor.gpus")


def check_parallel_trials(slots: int, per_gpu: int | str, gpus: int, field_name: str) -> None:
    """An explicit ``tuner.parallel_trials`` must agree with an explicit ``trials_per_gpu`` (> 1)."""
    if gpus and per_gpu not in (1, AUTO) and slots != int(per_gpu) * gpus:
        raise ConfigError(field_name, f"{slots} differs from executor.trials_per_gpu={per_gpu} x {gpus} "
                                      f"GPU{'s' if gpus != 1 else ''} = {int(per_gpu) * gpus}",
                          "set tuner.parallel_trials=auto (trials_per_gpu x GPUs), or leave executor.trials_per_gpu at 1")
