"""How fast each trial's steps run: mixed precision, XLA and steps per execution, chosen by policy.

Three trainer settings say what the user wants (``trainer.mixed_precision``, ``trainer.jit_compile``,
``trainer.steps_per_execution``, each ``auto`` by default); :func:`resolve_policy` turns them, the Keras
backend and the device a worker trains on into one :class:`TrainingPolicy`.  It is a pure function (the
device comes in as a :class:`DeviceInfo`), so every rule below is tested without a GPU;
:func:`detect_device` asks the backend, lazily, in the process that trains.

The rules (Keras 3; ``GPU`` means a CUDA device, ``cc`` its compute capability):

``mixed_precision``
    ``false``: float32.  ``mixed_float16`` / ``mixed_bfloat16``: that Keras dtype policy, on every backend
    and device (float16 on a CPU is emulated and slow: a note says so).  ``auto``: on a GPU with cc >= 8.0
    ``mixed_bfloat16`` (bfloat16 tensor cores, float32's range, no loss scaling), with 7.0 <= cc < 8.0
    ``mixed_float16`` (tensor cores; Keras scales the loss), below 7.0 or unknown float32; on a TPU
    ``mixed_bfloat16``; on a CPU float32.  ``true``: the best the device supports: as ``auto`` on a GPU
    with cc >= 7.0 or a TPU, ``mixed_float16`` on an older GPU, and ``mixed_bfloat16`` on a CPU (float16
    is emulated there; expect no speed-up).  Whatever the policy, the model's outputs are float32, so
    losses, metrics and the objective mean the same with and without it.
``jit_compile`` (Keras ``compile(jit_compile=...)``)
    ``true``/``false`` as given; with torch ``true`` is ``torch.compile`` (experimental in Keras) and with
    JAX ``false`` runs the steps eagerly (much slower).  ``auto`` is Keras's own ``auto``: TensorFlow
    compiles with XLA on a GPU or TPU and not on a CPU, JAX always compiles, torch runs without
    ``torch.compile``; a model with a layer that XLA cannot compile falls back to no XLA.
``steps_per_execution``
    ``N`` training steps per call into the backend (TensorFlow and JAX; Keras's torch backend runs one:
    ``N > 1`` with torch is refused).  ``auto``: 32 on a GPU or TPU with TensorFlow or JAX (small models'
    steps are dominated by dispatch there), otherwise 1.  Trials read one endless stream of batches with
    ``steps_per_epoch``, and Keras would let a group run past an epoch's end into the next epoch's batches,
    so a fit runs the largest number up to N that divides its steps per epoch (:func:`dividing_steps`):
    the batches, and so the results, are those of one step per execution.

A trial keeps the policy it started with: it is recorded in its weight files
(:mod:`archsearch.core.checkpoints`), and a resumed trial or a loaded best model is built under it.
"""

from __future__ import annotations

import contextlib
import functools
import json
import threading
from collections.abc import Iterator, Mapping
from dataclasses import asdict, dataclass
from dataclasses import field as dataclass_field
from typing import Any

from archsearch.core.checks import FALSE_WORDS, TRUE_WORDS, whole_number
from archsearch.errors import ConfigError

AUTO = "auto"
FLOAT32 = "float32"
MIXED_FLOAT16 = "mixed_float16"
MIXED_BFLOAT16 = "mixed_bfloat16"
MIXED_POLICIES = (MIXED_FLOAT16, MIXED_BFLOAT16)
AUTO_STEPS_PER_EXECUTION = 32  # a GPU's steps per execution under auto (Keras: "can greatly improve" small models)
BFLOAT16_CAPABILITY = (8, 0)  # Ampere and later: bfloat16 tensor cores
FLOAT16_CAPABILITY = (7, 0)  # Volta and later: float16 tensor cores


# ------------------------------------------------------------------ the settings, checked
def _word_or_boolean(value: Any, words: tuple[str, ...]) -> str | bool | None:
    """One of ``words``, or a boolean (read as :func:`archsearch.core.checks.boolean` reads it); None otherwise."""
    if isinstance(value, bool):
        return value
    if isinstance(value, str):
        word = value.strip().lower()
        if word in words:
            return word
        if word in TRUE_WORDS or word in FALSE_WORDS:
            return word in TRUE_WORDS
    return None


