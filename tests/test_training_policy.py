"""Mixed precision, XLA and steps per execution by policy (archsearch/training/policy.py, issue 30).

The rules are a pure function of the settings, the backend and the device, so every backend and GPU
generation is checked here with a fake DeviceInfo; one tiny Keras fit checks that the policy reaches the
model (dtypes, compile), that outputs and the objective stay float32, and that a resumed trial keeps it.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from archsearch.errors import ConfigError, ConfigRuntimeError
from archsearch.training.policy import (AUTO_STEPS_PER_EXECUTION, DeviceInfo, TrainingPolicy, compile_options,
                                        dividing_steps, policy_settings, resolve_policy, visible_device)
from archsearch.training.settings import TrainerSettings

CPU = DeviceInfo()
A100 = DeviceInfo("gpu", "NVIDIA A100", (8, 0))
V100 = DeviceInfo("gpu", "Tesla V100", (7, 0))
P100 = DeviceInfo("gpu", "Tesla P100", (6, 0))
AMD = DeviceInfo("gpu", "AMD MI250", None)
TPU = DeviceInfo("tpu", "TPU v4")


def _policy(backend: str, device: DeviceInfo, **settings) -> TrainingPolicy:
    return resolve_policy(TrainerSettings(**settings), backend, device)


@pytest.mark.parametrize("backend", ["tensorflow", "jax", "torch"])
@pytest.mark.parametrize("device, setting, expected", [
    (CPU, "auto", "float32"),
    (A100, "auto", "mixed_bfloat16"),
    (V100, "auto", "mixed_float16"),
    (P100, "auto", "float32"),
    (AMD, "auto", "float32"),
    (TPU, "auto", "mixed_bfloat16"),
    (CPU, True, "mixed_bfloat16"),
    (A100, True, "mixed_bfloat16"),
    (V100, True, "mixed_float16"),
    (P100, True, "mixed_float16"),
    (A100, False, "float32"),
    (CPU, "mixed_float16", "mixed_float16"),
    (V100, "mixed_bfloat16", "mixed_bfloat16"),
])
def test_mixed_precision_resolves_by_device_on_every_backend(backend, device, setting, expected):
    assert _policy(backend, device, mixed_precision=setting).dtype_policy == expected


def test_a_choice_that_will_not_pay_says_so_in_a_note():
    assert "emulated" in _policy("tensorflow", CPU, mixed_precision="mixed_float16").notes[0]
    assert "no bfloat16 tensor cores" in _policy("jax", V100, mixed_precision="mixed_bfloat16").notes[0]
    assert "no tensor cores" in _policy("torch", P100, mixed_precision=True).notes[0]
    assert _policy("tensorflow", A100).notes == ()


@pytest.mark.parametrize("backend, device, jit, steps", [
    ("tensorflow", CPU, False, 1),
    ("tensorflow", A100, True, AUTO_STEPS_PER_EXECUTION),
    ("tensorflow", TPU, True, AUTO_STEPS_PER_EXECUTION),
    ("jax", CPU, True, 1),
    ("jax", A100, True, AUTO_STEPS_PER_EXECUTION),
    ("torch", CPU, False, 1),
    ("torch", A100, False, 1),  # Keras's torch backend runs one step per execution
])
def test_auto_jit_compile_and_steps_follow_keras_per_backend(backend, device, jit, steps):
    policy = _policy(backend, device)
    assert (policy.jit_compile, policy.steps_per_execution) == (jit, steps)
    assert policy.jit_compile_auto and policy.steps_per_execution_auto
    # Keras is given "auto" (it also declines XLA for a model that cannot be compiled).
    assert compile_options(policy) == {"jit_compile": "auto", "steps_per_execution": steps}


def test_explicit_jit_compile_and_steps_reach_compile_as_given():
    policy = _policy("tensorflow", CPU, jit_compile=True, steps_per_execution=8)
    assert compile_options(policy) == {"jit_compile": True, "steps_per_execution": 8}
    assert "torch.compile" in _policy("torch", A100, jit_compile=True).notes[0]
    assert "eagerly" in _policy("jax", CPU, jit_compile="false").notes[0]


def test_a_builder_s_own_compile_choices_stay_under_auto_and_yield_to_explicit_settings():
    builder = {"jit_compile": False, "steps_per_execution": 4}
    assert compile_options(_policy("tensorflow", A100), builder) == {}
    explicit = _policy("tensorflow", A100, jit_compile=True, steps_per_execution=16)
    assert compile_options(explicit, builder) == {"jit_compile": True, "steps_per_execution": 16}
    # A builder that left Keras's defaults gets the policy's steps.
    assert compile_options(_policy("jax", A100), {"jit_compile": True, "steps_per_execution": 1}) == {
        "steps_per_execution": AUTO_STEPS_PER_EXECUTION}


@pytest.mark.parametrize("given, steps_per_epoch, expected", [
    (32, 1875, 25), (32, 64, 32), (32, 5, 5), (4, 6, 3), (32, 47, 1), (1, 10, 1)])
def test_steps_per_execution_divides_an_epoch_so_batches_stay_aligned(given, steps_per_epoch, expected):
    assert dividing_steps(given, steps_per_epoch) == expected


@pytest.mark.parametrize("field, value", [
    ("mixed_precision", "float16"), ("mixed_precision", None), ("jit_compile", "xla"),
    ("steps_per_execution", 0), ("steps_per_execution", "many"), ("steps_per_execution", 2.5)])
def test_a_bad_setting_is_one_error_naming_field_value_and_fix(field, value):
    with pytest.raises(ConfigError, match=f"trainer.{field}: .*{value!r}.*use ") as caught:
        TrainerSettings(**{field: value})
    assert caught.value.field == f"trainer.{field}"


def test_the_config_is_checked_before_any_backend_starts():
    from archsearch.cli.config import _trainer_fields

    fields, _ = _trainer_fields({"mixed_precision": "on", "jit_compile": "no", "steps_per_execution": "4"}, {})
    assert (fields["mixed_precision"], fields["jit_compile"], fields["steps_per_execution"]) == (True, False, 4)
    with pytest.raises(ConfigError, match="trainer.mixed_precision"):
        _trainer_fields({"mixed_precision": "half"}, {})


def test_steps_per_execution_with_torch_is_refused_naming_the_backends_that_have_it():
    with pytest.raises(ConfigError, match="trainer.steps_per_execution: 4 needs the tensorflow or jax backend"):
        _policy("torch", A100, steps_per_execution=4)
    assert _policy("torch", A100, steps_per_execution=1).steps_per_execution == 1


def test_the_policy_describes_itself_in_one_line_and_round_trips_as_recorded():
    policy = _policy("tensorflow", A100)
    assert policy.describe() == ("mixed precision mixed_bfloat16, jit_compile on (auto), steps_per_execution 32 "
                                 "(tensorflow on NVIDIA A100 (compute capability 8.0))")
    assert TrainingPolicy.from_dict(json.loads(json.dumps(policy.as_dict()))) == policy
    assert "off (float32)" in _policy("jax", CPU).describe()


def test_the_header_asks_nvidia_smi_not_jax_for_the_device(monkeypatch):
    import shutil
    import subprocess

    monkeypatch.setattr(shutil, "which", lambda name: None)
    assert visible_device("jax") == CPU
    monkeypatch.setattr(shutil, "which", lambda name: "/usr/bin/nvidia-smi")
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "2,3")
    calls = []

    def fake_run(args, **kwargs):
        calls.append(args)
        return subprocess.CompletedProcess(args, 0, stdout="NVIDIA H100 80GB HBM3, 9.0\n")

    monkeypatch.setattr(subprocess, "run", fake_run)
    assert visible_device("torch") == DeviceInfo("gpu", "NVIDIA H100 80GB HBM3", (9, 0))
    assert "--id=2" in calls[0]


def test_each_backend_says_its_device_to_the_worker(monkeypatch):
    """jax and torch are not installed here: stand-ins with their APIs' shapes (jax.devices()[0], torch.cuda)."""
    import sys
    from types import SimpleNamespace

    from archsearch.training.policy import detect_device

    gpu = SimpleNamespace(platform="gpu", device_kind="NVIDIA H100 80GB HBM3", compute_capability="9.0")
    monkeypatch.setitem(sys.modules, "jax", SimpleNamespace(devices=lambda: [gpu]))
    assert detect_device("jax") == DeviceInfo("gpu", "NVIDIA H100 80GB HBM3", (9, 0))
    monkeypatch.setitem(sys.modules, "jax", SimpleNamespace(devices=lambda: [SimpleNamespace(platform="cpu")]))
    assert detect_device("jax") == CPU
    cuda = SimpleNamespace(is_available=lambda: True, get_device_name=lambda i: "NVIDIA A10",
                           get_device_capability=lambda i: (8, 6))
    monkeypatch.setitem(sys.modules, "torch", SimpleNamespace(cuda=cuda))
    assert detect_device("torch") == DeviceInfo("gpu", "NVIDIA A10", (8, 6))
    tf = pytest.importorskip("tensorflow")
    if not tf.config.list_physical_devices("GPU"):
        assert detect_device("tensorflow") == CPU


