"""``trial=command``: searches whose trials are real training programs (examples/), through the real CLI.

The programs are the ones the project ships in ``examples/`` (numpy and stdlib only), run as a user runs
them; the searches go through ``python -m archsearch`` in this process (tests/cli_inprocess.py) unless
the process boundary is what is tested (kill -9, the console script).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from archsearch.core.store import TrialStore

REPO = Path(__file__).resolve().parent.parent
EXAMPLES = REPO / "examples"
PY = sys.executable
QUADRATIC = f"trial.command='{PY} {EXAMPLES / 'quadratic' / 'train.py'}'"
SPACE = "space={x: {type: float, min: 0, max: 1}, y: {type: float, min: 0.1, max: 1, sampling: log}, kind: [good, bad]}"


def rows(run: Path) -> list[dict]:
    store = TrialStore(run / "trials.db")
    try:
        assert store.problems() == []
        return store.rows()
    finally:
        store.close()


def epochs_of(run: Path, trial_id: int) -> list[tuple[int, dict]]:
    store = TrialStore(run / "trials.db")
    try:
        return [(e["epoch"], {k: v for k, v in e.items() if k != "epoch"}) for e in store.epochs(trial_id)]
    finally:
        store.close()


def quadratic_loss(values: dict, epoch: int) -> float:
    """examples/quadratic/train.py's documented loss."""
    return ((values["x"] - 0.3) ** 2 + (values["y"] - 0.7) ** 2 + (0.0 if values["kind"] == "good" else 1.0)
            + 0.5 ** epoch)


def search(cli_inprocess, run: Path, *args: str, env: dict | None = None):
    return cli_inprocess(["trial=command", "executor=inline", "objective=loss", *args], run, env=env)


def test_a_numpy_program_reporting_on_stdout_is_searched_and_its_best_trial_can_be_run_again(cli_inprocess, tmp_path):
    run = tmp_path / "run"
    result = search(cli_inprocess, run, QUADRATIC, SPACE, "tuner.max_trials=3", "tuner.seed=4")
    assert result.returncode == 0, result.stderr[-3000:]
    trials = rows(run)
    assert [t["status"] for t in trials] == ["completed"] * 3
    for trial in trials:  # every epoch the program printed, recorded as it ran
        recorded = epochs_of(run, trial["id"])
        assert [e for e, _ in recorded] == [1, 2, 3, 4, 5]
        for epoch, metrics in recorded:
            assert metrics["loss"] == pytest.approx(quadratic_loss(trial["hparams"], epoch), rel=1e-9)
        assert trial["value"] == pytest.approx(quadratic_loss(trial["hparams"], 5), rel=1e-9)
        log = (run / "trials" / f"trial_{trial['id']:04d}" / "output.log").read_text()
        assert f"--x={trial['hparams']['x']!r}" in log and "epoch=5 loss=" in log
    best = min(trials, key=lambda t: t["value"])
    hparams = yaml.safe_load((run / "best" / "hparams.yaml").read_text())
    assert hparams["trial"] == best["id"] and hparams["values"] == best["hparams"]
    again = subprocess.run(["sh", str(run / "best" / "command.sh")], capture_output=True, text=True, timeout=120)
    assert f"epoch=5 loss={best['value']!r}" in again.stdout or \
        float(again.stdout.strip().splitlines()[-1].split("loss=")[1]) == pytest.approx(best["value"], rel=1e-9)
    assert "Best values exported to" in result.stdout


def test_the_cloud_services_older_spec_runs_unchanged(cli_inprocess, tmp_path):
    spec = EXAMPLES / "quadratic" / "hptuning_config.yaml"
    run = tmp_path / "run"
    result = cli_inprocess(["trial=command", "executor=inline", f"spec={spec}", QUADRATIC, "tuner.max_trials=2"], run)
    assert result.returncode == 0, result.stderr[-3000:]
    stored = yaml.safe_load(spec.read_text())["trainingInput"]["hyperparameters"]
    trials = rows(run)
    assert len(trials) == 2  # the command line's tuner.max_trials=2 wins over the spec's maxTrials
    names = {p["parameterName"] for p in stored["params"]}
    assert set(trials[0]["hparams"]) == names
    assert yaml.safe_load((run / "best" / "hparams.yaml").read_text())["objective"] == {
        "name": stored["hyperparameterMetricTag"], "direction": "min" if stored["goal"] == "MINIMIZE" else "max"}