def mixed_precision_setting(value: Any, field: str = "trainer.mixed_precision") -> str | bool:
    """``auto``, ``true``, ``false``, ``mixed_float16`` or ``mixed_bfloat16``; anything else is a ConfigError
    naming ``field``."""
    setting = _word_or_boolean(value, (AUTO, *MIXED_POLICIES))
    if setting is None:
        raise ConfigError(field, f"{value!r} is not a mixed precision setting",
                          "use auto (on when a GPU is present), true, false, mixed_float16 or mixed_bfloat16")
    return setting


def jit_compile_setting(value: Any, field: str = "trainer.jit_compile") -> str | bool:
    """``auto``, ``true`` or ``false``."""
    setting = _word_or_boolean(value, (AUTO,))
    if setting is None:
        raise ConfigError(field, f"{value!r} is not a jit_compile setting",
                          "use auto (Keras's choice per backend and device), true (XLA) or false")
    return setting


def steps_per_execution_setting(value: Any, field: str = "trainer.steps_per_execution") -> str | int:
    """``auto`` or a whole number >= 1."""
    if isinstance(value, str) and value.strip().lower() == AUTO:
        return AUTO
    try:
        return int(whole_number(value, field, 1))  # type: ignore[arg-type]
    except ConfigError:
        raise ConfigError(field, f"{value!r} is not allowed",
                          "use auto (32 on a GPU, 1 on a CPU) or a whole number >= 1") from None


def policy_settings(settings: Any) -> dict[str, Any]:
    """The policy's settings as given (``auto``, ``true``, ``32``...): part of a search's fingerprint, so a
    search resumed with others is refused like a changed space."""
    return {"mixed_precision": mixed_precision_setting(getattr(settings, "mixed_precision", AUTO)),
            "jit_compile": jit_compile_setting(getattr(settings, "jit_compile", AUTO)),
            "steps_per_execution": steps_per_execution_setting(getattr(settings, "steps_per_execution", AUTO))}


# ------------------------------------------------------------------ the device
@dataclass(frozen=True)
class DeviceInfo:
    """The device a worker trains on: ``platform`` is ``cpu``, ``gpu`` or ``tpu``; ``compute_capability``
    is a CUDA GPU's (major, minor), None when unknown (a CPU, a TPU, an AMD GPU)."""

    platform: str = "cpu"
    name: str = "CPU"
    compute_capability: tuple[int, int] | None = None

    @property
    def is_gpu(self) -> bool:
        return self.platform == "gpu"

    @property
    def accelerated(self) -> bool:
        """A GPU or a TPU: where dispatch per step, not arithmetic, bounds a small model."""
        return self.platform in ("gpu", "tpu")

    def label(self) -> str:
        cc = self.compute_capability
        return self.name + (f" (compute capability {cc[0]}.{cc[1]})" if cc else "")


def detect_device(backend: str) -> DeviceInfo:
    """The first device ``backend`` trains on (a worker's GPU is its CUDA_VISIBLE_DEVICES' first).

    Asked lazily, in a worker process, after the executor's memory settings took effect."""
    try:
        if backend == "tensorflow":
            return _tensorflow_device()
        if backend == "jax":
            return _jax_device()
        if backend == "torch":
            return _torch_device()
    except Exception:  # a backend that cannot say: a CPU, the policy that is always safe
        return DeviceInfo()
    return DeviceInfo()


def visible_device(backend: str) -> DeviceInfo:
    """The device a search's trials will see, asked without starting JAX's or torch's GPU client (JAX would
    take 75% of the GPU's memory in the driver): TensorFlow lists it, the others ask ``nvidia-smi``.  For the
    search's own process (its header, and trials trained inline); a worker process asks :func:`detect_device`."""
    if backend == "tensorflow":
        return detect_device(backend)
    import os
    import shutil
    import subprocess

    smi = shutil.which("nvidia-smi")
    if smi is None:
        return DeviceInfo()
    first = (os.environ.get("CUDA_VISIBLE_DEVICES") or "0").split(",")[0].strip()
    if first in ("", "-1"):
        return DeviceInfo()
    try:
        line = subprocess.run([smi, f"--id={first}", "--query-gpu=name,compute_cap", "--format=csv,noheader"],
                              capture_output=True, text=True, timeout=20, check=True).stdout.strip().splitlines()[0]
    except (OSError, subprocess.SubprocessError, IndexError):
        return DeviceInfo()
    name, _, capability = line.rpartition(",")
    return DeviceInfo("gpu", name.strip() or "GPU", _capability(capability.strip()))