def test_the_policy_settings_are_part_of_the_fingerprint(tmp_path):
    from archsearch.engine.assembly import Assembly, create_search_oracle
    from archsearch.engine.settings import TunerSettings
    from archsearch.space.hyperparameters import HyperParameters

    def open_with(**settings):
        space = HyperParameters()
        space.Float("x", 0.0, 1.0)
        assembly = Assembly(tmp_path)
        try:
            oracle = create_search_oracle(TunerSettings.from_config({"name": "random", "max_trials": 2}), space,
                                          "score")
            store = assembly.open(oracle, training=policy_settings(TrainerSettings(**settings)))
            if store.count() == 0:
                from archsearch.core.trial import Trial

                store.create_trial(Trial(0, {"x": 0.5}))
            return store.get_meta("fingerprint")
        finally:
            assembly.lock.release()

    stored = open_with()
    assert stored["training"] == {"mixed_precision": "auto", "jit_compile": "auto", "steps_per_execution": "auto"}
    assert open_with(mixed_precision="auto")["training"] == stored["training"]  # the same search resumes
    with pytest.raises(ConfigRuntimeError, match=r"changed: trainer.mixed_precision, trainer.steps_per_execution"):
        open_with(mixed_precision=True, steps_per_execution=8)


def test_the_search_header_says_the_policy_and_the_run_keeps_it(monkeypatch):
    from types import SimpleNamespace

    import archsearch.training.policy as policy
    from archsearch.cli.app import _training_line

    monkeypatch.setattr(policy, "visible_device", lambda backend: CPU)  # whatever this machine has

    meta: dict = {}
    tuner = SimpleNamespace(trainer=TrainerSettings(mixed_precision="mixed_float16", steps_per_execution=4),
                            store=SimpleNamespace(set_meta=meta.__setitem__))
    lines = _training_line(tuner).splitlines()
    assert lines[0] == ("Training: mixed precision mixed_float16, jit_compile off (auto), steps_per_execution 4 "
                        "(tensorflow on CPU)")
    assert lines[1].startswith("Note: mixed_float16 on a CPU is emulated and slow")
    assert meta["training_policy"]["dtype_policy"] == "mixed_float16"


