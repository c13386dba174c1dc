"""Issue 30: several trials per GPU (``executor.trials_per_gpu``), each worker's memory bounded before its library
starts, a GPU out-of-memory error that lowers N, and the ``auto`` probe.

No GPU here: ``executor.gpus=["0"]`` makes the process executor bookkeep a GPU and set its workers' environment
(the library then runs on the CPU), and the trials are Keras-free doubles that report what their worker saw at
set-up and fail "out of memory" on cue.  The libraries' own calls are checked against stand-ins.
"""

from __future__ import annotations

import logging
import os
import sys
import types

import pytest

from archsearch.core.store import TrialStore
from archsearch.core.trial import COMPLETED, FAILED, Trial, TrialOutcome, TrialSpec
from archsearch.engine.search import Search
from archsearch.engine.settings import ExecutorSettings
from archsearch.errors import ConfigError
from archsearch.executors import gpu_sharing as sharing
from archsearch.executors.process import ProcessExecutor, parallel_trials
from archsearch.oracles import create_oracle
from archsearch.space.hyperparameters import HyperParameters
from gpu_doubles import GpuRunner
from search_doubles import space

# ------------------------------------------------------------------ settings
@pytest.mark.parametrize("field, value", [("trials_per_gpu", 0), ("trials_per_gpu", "two"), ("trials_per_gpu", True),
                                          ("trials_per_gpu", 1.5), ("gpu_memory_fraction", 0),
                                          ("gpu_memory_fraction", 1.5), ("gpu_memory_fraction", "half")])
def test_a_bad_sharing_setting_is_refused_by_name_before_training(field, value):
    with pytest.raises(ConfigError) as error:
        ExecutorSettings.from_config({"name": "process", field: value})
    assert error.value.field == f"executor.{field}" and repr(value) in str(error.value) and error.value.fix


def test_the_settings_read_as_documented():
    assert sharing.trials_per_gpu_setting("auto") == "auto" and sharing.trials_per_gpu_setting("3") == 3
    assert sharing.memory_fraction_setting("auto") == "auto" and sharing.memory_fraction_setting(0.4) == 0.4
    assert sharing.memory_fraction("auto", 1) == 0.9 and sharing.memory_fraction("auto", 4) == 0.225
    assert sharing.memory_fraction(0.3, 4) == 0.3  # a number is each worker's share, whatever N


def test_parallel_trials_auto_is_trials_per_gpu_times_the_gpus(monkeypatch):
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")
    assert parallel_trials("auto", executor={"trials_per_gpu": 3, "gpus": [0, 1]}) == 6
    assert parallel_trials("auto", executor={"trials_per_gpu": "auto", "gpus": [0]}) == sharing.MAX_AUTO_TRIALS_PER_GPU
    assert parallel_trials("auto", executor={"trials_per_gpu": "auto"}) == 1  # no GPU: one at a time
    with pytest.raises(ConfigError, match="executor.trials_per_gpu: 2 is set, but no GPU is visible"):
        parallel_trials("auto", executor={"trials_per_gpu": 2})
    assert parallel_trials(4, executor={"trials_per_gpu": 2, "gpus": [0, 1]}) == 4
    with pytest.raises(ConfigError) as error:
        parallel_trials(3, executor={"trials_per_gpu": 2, "gpus": [0, 1]})
    assert error.value.field == "tuner.parallel_trials" and "trials_per_gpu=2 x 2 GPUs = 4" in str(error.value)


def test_several_trials_per_gpu_without_a_gpu_is_a_config_error(monkeypatch, tmp_path):
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")  # none visible, none given
    with pytest.raises(ConfigError) as error:
        ProcessExecutor(GpuRunner(tmp_path), slots=2, trials_per_gpu=2)
    assert error.value.field == "executor.trials_per_gpu" and "no GPU is visible" in str(error.value)
    assert "tuner.parallel_trials" in error.value.fix
    with pytest.raises(ConfigError, match="executor.gpu_memory_fraction: 0.5 is set, but no GPU"):
        ProcessExecutor(GpuRunner(tmp_path), slots=1, gpu_memory_fraction=0.5)
    executor = ProcessExecutor(GpuRunner(tmp_path), slots=2, trials_per_gpu="auto")  # auto without a GPU: 1
    assert executor.probe is None and executor.slots == 2 and executor.per_gpu == 1


