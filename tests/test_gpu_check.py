"""bench/gpu_check.py stays runnable: its plan, its targets' arithmetic, and one tiny dry run on the CPU
(a real search with ``executor.gpus=["0"]`` simulated, then the plain Keras reference)."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent


def _load():
    spec = importlib.util.spec_from_file_location("gpu_check", REPO / "bench" / "gpu_check.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


gpu_check = _load()


def test_the_plan_crosses_every_option_and_leaves_out_one_the_config_lacks_with_a_note(monkeypatch):
    monkeypatch.setattr(gpu_check, "config_has", lambda section, key: True)
    runs, notes = gpu_check.plan(["cnn", "unet"], ["1", "2", "4", "auto"], ["off", "on"])
    assert len(runs) == 16 and not notes and runs[0] == ("cnn", "1", "off")
    args = gpu_check.overrides("unet", "auto", "on", dry=True)
    assert {"model=unet", "executor=process", 'executor.trials_per_gpu=auto', "trainer.mixed_precision=true",
            '++executor.gpus=["0"]'} <= set(args)
    assert not any("gpus" in a for a in gpu_check.overrides("cnn", "1", "off", dry=False))  # a real GPU: its own

    monkeypatch.setattr(gpu_check, "config_has", lambda section, key: key != "trials_per_gpu")
    runs, notes = gpu_check.plan(["cnn"], ["1", "2"], ["off", "on"])
    assert runs == [("cnn", None, "off"), ("cnn", None, "on")]
    assert len(notes) == 1 and "executor.trials_per_gpu" in notes[0]
    assert not any("trials_per_gpu" in a for a in gpu_check.overrides("cnn", None, "on", dry=True))


def test_the_targets_compare_the_runs_the_issue_names():
    def run(workload, n, precision, per_hour, steady=None, oom=0, best=None):
        r = gpu_check.RunResult(workload, n, precision, "")
        r.trials_per_hour, r.steady_gpu_utilization, r.oom, r.best_value = per_hour, steady, oom, best
        return r

    checks = gpu_check.targets([run("cnn", "1", "off", 100.0), run("cnn", "auto", "off", 250.0, steady=90.0),
                                run("unet", "1", "off", 20.0, best=0.61), run("unet", "1", "on", 36.0, oom=1, best=0.6)])
    assert checks["cnn_auto_vs_one_per_gpu"]["speedup"] == pytest.approx(2.5)
    assert checks["unet_mixed_precision"]["speedup"] == pytest.approx(1.8)
    assert checks["steady_utilization_auto"]["mean"] == pytest.approx(90.0)
    assert checks["oom_trials"] == 1
    steady = [run("cnn", "1", "off", 100.0), run("cnn", "auto", "off", 250.0)]
    steady[0].steady_trials_per_hour, steady[1].steady_trials_per_hour = 120.0, 360.0  # worker start-up left out
    assert gpu_check.targets(steady)["cnn_auto_vs_one_per_gpu"]["speedup"] == pytest.approx(3.0)


def test_a_bad_option_value_is_refused_by_name(capsys):
    with pytest.raises(SystemExit) as exit_info:
        gpu_check.parse(["--trials-per-gpu", "1,3"])
    assert exit_info.value.code == 2 and "--trials-per-gpu: 3 is not one of 1, 2, 4, auto" in capsys.readouterr().err


def test_a_dry_run_trains_searches_and_the_reference_on_the_cpu(tmp_path, capsys):
    # One search (the U-Net, mixed precision on where the config has it) keeps this cheap; `--dry` alone runs all.
    status = gpu_check.main(["--dry", "--workloads", "unet", "--trials-per-gpu", "1", "--mixed-precision", "on",
                             "--workdir", str(tmp_path)])
    printed = capsys.readouterr().out
    assert status == 0, printed
    result = json.loads((tmp_path / "gpu_check.json").read_text())
    assert result["dry"] is True and len(result["runs"]) == 1
    run = result["runs"][0]
    assert run["completed"] == 1 and run["oom"] == 0 and run["trials_per_hour"] > 0
    assert run["samples_per_second"] > 0 and run["objective"] == "val_f1"
    assert run["mean_gpu_utilization"] is None  # no NVML, no GPU: the GPU columns stay empty
    reference = result["reference"]
    assert reference["samples_per_second"] > 0 and reference["epochs"] == 1
    assert "workload  trials/GPU  mixed prec." in printed and "reference, plain Keras model.fit of unet" in printed