def test_a_global_dtype_policy_the_caller_set_is_what_auto_trains_with(tmp_path):
    import keras

    from archsearch.core.objective import Objective
    from archsearch.training.fit_data import FitArguments
    from archsearch.training.runner import Runner

    def runner(**settings):
        return Runner(lambda hp: None, FitArguments(), Objective.create("val_loss"), tmp_path,
                      trainer=TrainerSettings(**settings))

    keras.mixed_precision.set_global_policy("mixed_bfloat16")  # as a KerasTuner user's script does
    try:
        assert runner().training_policy().dtype_policy == "mixed_bfloat16"
        assert runner(mixed_precision=False).training_policy().dtype_policy == "float32"  # said explicitly
    finally:
        keras.mixed_precision.set_global_policy("float32")
    assert runner().training_policy().dtype_policy == "float32"


def test_a_tf_data_pipeline_given_to_search_is_prefetched_with_the_same_batches():
    tf = pytest.importorskip("tensorflow")
    from archsearch.training.fit_data import FitArguments

    x = np.arange(10, dtype="float32")
    train = tf.data.Dataset.from_tensor_slices((x, x)).batch(4)
    validation = train.prefetch(1)
    kwargs = FitArguments((train,), {"validation_data": validation}).fit_kwargs(None)
    assert type(kwargs["x"]).__name__.lstrip("_").startswith("Prefetch")
    assert [b[0].numpy().tolist() for b in kwargs["x"]] == [b[0].numpy().tolist() for b in train]
    assert kwargs["validation_data"] is validation  # one prefetch is enough
    assert FitArguments((x, x), {"shuffle": False}).fit_kwargs(4)["x"] is x  # arrays: Keras batches them