def _capability(value: Any) -> tuple[int, int] | None:
    """(8, 0) from TensorFlow's tuple, JAX's "8.0" or torch's (8, 0)."""
    if value is None:
        return None
    parts = str(value).replace("(", "").replace(")", "").replace(",", ".").replace(" ", "").split(".")
    try:
        return int(parts[0]), int(parts[1]) if len(parts) > 1 and parts[1] else 0
    except ValueError:
        return None


def _tensorflow_device() -> DeviceInfo:
    import tensorflow as tf

    gpus = tf.config.list_physical_devices("GPU")
    if not gpus:
        return DeviceInfo()
    details = tf.config.experimental.get_device_details(gpus[0])
    return DeviceInfo("gpu", str(details.get("device_name", "GPU")), _capability(details.get("compute_capability")))


def _jax_device() -> DeviceInfo:
    import jax

    device = jax.devices()[0]
    platform = {"cuda": "gpu", "rocm": "gpu"}.get(device.platform, device.platform)
    if platform not in ("gpu", "tpu"):
        return DeviceInfo()
    capability = _capability(getattr(device, "compute_capability", None))
    if platform == "gpu" and capability is None:  # a jaxlib that does not say: nvidia-smi does
        capability = visible_device("jax").compute_capability
    return DeviceInfo(platform, str(getattr(device, "device_kind", platform.upper())), capability)


def _torch_device() -> DeviceInfo:
    import torch

    if not torch.cuda.is_available():
        return DeviceInfo()
    return DeviceInfo("gpu", str(torch.cuda.get_device_name(0)), _capability(torch.cuda.get_device_capability(0)))


# ------------------------------------------------------------------ the policy
@dataclass(frozen=True)
class TrainingPolicy:
    """What a trial trains with: the Keras dtype policy, ``jit_compile`` (True/False, or ``auto``: Keras
    decides per model) and ``steps_per_execution``, on ``device`` with ``backend``; ``notes`` say why a
    choice may surprise (float16 on a CPU, ...)."""

    dtype_policy: str = FLOAT32
    jit_compile: bool = False
    steps_per_execution: int = 1
    # jit_compile came from auto: Keras is given "auto", which also declines XLA for a model with a layer
    # XLA cannot compile (or under a tf.distribute strategy); the trial records what Keras chose.
    jit_compile_auto: bool = False
    steps_per_execution_auto: bool = False
    backend: str = "tensorflow"
    device: str = "CPU"
    notes: tuple[str, ...] = dataclass_field(default=(), compare=False)

    @property
    def mixed(self) -> bool:
        return self.dtype_policy in MIXED_POLICIES

    def describe(self) -> str:
        """One line for the search's header."""
        precision = self.dtype_policy if self.mixed else "off (float32)"
        jit = ("on" if self.jit_compile else "off") + (" (auto)" if self.jit_compile_auto else "")
        return (f"mixed precision {precision}, jit_compile {jit}, steps_per_execution {self.steps_per_execution} "
                f"({self.backend} on {self.device})")

    def as_dict(self) -> dict[str, Any]:
        """What a trial records: plain JSON values."""
        values = asdict(self)
        values["notes"] = list(self.notes)
        return values

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> TrainingPolicy:
        """A recorded policy (:meth:`as_dict`), as a trial that resumes keeps it."""
        known = {k: v for k, v in values.items() if k in cls.__dataclass_fields__}
        known["notes"] = tuple(known.get("notes") or ())
        return cls(**known)


_SAID: set[str] = set()  # the notes this process has shown (the header's, then a trial's in the same process)


def unsaid_notes(policy: TrainingPolicy) -> list[str]:
    """The policy's notes this process has not shown yet: each is said once, not once per trial."""
    fresh = [n for n in policy.notes if n not in _SAID]
    _SAID.update(fresh)
    return fresh


def resolve_policy(settings: Any, backend: str, device: DeviceInfo) -> TrainingPolicy:
    """The policy for ``settings`` (anything with ``mixed_precision``, ``jit_compile`` and
    ``steps_per_execution``: TrainerSettings) on ``backend`` and ``device``: the module's rules."""
    precision = mixed_precision_setting(getattr(settings, "mixed_precision", AUTO))
    jit = jit_compile_setting(getattr(settings, "jit_compile", AUTO))
    steps = steps_per_execution_setting(getattr(settings, "steps_per_execution", AUTO))
    notes: list[str] = []
    dtype_policy = _dtype_policy(precision, device, notes)
    return TrainingPolicy(dtype_policy=dtype_policy, jit_compile=_jit_compile(jit, backend, device, notes),
                          jit_compile_auto=jit == AUTO,
                          steps_per_execution=_steps_per_execution(steps, backend, device),
                          steps_per_execution_auto=steps == AUTO,
                          backend=backend, device=device.label(), notes=tuple(notes))


