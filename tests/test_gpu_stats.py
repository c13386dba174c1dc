"""Each epoch's speed and GPU figures (archsearch/training/gpu_stats.py): NVML faked, so every figure is exact;
without NVML no GPU figure, no error, no thread and no report panel; the names are never an inferred objective."""

from __future__ import annotations

import csv
import sys
import threading
import types

import keras
import numpy as np
import pytest

from archsearch.core.checkpoints import TrialFiles
from archsearch.core.events import SearchEvents
from archsearch.core.measures import RUN_FIGURES
from archsearch.core.objective import Objective, ParetoObjective, infer_direction
from archsearch.core.store import TrialStore
from archsearch.core.trial import COMPLETED, Trial
from archsearch.engine.search import Search
from archsearch.errors import ConfigError
from archsearch.executors.inline import InlineExecutor
from archsearch.oracles import create_oracle
from archsearch.report import html as report
from archsearch.report.data import read_run
from archsearch.report.gpu import gpu_view
from archsearch.space.hyperparameters import HyperParameters
from archsearch.training import gpu_stats
from archsearch.training.fit_data import FitArguments
from archsearch.training.runner import Runner
from archsearch.training.settings import TrainerSettings
from report_stores import random_store

GIB = 1024 ** 3
SAMPLES, BATCH = 64, 16


def fake_nvml(names=("NVIDIA H100",) * 2, utilization=87, used=(3 * GIB, 5 * GIB)) -> types.ModuleType:
    """A ``pynvml`` whose devices always answer the same: device i uses ``used[i]`` bytes."""
    nvml = types.ModuleType("pynvml")
    nvml.calls = []
    nvml.nvmlInit = lambda: nvml.calls.append("init")
    nvml.nvmlDeviceGetCount = lambda: len(names)
    nvml.nvmlDeviceGetHandleByIndex = lambda i: ("handle", i)
    nvml.nvmlDeviceGetName = lambda h: names[h[1]].encode()  # older nvidia-ml-py gives bytes
    nvml.nvmlDeviceGetUUID = lambda h: f"GPU-{h[1]}a1b2c3-0000"
    nvml.nvmlDeviceGetUtilizationRates = lambda h: types.SimpleNamespace(gpu=utilization, memory=10)
    nvml.nvmlDeviceGetMemoryInfo = lambda h: types.SimpleNamespace(used=used[h[1]], total=80 * GIB)
    return nvml


@pytest.fixture
def nvml(monkeypatch):
    """NVML faked, the backend said to be on a GPU; the process's sampler decided afresh."""
    fake = fake_nvml()
    monkeypatch.setitem(sys.modules, "pynvml", fake)
    monkeypatch.setattr(gpu_stats, "backend_on_gpu", lambda: True)
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    gpu_stats.reset()
    yield fake
    gpu_stats.reset()


@pytest.fixture
def no_nvml(monkeypatch):
    monkeypatch.setitem(sys.modules, "pynvml", None)  # import pynvml raises ImportError
    gpu_stats.reset()
    yield
    gpu_stats.reset()


def _runner(tmp_path, objective="val_loss") -> Runner:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(SAMPLES, 4)).astype("float32")
    y = (x[:, 0] > 0).astype("int32")

    def build(hp):
        model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2, activation="softmax")])
        model.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
        return model

    data = FitArguments((x, y), {"validation_data": (x[:16], y[:16]), "shuffle": False})
    return Runner(build, data, Objective.create(objective), tmp_path,
                  trainer=TrainerSettings(epochs=2, batch_size=BATCH, checkpoints=False))


class _Recorder:
    def __init__(self) -> None:
        self.metrics: list[dict[str, float]] = []

    def on_epoch(self, trial, epoch, metrics, value):
        self.metrics.append(dict(metrics))
        return False


def _sampler_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "archsearch-gpu-sampler"]


# ------------------------------------------------------------------ the figures of each epoch
class _Listener(SearchEvents):
    """What a logger (TensorBoard, MLflow) hears of each epoch."""

    def __init__(self) -> None:
        self.metrics: list[dict[str, float]] = []

    def on_epoch_end(self, trial, epoch, metrics, value):
        self.metrics.append(dict(metrics))