def test_metrics_written_to_the_hypertune_file_are_read_while_the_program_runs(cli_inprocess, tmp_path):
    program = f"trial.command='{PY} {EXAMPLES / 'hypertune' / 'train.py'}'"
    run = tmp_path / "run"
    result = search(cli_inprocess, run, program, SPACE, "tuner.max_trials=2", "objective={name: accuracy, direction: max}",
                    "trial.metrics.stdout=false")
    assert result.returncode == 0, result.stderr[-3000:]
    for trial in rows(run):
        assert trial["status"] == "completed"
        assert len(epochs_of(run, trial["id"])) >= 2  # one per reported global step, not only the last


def test_metrics_written_as_tensorboard_events_are_read(cli_inprocess, tmp_path):
    program = f"trial.command='{PY} {EXAMPLES / 'tensorboard' / 'train.py'}'"
    run = tmp_path / "run"
    result = search(cli_inprocess, run, program, SPACE, "tuner.max_trials=2", "objective=val_loss",
                    "trial.metrics.stdout=false")
    assert result.returncode == 0, result.stderr[-3000:]
    for trial in rows(run):
        assert trial["status"] == "completed" and trial["metrics"]["val_loss"] == trial["value"]
        assert len(epochs_of(run, trial["id"])) >= 2


def test_asha_promotes_a_checkpointing_program_which_continues_where_it_stopped(cli_inprocess, tmp_path):
    program = f"trial.command='{PY} {EXAMPLES / 'checkpointing' / 'train.py'}'"
    run = tmp_path / "run"
    result = search(cli_inprocess, run, program, "space={lr: {type: float, min: 0.001, max: 0.3, sampling: log}}", "objective=val_loss",
                    "tuner=asha", "tuner.max_trials=6", "tuner.max_epochs=4", "tuner.factor=2", "trial.budget_arg=--epochs")
    assert result.returncode == 0, result.stderr[-3000:]
    promoted = [t for t in rows(run) if t["parent"] is not None]
    assert promoted, "ASHA promoted no trial"
    for child in promoted:
        log = (run / "trials" / f"trial_{child['id']:04d}" / "output.log").read_text()
        assert f"resumed from epoch {child['initial_budget']}" in log
        assert f"--epochs={child['budget']}" in log
        # only the promotion's extra epochs are trained and recorded
        assert [e for e, _ in epochs_of(run, child["id"])] == list(range(child["initial_budget"] + 1,
                                                                            child["budget"] + 1))


@pytest.mark.parametrize("program, kind, says", [
    ("fail.py", "error", "exit status 1"),
    ("silent.py", "no_metric", "never reported the objective 'loss'"),
    ("infeasible.py", "infeasible", "infeasible"),
])
def test_a_failing_a_silent_and_an_infeasible_program_are_told_apart(cli_inprocess, tmp_path, program, kind, says):
    run = tmp_path / "run"
    result = search(cli_inprocess, run, f"trial.command='{PY} {EXAMPLES / 'faulty' / program}'",
                    "space={x: {type: float, min: 0, max: 1}}", "tuner.max_trials=4", "max_consecutive_failed_trials=5")
    assert result.returncode == 0, result.stderr[-3000:]
    trials = rows(run)
    assert {(t["status"], t["failure_kind"]) for t in trials} == {("failed", kind)}
    assert says in trials[0]["error"] and says in result.stdout
    if kind == "infeasible":  # never shown or counted as a failure
        assert "FAILED" not in result.stdout and "Trials: 4 infeasible" in result.stdout
    if kind == "no_metric":  # where archsearch looked, so the user knows what to change
        assert "looked in:" in trials[0]["error"]
    if kind == "error":  # the program's last lines are kept with the trial
        assert "its last lines:" in trials[0]["error"]


def test_infeasible_trials_never_count_as_failures(cli_inprocess, tmp_path):
    run = tmp_path / "run"
    result = search(cli_inprocess, run, f"trial.command='{PY} {EXAMPLES / 'faulty' / 'infeasible.py'}'",
                    "space={x: {type: float, min: 0, max: 1}}", "tuner.max_trials=3", "max_consecutive_failed_trials=1",
                    "max_failed_trials=1")
    assert result.returncode == 0, result.stderr[-3000:]
    assert len(rows(run)) == 3