def _dtype_policy(setting: str | bool, device: DeviceInfo, notes: list[str]) -> str:
    cc = device.compute_capability
    if setting is False:
        return FLOAT32
    if setting in MIXED_POLICIES:
        if not device.accelerated and setting == MIXED_FLOAT16:
            notes.append("mixed_float16 on a CPU is emulated and slow; mixed_bfloat16 or false train faster there")
        elif device.is_gpu and setting == MIXED_BFLOAT16 and (cc is None or cc < BFLOAT16_CAPABILITY):
            notes.append(f"{device.label()} has no bfloat16 tensor cores (compute capability 8.0 and up have): "
                         "mixed_float16 is faster there")
        return str(setting)
    if device.platform == "tpu":
        return MIXED_BFLOAT16
    if device.is_gpu:
        if cc is not None and cc >= BFLOAT16_CAPABILITY:
            return MIXED_BFLOAT16
        if cc is not None and cc >= FLOAT16_CAPABILITY:
            return MIXED_FLOAT16
        if setting is True:
            notes.append(f"{device.label()} has no tensor cores: mixed_float16 saves memory but little time")
            return MIXED_FLOAT16
        return FLOAT32
    if setting is True:
        notes.append("mixed precision on a CPU: mixed_bfloat16 (float16 is emulated there); expect no speed-up")
        return MIXED_BFLOAT16
    return FLOAT32


def _jit_compile(setting: str | bool, backend: str, device: DeviceInfo, notes: list[str]) -> bool:
    if setting == AUTO:  # Keras's own auto, per backend
        return backend == "jax" or (backend == "tensorflow" and device.accelerated)
    if setting is True and backend == "torch":
        notes.append("jit_compile=true with torch runs torch.compile, which Keras calls experimental")
    if setting is False and backend == "jax":
        notes.append("jit_compile=false with JAX runs every step eagerly, much slower than auto")
    return bool(setting)


def _steps_per_execution(setting: str | int, backend: str, device: DeviceInfo) -> int:
    if setting == AUTO:
        return AUTO_STEPS_PER_EXECUTION if device.accelerated and backend in ("tensorflow", "jax") else 1
    steps = int(setting)
    if steps > 1 and backend not in ("tensorflow", "jax"):
        raise ConfigError("trainer.steps_per_execution", f"{steps} needs the tensorflow or jax backend "
                          f"(Keras's {backend} backend runs one step per execution)",
                          "use trainer.steps_per_execution=auto or 1, or KERAS_BACKEND=jax")
    return steps


# ------------------------------------------------------------------ applying it
_SCOPE = threading.local()  # the dtype policy this thread's trial wants, while it builds and trains


@contextlib.contextmanager
def dtype_policy_scope(name: str) -> Iterator[None]:
    """Keras' global dtype policy is ``name`` inside (layers take it when they are made), and what it was
    after: one trial's policy never leaks into the next, nor into the caller's own models.  A builder that
    starts with ``keras.backend.clear_session()`` (as many KerasTuner builders do) would reset it to float32
    and silently train without it: inside the scope, that call sets it again."""
    import keras

    _keep_policy_through_clear_session()
    before, wanted = keras.config.dtype_policy(), getattr(_SCOPE, "name", None)
    keras.config.set_dtype_policy(name)
    _SCOPE.name = name
    try:
        yield
    finally:
        _SCOPE.name = wanted
        keras.config.set_dtype_policy(before)


def _keep_policy_through_clear_session() -> None:
    """Wrap ``keras.backend.clear_session`` (and ``keras.utils``') once: after it, the dtype policy of the
    calling thread's scope, if any, is set again.  Outside a scope it is Keras's own."""
    import keras

    original = keras.backend.clear_session
    if getattr(original, "_archsearch_keeps_dtype_policy", False):
        return

    @functools.wraps(original)
    def clear_session(*args: Any, **kwargs: Any) -> Any:
        result = original(*args, **kwargs)
        name = getattr(_SCOPE, "name", None)
        if name is not None:
            keras.config.set_dtype_policy(name)
        return result

    clear_session._archsearch_keeps_dtype_policy = True  # type: ignore[attr-defined]
    keras.backend.clear_session = clear_session
    if getattr(keras.utils, "clear_session", None) is original:
        keras.utils.clear_session = clear_session


