"""How busy a trial keeps its GPU: utilisation and memory sampled through NVML while each epoch trains.

Each epoch of a Keras trial gets ``samples_per_second`` (always, on a CPU too) and, when NVML answers and the
backend trains on a GPU, ``gpu_utilization`` (percent: the mean of the samples taken during the epoch),
``gpu_memory_mb`` (the peak memory used on the device during the epoch, MiB) and ``gpu_index`` (which GPU,
numbered as ``nvidia-smi`` numbers them).  NVML comes from the optional ``nvidia-ml-py`` package
(``pip install "archsearch[gpu]"``); without it, without a GPU, or with the backend on the CPU there are no
GPU figures, no error and no thread.

One daemon thread per worker process samples the device every :data:`SAMPLE_SECONDS` while an epoch is
being watched, and sleeps otherwise.  Utilisation and memory are the whole device's, as ``nvidia-smi``
shows them: with ``executor.trials_per_gpu`` > 1 the workers sharing a GPU report the same device.

Which GPU: a worker trains on the first device of ``CUDA_VISIBLE_DEVICES`` (an index, or a UUID or its
prefix, as CUDA accepts them; unset means device 0).  NVML numbers devices in PCI bus order; CUDA does too
only with ``CUDA_DEVICE_ORDER=PCI_BUS_ID``, else it puts the fastest first.  On a machine whose GPUs differ
and with CUDA's default order, an index could name another GPU than the one training: then no GPU figures
are taken and one warning says to set ``CUDA_DEVICE_ORDER=PCI_BUS_ID`` (UUIDs are never ambiguous).
"""

from __future__ import annotations

import importlib
import logging
import os
import threading
import time
import weakref
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from archsearch.core.measures import RUN_FIGURES

log = logging.getLogger("archsearch")

SAMPLES_PER_SECOND, GPU_UTILIZATION, GPU_MEMORY_MB, GPU_INDEX = RUN_FIGURES
SAMPLE_SECONDS = 0.2  # NVML's utilisation is itself a mean over its last 1/6 to 1 s: sampling faster adds nothing
_MIB = 1024 * 1024
_HIDDEN = ("", "-1", "none", "nodevfiles")  # CUDA_VISIBLE_DEVICES values that hide every GPU


def samples_per_second(steps: int, batch_size: int | None, seconds: float, samples_per_epoch: int | None = None) -> float | None:
    """Training samples per second of an epoch: ``steps`` batches of ``batch_size`` (at most the
    ``samples_per_epoch`` the data holds, when known: the last batch of an epoch may be partial)."""
    if not batch_size or steps <= 0 or seconds <= 0:
        return None
    samples = steps * int(batch_size)
    if samples_per_epoch:
        samples = min(samples, int(samples_per_epoch))
    return samples / seconds


@dataclass(eq=False)  # compared and hashed by identity: the sampler holds its open windows in a WeakSet
class Window:
    """The samples of one epoch: NVML utilisation readings and the peak memory seen."""

    utilization: list[float] = field(default_factory=list)
    peak_bytes: float | None = None

    def add(self, utilization: float | None, used_bytes: float | None) -> None:
        if utilization is not None:
            self.utilization.append(float(utilization))
        if used_bytes is not None:
            self.peak_bytes = max(float(used_bytes), self.peak_bytes or 0.0)

    def figures(self, index: int) -> dict[str, float]:
        """The epoch's GPU figures; those NVML never answered are left out."""
        out: dict[str, float] = {}
        if self.utilization:
            out[GPU_UTILIZATION] = sum(self.utilization) / len(self.utilization)
        if self.peak_bytes is not None:
            out[GPU_MEMORY_MB] = self.peak_bytes / _MIB
        if out:
            out[GPU_INDEX] = float(index)
        return out


class GpuSampler:
    """Samples one GPU's utilisation and memory into every open :class:`Window`, on a daemon thread.

    The thread starts with the first window and waits, sampling nothing, while none is open.  Windows are
    held weakly: one abandoned by an epoch that raised stops being sampled once it is dropped.
    """

    def __init__(self, nvml: Any, handle: Any, index: int, interval: float = SAMPLE_SECONDS) -> None:
        self.nvml, self.handle, self.index, self.interval = nvml, handle, int(index), float(interval)
        self._windows: weakref.WeakSet[Window] = weakref.WeakSet()
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None

    def open(self) -> Window:
        """A new window, sampled from now until :meth:`close` (one reading taken at once)."""
        window = Window()
        reading = self.sample()
        with self._lock:
            window.add(*reading)
            self._windows.add(window)
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="archsearch-gpu-sampler", daemon=True)
                self._thread.start()
        self._wake.set()
        return window

    def close(self, window: Window) -> dict[str, float]:
        """Stop sampling ``window`` (one last reading first, so a short epoch has one) and give its figures."""
        reading = self.sample()
        with self._lock:  # no reading of the thread's lands after this one
            window.add(*reading)
            self._windows.discard(window)
        return window.figures(self.index)

    def sample(self) -> tuple[float | None, float | None]:
        """(utilisation percent, memory used in bytes) now; None for a figure NVML does not give (a MIG slice
        has no utilisation; a driver may refuse either)."""
        return (self._read(lambda: self.nvml.nvmlDeviceGetUtilizationRates(self.handle).gpu),
                self._read(lambda: self.nvml.nvmlDeviceGetMemoryInfo(self.handle).used))

    def _read(self, query) -> float | None:
        try:
            return float(query())
        except Exception:  # noqa: BLE001 - NVMLError and its NotSupported kin: the figure is absent, never an error
            return None

    def _run(self) -> None:
        while True:
            self._wake.wait()
            with self._lock:
                if not self._windows:
                    self._wake.clear()  # under the lock: an open() after this sets it again
                    continue
            reading = self.sample()
            with self._lock:
                for window in self._windows:
                    window.add(*reading)
            time.sleep(self.interval)