def test_a_hanging_program_is_stopped_at_its_timeout(cli_inprocess, tmp_path):
    run = tmp_path / "run"
    result = search(cli_inprocess, run, f"trial.command='{PY} {EXAMPLES / 'faulty' / 'hang.py'}'",
                    "space={x: {type: float, min: 0, max: 1}}", "tuner.max_trials=1", "trial.timeout=3",
                    "trial.grace_period=1")
    assert result.returncode == 0, result.stderr[-3000:]
    (trial,) = rows(run)
    assert (trial["status"], trial["failure_kind"]) == ("failed", "timeout")
    assert "trial.timeout=3" in trial["error"]


def test_failing_programs_stop_the_search_at_max_failed_trials(cli_inprocess, tmp_path):
    run = tmp_path / "run"
    result = search(cli_inprocess, run, f"trial.command='{PY} {EXAMPLES / 'faulty' / 'fail.py'}'",
                    "space={x: {type: float, min: 0, max: 1}}", "tuner.max_trials=6", "max_failed_trials=2",
                    "max_consecutive_failed_trials=10")
    assert result.returncode == 2
    assert "2 trials failed (max_failed_trials=2)" in result.stderr
    assert len(rows(run)) == 2


def test_the_median_pruner_stops_weak_programs_and_the_summary_says_what_it_saved(cli_inprocess, tmp_path):
    run = tmp_path / "run"
    result = search(cli_inprocess, run, QUADRATIC, SPACE, "tuner.max_trials=8", "tuner.seed=1",
                    "tuner.pruner={name: median, warmup_epochs: 1, min_trials: 2}")
    assert result.returncode == 0, result.stderr[-3000:]
    trials = rows(run)
    pruned = [t for t in trials if t["status"] == "pruned"]
    assert pruned and all(t["epochs_done"] < 5 for t in pruned)
    saved = sum(5 - t["epochs_done"] for t in pruned)
    assert f"Pruning: {len(pruned)} of 8 trials stopped early, saving {saved} epochs" in result.stdout


BARRIER = """
import os, sys, time
here = os.environ["ARCHSEARCH_TRIAL_DIR"]
open(os.path.join(here, "started"), "w").close()
others = [os.path.join(os.path.dirname(here), d, "started") for d in ("trial_0000", "trial_0001")]
for _ in range(1200):  # each trial waits until both have started: only parallel slots can pass
    if all(os.path.exists(p) for p in others):
        print("loss=0.5", flush=True)
        sys.exit(0)
    time.sleep(0.1)
sys.exit("the other trial never started")
"""


def test_two_parallel_slots_run_two_programs_at_once(cli_inprocess, tmp_path):
    (tmp_path / "barrier.py").write_text(BARRIER)
    run = tmp_path / "run"
    result = cli_inprocess(["trial=command", f"trial.command='{PY} {tmp_path / 'barrier.py'}'", "objective=loss",
                            "space={x: {type: float, min: 0, max: 1}}", "tuner.max_trials=2", "tuner.parallel_trials=2",
                            "executor=process"], run)
    assert result.returncode == 0, result.stderr[-3000:]
    assert [t["status"] for t in rows(run)] == ["completed", "completed"]


def test_values_can_be_passed_hydra_style_or_in_the_environment_only(cli_inprocess, tmp_path):
    echo = tmp_path / "echo.py"
    echo.write_text("import json, os, sys\nprint('args', json.dumps(sys.argv[1:]))\n"
                    "print('values', os.environ['ARCHSEARCH_VALUES'])\nprint('loss=1.0')\n")
    for style, expected in (("hydra", ["x=0.5", "kind=good"]), ("env", []), ("flags_space", ["--x", "0.5", "--kind", "good"])):
        run = tmp_path / style
        result = search(cli_inprocess, run, f"trial.command='{PY} {echo}'", "space={x: 0.5, kind: [good]}",
                        "tuner.max_trials=1", f"trial.args={style}")
        assert result.returncode == 0, result.stderr[-3000:]
        log = (run / "trials" / "trial_0000" / "output.log").read_text()
        assert f"args {json.dumps(expected)}" in log
        assert json.loads(log.split("values ", 1)[1].splitlines()[0]) == {"x": 0.5, "kind": "good"}


