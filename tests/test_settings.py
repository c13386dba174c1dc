"""The config is read once into typed settings (archsearch/cli/config.py ``read_settings``, issue 25).

Each section the engine reads has one settings class (archsearch/engine/settings.py); the pass reads
plain data (the CLI converts OmegaConf first), and the first mistake names the field, the value and the fix.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from archsearch.cli.config import read_settings
from archsearch.engine.settings import (DataSettings, ExecutorSettings, LoggerSettings, ReportSettings, RetrainOptions,
                                        SearchSettings, TunerSettings)
from archsearch.errors import ConfigError

# The least a search's config holds; every other key falls back to its settings class.
MINIMAL = {"tuner": {"name": "random"}, "objective": "val_loss"}


def test_the_default_config_reads_into_typed_settings(monkeypatch):
    from hydra import compose, initialize_config_dir
    from omegaconf import OmegaConf

    from tests.conftest import REPO

    monkeypatch.setenv("ARCHSEARCH_REPORT", "html")
    with initialize_config_dir(config_dir=str(REPO / "conf"), version_base=None):
        cfg = compose(config_name="config", overrides=["trainer.epochs=3", "tuner.max_trials=4", "executor=process"])
    settings = read_settings(OmegaConf.to_container(cfg, resolve=True))
    assert settings.tuner.name == "random" and settings.tuner.options["max_trials"] == 4
    assert settings.tuner.parallel_trials == "auto" and settings.tuner.slots >= 1
    assert settings.executor == ExecutorSettings("process", 2, {"max_trials_per_worker": 10, "threads": "auto",
                                                                "gpus": None, "trials_per_gpu": 1,
                                                                "gpu_memory_fraction": "auto"})
    assert settings.trainer["epochs"] == 3 and settings.trainer["early_stopping"] is False
    assert settings.data.name == "shapes" and settings.data.seed == 0
    assert settings.report == ReportSettings("html") and settings.loggers == LoggerSettings()
    assert settings.search == SearchSettings() and settings.retrain == RetrainOptions()
    assert settings.objective.name == "val_accuracy"


def test_keys_left_out_fall_back_to_the_settings_classes():
    # A config stored by an older version, or a section deleted with ~key: the classes' defaults, stated once.
    settings = read_settings(MINIMAL)
    assert settings.search == SearchSettings() and settings.retrain == RetrainOptions()
    assert settings.executor == ExecutorSettings() and settings.data == DataSettings()
    assert settings.trainer == {}  # TrainerSettings' own defaults (archsearch/cli/config.py trainer_settings)
    assert settings.compile == {"loss": None, "metrics": [], "learning_rate": None, "loss_options": {}}


@pytest.mark.parametrize("section, value, text", [
    ("trainer", {"epochs": "abc"}, "trainer.epochs: 'abc' is not allowed (use a whole number >= 1)"),
    ("trainer", {"verbose": 3}, "trainer.verbose: 3 is not allowed (use 0 (silent), 1 or 2)"),
    ("trainer", {"early_stopping": {"enabled": "maybe"}}, "trainer.early_stopping.enabled: 'maybe' is not a boolean"),
    ("trainer", {"optimizer": "adamax_bogus"}, "trainer.optimizer: unknown optimizer 'adamax_bogus'"),
    ("trainer", {"keep_top_models": 0}, "trainer.keep_top_models: 0 is not allowed (use a whole number >= 1 or null)"),
    ("tuner", {"name": "random", "max_trials": "abc"}, "tuner.max_trials: 'abc' is not allowed"),
    ("tuner", {"name": "anneal"}, "tuner.name: unknown tuner 'anneal' (choose one of: "),
    ("tuner", {"name": "random", "parallel_trials": "two"}, "tuner.parallel_trials: 'two' is not allowed"),
    ("executor", {"name": "cluster"}, "executor: unknown executor 'cluster' (choose one of: inline, process, ray)"),
    ("executor", {"name": "process", "max_retries": -1}, "executor.max_retries: -1 is not allowed"),
    ("data", {"name": "shapes", "seed": "x"}, "data.seed: 'x' is not allowed (use a whole number >= 0 or null)"),
    ("export", {"format": "pdf"}, "export.format: unknown format 'pdf' (choose one of: keras, savedmodel, onnx)"),
    ("report", "pdf", "report: 'pdf' is not allowed (use true (report.html and plots/*.png), html"),
    ("logger", 5, "logger: 5 is not a list of loggers (e.g. logger=[tensorboard,mlflow])"),
    ("retrain", {"repeats": 0}, "retrain.repeats: 0 is not allowed (use a whole number >= 1)"),
    ("retrain", {"alpha": 2}, "retrain.alpha: 2 is not a significance level"),
    ("max_consecutive_failed_trials", 0, "max_consecutive_failed_trials: 0 is not allowed"),
    ("overwrite", "no way", "overwrite: 'no way' is not a boolean (use true or false"),
    ("objective", None, "objective: is not set (name the metric to optimise, e.g. objective=val_accuracy)"),
])
def test_the_first_mistake_names_the_field_the_value_and_the_fix(section, value, text):
    with pytest.raises(ConfigError) as info:
        read_settings({**MINIMAL, section: value})
    assert str(info.value).startswith(text), str(info.value)


def test_the_engine_settings_read_plain_data_only():
    # The engine never sees OmegaConf: its classes read dicts, and a section that is not a mapping is named.
    assert TunerSettings.from_config({"name": "grid", "shuffle": "yes"}).options == {"shuffle": True}
    with pytest.raises(ConfigError, match=r"^executor: 'process' is not a mapping of settings"):
        ExecutorSettings.from_config("process")
    assert DataSettings.from_config({"name": "folder", "augment": "on"}).section == {"name": "folder", "augment": True}


@pytest.mark.parametrize("hydra_state", ["none", "composed", "run"])
def test_the_run_folder_is_hydras_only_inside_a_hydra_run(hydra_state, monkeypatch):
    """A config composed for a notebook (or a test before this one) leaves a HydraConfig with no output folder."""
    from hydra.core.hydra_config import HydraConfig
    from omegaconf import OmegaConf

    from archsearch.cli.config import run_folder

    left = {"none": None, "composed": OmegaConf.create({"hydra": {"runtime": {"output_dir": "???"}}}),
            "run": OmegaConf.create({"hydra": {"runtime": {"output_dir": "/runs/7"}}})}[hydra_state]
    monkeypatch.setattr(HydraConfig.instance(), "cfg", left)
    expected = Path("/runs/7") if hydra_state == "run" else Path("outputs") / "archsearch"
    assert run_folder(OmegaConf.create({"resume": None})) == expected