# ------------------------------------------------------------------ each library's memory settings
def test_each_backend_s_memory_settings_resolve_as_documented():
    assert sharing.backend_memory_env("tensorflow", 0.9, shared=False) == {"TF_FORCE_GPU_ALLOW_GROWTH": "true"}
    assert sharing.backend_memory_env("tensorflow", 0.45, shared=True) == {}  # a hard limit, set in the worker
    assert sharing.backend_memory_env("jax", 0.9, shared=False) == {"XLA_PYTHON_CLIENT_MEM_FRACTION": "0.9",
                                                                     "XLA_PYTHON_CLIENT_PREALLOCATE": "false"}
    assert sharing.backend_memory_env("jax", 0.225, shared=True) == {"XLA_PYTHON_CLIENT_MEM_FRACTION": "0.225"}
    assert sharing.backend_memory_env("torch", 0.45, shared=True) == {}  # its per-process fraction, set in the worker
    env = sharing.worker_gpu_env("1", per_gpu=2, fraction=0.45)
    assert env["CUDA_VISIBLE_DEVICES"] == "1" and env[sharing.FRACTION_ENV] == "0.45" and env[sharing.SHARED_ENV] == "1"
    # GPUs from nvidia-smi are in PCI order, as NVML's: CUDA is told to number them the same way...
    assert sharing.worker_gpu_env("1", 2, 0.45, environ={})["CUDA_DEVICE_ORDER"] == "PCI_BUS_ID"
    # ... unless the user chose the GPUs or the order: their numbering stays
    assert "CUDA_DEVICE_ORDER" not in sharing.worker_gpu_env("1", 2, 0.45, environ={"CUDA_VISIBLE_DEVICES": "1,0"})
    assert "CUDA_DEVICE_ORDER" not in sharing.worker_gpu_env("1", 2, 0.45, environ={"CUDA_DEVICE_ORDER": "FASTEST_FIRST"})
    assert sharing.ray_actor_env(0.5)[sharing.FRACTION_ENV] == "0.45"  # num_gpus x 0.9
    assert sharing.ray_actor_env(0.5)["XLA_PYTHON_CLIENT_MEM_FRACTION"] == "0.45"
    assert sharing.ray_actor_env(0) == {} and sharing.ray_actor_env(1)[sharing.SHARED_ENV] == "0"


def test_a_ray_actor_with_half_a_gpu_gets_its_memory_share_before_its_runner_loads(monkeypatch):
    from archsearch.executors.ray_actor import ActorSettings, prepare_process

    for name in [*sharing.memory_env(0.9, shared=False), "XLA_PYTHON_CLIENT_PREALLOCATE"]:
        monkeypatch.delenv(name, raising=False)  # put back as they were after the test
    prepare_process(ActorSettings(storage="", num_gpus=0.5))
    assert os.environ[sharing.FRACTION_ENV] == "0.45" and os.environ[sharing.SHARED_ENV] == "1"
    assert os.environ["XLA_PYTHON_CLIENT_MEM_FRACTION"] == "0.45" and "TF_FORCE_GPU_ALLOW_GROWTH" not in os.environ


def _fake_tensorflow(calls: list) -> types.ModuleType:
    tf = types.ModuleType("tensorflow")
    config = types.SimpleNamespace(
        list_physical_devices=lambda kind: ["GPU:0"],
        set_logical_device_configuration=lambda gpu, devices: calls.append(("limit", gpu, devices[0].memory_limit)),
        LogicalDeviceConfiguration=lambda memory_limit: types.SimpleNamespace(memory_limit=memory_limit),
        experimental=types.SimpleNamespace(set_memory_growth=lambda gpu, on: calls.append(("growth", gpu, on))))
    tf.config = config
    return tf


