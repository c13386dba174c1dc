"""The installed package works outside the repository: configs and model families ship inside it.

CI installs with ``pip install .`` (not editable), so running from a folder other
than the checkout exercises the wheel's contents, conf/ included.
"""

from __future__ import annotations

import os
import subprocess
import sys

import yaml


def _run_outside_repo(args: list[str], cwd) -> subprocess.CompletedProcess:
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    env.pop("PYTHONPATH", None)  # import archsearch as installed, not from the checkout
    return subprocess.run([sys.executable, "-m", "archsearch", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=600)


def test_help_and_every_config_group_resolve_outside_the_checkout(tmp_path):
    result = _run_outside_repo(["--help"], tmp_path)
    assert result.returncode == 0, result.stderr[-2000:]
    for option in ("mlp", "cnn", "unet", "resnet", "xception", "efficientnet", "custom", "hyperband", "bayesian", "bohb", "documents", "folder"):
        assert option in result.stdout

    result = _run_outside_repo(["--cfg", "job", "model=unet", "tuner=hyperband"], tmp_path)
    assert result.returncode == 0, result.stderr[-2000:]
    config = yaml.safe_load(result.stdout)
    assert config["model"]["builder"] == "hypermodels.unet:build"
    assert config["data"]["name"] == "documents"
    assert config["objective"] == "val_f1"


def test_model_families_import_from_the_installed_package(tmp_path):
    code = ("import hypermodels.mlp, hypermodels.cnn, hypermodels.unet, hypermodels.resnet, hypermodels.xception, "
            "hypermodels.efficientnet, archsearch; archsearch.applications.HyperResNet; print('ok')")
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    result = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True,
                            text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip() == "ok"