def compile_options(policy: TrainingPolicy, compiled_by_builder: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The ``model.compile`` arguments the policy sets.  ``compiled_by_builder``: the compile arguments of a
    model the builder compiled itself; a setting left ``auto`` keeps what the builder chose there."""
    options: dict[str, Any] = {"jit_compile": AUTO if policy.jit_compile_auto else bool(policy.jit_compile),
                               "steps_per_execution": int(policy.steps_per_execution)}
    if compiled_by_builder is None:
        return options
    if policy.jit_compile_auto:
        options.pop("jit_compile")  # Keras resolved the builder's own choice (its auto is ours)
    elif compiled_by_builder.get("jit_compile") == options["jit_compile"]:
        options.pop("jit_compile")
    builder_steps = int(compiled_by_builder.get("steps_per_execution") or 1)
    if (policy.steps_per_execution_auto and builder_steps != 1) or builder_steps == options["steps_per_execution"]:
        options.pop("steps_per_execution")
    return options


def float32_outputs(model: Any) -> tuple[Any, str | None]:
    """``model`` with float32 outputs, so losses, metrics and the objective mean the same under mixed precision.

    The model families set ``dtype="float32"`` on their output layer, as Keras advises.  A builder's
    functional or Sequential model with one float16/bfloat16 output gets a float32 cast after it (a new
    functional model over the same layers, returned uncompiled: the caller compiles it as the builder did).
    A model whose outputs cannot be seen before training (a subclassed one) or that has several is kept, with
    a note: Keras computes losses and metrics in float32 anyway."""
    import keras

    try:
        outputs = list(model.outputs)
    except (AttributeError, ValueError, TypeError):
        return model, ("the model's output dtype is not known before training: give its last layer "
                       "dtype=\"float32\" so its outputs stay float32 under mixed precision")
    dtypes = [keras.backend.standardize_dtype(o.dtype) for o in outputs]
    if all(d == FLOAT32 for d in dtypes):
        return model, None
    if len(outputs) != 1:
        return model, (f"the model's outputs are {', '.join(dtypes)} under mixed precision: give its output "
                       "layers dtype=\"float32\" (Keras computes the losses in float32 either way)")
    cast = keras.layers.Activation("linear", dtype=FLOAT32, name="float32_output")
    return keras.Model(model.inputs, cast(outputs[0]), name=model.name), None


def recorded(policy: TrainingPolicy, model: Any) -> TrainingPolicy:
    """The policy a trial trains under, as built and compiled: the model's own dtype policy (a builder may
    give one), what Keras chose for ``jit_compile`` (auto, or a model XLA cannot compile) and
    ``steps_per_execution`` (a builder's own)."""
    import dataclasses

    dtype = getattr(getattr(model, "dtype_policy", None), "name", None) or policy.dtype_policy
    policy = dataclasses.replace(policy, dtype_policy=str(dtype))
    if not getattr(model, "compiled", False):
        return policy
    return dataclasses.replace(policy, jit_compile=bool(model.jit_compile),
                               steps_per_execution=int(model.steps_per_execution or 1))


def dividing_steps(steps_per_execution: int, steps_per_epoch: int) -> int:
    """The most steps per execution, at most ``steps_per_execution``, that divide an epoch's steps.

    With ``steps_per_epoch`` given (archsearch's epoch-ordered batches are one stream of all epochs), Keras
    takes whole groups of ``steps_per_execution`` batches: a group that crossed an epoch's end would take
    the next epoch's first batches, and every later epoch would see other batches than without it."""
    cap = max(1, min(int(steps_per_execution), int(steps_per_epoch)))
    return next(n for n in range(cap, 0, -1) if steps_per_epoch % n == 0)


def align_steps_per_execution(model: Any, steps_per_epoch: Any) -> None:
    """Before a fit with ``steps_per_epoch``: the model runs a number of steps per execution that divides it
    (:func:`dividing_steps`), and the policy its weight files record says so."""
    from archsearch.core.checkpoints import MODEL_POLICY

    current = int(getattr(model, "steps_per_execution", 1) or 1)
    if not steps_per_epoch or current <= 1:
        return
    steps = dividing_steps(current, int(steps_per_epoch))
    if steps == current:
        return
    model.steps_per_execution = steps
    model.train_function = None  # made again for the new number (none is made before the first fit)
    stored = getattr(model, MODEL_POLICY, None)
    if stored is not None:
        setattr(model, MODEL_POLICY, json.dumps({**json.loads(stored), "steps_per_execution": steps}))