def test_the_policy_s_compile_arguments_reach_a_model_compiled_by_the_trainer_or_by_its_builder():
    import keras

    from archsearch.space.hyperparameters import HyperParameters
    from archsearch.training.settings import CompileSettings

    def tiny():
        return keras.Sequential([keras.Input((3,)), keras.layers.Dense(2, activation="softmax")])

    ours = tiny()
    CompileSettings(loss="sparse_categorical_crossentropy").compile(
        ours, HyperParameters(), {"jit_compile": True, "steps_per_execution": 4})
    assert (ours.jit_compile, ours.steps_per_execution) == (True, 4)
    builders = tiny()
    builders.compile(optimizer="sgd", loss="mse", metrics=["mae"])
    CompileSettings().recompile(builders, {"steps_per_execution": 8})
    assert builders.steps_per_execution == 8
    assert (builders.loss, type(builders.optimizer).__name__) == ("mse", "SGD")  # the builder's own choices stay


def test_outputs_that_cannot_be_seen_before_training_are_kept_with_a_note():
    import keras

    from archsearch.training.policy import float32_outputs

    class Subclassed(keras.Model):
        def call(self, x):
            return x

    model = Subclassed()
    kept, note = float32_outputs(model)
    assert kept is model and 'dtype="float32"' in note


# ------------------------------------------------------------------ one tiny Keras trial
def _builder(seen: dict):
    def build(hp):
        import keras

        keras.backend.clear_session()  # as many KerasTuner builders start: the policy survives it
        model = keras.Sequential([keras.Input((6,)), keras.layers.Dense(8, activation="relu"),
                                  keras.layers.Dense(2, activation="softmax")])  # no dtype="float32" here
        model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
        return model
    return build


def test_a_mixed_precision_trial_trains_with_float32_outputs_and_keeps_its_policy_when_resumed(tmp_path):
    import keras

    from archsearch.core.checkpoints import checkpoint_policy
    from archsearch.core.objective import Objective
    from archsearch.oracles.base import COMPLETED, Trial
    from archsearch.space.hyperparameters import HyperParameters
    from archsearch.training.fit_data import FitArguments
    from archsearch.training.runner import Runner
    from kt_helpers import tiny_data

    seen: list[dict] = []

    class Spy(keras.callbacks.Callback):
        def __deepcopy__(self, memo):
            return self

        def on_train_begin(self, logs=None):
            seen.append({"dtype": self.model.layers[0].dtype_policy.name,
                         "outputs": [keras.backend.standardize_dtype(o.dtype) for o in self.model.outputs],
                         "jit": self.model.jit_compile, "steps": self.model.steps_per_execution})

    x, y = tiny_data(n=80)  # 64 training samples: 4 steps of 16 per epoch
    trainer = TrainerSettings(epochs=1, batch_size=16, mixed_precision=True, jit_compile=False, steps_per_execution=3)
    runner = Runner(_builder(seen), FitArguments((x, y), {"validation_split": 0.2}), Objective.create("val_loss"),
                    tmp_path, trainer=trainer, callbacks=[Spy()])
    outcome = runner.run(Trial(0, {}, budget=1), HyperParameters())
    assert outcome.status == COMPLETED, outcome.error
    # bfloat16 layers (true on a CPU), a float32 output, and the compile arguments the policy set: 3 steps
    # per execution became 2, which divides the epoch's 4 steps.
    assert seen[0] == {"dtype": "mixed_bfloat16", "outputs": ["float32"], "jit": False, "steps": 2}
    assert isinstance(outcome.value, float) and np.isfinite(outcome.value)
    assert keras.config.dtype_policy().name == "float32"  # the trial's policy does not leak out
    recorded = checkpoint_policy(runner.checkpoint_path(0))
    assert (recorded["dtype_policy"], recorded["jit_compile"], recorded["steps_per_execution"]) == (
        "mixed_bfloat16", False, 2)

    # Resumed with other settings, the trial keeps the policy its checkpoint was trained under.
    runner = Runner(_builder(seen), runner.data, Objective.create("val_loss"), tmp_path, callbacks=[Spy()],
                    trainer=TrainerSettings(epochs=2, batch_size=16, mixed_precision=False))
    resumed = runner.run(Trial(0, {}, budget=2), HyperParameters(), resume_checkpoint=runner.checkpoint_path(0),
                         initial_epoch=1)
    assert resumed.status == COMPLETED, resumed.error
    assert seen[1]["dtype"] == "mixed_bfloat16" and seen[1]["outputs"] == ["float32"]
    assert runner.training_policy().dtype_policy == "float32"  # a new trial takes the new settings