def test_a_shared_tensorflow_gets_a_hard_limit_and_torch_its_fraction(monkeypatch, caplog):
    from archsearch.training import process_setup

    calls: list = []
    monkeypatch.setitem(sys.modules, "tensorflow", _fake_tensorflow(calls))
    monkeypatch.setenv("KERAS_BACKEND", "tensorflow")
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "3")
    monkeypatch.setenv(sharing.FRACTION_ENV, "0.45")
    monkeypatch.setenv(sharing.SHARED_ENV, "1")
    monkeypatch.setattr(process_setup, "gpu_total_mb", lambda device: {"3": 80000}.get(device))
    process_setup.limit_gpu_memory()
    assert calls == [("limit", "GPU:0", 36000)]  # 0.45 x 80 GB of GPU 3
    calls.clear()
    monkeypatch.setattr(process_setup, "gpu_total_mb", lambda device: None)  # no NVML, no nvidia-smi
    with caplog.at_level(logging.WARNING, logger="archsearch"):
        process_setup.limit_gpu_memory()
    assert calls == [("growth", "GPU:0", True)] and "memory size is unknown" in caplog.text
    calls.clear()
    monkeypatch.setenv(sharing.SHARED_ENV, "0")  # alone on its GPU: TF_FORCE_GPU_ALLOW_GROWTH did it already
    process_setup.limit_gpu_memory()
    assert calls == []

    torch = types.ModuleType("torch")
    torch.cuda = types.SimpleNamespace(is_available=lambda: True,
                                       set_per_process_memory_fraction=lambda f: calls.append(("torch", f)))
    monkeypatch.setitem(sys.modules, "torch", torch)
    monkeypatch.setenv("KERAS_BACKEND", "torch")
    process_setup.limit_gpu_memory()
    assert calls == [("torch", 0.45)]
    monkeypatch.delenv(sharing.FRACTION_ENV)  # no GPU share given (a CPU worker): nothing is touched
    process_setup.limit_gpu_memory()
    assert calls == [("torch", 0.45)]


# ------------------------------------------------------------------ the auto probe
def test_the_probe_keeps_the_n_whose_throughput_stops_growing():
    assert sharing.choose_trials_per_gpu({1: 100.0, 2: 180.0, 4: 190.0, 8: 120.0}) == 2  # 4 gains only 5.6%
    assert sharing.choose_trials_per_gpu({1: 100.0, 2: 180.0, 4: 300.0}) == 4
    assert sharing.choose_trials_per_gpu({1: 100.0, 2: 95.0, 4: 400.0}) == 1  # the first level that does not grow ends it
    assert sharing.choose_trials_per_gpu({}) == 1
    assert sharing.choose_trials_per_gpu({1: 100.0, 2: 115.0}, min_gain=0.2) == 1
    assert sharing.probe_levels(8) == [1, 2, 4, 8] and sharing.probe_levels(6) == [1, 2, 4, 6]
    assert sharing.probe_levels(1) == [1]


def test_the_probe_measures_each_level_from_its_own_trials_epochs():
    """Epochs per second when no samples/s is reported: one GPU, each level measured over 2 epochs a worker."""
    probe = sharing.SharingProbe(sharing.probe_levels(4), gpus=1, max_slots=4)
    probe.trial_started(0, 0.0)
    assert not probe.epoch(0, {}, 1.0)  # 1 epoch/s alone
    assert probe.epoch(0, {}, 2.0) and probe.level == 2 and probe.throughput == {1: 1.0}
    probe.trial_started(1, 2.0)
    probe.trial_started(2, 2.0)
    assert not probe.epoch(0, {}, 2.5)  # a level-1 trial still running: it counts for no level
    for now in (3.25, 4.5):  # each of the two workers: 0.8 epochs/s, 1.6 together (+60%)
        probe.epoch(1, {}, now)
        changed = probe.epoch(2, {}, now)
    assert changed and probe.level == 4 and probe.throughput[2] == pytest.approx(1.6)
    for trial in range(3, 7):
        probe.trial_started(trial, 10.0)
    for now in (12.0, 14.0):  # each of four: 0.5 epochs/s, 2.0 together (+25%)
        for trial in range(3, 7):
            probe.epoch(trial, {}, now)
    assert not probe.running and probe.chosen == 4 and probe.ended_by == "measured"
    assert probe.figures() == "1: 1, 2: 1.6, 4: 2 epochs/s"


def test_out_of_memory_during_the_probe_ends_it_below_that_level():
    probe = sharing.SharingProbe([1, 2, 4], gpus=1, max_slots=4, throughput={1: 100.0, 2: 190.0}, index=2)
    assert probe.out_of_memory() == 2 and not probe.running and "out of GPU memory at 4" in probe.ended_by


# ------------------------------------------------------------------ the executor and the driver
class Recorder:
    """A handler that keeps what the executor tells it (its meta note included)."""

    def __init__(self) -> None:
        self.finished: dict[int, TrialOutcome] = {}
        self.epochs: list[tuple[int, dict]] = []
        self.meta: dict[str, dict] = {}

    def trial_started(self, spec, worker):
        pass

    def epoch_ended(self, trial_id, epoch, metrics, value):
        self.epochs.append((trial_id, dict(metrics)))
        return False

    def trial_finished(self, trial_id, outcome):
        self.finished[trial_id] = outcome

    def trial_lost(self, trial_id, reason):
        raise AssertionError(f"trial {trial_id} lost: {reason}")

    def executor_note(self, key, value):
        self.meta[key] = dict(value)