def test_every_epoch_gets_its_gpu_figures_in_the_events_the_store_and_epochs_csv(tmp_path, nvml, monkeypatch):
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "1")  # the worker's GPU: NVML's device 1
    space = HyperParameters()
    space.Int("units", 2, 4)
    oracle = create_oracle("random", space, "val_loss", max_trials=1, seed=0)
    store, listener = TrialStore(tmp_path / "trials.db"), _Listener()
    Search(oracle, InlineExecutor(_runner(tmp_path)), store, TrialFiles(tmp_path), listeners=[listener]).run()

    assert len(listener.metrics) == 2
    for metrics in listener.metrics:
        assert metrics["gpu_utilization"] == 87.0
        assert metrics["gpu_memory_mb"] == 5 * 1024.0  # device 1's, in MiB
        assert metrics["gpu_index"] == 1.0
        assert metrics["samples_per_second"] > 0
        assert "val_loss" in metrics and "loss" in metrics  # the model's own metrics untouched
    trial = store.rows()[0]
    assert trial["status"] == COMPLETED and trial["value"] == pytest.approx(min(m["val_loss"] for m in listener.metrics))
    with open(store.export_epochs_csv(tmp_path / "epochs.csv")) as fh:
        rows = list(csv.DictReader(fh))
    assert [float(r["gpu_utilization"]) for r in rows] == [87.0, 87.0] and all(float(r["samples_per_second"]) > 0
                                                                             for r in rows)
    store.close()
    assert nvml.calls == ["init"]  # one sampler for the process, NVML initialised once


def test_without_nvml_epochs_get_samples_per_second_only_and_no_thread(tmp_path, no_nvml):
    recorder = _Recorder()
    before = len(_sampler_threads())
    outcome = _runner(tmp_path).run(Trial(0, {}), HyperParameters(), recorder)

    assert outcome.status == COMPLETED and len(recorder.metrics) == 2
    for metrics in recorder.metrics:
        assert metrics["samples_per_second"] > 0
        assert not {"gpu_utilization", "gpu_memory_mb", "gpu_index"} & set(metrics)
    assert gpu_stats.gpu_sampler() is None and len(_sampler_threads()) == before


def test_samples_per_second_counts_whole_batches_up_to_the_epoch_s_samples():
    assert gpu_stats.samples_per_second(4, 16, 2.0) == 32.0
    assert gpu_stats.samples_per_second(4, 16, 2.0, samples_per_epoch=50) == 25.0  # a partial last batch
    assert gpu_stats.samples_per_second(0, 16, 2.0) is None
    assert gpu_stats.samples_per_second(4, None, 2.0) is None


# ------------------------------------------------------------------ which GPU, and when there is none
def test_a_window_holds_the_mean_utilisation_and_the_peak_memory(nvml):
    sampler = gpu_stats.gpu_sampler({})
    assert sampler is not None and sampler.index == 0
    window = gpu_stats.Window()
    for utilization, used in ((40, GIB), (80, 3 * GIB), (90, 2 * GIB)):
        window.add(utilization, used)
    assert window.figures(0) == {"gpu_utilization": 70.0, "gpu_memory_mb": 3072.0, "gpu_index": 0.0}
    assert gpu_stats.Window().figures(0) == {}  # NVML answered nothing: no figures at all


@pytest.mark.parametrize("visible, index", [(None, 0), ("1", 1), ("1,0", 1), ("GPU-1a1b", 1), ("GPU-0a1b2c3-0000", 0),
                                            ("", None), ("-1", None), ("7", None), ("GPU-ffff", None)])
def test_the_worker_s_gpu_is_the_first_cuda_visible_device(nvml, visible, index):
    env = {} if visible is None else {"CUDA_VISIBLE_DEVICES": visible}
    sampler = gpu_stats.gpu_sampler(env)
    assert (sampler.index if sampler is not None else None) == index


def test_mixed_gpus_in_cuda_s_own_order_give_no_figures_and_say_how_to_have_them(monkeypatch, caplog):
    monkeypatch.setitem(sys.modules, "pynvml", fake_nvml(names=("NVIDIA H100", "NVIDIA T4")))
    monkeypatch.setattr(gpu_stats, "backend_on_gpu", lambda: True)
    monkeypatch.setattr(gpu_stats, "_order_warned", False)
    gpu_stats.reset()
    assert gpu_stats.gpu_sampler({"CUDA_VISIBLE_DEVICES": "1"}) is None
    assert "CUDA_DEVICE_ORDER=PCI_BUS_ID" in caplog.text
    gpu_stats.reset()
    sampler = gpu_stats.gpu_sampler({"CUDA_VISIBLE_DEVICES": "1", "CUDA_DEVICE_ORDER": "PCI_BUS_ID"})
    assert sampler is not None and sampler.index == 1
    gpu_stats.reset()


