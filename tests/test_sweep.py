"""Hydra multirun: the sweep summary (sweep.csv and its table), on synthetic folders and through the CLI."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml
from conftest import REPO
from omegaconf import OmegaConf

from archsearch.cli.sweep import SweepSummary
from archsearch.core.store import TrialStore
from archsearch.core.trial import Trial
from archsearch.report.sweep import SWEEP_CSV, summarise
from archsearch.report.sweep import main as sweep_main
from archsearch.report.sweep_jobs import JOBS_DIR, find_job_folders

TINY = ["trainer.epochs=1", "data.num_samples=160", "data.image_size=12"]


# ---------------------------------------------------------------- synthetic sweep folders
def make_job(sweep: Path, subdir: str, overrides: list[str], trials: list[tuple], *, num: int | None = None,
             objective="val_accuracy", max_trials=2, epochs=1, max_epochs=None, record: dict | None = None) -> Path:
    """A job folder as a search leaves it: .hydra/overrides.yaml and a trials.db.

    ``trials``: (status, value, epochs_done, initial_budget, started_at, finished_at) per trial.
    """
    folder = sweep / subdir
    (folder / ".hydra").mkdir(parents=True)
    (folder / ".hydra" / "overrides.yaml").write_text(yaml.safe_dump(overrides))
    if num is not None:
        (folder / ".hydra" / "hydra.yaml").write_text(yaml.safe_dump({"hydra": {"job": {"num": num}}}))
    tuner = {"name": "random", "max_trials": max_trials}
    if max_epochs is not None:
        tuner["max_epochs"] = max_epochs
    store = TrialStore(folder / "trials.db")
    store.set_meta("config", {"objective": objective, "tuner": tuner, "trainer": {"epochs": epochs}})
    for i, (status, value, epochs_done, initial, started, finished) in enumerate(trials):
        trial = Trial(id=i, hparams={"units": 32 * (i + 1)}, initial_budget=initial)
        store.create_trial(trial)
        for epoch in range(initial + 1, epochs_done + 1):
            store.record_epoch(i, epoch, {"val_accuracy": 0.5})
        if status != "running":
            trial.status, trial.value = status, value
            store.finish_trial(trial, duration=1.0)
        with store._transaction() as db:  # fixed times, so the wall time is known
            db.execute("UPDATE trials SET started_at = ?, finished_at = ? WHERE id = ?",
                       (started, finished if status != "running" else None, i))
    store.close()
    if record is not None:
        (sweep / JOBS_DIR).mkdir(exist_ok=True)
        rec = {"num": num, "folder": subdir, "run_folder": str(folder), "overrides": overrides, **record}
        (sweep / JOBS_DIR / f"job_{num}.json").write_text(json.dumps(rec))
    return folder


def done(value, epochs=1, initial=0, start=100.0, end=110.0):
    return ("completed", value, epochs, initial, start, end)


def read_csv(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as fh:
        return list(csv.DictReader(fh))


def make_pareto_job(sweep: Path, num: int, metrics: list[dict], budgets=None, reference_point=None,
                    objective=("acc:max", "params:min")) -> Path:
    folder = sweep / str(num)
    (folder / ".hydra").mkdir(parents=True)
    (folder / ".hydra" / "overrides.yaml").write_text(yaml.safe_dump([f"tuner.seed={num}"]))
    store = TrialStore(folder / "trials.db")
    store.set_meta("config", {"objective": list(objective), "tuner": {"max_trials": len(metrics)},
                              "search": {"mode": "pareto", "reference_point": reference_point},
                              "trainer": {"epochs": 1}})
    for i, m in enumerate(metrics):
        trial = Trial(id=i, hparams={"x": i}, budget=(budgets or {}).get(i))
        store.create_trial(trial)
        trial.status, trial.metrics, trial.value = "completed", m, m["acc"]
        store.finish_trial(trial, duration=1.0)
    store.close()
    return folder


def test_pareto_jobs_are_ranked_by_hypervolume_over_one_reference_point(tmp_path):
    """A Pareto job's trial values are its first objective only: ranking them as a score (as a sum named
    multi_objective, minimised) picked the job with the worst accuracy.  The jobs compare by hypervolume."""
    sweep = tmp_path / "sweep"
    make_pareto_job(sweep, 0, [{"acc": 0.6, "params": 100.0}, {"acc": 0.8, "params": 300.0}])
    make_pareto_job(sweep, 1, [{"acc": 0.7, "params": 100.0}, {"acc": 0.9, "params": 300.0},
                               {"acc": 0.95, "params": 10.0}],  # a 1-epoch trial: not compared
                    budgets={0: 9, 1: 9, 2: 1})
    result = summarise(sweep)
    assert [j.num for j in result.jobs] == [1, 0] and [j.rank for j in result.jobs] == [1, 2]
    reference = np.array([-0.6 + 0.1 * 0.3, 300.0 + 0.1 * 200])  # every job's trials: worst + 10% of the range
    from archsearch.core.pareto import hypervolume

    expected = [hypervolume(np.array([[-0.7, 100.0], [-0.9, 300.0]]), reference),
                hypervolume(np.array([[-0.6, 100.0], [-0.8, 300.0]]), reference)]
    assert [j.best for j in result.jobs] == pytest.approx(expected)
    assert [j.front_size for j in result.jobs] == [2, 2]
    table = result.table()
    assert "[acc:max, params:min] (Pareto: hypervolume, higher is better)" in table
    assert f"HV {expected[0]:.4g}, front 2" in table
    assert "ranked by hypervolume" in table and "acc=0.57, params=320" in table and "derived" in table
    rows = read_csv(result.write_csv())
    assert [float(r["best_score"]) for r in rows] == pytest.approx(expected) and rows[0]["front_size"] == "2"


def test_pareto_jobs_use_the_reference_point_they_all_fix(tmp_path):
    sweep = tmp_path / "sweep"
    for num, acc in ((0, 0.6), (1, 0.7)):
        make_pareto_job(sweep, num, [{"acc": acc, "params": 100.0}], reference_point={"acc": 0.5, "params": 200.0})
    result = summarise(sweep)
    assert [j.best for j in result.jobs] == pytest.approx([(0.7 - 0.5) * 100.0, (0.6 - 0.5) * 100.0])
    assert "acc=0.5, params=200; search.reference_point, which every job sets alike" in result.table()


def test_pareto_jobs_count_a_log_scaled_objective_by_its_logarithm(tmp_path):
    sweep = tmp_path / "sweep"
    logged = ("acc:max", "params:min:log")
    for num, acc in ((0, 0.6), (1, 0.7)):
        make_pareto_job(sweep, num, [{"acc": acc, "params": 100.0}], reference_point={"acc": 0.5, "params": 1e4},
                        objective=logged)
    result = summarise(sweep)
    decades = np.log(1e4) - np.log(100.0)
    assert [j.best for j in result.jobs] == pytest.approx([0.2 * decades, 0.1 * decades])
    assert "[acc:max, params:min:log] (Pareto: hypervolume" in result.table()


def test_best_first_by_each_objective_direction(tmp_path):
    sweep = tmp_path / "sweep"
    make_job(sweep, "0", ["tuner=random", "objective=val_loss"], [done(0.50), done(0.70)], num=0,
             objective="val_loss")
    make_job(sweep, "1", ["tuner=grid", "objective=val_loss"], [done(0.30), done(0.90, start=100, end=130)], num=1,
             objective="val_loss")
    result = summarise(sweep)
    assert [j.num for j in result.jobs] == [1, 0]  # val_loss is minimised: 0.30 beats 0.50
    assert [j.rank for j in result.jobs] == [1, 2]
    assert result.jobs[0].best == pytest.approx(0.30)
    assert result.jobs[0].wall_s == pytest.approx(30.0)
    assert result.common == ["objective=val_loss"]
    table = result.table()
    assert "Objective: val_loss (min)" in table
    assert "Common overrides: objective=val_loss" in table
    lines = table.splitlines()
    header = next(i for i, line in enumerate(lines) if line.startswith("rank"))
    assert lines[header].split() == ["rank", "job", "overrides", "status", "score", "trials", "epochs", "wall",
                                     "budget", "folder"]
    assert set(lines[header + 1]) <= {"-", " "}
    assert lines[header + 2].split()[:6] == ["1", "1", "tuner=grid", "done", "0.3000", "2/2/0"]
    assert lines[header + 3].split()[:6] == ["2", "0", "tuner=random", "done", "0.5000", "2/2/0"]
    assert "not fair" not in table


def test_different_objectives_are_ranked_apart(tmp_path):
    sweep = tmp_path / "sweep"
    make_job(sweep, "0", ["objective=val_accuracy"], [done(0.60)], num=0)
    make_job(sweep, "1", ["objective=val_accuracy"], [done(0.80)], num=1)
    make_job(sweep, "2", ["objective=val_loss"], [done(0.10)], num=2, objective="val_loss")
    result = summarise(sweep)
    assert [(j.num, j.rank) for j in result.jobs] == [(1, 1), (0, 2), (2, 1)]
    table = result.table()
    assert "different objectives" in table and "val_loss (min): 1 job" in table
    assert "objective" in next(line for line in table.splitlines() if line.startswith("rank")).split()
    rows = read_csv(result.write_csv())
    assert [(r["job"], r["objective"], r["direction"], r["rank"]) for r in rows] == [
        ("1", "val_accuracy", "max", "1"), ("0", "val_accuracy", "max", "2"), ("2", "val_loss", "min", "1")]


def test_budget_flags(tmp_path):
    sweep = tmp_path / "sweep"
    # random's default 6 trials against bayesian's 8, 6 and 8 epochs spent
    make_job(sweep, "0", ["tuner=random"], [done(0.5)] * 6, num=0, max_trials=6)
    make_job(sweep, "1", ["tuner=bayesian"], [done(0.6)] * 8, num=1, max_trials=8)
    result = summarise(sweep)
    for job in result.jobs:
        assert any(f.startswith("max_trials=") for f in job.flags)
        assert any(f.startswith("epochs ") for f in job.flags)  # 6 and 8 against a median of 7: > 10%
    table = result.table()
    assert "max_trials=8" in table and "max_trials=6" in table
    assert "tuner.max_trials differs" in table and "not fair" in table
    rows = read_csv(result.write_csv())
    assert all("max_trials" in r["budget_flag"] for r in rows)
    assert [r["epochs_spent"] for r in rows] == ["8", "6"]


def test_budget_flags_epochs_and_the_odd_one_out(tmp_path):
    sweep = tmp_path / "sweep"
    # hyperband: a continued trial counts only its extra epochs (1 + (3 - 1) = 3 spent)
    make_job(sweep, "0", ["tuner=hyperband"], [done(0.5, 1), done(0.6, 3, initial=1)], num=0, max_epochs=3)
    make_job(sweep, "1", ["tuner=random", "trainer.epochs=3"], [done(0.5, 3)], num=1, epochs=3)
    make_job(sweep, "2", ["tuner=grid", "trainer.epochs=3"], [done(0.4, 3)], num=2, epochs=3, max_trials=3)
    result = summarise(sweep)
    by_num = {j.num: j for j in result.jobs}
    assert [by_num[n].epochs_spent for n in (0, 1, 2)] == [3, 3, 3]
    assert by_num[0].flags == [] and by_num[1].flags == []  # 3 epochs per trial for all, 3 epochs spent each
    assert by_num[2].flags == ["max_trials=3"]  # the only one that differs from the others' 2


def test_equal_budgets_are_not_flagged(tmp_path):
    sweep = tmp_path / "sweep"
    make_job(sweep, "0", ["tuner=random"], [done(0.5)] * 10, num=0, max_trials=10)
    make_job(sweep, "1", ["tuner=grid"], [done(0.5)] * 10 + [done(0.5)], num=1, max_trials=10)  # 11 vs 10: < 10%...
    result = summarise(sweep)
    assert all(not j.flags for j in result.jobs)  # ...of the median 10.5
    assert "not fair" not in result.table()


def test_failed_and_broken_jobs_are_rows_with_their_status(tmp_path, capsys):
    sweep = tmp_path / "sweep"
    make_job(sweep, "0", ["tuner=random"], [done(0.5)], num=0, record={"status": "done"})
    # no trials.db (the job stopped before its store), with an error in its log
    (sweep / "1" / ".hydra").mkdir(parents=True)
    (sweep / "1" / ".hydra" / "overrides.yaml").write_text(yaml.safe_dump(["tuner=grid"]))
    (sweep / "1" / "archsearch.log").write_text(
        "[2026-11-22 10:00:00,000][archsearch.progress][ERROR] - error: data.path: no such file\n")
    # a Python exception (the job's record says failed)
    make_job(sweep, "2", ["tuner=bayesian"], [done(0.7), ("failed", None, 1, 0, 100.0, 101.0)], num=2,
             record={"status": "failed", "error": "RuntimeError: boom"})
    # a job that stopped before its first trial and removed its own folder: only its record is left
    (sweep / JOBS_DIR / "job_3.json").write_text(json.dumps(
        {"num": 3, "folder": "3", "run_folder": str(sweep / "3"), "overrides": ["tuner=bohb"], "status": "running",
         "started_at": 1.0}))
    # a trials.db that is not a database
    (sweep / "4" / ".hydra").mkdir(parents=True)
    (sweep / "4" / ".hydra" / "overrides.yaml").write_text(yaml.safe_dump(["tuner=hyperband"]))
    (sweep / "4" / "trials.db").write_bytes(b"not a database" * 100)
    # a search interrupted by Ctrl-C
    make_job(sweep, "5", ["tuner=random", "tuner.seed=1"], [done(0.4), ("running", None, 0, 0, 100.0, None)], num=5,
             record={"status": "running"})

    SweepSummary().on_multirun_end(OmegaConf.create({"hydra": {"sweep": {"dir": str(sweep)}}}))
    out = capsys.readouterr().out
    rows = {r["job"] or r["overrides"]: r for r in read_csv(sweep / SWEEP_CSV)}
    assert rows["0"]["status"] == "done" and rows["0"]["rank"] == "1"
    assert rows["1"]["status"] == "no trials.db" and rows["1"]["error"] == "data.path: no such file"
    assert rows["2"]["status"] == "failed" and rows["2"]["error"] == "RuntimeError: boom"
    assert rows["2"]["best_score"] == "0.7" and rows["2"]["trials_failed"] == "1" and rows["2"]["rank"] == ""
    assert rows["3"]["status"] == "stopped" and "removed its folder" in rows["3"]["error"]
    assert rows["4"]["status"] == "unreadable"
    assert rows["5"]["status"] == "interrupted" and rows["5"]["trials_running"] == "1"
    assert len(rows) == 6
    assert "Sweep summary (" in out and "Jobs: 1 done, 1 failed, 1 interrupted, 1 no trials.db, 1 stopped, " \
        "1 unreadable" in out
    assert "job 2 (tuner=bayesian) failed: RuntimeError: boom" in out
    assert f"continue it with resume={sweep / '5'}" in out
    assert "(removed)" in out


def test_job_folders_found_under_any_subdir_naming(tmp_path):
    sweep = tmp_path / "sweep"
    make_job(sweep, "tuner=grid,tuner.seed=0", ["tuner=grid", "tuner.seed=0"], [done(0.5)])
    make_job(sweep, "nested/tuner=random/0", ["tuner=random", "tuner.seed=0"], [done(0.6)])
    (sweep / "tuner=grid,tuner.seed=0" / "trials" / "trial_0000" / ".hydra").mkdir(parents=True)  # never walked
    (sweep / "multirun.yaml").write_text("hydra: {}\n")
    folders = find_job_folders(sweep)
    assert sorted(str(f.relative_to(sweep)) for f in folders) == ["nested/tuner=random/0", "tuner=grid,tuner.seed=0"]
    result = summarise(sweep)
    assert [j.overrides for j in result.jobs] == [["tuner=random", "tuner.seed=0"], ["tuner=grid", "tuner.seed=0"]]
    assert "nested/tuner=random/0" in result.table()


def test_job_records_from_the_callback(tmp_path):
    sweep = tmp_path / "sweep"

    def job_config(num: int, mode: str = "MULTIRUN"):
        return OmegaConf.create({
            "resume": None,
            "hydra": {"mode": mode, "sweep": {"dir": str(sweep), "subdir": f"a/{num}"},
                      "runtime": {"output_dir": str(sweep / "a" / str(num))}, "job": {"num": num},
                      "overrides": {"task": [f"tuner.seed={num}"]}}})

    class Return:
        def __init__(self, status, value):
            self.status = type("Status", (), {"name": status})()
            self._return_value = value

    callback = SweepSummary()
    for num in (0, 1):
        (sweep / "a" / str(num)).mkdir(parents=True)
        callback.on_job_start(job_config(num))
    record = json.loads((sweep / JOBS_DIR / "job_0.json").read_text())
    assert record["status"] == "running" and record["folder"] == "a/0" and record["overrides"] == ["tuner.seed=0"]
    callback.on_job_end(job_config(0), Return("COMPLETED", None))
    callback.on_job_end(job_config(1), Return("FAILED", ValueError("bad\nvalue")))
    assert json.loads((sweep / JOBS_DIR / "job_0.json").read_text())["status"] == "done"
    failed = json.loads((sweep / JOBS_DIR / "job_1.json").read_text())
    assert failed["status"] == "failed" and failed["error"] == "ValueError: bad"
    assert failed["finished_at"] >= failed["started_at"]

    single = tmp_path / "single"
    config = job_config(0, mode="RUN")
    config.hydra.runtime.output_dir = str(single)
    config.hydra.sweep.dir = str(single)
    SweepSummary().on_job_start(config)  # a single run: nothing written
    assert not (single / JOBS_DIR).exists()


def test_module_command(tmp_path, capsys):
    sweep = tmp_path / "sweep"
    make_job(sweep, "0", ["tuner=random"], [done(0.5)], num=0)
    assert sweep_main([str(sweep)]) == 0
    assert "Sweep summary" in capsys.readouterr().out and (sweep / SWEEP_CSV).is_file()
    capsys.readouterr()
    assert sweep_main([str(tmp_path / "missing")]) == 2
    said = capsys.readouterr().err
    assert f"archsearch: error: {tmp_path / 'missing'} does not exist" in said and "is not a folder" not in said
    (tmp_path / "a_file").write_text("")
    assert sweep_main([str(tmp_path / "a_file")]) == 2
    assert "is a file, not a folder" in capsys.readouterr().err
    (tmp_path / "empty").mkdir()
    assert sweep_main([str(tmp_path / "empty")]) == 2


def test_module_command_runs_as_the_readme_shows(tmp_path):
    """``python -m archsearch.report.sweep <sweep dir>``, as a command: the table on stdout, sweep.csv written."""
    sweep = tmp_path / "sweep"
    make_job(sweep, "0", ["tuner=random"], [done(0.5)], num=0)
    ran = subprocess.run([sys.executable, "-m", "archsearch.report.sweep", str(sweep)], cwd=REPO,
                         capture_output=True, text=True, timeout=300)
    assert ran.returncode == 0, ran.stderr[-2000:]
    assert "Sweep summary (" in ran.stdout and f"Sweep summary written to {sweep / SWEEP_CSV}" in ran.stdout
    assert read_csv(sweep / SWEEP_CSV)[0]["status"] == "done"


# ---------------------------------------------------------------- the real CLI
def run_multirun(args: list[str], sweep_dir: Path, timeout: int = 600) -> subprocess.CompletedProcess:
    """``python -m archsearch -m ...`` into the sweep folder ``sweep_dir`` (run_cli's hydra.run.dir is for one run)."""
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    return subprocess.run([sys.executable, "-m", "archsearch", "-m", *args, f"hydra.sweep.dir={sweep_dir}"],
                          cwd=REPO, env=env, capture_output=True, text=True, timeout=timeout)


@pytest.mark.slow
def test_cli_multirun_basic_launcher(tmp_path):
    # Hydra's basic launcher runs the jobs one after another in its own process: here, the test's (cli_inprocess).
    from cli_inprocess import run_cli_inprocess

    sweep = tmp_path / "sweep"
    proc = run_cli_inprocess(["-m", "tuner=random,hyperband", "tuner.max_trials=2", *TINY, "executor=inline",
                              f"hydra.sweep.dir={sweep}"], tmp_path / "unused")
    assert proc.returncode == 0, proc.stderr[-3000:]
    rows = read_csv(sweep / SWEEP_CSV)
    assert sorted(r["overrides"].split()[0] for r in rows) == ["tuner=hyperband", "tuner=random"]
    for row in rows:
        assert row["status"] == "done" and row["objective"] == "val_accuracy" and row["direction"] == "max"
        assert (row["trials_done"], row["trials_completed"], row["trials_failed"]) == ("2", "2", "0")
        assert row["epochs_spent"] == "2"  # hyperband's first bracket trains 1 epoch per trial, like random's
        assert float(row["wall_s"]) > 0 and Path(row["folder"]).parent == sweep
        assert (Path(row["folder"]) / "trials.db").is_file()
        assert "epochs_per_trial=" in row["budget_flag"]  # trainer.epochs=1 against tuner.max_epochs=9
    scores = [float(r["best_score"]) for r in rows]
    assert scores == sorted(scores, reverse=True) and [r["rank"] for r in rows] == ["1", "2"]
    out = proc.stdout
    assert f"Sweep summary ({sweep})" in out and "Objective: val_accuracy (max)" in out
    assert "Common overrides: tuner.max_trials=2 trainer.epochs=1" in out
    assert "epochs_per_trial=9" in out and "epochs_per_trial=1" in out and "not fair" in out
    table = out[out.index("Sweep summary ("):]
    assert table.index("tuner=" + rows[0]["overrides"].split()[0].split("=")[1]) < \
        table.index("tuner=" + rows[1]["overrides"].split()[0].split("=")[1])


@pytest.mark.slow
def test_cli_multirun_joblib_launcher(tmp_path):
    """The jobs' trials run a tiny program (trial=command): the launcher's processes and the sweep table are
    what is checked, and a Keras trial costs each job a TensorFlow start (Keras jobs: the basic launcher above)."""
    pytest.importorskip("hydra_plugins.hydra_joblib_launcher")
    from test_reliability import program

    sweep = tmp_path / "sweep"
    exclude = "hydra.job.config.override_dirname.exclude_keys=[tuner.max_trials,trial,trial.command,objective,space]"
    proc = run_multirun(["hydra/launcher=joblib", "hydra.launcher.n_jobs=2", "tuner=random,grid",
                         "tuner.max_trials=2", *program("--epochs=1"),
                         "hydra.sweep.subdir=${hydra.job.override_dirname}", exclude], sweep)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "Joblib.Parallel(n_jobs=2" in proc.stdout + proc.stderr
    rows = read_csv(sweep / SWEEP_CSV)
    assert sorted(Path(r["folder"]).name for r in rows) == ["tuner=grid", "tuner=random"]
    for row in rows:
        assert row["status"] == "done", row
        assert (row["trials_done"], row["trials_completed"], row["epochs_spent"]) == ("2", "2", "2")
        assert row["budget_flag"] == ""  # same trials, same epochs: a fair comparison
        assert row["job_wall_s"] != ""  # the job records were written in the worker processes
    assert "Sweep summary (" in proc.stdout and "not fair" not in proc.stdout