_sampler: GpuSampler | None = None
_sampler_known = False
_sampler_lock = threading.Lock()


def gpu_sampler(environ: Mapping[str, str] | None = None) -> GpuSampler | None:
    """This process's sampler of the GPU it trains on, or None (no NVML, no GPU, the backend on the CPU,
    an ambiguous device).  Decided once per process: a worker's device does not change."""
    global _sampler, _sampler_known
    with _sampler_lock:
        if not _sampler_known:
            _sampler = _find_sampler(os.environ if environ is None else environ)
            _sampler_known = True
        return _sampler


def reset() -> None:
    """Forget this process's sampler decision (tests; a process whose devices changed)."""
    global _sampler, _sampler_known
    with _sampler_lock:
        _sampler, _sampler_known = None, False


def _find_sampler(environ: Mapping[str, str]) -> GpuSampler | None:
    device = visible_device(environ)
    if device is None:
        return None
    nvml = load_nvml()
    if nvml is None or not backend_on_gpu():
        return None
    try:
        found = nvml_device(nvml, device, environ)
    except Exception as exc:  # noqa: BLE001 - a driver that answers init but not this: no figures
        log.debug("GPU figures off: NVML could not read device %s (%s)", device, exc)
        return None
    if found is None:
        return None
    handle, index = found
    return GpuSampler(nvml, handle, index)


def visible_device(environ: Mapping[str, str]) -> str | None:
    """The device this process trains on, as ``CUDA_VISIBLE_DEVICES`` names it (its first entry; ``"0"`` when
    unset); None when it hides every GPU."""
    value = environ.get("CUDA_VISIBLE_DEVICES")
    if value is None:
        return "0"
    first = value.split(",")[0].strip()
    if first.lower() in _HIDDEN or first.startswith("-"):
        return None
    return first


def load_nvml() -> Any | None:
    """``pynvml`` (from ``nvidia-ml-py``), initialised; None when it is not installed or finds no driver."""
    try:
        nvml = importlib.import_module("pynvml")
        nvml.nvmlInit()
    except Exception as exc:  # noqa: BLE001 - ImportError, NVMLError (no driver, no GPU): no figures
        log.debug("GPU figures off: NVML is not available (%s)", exc)
        return None
    return nvml


def nvml_device(nvml: Any, device: str, environ: Mapping[str, str]) -> tuple[Any, int] | None:
    """(NVML handle, NVML index) of the device ``CUDA_VISIBLE_DEVICES`` names; None when it names none NVML
    knows, or when a CUDA index cannot be trusted to be NVML's (see the module's docstring)."""
    count = int(nvml.nvmlDeviceGetCount())
    if device.isdigit():
        index = int(device)
        if index >= count:
            return None
        if count > 1 and environ.get("CUDA_DEVICE_ORDER", "FASTEST_FIRST") != "PCI_BUS_ID" and _mixed(nvml, count):
            _warn_order_once()
            return None
        return nvml.nvmlDeviceGetHandleByIndex(index), index
    for index in range(count):  # a UUID, or a prefix of one, as CUDA accepts
        handle = nvml.nvmlDeviceGetHandleByIndex(index)
        if _text(nvml.nvmlDeviceGetUUID(handle)).startswith(device):
            return handle, index
    if device.startswith("MIG-"):
        handle = nvml.nvmlDeviceGetHandleByUUID(device)
        return handle, int(nvml.nvmlDeviceGetIndex(nvml.nvmlDeviceGetDeviceHandleFromMigDeviceHandle(handle)))
    return None


def _mixed(nvml: Any, count: int) -> bool:
    """Whether the machine's GPUs are not all the same model (then CUDA's fastest-first order may differ from
    NVML's PCI order)."""
    names = {_text(nvml.nvmlDeviceGetName(nvml.nvmlDeviceGetHandleByIndex(i))) for i in range(count)}
    return len(names) > 1


_order_warned = False


def _warn_order_once() -> None:
    global _order_warned
    if not _order_warned:
        _order_warned = True
        log.warning("GPU figures are off: this machine's GPUs differ and CUDA_DEVICE_ORDER is not PCI_BUS_ID, so "
                    "CUDA's device numbers may not be nvidia-smi's; set CUDA_DEVICE_ORDER=PCI_BUS_ID to have them")


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def backend_on_gpu() -> bool:
    """Whether Keras' backend trains on a GPU in this process (a CPU-only jaxlib or TensorFlow on a GPU machine
    does not: its epochs get no GPU figures)."""
    import keras

    backend = keras.backend.backend()
    try:
        if backend == "jax":
            import jax

            return any(d.platform in ("gpu", "cuda", "rocm") for d in jax.devices())
        if backend == "tensorflow":
            import tensorflow as tf

            return bool(tf.config.list_logical_devices("GPU"))
        if backend == "torch":
            import torch

            return bool(torch.cuda.is_available())
    except Exception:  # noqa: BLE001 - a backend that cannot list its devices: no figures
        return False
    return False