def test_a_backend_on_the_cpu_or_a_driver_that_refuses_gives_no_gpu_figures(monkeypatch):
    monkeypatch.setitem(sys.modules, "pynvml", fake_nvml())
    monkeypatch.setattr(gpu_stats, "backend_on_gpu", lambda: False)
    gpu_stats.reset()
    assert gpu_stats.gpu_sampler({}) is None
    broken = fake_nvml()
    broken.nvmlInit = lambda: (_ for _ in ()).throw(RuntimeError("NVML Shared Library Not Found"))
    monkeypatch.setitem(sys.modules, "pynvml", broken)
    monkeypatch.setattr(gpu_stats, "backend_on_gpu", lambda: True)
    gpu_stats.reset()
    assert gpu_stats.gpu_sampler({}) is None
    gpu_stats.reset()


def test_a_figure_nvml_does_not_give_is_left_out(nvml):
    nvml.nvmlDeviceGetUtilizationRates = lambda h: (_ for _ in ()).throw(RuntimeError("Not Supported"))  # a MIG slice
    sampler = gpu_stats.gpu_sampler({})
    figures = sampler.close(sampler.open())
    assert figures == {"gpu_memory_mb": 3072.0, "gpu_index": 0.0}


# ------------------------------------------------------------------ never an inferred objective
def test_the_figures_are_never_an_objective_by_inference():
    for name in RUN_FIGURES:
        assert infer_direction(name) is None
        with pytest.raises(ConfigError, match="direction"):
            Objective.create(name)  # only when named with its direction
    front = ParetoObjective.of(["samples_per_second:max", "gpu_memory_mb:min", "val_accuracy:max"])
    assert front.main.name == "val_accuracy"  # scores each epoch, keeps the best epoch's weights
    assert Objective.create({"name": "samples_per_second", "direction": "max"}).direction == "max"


# ------------------------------------------------------------------ the report's panel
def _gpu_store(folder):
    """Two trials on GPU 0 and GPU 1, three epochs each, an hour apart from the first start to the last end."""
    store = TrialStore(folder / "trials.db")
    store.set_meta_many({"fingerprint": {"oracle": "random", "objective": ["val_accuracy", "max"], "space": {}},
                         "config": {"tuner": {"name": "random"}, "objective": "val_accuracy"}})
    for i in (0, 1):
        trial = Trial(i, {"units": 8 * (i + 1)})
        store.create_trial(trial)
        for epoch in (1, 2, 3):
            store.record_epoch(i, epoch, {"val_accuracy": 0.5 + epoch / 10, "samples_per_second": 1000.0 * epoch,
                                          "gpu_utilization": 50.0 + 10 * epoch + i, "gpu_memory_mb": 1000.0 * (i + 1),
                                          "gpu_index": float(i)}, objective_value=0.5 + epoch / 10)
        trial.status, trial.value, trial.metrics = COMPLETED, 0.8, {"val_accuracy": 0.8}
        store.finish_trial(trial, duration=1.0, epochs_done=3)
    with store._conn() as db:  # the store's clock, set to known times
        db.execute("UPDATE trials SET started_at = 1000.0 + 600 * id, finished_at = 1000.0 + 1800 * (id + 1)")
        db.execute("UPDATE epochs SET recorded_at = 1000.0 + 600 * trial_id + 60 * epoch")
    store.close()
    return folder


def test_the_report_has_a_gpu_panel_per_gpu_with_trials_per_hour(tmp_path):
    run = read_run(_gpu_store(tmp_path))
    view = gpu_view(run)
    assert list(view.gpus) == ["GPU 0", "GPU 1"]
    assert view.trials_ended == 2 and view.hours == pytest.approx(1.0) and view.trials_per_hour == pytest.approx(2.0)
    first = view.gpus["GPU 1"]
    assert [e.minutes for e in first] == [11.0, 12.0, 13.0] and [e.utilization for e in first] == [61.0, 71.0, 81.0]
    summary = {row["gpu"]: row for row in view.summary()}
    assert summary["GPU 0"]["mean_utilization"] == pytest.approx(70.0)
    assert summary["GPU 0"]["steady_utilization"] == pytest.approx(75.0)  # epochs 2 and 3
    assert summary["GPU 1"]["peak_memory_mb"] == 2000.0

    page = report.render(run, [])
    assert "<h2 id='gpu'>GPU</h2>" in page and "2.0 trials per hour" in page and "id='gpu-table'" in page
    assert "data-plot='gpu'" in page and "utilisation per epoch" in page


def test_no_gpu_figures_no_panel_and_no_error(tmp_path):
    run = read_run(random_store(tmp_path, n=6))
    assert gpu_view(run) is None
    page = report.render(run, [])
    assert "id='gpu'" not in page and "data-plot='gpu'" not in page
