"""``hydra/sweeper=archsearch`` sweeping a real Hydra app (examples/hydra_app), through Hydra's own launchers.

Each test runs the app as its user does (``python examples/hydra_app/train.py -m ...``) in a subprocess: the
sweeper is a Hydra plugin, found by Hydra's plugin discovery in the app's own process.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from archsearch.core.store import TrialStore

REPO = Path(__file__).resolve().parent.parent
APP = REPO / "examples" / "hydra_app" / "train.py"
HANG = 600  # seconds: only catches a hang


def sweep(sweep_dir: Path, *args: str, options: tuple[str, ...] = (), timeout: int = HANG):
    """``python examples/hydra_app/train.py -m [options] hydra.sweep.dir=<sweep_dir> args...``"""
    command = [sys.executable, str(APP), "-m", *options, f"hydra.sweep.dir={sweep_dir}", *args]
    env = {**os.environ, "PYTHONPATH": str(REPO), "ARCHSEARCH_REPORT": "false"}
    return subprocess.run(command, cwd=sweep_dir.parent, env=env, capture_output=True, text=True, timeout=timeout)


def rows(sweep_dir: Path) -> list[dict]:
    store = TrialStore(sweep_dir / "trials.db")
    try:
        return store.rows()
    finally:
        store.close()


def job_times(sweep_dir: Path, job: int) -> dict:
    return json.loads((sweep_dir / str(job) / "job_times.json").read_text())


SWEEP = ["hydra/sweeper=archsearch", "hydra.sweeper.objective=val_loss", "trainer.epochs=4",
         "model.lr=tag(log, interval(1e-3, 3e-1))", "model.act=choice(relu, gelu, tanh)"]  # params, as Optuna's


def test_the_optuna_sweepers_config_runs_after_changing_only_the_sweepers_name(tmp_path):
    conf = tmp_path / "conf"
    shutil.copytree(APP.parent / "conf", conf)
    text = (conf / "optuna_sweep.yaml").read_text()
    assert "override hydra/sweeper: optuna" in text
    (conf / "optuna_sweep.yaml").write_text(text.replace("override hydra/sweeper: optuna",
                                                         "override hydra/sweeper: archsearch"))
    run = tmp_path / "sweep"
    result = sweep(run, "hydra.sweeper.n_trials=3", "trainer.epochs=3",
                   options=("--config-path", str(conf), "--config-name", "optuna_sweep"))
    assert result.returncode == 0, result.stderr[-3000:]
    trials = rows(run)
    assert [t["status"] for t in trials] == ["completed"] * 3
    assert "archsearch sweeper (hydra_app):" in result.stdout  # its study_name names the sweep
    results = yaml.safe_load((run / "optimization_results.yaml").read_text())  # the Optuna sweeper's keys
    best = min(trials, key=lambda t: t["value"])
    assert results["best_value"] == pytest.approx(best["value"]) and results["best_params"] == best["hparams"]
    assert set(results["best_params"]) == {"model.lr", "model.depth", "model.act"}
    assert 1 <= results["best_params"]["model.depth"] <= 5  # range(1, 5): the stop included, as Optuna reads it


def test_each_slot_is_refilled_the_moment_its_job_ends(tmp_path):
    """Job 0 is slow; in a batch sweeper job 2 would wait for it. Here jobs 2 and 3 start while it runs."""
    run = tmp_path / "sweep"
    result = sweep(run, "hydra/sweeper=archsearch", "hydra/launcher=joblib", "hydra.launcher.n_jobs=2",
                   "hydra.sweeper.tuner=grid", "hydra.sweeper.objective=val_loss", "hydra.sweeper.max_trials=4",
                   "hydra.sweeper.parallel_trials=2", "trainer.epochs=4",
                   "trainer.seconds_per_epoch=choice(1.5, 0.01, 0.02, 0.03)")
    assert result.returncode == 0, result.stderr[-3000:]
    assert [t["status"] for t in rows(run)] == ["completed"] * 4
    store = TrialStore(run / "trials.db")
    try:  # every epoch the jobs reported from joblib's worker processes reached the sweep's store
        assert all([e["epoch"] for e in store.epochs(t)] == [1, 2, 3, 4] for t in range(4))
    finally:
        store.close()
    slow = job_times(run, 0)
    assert "trainer.seconds_per_epoch=1.5" in yaml.safe_load((run / "0" / ".hydra" / "overrides.yaml").read_text())
    for job in (2, 3):
        assert job_times(run, job)["start"] < slow["end"], f"job {job} waited for the slow job 0"


def test_a_pruned_job_and_a_failing_job_leave_the_sweep_going(tmp_path):
    run = tmp_path / "sweep"
    result = sweep(run, *SWEEP, "hydra.sweeper.tuner=random", "hydra.sweeper.max_trials=8", "hydra.sweeper.seed=3",
                   "hydra.sweeper.pruner={name: median, warmup_epochs: 1, min_trials: 1}",
                   "fail_when={model.act: tanh}", "trainer.seconds_per_epoch=0.3")
    assert result.returncode == 0, result.stderr[-3000:]
    trials = rows(run)
    assert len(trials) == 8
    failed = [t for t in trials if t["status"] == "failed"]
    assert failed and all(t["hparams"]["model.act"] == "tanh" and "DeliberateFailure" in t["error"] for t in failed)
    assert not any(t["value"] is not None and t["value"] == float("inf") for t in trials)  # never inf for a failure
    pruned = [t for t in trials if t["status"] == "pruned"]
    assert pruned, "the median pruner stopped no job"
    # a pruned job sees archsearch.should_stop() at its next epoch and ends early (a fast one may end first)
    assert any(job_times(run, t["id"])["status"] == "stopped" for t in pruned)
    completed = [t for t in trials if t["status"] == "completed"]
    assert completed and all(t["metrics"]["val_loss"] == t["value"] for t in completed)  # the returned dict


def test_a_killed_sweep_continues_its_numbering_and_runs_nothing_twice(tmp_path):
    run = tmp_path / "sweep"
    args = [*SWEEP, "hydra.sweeper.tuner=random", "hydra.sweeper.max_trials=4", "trainer.seconds_per_epoch=0.25"]
    env = {**os.environ, "PYTHONPATH": str(REPO), "ARCHSEARCH_REPORT": "false"}
    proc = subprocess.Popen([sys.executable, str(APP), "-m", f"hydra.sweep.dir={run}", *args], cwd=tmp_path, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    for _ in range(int(HANG / 0.1)):  # until trial 1 has finished and trial 2 is training (a hang guard only)
        if (run / "trials.db").exists() and (run / "2" / "metrics.jsonl").exists():
            try:
                if any(t["id"] == 1 and t["status"] == "completed" for t in rows(run)):
                    break
            except Exception:  # noqa: BLE001 - the store is being written
                pass
        assert proc.poll() is None, proc.communicate()[1][-3000:]
        time.sleep(0.1)
    proc.send_signal(signal.SIGKILL)
    proc.communicate(timeout=60)
    before = {t["id"]: t for t in rows(run)}
    finished = {i for i, t in before.items() if t["status"] == "completed"}
    assert {0, 1} <= finished and before[2]["status"] == "running"
    started = {i: job_times(run, i)["start"] for i in finished}

    result = sweep(run, *args)
    assert result.returncode == 0, result.stderr[-3000:]
    after = rows(run)
    assert [t["id"] for t in after] == [0, 1, 2, 3] and all(t["status"] == "completed" for t in after)
    assert {i: job_times(run, i)["start"] for i in finished} == started  # finished jobs were not run again
    assert sorted(int(p.name) for p in run.iterdir() if p.name.isdigit()) == [0, 1, 2, 3]
    assert "Resuming the sweep" in result.stdout


def test_a_changed_space_is_refused_unless_forced(tmp_path):
    run = tmp_path / "sweep"
    assert sweep(run, *SWEEP, "hydra.sweeper.max_trials=1", "hydra.sweeper.tuner=random").returncode == 0
    changed = [a.replace("interval(1e-3, 3e-1)", "interval(1e-4, 1e-1)") for a in SWEEP]
    result = sweep(run, *changed, "hydra.sweeper.max_trials=2", "hydra.sweeper.tuner=random")
    assert result.returncode == 2
    assert "holds another sweep" in result.stderr and "hydra.sweeper.resume=force" in result.stderr
    assert len(rows(run)) == 1
    forced = sweep(run, *changed, "hydra.sweeper.max_trials=2", "hydra.sweeper.tuner=random",
                   "hydra.sweeper.resume=force")
    assert forced.returncode == 0, forced.stderr[-3000:]
    assert len(rows(run)) == 2


METRICS_FILE_APP = """
import json, os
import hydra
from hydra.core.hydra_config import HydraConfig