@pytest.mark.parametrize("args, field", [
    (["trial=command", "objective=loss", SPACE], "trial.command: is not set"),
    (["trial=command", "trial.command=no_such_program_xyz", SPACE], "trial.command: 'no_such_program_xyz' was not found"),
    (["trial=command", QUADRATIC], "space: is not set"),
    (["trial=command", QUADRATIC, SPACE, "trainer.epochs=3"], "trainer.epochs: is not used by trial=command"),
    (["trial=command", QUADRATIC, SPACE, "trial.args=positional"], "trial.args: 'positional' is not a way"),
    (["trial=command", QUADRATIC, SPACE, "trial.metrics.pattern='(oops'"], "trial.metrics.pattern: '(oops' is not"),
    ([SPACE], "space: is only read by trial=command"),
    (["mode=retrain", "from_run=x", "trial=3"], "trial: 3 is not a kind of trial"),
])
def test_bad_command_trial_settings_are_one_clear_error_before_any_trial(cli_inprocess, tmp_path, args, field):
    result = cli_inprocess(["executor=inline", *args], tmp_path / "run")
    assert result.returncode == 2, result.stderr[-3000:]
    assert field in result.stderr
    assert not (tmp_path / "run" / "trials").exists()


def test_resume_refuses_a_changed_command(cli_inprocess, tmp_path):
    run = tmp_path / "run"
    assert search(cli_inprocess, run, QUADRATIC, SPACE, "tuner.max_trials=1").returncode == 0
    other = f"trial.command='{PY} {EXAMPLES / 'checkpointing' / 'train.py'}'"
    result = cli_inprocess([f"resume={run}", other, "tuner.max_trials=2"], run)
    assert result.returncode == 2 and "trial.command" in result.stderr
    assert len(rows(run)) == 1