def test_auto_probes_two_per_gpu_from_the_reported_throughput_and_keeps_one(tmp_path, capsys):
    """Alone a worker trains 100 samples/s; two together 40 each (80 in all): auto keeps one per GPU, and each
    worker's memory share follows the level it was started for (0.9, then 0.45)."""
    runner = GpuRunner(tmp_path, epochs=2, rates={"0.9": 100.0, "0.45": 40.0})
    executor = ProcessExecutor(runner, slots=2, gpus=["0"], trials_per_gpu="auto", threads=None)
    recorder = Recorder()
    assert executor.slots == 1 and executor.probe.levels == [1, 2]
    executor.start(recorder)
    try:
        submitted = 0
        for _ in range(2000):  # events, not a clock: a hang shows as a bounded count
            while executor.free_slots > 0 and executor.probe.running:
                executor.submit(TrialSpec(Trial(submitted, {}), hyperparameters=HyperParameters()))
                submitted += 1
            if not executor.probe.running and not executor.running:
                break
            executor.wait()
    finally:
        executor.shutdown()
    assert executor.probe.throughput == {1: 100.0, 2: 80.0} and executor.probe.chosen == 1
    assert executor.slots == 1 and executor.per_gpu == 1
    fractions = {m["fraction"] for _, m in recorder.epochs}
    assert fractions == {0.9, 0.45}
    assert all(m["backend_loaded"] == 0.0 for _, m in recorder.epochs)
    record = recorder.meta[sharing.META_KEY]
    assert record["trials_per_gpu"] == 1 and record["how"] == "auto (measured)"
    assert record["probe"]["throughput"] == {"1": 100.0, "2": 80.0} and record["probe"]["unit"] == "samples/s"
    assert capsys.readouterr().out.count("trials_per_gpu auto: 1 trial per GPU (throughput per level: 1: 100, 2: 80 "
                                         "samples/s)") == 1  # the console channel: said once


def test_an_out_of_memory_trial_fails_alone_and_lowers_trials_per_gpu(tmp_path, caplog):
    """Two workers share GPU 0; trial 1 runs out of its memory: it fails (oom), the search goes on to max_trials
    with one worker per GPU, which now gets 0.9 of it, and one failure in a row (the limit here) does not stop
    it.  Every worker had its memory share in its environment before anything imported a library."""
    store = TrialStore(tmp_path / "trials.db")
    oracle = create_oracle("random", space(), "val_accuracy", max_trials=5, seed=1)
    runner = GpuRunner(tmp_path, oom=(1,), after_oom=(2,))  # trial 2 overlaps trial 1 whatever the workers' pace
    executor = ProcessExecutor(runner, slots=2, gpus=["0"], trials_per_gpu=2, threads=None)
    search = Search(oracle, executor, store, runner.files, max_consecutive_failed_trials=1)
    with caplog.at_level(logging.WARNING, logger="archsearch"):
        search.run()
    rows = {r["id"]: r for r in store.rows()}
    assert len(rows) == 5 and rows[1]["status"] == FAILED and rows[1]["failure_kind"] == "oom"
    assert all(r["status"] == COMPLETED for i, r in rows.items() if i != 1)
    assert executor.per_gpu == 1 and executor.slots == 1
    assert caplog.text.count("trial 1 ran out of GPU memory: trials_per_gpu 2 -> 1") == 1
    record = store.get_meta(sharing.META_KEY)
    assert record["trials_per_gpu"] == 1 and record["reductions"] == [{"trial": 1, "from": 2, "to": 1}]
    assert record["memory_fraction"] == 0.9
    seen = [store.epochs(i)[-1] for i in rows if i != 1]
    assert all(e["backend_loaded"] == 0.0 for e in seen)  # the env was set before any library was imported
    assert {e["fraction"] for e in seen} <= {0.45, 0.9}
    first = store.epochs(0)[-1]
    assert first["fraction"] == 0.45 and first["shared"] == 1.0  # two on the GPU: 0.9 / 2 each, a hard limit
    after = [store.epochs(i)[-1] for i in (3, 4)]  # started after the reduction: alone on the GPU, with 0.9 of it
    assert all(e["fraction"] == 0.9 and e["shared"] == 0.0 for e in after)
    store.close()