@hydra.main(version_base=None, config_path=None)
def main(cfg):
    x = float(cfg.x)
    with open(os.path.join(HydraConfig.get().runtime.output_dir, "scores.jsonl"), "a") as fh:
        for step in range(1, 4):
            fh.write(json.dumps({"step": step, "metrics": {"score": x * step}}) + "\\n")
    return None  # nothing returned: the objective comes from the file alone

if __name__ == "__main__":
    main()
"""


def test_the_objective_can_come_from_a_metrics_file_the_job_writes(tmp_path):
    app = tmp_path / "app.py"
    app.write_text(METRICS_FILE_APP)
    run = tmp_path / "sweep"
    result = subprocess.run([sys.executable, str(app), "-m", f"hydra.sweep.dir={run}", "hydra/sweeper=archsearch",
                             "hydra.sweeper.objective={name: score, direction: max}",
                             "hydra.sweeper.metrics_file=scores.jsonl", "hydra.sweeper.max_trials=2",
                             "hydra.sweeper.tuner=random", "+x=interval(0, 1)"],
                            cwd=tmp_path, env={**os.environ, "PYTHONPATH": str(REPO), "ARCHSEARCH_REPORT": "false"},
                            capture_output=True, text=True, timeout=HANG)
    assert result.returncode == 0, result.stderr[-3000:]
    for trial in rows(run):
        assert trial["status"] == "completed"
        assert trial["value"] == pytest.approx(3 * trial["hparams"]["x"])


@pytest.mark.parametrize("args, says", [
    (["hydra.sweeper.storage=sqlite:///x.db"], "hydra.sweeper.storage"),
    (["model.nope=choice(1, 2)"], "does not compose"),
    (["hydra.sweeper.max_failure_rate=2"], "hydra.sweeper.max_failure_rate"),
    (["hydra.sweeper.resume=true"], "holds no sweep to continue"),
    (["hydra.sweeper.tuner={name: asha, max_trials: 6}"], "hydra.sweeper.tuner.max_trials: is a key of the sweeper"),
    (["hydra.sweeper.sampler={_target_: optuna.samplers.TPESampler, multivariate: true}"],
     "hydra.sweeper.sampler.multivariate"),
])
def test_bad_sweeper_settings_are_one_line_and_status_2(tmp_path, args, says):
    result = sweep(tmp_path / "sweep", *SWEEP, "hydra.sweeper.max_trials=1", *args)
    assert result.returncode == 2, result.stderr[-3000:]
    assert says in result.stderr and "Traceback" not in result.stderr


def test_asha_promotes_jobs_which_continue_from_their_checkpoint(tmp_path):
    run = tmp_path / "sweep"
    result = sweep(run, "hydra/sweeper=archsearch", "hydra.sweeper.objective=val_loss",
                   "model.lr=tag(log, interval(1e-3, 3e-1))", "hydra.sweeper.tuner={name: asha, max_epochs: 4, factor: 2}",
                   "hydra.sweeper.max_trials=4", "hydra.sweeper.budget_param=trainer.epochs")
    assert result.returncode == 0, result.stderr[-3000:]
    trials = rows(run)
    assert len([t for t in trials if t["parent"] is None]) == 4  # max_trials counts new configurations, as ASHA does
    promoted = [t for t in trials if t["parent"] is not None]
    assert promoted
    for trial in promoted:  # the job got the larger budget and continued from the epochs its parent trained
        assert f"trainer.epochs={trial['budget']}" in yaml.safe_load((run / str(trial["id"]) / ".hydra" /
                                                                     "overrides.yaml").read_text())
        steps = [json.loads(line)["step"] for line in (run / str(trial["id"]) / "metrics.jsonl").read_text().splitlines()]
        assert steps == list(range(trial["initial_budget"] + 1, trial["budget"] + 1))