def test_kill_9_of_the_driver_leaves_no_program_running_and_resume_continues_from_the_checkpoint(tmp_path):
    run = tmp_path / "run"
    args = [PY, "-m", "archsearch", "trial=command", f"trial.command='{PY} {EXAMPLES / 'checkpointing' / 'train.py'} "
            f"--seconds=0.3 --epochs=6'", "space={lr: {type: float, min: 0.001, max: 0.3, sampling: log}}", "objective=val_loss",
            "tuner.max_trials=2", f"hydra.run.dir={run}"]
    env = {**os.environ, "ARCHSEARCH_REPORT": "false"}
    proc = subprocess.Popen(args, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    from test_reliability import wait_for_epoch

    wait_for_epoch(run / "trials.db", 0, 3, proc)
    proc.send_signal(signal.SIGKILL)
    proc.communicate(timeout=60)
    state = run / "trials" / "trial_0000" / "checkpoint" / "state.npz"
    assert state.exists()
    for _ in range(100):  # the program got SIGTERM when its parent died (a hang guard, not a timing)
        if not _running(str(run)):
            break
        time.sleep(0.1)
    assert not _running(str(run)), "a trial's program outlived the search"
    resumed = subprocess.run([PY, "-m", "archsearch", f"resume={run}"], cwd=REPO, env=env, capture_output=True,
                             text=True, timeout=600)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert [t["status"] for t in rows(run)] == ["completed", "completed"]
    log = (run / "trials" / "trial_0000" / "output.log").read_text()
    assert "resumed from epoch" in log
    assert [e for e, _ in epochs_of(run, 0)] == [1, 2, 3, 4, 5, 6]  # nothing lost, nothing recorded twice


def _running(marker: str) -> bool:
    """A process whose command line names ``marker`` (the run folder is in every trial's environment, not its
    arguments: look for the example's path with this test's folder in /proc)."""
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            environ = Path(f"/proc/{pid}/environ").read_bytes()
        except OSError:
            continue
        if marker.encode() in environ and b"ARCHSEARCH_TRIAL_ID" in environ:
            return True
    return False


def test_the_console_script_runs_a_spec_over_the_program_after_the_double_dash(tmp_path):
    run = tmp_path / "run"
    spec = EXAMPLES / "quadratic" / "hptuning_config.yaml"
    console_script = [PY, "-c", "from archsearch.__main__ import console_main; console_main()"]  # as installed
    result = subprocess.run([*console_script, "--spec", str(spec), "tuner.max_trials=2", "executor=inline",
                             f"hydra.run.dir={run}", "--", PY, str(EXAMPLES / "quadratic" / "train.py")],
                            cwd=tmp_path, env={**os.environ, "ARCHSEARCH_REPORT": "false"}, capture_output=True,
                            text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    assert len(rows(run)) == 2 and (run / "best" / "command.sh").exists()


STUDY_SPEC = """
studySpec:
  metrics:
  - metricId: loss
    goal: MINIMIZE
  parameters:
  - parameterId: optimizer
    categoricalValueSpec: {values: [sgd, adam]}
    conditionalParameterSpecs:
    - parameterSpec:
        parameterId: momentum
        doubleValueSpec: {minValue: 0.1, maxValue: 0.9}
        scaleType: UNIT_LINEAR_SCALE
      parentCategoricalValues: {values: [sgd]}
  algorithm: RANDOM_SEARCH
maxTrialCount: 8
parallelTrialCount: 1
"""


def test_the_newer_spec_s_conditional_parameters_reach_the_program_only_when_their_parent_has_the_value(
        cli_inprocess, tmp_path):
    (tmp_path / "spec.yaml").write_text(STUDY_SPEC)
    echo = tmp_path / "echo.py"
    echo.write_text("import json, sys\nprint('args', json.dumps(sys.argv[1:]))\nprint('loss=1.0')\n")
    run = tmp_path / "run"
    result = cli_inprocess(["executor=inline", f"spec={tmp_path / 'spec.yaml'}", f"trial.command='{PY} {echo}'"], run)
    assert result.returncode == 0, result.stderr[-3000:]
    trials = rows(run)
    assert len(trials) == 8 and {t["hparams"]["optimizer"] for t in trials} == {"sgd", "adam"}
    for trial in trials:
        log = (run / "trials" / f"trial_{trial['id']:04d}" / "output.log").read_text()
        args = json.loads(log.split("args ", 1)[1].splitlines()[0])
        sgd = trial["hparams"]["optimizer"] == "sgd"
        assert ("momentum" in trial["hparams"]) is sgd
        assert any(a.startswith("--momentum=") for a in args) is sgd


# Command trials on Ray workers: tests/test_ray_executor.py's test_command_trials_run_on_ray_workers (on that
# module's Ray: a local Ray's start costs as much as the search).


ZERO_BASED = """
import os, sys, time
start = int(os.environ.get("ARCHSEARCH_INITIAL_EPOCH", 0))
budget = int(os.environ.get("ARCHSEARCH_BUDGET", 4))
for step in range(start, budget):  # counts its epochs from 0, as `for epoch in range(epochs)` does
    print(f"epoch={step} loss={1.0 / (step + 1)}", flush=True)
"""


def test_a_program_counting_epochs_from_0_keeps_its_numbering_when_promoted(cli_inprocess, tmp_path):
    (tmp_path / "zero.py").write_text(ZERO_BASED)
    run = tmp_path / "run"
    result = search(cli_inprocess, run, f"trial.command='{PY} {tmp_path / 'zero.py'}'",
                    "space={x: {type: float, min: 0, max: 1}}", "tuner=asha", "tuner.max_trials=4",
                    "tuner.max_epochs=4", "tuner.factor=2")
    assert result.returncode == 0, result.stderr[-3000:]
    trials = rows(run)
    assert any(t["parent"] is not None for t in trials)
    for trial in trials:  # epoch n (from 1) is the program's step n - 1, before and after a promotion
        recorded = epochs_of(run, trial["id"])
        assert [e for e, _ in recorded] == list(range(trial["initial_budget"] + 1, trial["budget"] + 1))
        assert all(m["loss"] == pytest.approx(1.0 / e) for e, m in recorded)


TRADE_OFF = """
import argparse
p = argparse.ArgumentParser(); p.add_argument('--x', type=float); x = p.parse_args().x
print(f'size={10 * x}', flush=True)  # once, before the epochs: a measure the program knows up front
for epoch in range(1, 4):
    print(f'epoch={epoch} loss={(1 - x) ** 2 + 1 / epoch}', flush=True)
"""


@pytest.mark.parametrize("mode", ["pareto", "single"])
def test_a_program_reporting_a_measure_once_is_searched_for_a_front_or_for_kerastuner_s_sum(cli_inprocess, tmp_path,
                                                                                           mode):
    program = tmp_path / "trade_off.py"
    program.write_text(TRADE_OFF)
    run = tmp_path / "run"
    result = search(cli_inprocess, run, f"trial.command='{PY} {program}'", "space={x: {type: float, min: 0, max: 1}}",
                    "tuner.max_trials=4", "objective=[loss:min,size:min]", f"search.mode={mode}")
    assert result.returncode == 0, result.stderr[-3000:]
    trials = rows(run)
    assert [t["status"] for t in trials] == ["completed"] * 4
    for trial in trials:  # the best epoch (the last) with the size reported before it
        x = trial["hparams"]["x"]
        assert trial["metrics"]["size"] == pytest.approx(10 * x)
        loss = (1 - x) ** 2 + 1 / 3
        assert trial["value"] == pytest.approx(loss if mode == "pareto" else loss + 10 * x)
