"""What a user sees of a Pareto search's results (issue 28): the best trials as the front, the results table
with its knee and hypervolume, trials.csv's rank and on_front columns, best/pareto/ and retrain of the knee."""

from __future__ import annotations

import csv

import numpy as np
import pytest
from omegaconf import OmegaConf

from archsearch.core import pareto
from archsearch.core.objective import Objective, ParetoObjective
from archsearch.core.trial import COMPLETED, FAILED, Trial

OBJECTIVE = ParetoObjective.of(["a:max", "b:min"])


def searched_oracle(objective=OBJECTIVE, trials: int = 12):
    """A random search over x in [0, 1]: a = x (max), b = x^2 (min), every third trial penalised (dominated)."""
    from archsearch.oracles import create_oracle
    from archsearch.space.hyperparameters import HyperParameters

    hp = HyperParameters()
    hp.Float("x", 0.0, 1.0)
    oracle = create_oracle("random", hp, objective, max_trials=trials, seed=3)
    while (trial := oracle.ask()) is not None:
        x = trial.hparams["x"]
        oracle.tell(trial.id, {"a": x, "b": x * x + (0.3 if trial.id % 3 == 0 else 0.0)})
    return oracle


def test_the_best_trials_of_a_pareto_search_are_the_whole_front_unless_a_number_limits_them():
    oracle = searched_oracle()
    front = oracle.pareto_front()
    assert len(front) > 2 and all(t.id % 3 for t in front)
    assert oracle.get_best_trials() == oracle.best_trials() == front  # KerasTuner's default of 1 hides nothing
    assert oracle.get_best_trials(2) == front[:2]
    single = searched_oracle(Objective("a", "max"))
    assert len(single.get_best_trials()) == 1  # a single objective keeps KerasTuner's default


def test_default_reference_point_is_the_nadir_plus_a_tenth_of_the_range():
    costs = np.array([[0.0, 10.0], [1.0, 30.0], [0.5, 20.0]])
    assert pareto.default_reference_point(costs).tolist() == pytest.approx([1.1, 32.0])
    flat = np.array([[2.0, 0.0], [2.0, 0.0]])  # no range: 10% of the magnitude (of 1 at zero)
    assert pareto.default_reference_point(flat).tolist() == pytest.approx([2.2, 0.1])
    assert pareto.reference_costs(OBJECTIVE, {"b": 2.0, "a": 0.0}).tolist() == [-0.0, 2.0]  # a:max is negated
    assert pareto.as_values(OBJECTIVE, [-0.5, 2.0]) == [0.5, 2.0]
    from archsearch.errors import ConfigError

    with pytest.raises(ConfigError, match=r"reference_point: \{'a': 1.0\} is not one number for each objective"):
        pareto.reference_costs(OBJECTIVE, {"a": 1.0})


def test_the_results_table_lists_the_front_every_objective_the_knee_and_the_hypervolume():
    from archsearch.keras_tuner.results import results_table

    oracle = searched_oracle()
    view = pareto.FrontView.of(oracle.trials.values(), OBJECTIVE)
    text = results_table(oracle, None)
    lines = text.splitlines()
    header = next(i for i, line in enumerate(lines) if line.split()[:4] == ["#", "trial", "a", "b"])
    rows = [line.split() for line in lines[header + 2: header + 2 + len(view.front)]]
    assert [int(r[1]) for r in rows] == [t.id for t in view.front]
    assert [r[1] for r in rows if "yes" in r] == [str(view.knee)]
    assert f"Pareto front: {len(view.front)} of 12 trials" in text
    ref = pareto.default_reference_point(view.costs)
    hv = pareto.hypervolume(view.costs, ref)
    ideal = view.costs.min(axis=0)  # the report's normalisation: the ideal at 0, the reference at 1
    share = pareto.hypervolume((view.costs - ideal) / (ref - ideal), [1.0, 1.0])
    assert f"Hypervolume: {hv:.6g}, {share:.1%} of the box between the ideal and the reference point " \
           "(reference point a=" in text and "derived" in text

    limited = results_table(oracle, 2, reference_point={"a": 0.0, "b": 1.5})
    assert f"... and {len(view.front) - 2} more on the front" in limited
    fixed = pareto.hypervolume(view.costs, [0.0, 1.5])
    assert f"Hypervolume: {fixed:.6g}, " in limited and "(reference point a=0, b=1.5; search.reference_point)" in limited


def test_the_results_hypervolume_counts_a_log_scaled_objective_by_its_logarithm_and_says_so():
    from archsearch.keras_tuner.results import results_table

    objective = ParetoObjective.of(["a:max", "b:min:log"])
    oracle = searched_oracle(objective)
    view = pareto.FrontView.of(oracle.trials.values(), objective)
    text = results_table(oracle, None, reference_point={"a": 0.0, "b": 1.5})
    scaled = view.costs.copy()
    scaled[:, 1] = np.log(scaled[:, 1])
    hv = pareto.hypervolume(scaled, [0.0, np.log(1.5)])
    assert f"Hypervolume: {hv:.6g}, " in text and hv != pytest.approx(pareto.hypervolume(view.costs, [0.0, 1.5]))
    assert "(reference point a=0, b=1.5; search.reference_point; b counted by its logarithm (scale: log))" in text


def test_trials_csv_of_a_pareto_search_has_each_trials_rank_and_whether_it_is_on_the_front(tmp_path):
    from archsearch.core.store import CSV_COLUMNS, TrialStore

    metrics = [{"a": 0.9, "b": 3.0}, {"a": 0.5, "b": 1.0}, {"a": 0.4, "b": 2.0}, {"a": 0.3, "b": 2.5}, {"a": 0.95}]
    with TrialStore(tmp_path / "store") as store:
        for i, m in enumerate(metrics):
            trial = Trial(i, {"x": i})
            store.create_trial(trial)
            trial.status, trial.metrics, trial.value = COMPLETED, m, m["a"]
            store.finish_trial(trial)
        failed = Trial(5, {"x": 5}, status=FAILED, error="boom")
        store.create_trial(failed)
        store.finish_trial(failed)
        rows = list(csv.DictReader(store.export_csv(tmp_path / "trials.csv", OBJECTIVE).open(newline="")))
        plain = next(csv.reader(store.export_csv(tmp_path / "single.csv", Objective("a", "max")).open(newline="")))
    assert [(r["rank"], r["on_front"]) for r in rows] == [
        ("0", "true"), ("0", "true"), ("1", "false"), ("2", "false"), ("", "false"), ("", "false")]
    assert rows[0]["a"] == "0.9" and rows[0]["b"] == "3.0"  # every objective is a metric column
    assert plain == [*CSV_COLUMNS, "x", "a", "b"]  # a single objective's CSV is unchanged


def test_trials_stopped_at_a_lower_budget_are_left_out_of_the_front_table_csv_and_report(tmp_path):
    """A multi-fidelity search's 1-epoch trial of a tiny model would sit on the front of accuracy against size
    with its barely trained score; as Optuna leaves pruned trials out of best_trials, the front compares the
    trials trained to the largest budget reached, and the results say how many were left out."""
    from archsearch.core.store import TrialStore
    from archsearch.keras_tuner.results import front_table
    from archsearch.report.data import RunRecord
    from archsearch.report.pareto import pareto_view

    rows = [(9, {"a": 0.9, "b": 3.0}), (9, {"a": 0.7, "b": 2.0}), (9, {"a": 0.6, "b": 2.5}),
            (3, {"a": 0.3, "b": 0.5}), (1, {"a": 0.2, "b": 0.1})]  # the last two: lower rungs, smaller models
    trials = []
    for i, (budget, metrics) in enumerate(rows):
        trial = Trial(i, {"x": i}, budget=budget, status=COMPLETED)
        trial.metrics, trial.value = metrics, metrics["a"]
        trials.append(trial)
    view = pareto.FrontView.of(trials, OBJECTIVE)
    assert [t.id for t in view.front] == [0, 1] and [t.id for t in view.lower_budget] == [3, 4]
    assert [t.id for t in pareto.front(trials, OBJECTIVE)] == [0, 1]
    assert view.rank_of() == {0: 0, 1: 0, 2: 1}
    assert [t.id for t in pareto.FrontView.of([trials[3], trials[4]], OBJECTIVE).front] == [3]  # 3 is now the top

    class Oracle:  # what front_table reads of an oracle
        objective = OBJECTIVE
        hyperparameters = type("H", (), {"space": {}})()

        def __init__(self):
            self.trials = {t.id: t for t in trials}

        def keras_tuner_values(self, trial):
            return {}

    table = "\n".join(front_table(Oracle()))
    assert "Pareto front: 2 of 3 trials with every objective" in table
    assert "2 trials stopped at a lower budget than 9 epochs are left out" in table

    with TrialStore(tmp_path / "store") as store:
        for trial in trials:
            store.create_trial(trial)
            store.finish_trial(trial)
        csv_rows = list(csv.DictReader(store.export_csv(tmp_path / "trials.csv", OBJECTIVE).open(newline="")))
        records = store.rows()
    assert [(r["rank"], r["on_front"]) for r in csv_rows] == [
        ("0", "true"), ("0", "true"), ("1", "false"), ("", "false"), ("", "false")]
    run = RunRecord(tmp_path, records, {}, "a", "max", objectives=[("a", "max"), ("b", "min")])
    report = pareto_view(run)
    assert [t["id"] for t in report.front()] == [0, 1] and [t["id"] for t in report.lower_budget] == [3, 4]


def two_metrics_tuner():
    import archsearch as kt

    class TwoMetrics(kt.Tuner):  # a run_trial that reports two conflicting metrics, no model trained
        def run_trial(self, trial, *args, **kwargs):
            x = trial.hyperparameters.Float("x", 0.0, 1.0)
            return {"a": x, "b": x * x + (0.3 if int(trial.trial_id) % 3 == 0 else 0.0)}

    return TwoMetrics


def test_a_list_objective_in_single_mode_is_a_sum_and_the_search_says_so_once(tmp_path, capsys):
    import archsearch as kt
    from archsearch.core.console import sum_note

    note = sum_note(Objective.create(["val_accuracy", "val_loss"]))
    assert "KerasTuner's sum" in note and "search.mode=pareto" in note and "ParetoObjective" in note
    assert sum_note(OBJECTIVE) is None and sum_note(Objective("val_loss")) is None
    summed = kt.oracles.RandomSearchOracle(objective=[kt.Objective("a", "max"), kt.Objective("b", "min")],
                                           max_trials=2, seed=3)
    two_metrics_tuner()(oracle=summed, directory=tmp_path, project_name="sum").search()
    out = capsys.readouterr().out
    assert out.count("KerasTuner's sum") == 1 and "| best -0.1807 (trial 1)" in out  # the sum, as before


def test_the_python_api_shows_the_front_by_default_and_a_number_limits_it(tmp_path, capsys):
    import archsearch as kt

    objective = kt.ParetoObjective.of(["a:max", "b:min"])
    tuner = two_metrics_tuner()(oracle=kt.oracles.RandomSearchOracle(objective=objective, max_trials=8, seed=3),
                                directory=tmp_path, project_name="p")
    tuner.reference_point = {"a": 0.0, "b": 2.0}
    tuner.search()
    assert tuner.oracle.reference_costs.tolist() == [0.0, 2.0]  # the oracle's too (the Pareto acquisition's bound)
    front = tuner.oracle.pareto_front()
    assert len(front) > 1
    assert [t.trial_id for t in tuner.oracle.get_best_trials()] == [t.trial_id for t in front]
    assert [hp.get("x") for hp in tuner.get_best_hyperparameters()] == [t.hparams["x"] for t in front]
    assert len(tuner.get_best_hyperparameters(1)) == 1
    capsys.readouterr()
    tuner.results_summary(None)
    text = capsys.readouterr().out
    assert f"Pareto front: {len(front)} of 8 trials" in text and "reference point a=0, b=2" in text
    assert "more on the front" not in text  # None: the whole front
    tuner.results_summary(1)  # KerasTuner's number of rows, and how many more the front has
    assert f"... and {len(front) - 1} more on the front" in capsys.readouterr().out


def test_a_command_search_exports_the_knee_and_every_point_of_the_front_as_values(tmp_path):
    import yaml

    from archsearch.core.store import TrialStore
    from archsearch.export.values import export_best_values

    class Program:  # what export_best_values asks of a command runner
        cwd = tmp_path

        def command_line(self, trial):
            return ["python", "train.py", f"--x={trial.hparams['x']}"]

    oracle = searched_oracle()
    view = pareto.FrontView.of(oracle.trials.values(), OBJECTIVE)
    with TrialStore(tmp_path / "store") as store:
        best = export_best_values(tmp_path, oracle, store, Program())
    record = yaml.safe_load((best / "hparams.yaml").read_text())
    assert record["trial"] == view.knee and record["pareto"] == {"on_front": True, "knee": True}
    assert [o["name"] for o in record["objective"]["objectives"]] == ["a", "b"]
    folders = sorted(p.name for p in (best / "pareto").glob("trial_*"))
    assert folders == sorted(f"trial_{t.id:04d}" for t in view.front)
    point = best / "pareto" / folders[0]
    assert (point / "command.sh").read_text().rstrip().endswith(f"--x={oracle.trials[int(folders[0][6:])].hparams['x']}")
    rows = list(csv.DictReader((best / "pareto" / "pareto.csv").open(newline="")))
    assert len(rows) == len(view.trials) and [r["rank"] for r in rows] == sorted(r["rank"] for r in rows)
    assert [r["trial"] for r in rows if r["knee"] == "yes"] == [str(view.knee)]
    assert {r["trial"] for r in rows if r["model"]} == {str(t.id) for t in view.front}


def test_trial_knee_is_a_point_of_a_front_and_the_trial_group_is_not_the_key(tmp_path):
    from archsearch.__main__ import _before_hydra
    from archsearch.cli.retrain import _is_knee
    from archsearch.errors import ConfigError

    assert _is_knee("knee", OBJECTIVE, tmp_path) and not _is_knee(3, OBJECTIVE, tmp_path)
    with pytest.raises(ConfigError, match="trial_id: knee names a point of a Pareto search's front"):
        _is_knee("knee", Objective("val_accuracy"), tmp_path)
    with pytest.raises(ConfigError, match="mode=retrain takes the trial to retrain as trial_id=knee"):
        _before_hydra(["archsearch", "mode=retrain", "from_run=x", "trial=knee"])


def test_a_retrain_picks_epochs_by_the_main_objective_and_scores_every_one():
    pytest.importorskip("keras")
    from archsearch.training.retrain import main_objective, objective_parts, scored_metric

    measure_first = ParetoObjective.of(["params:min", "val_accuracy:max"])  # params never changes by epoch
    assert main_objective(measure_first).name == "val_accuracy" and scored_metric(measure_first) == "accuracy"
    assert [p.name for p in objective_parts(measure_first)] == ["params", "val_accuracy"]
    assert scored_metric(Objective("val_loss")) == "loss"


def trials_of(run):
    from archsearch.core.store import TrialStore

    with TrialStore.open_read_only(run) as store:
        return store.trials()


@pytest.mark.slow
@pytest.mark.xdist_group("pareto_run")
def test_a_pareto_cli_run_lists_ranks_exports_the_front_and_retrains_its_knee(pareto_run, cli_inprocess, tmp_path):
    import json
    import shutil

    import yaml

    shared, result = pareto_run  # val_accuracy:max, params:min; reference point given; keep_top_models=1
    run = tmp_path / "run"
    shutil.copytree(shared, run)  # the retrain writes into its run folder: a copy, the shared run stays whole
    rows = list(csv.DictReader((run / "trials.csv").open(newline="")))
    front = {r["id"] for r in rows if r["on_front"] == "true"}
    assert len(front) > 1 and all((r["rank"] == "0") == (r["id"] in front) for r in rows)  # a trade-off
    out = result.stdout
    table = out[out.index("Pareto front:"):]
    assert any(line.split()[:5] == ["#", "trial", "val_accuracy", "params", "knee"] for line in table.splitlines())
    assert "reference point val_accuracy=0, params=1e+06; search.reference_point" in table
    knee = yaml.safe_load((run / "best" / "hparams.yaml").read_text())["trial"]
    assert f"knee: trial {knee}," in table
    assert {p.name for p in (run / "best" / "pareto").glob("trial_*")} == {f"trial_{int(i):04d}" for i in front}
    # every front model, though keep_top_models=1: the front's weights are all kept
    assert all((run / "best" / "pareto" / f"trial_{int(i):04d}" / "model.keras").is_file() for i in front)
    assert "`best/` holds trial" in (run / "best" / "README.md").read_text()

    result = cli_inprocess(["mode=retrain", f"from_run={run}", "trial_id=knee", "retrain.repeats=2"], tmp_path / "r")
    assert result.returncode == 0, result.stderr[-3000:]
    comparison = json.loads((run / "retrain" / "comparison.json").read_text())
    (tuned,) = comparison["tuned"]
    assert tuned["trial"] == knee and tuned["label"] == f"knee (trial {knee})"
    assert [o["metric"] for o in comparison["objectives"]] == ["accuracy", "params"]
    for name in ("val_accuracy", "params"):
        scores = tuned["objectives"][name]["test_scores"]
        assert len(scores) == 2 and tuned["objectives"][name]["std"] == pytest.approx(np.std(scores, ddof=1))
        assert len(comparison["baseline"]["objectives"][name]["test_scores"]) == 2
    params = [t for t in trials_of(run) if t.id == knee][0].metrics["params"]  # measured again, the same model
    assert tuned["objectives"]["params"]["test_scores"] == [params, params]
    assert "test accuracy: baseline" in result.stdout and "\nparams: baseline" in result.stdout


PARETO_APP = """
import hydra

@hydra.main(version_base=None, config_path=None)
def main(cfg):
    x = float(cfg.x)
    return x, (x - 0.2) ** 2  # two objectives, in the order of hydra.sweeper.direction

if __name__ == "__main__":
    main()
"""


def test_the_hydra_sweeper_runs_a_pareto_search_when_direction_is_a_list(tmp_path):
    import os
    import subprocess
    import sys

    import yaml

    from archsearch.core.store import TrialStore
    from tests.test_sweeper import HANG, REPO

    app = tmp_path / "app.py"
    app.write_text(PARETO_APP)
    run = tmp_path / "sweep"
    result = subprocess.run([sys.executable, str(app), "-m", f"hydra.sweep.dir={run}", "hydra/sweeper=archsearch",
                             "hydra.sweeper.direction=[maximize,minimize]", "hydra.sweeper.max_trials=5",
                             "hydra.sweeper.tuner=random", "hydra.sweeper.seed=1", "+x=interval(0, 1)",
                             "hydra.sweeper.reference_point={objective_1: 1, objective_0: 0}"],
                            cwd=tmp_path, env={**os.environ, "PYTHONPATH": str(REPO), "ARCHSEARCH_REPORT": "false"},
                            capture_output=True, text=True, timeout=HANG)
    assert result.returncode == 0, result.stderr[-3000:]
    with TrialStore.open_read_only(run) as store:
        trials = store.trials()
    objective = ParetoObjective.of(["objective_0:max", "objective_1:min"])
    front = pareto.front(trials, objective)
    assert len(trials) == 5 and all(t.status == COMPLETED for t in trials) and front
    solutions = yaml.safe_load((run / "optimization_results.yaml").read_text())["solutions"]  # Optuna's key
    assert [s["trial"] for s in solutions] == [t.id for t in front]
    x = front[0].hparams["x"]
    assert solutions[0]["values"] == [pytest.approx(x), pytest.approx((x - 0.2) ** 2)]
    assert "Pareto front:" in result.stdout
    assert "(reference point objective_0=0, objective_1=1; hydra.sweeper.reference_point)" in result.stdout
    rows = list(csv.DictReader((run / "trials.csv").open(newline="")))
    assert {r["id"] for r in rows if r["on_front"] == "true"} == {str(t.id) for t in front}


def test_a_pareto_sweeps_settings_and_return_values_are_checked():
    from archsearch.errors import ConfigError
    from archsearch.sweeper.config import _objective
    from archsearch.sweeper.job_runner import _miscounted, _returned_metrics
    from archsearch.sweeper.sweeper import sweep_objective

    spec = _objective(["loss", "params"], ["minimize", "minimize"])
    objective = sweep_objective(spec)
    assert objective == ParetoObjective.of(["loss:min", "params:min"])
    assert sweep_objective(_objective(None, ["maximize", "min"])) == ParetoObjective.of(
        ["objective_0:max", "objective_1:min"])
    with pytest.raises(ConfigError, match="hydra.sweeper.objective: names 1 objectives but direction gives 2"):
        _objective(["loss"], ["minimize", "maximize"])
    with pytest.raises(ConfigError, match=r"hydra.sweeper.direction\[1\]: 'sideways' is not a direction"):
        _objective(None, ["minimize", "sideways"])
    assert sweep_objective(_objective(["loss", "params:log"], ["minimize", "minimize"])) == ParetoObjective.of(
        ["loss:min", "params:min:log"])  # a name may say its scale
    with pytest.raises(ConfigError, match=r"hydra.sweeper.objective\[1\]: 'params:ln' is not a name, nor a name "):
        _objective(["loss", "params:ln"], ["minimize", "minimize"])
    assert _returned_metrics((0.5, 3), objective) == {"loss": 0.5, "params": 3.0}
    assert "returned 3 values for the 2 objectives" in _miscounted([1, 2, 3], objective)
    assert _miscounted(0.5, Objective("loss")) is None


def test_a_sweeps_reference_point_reaches_the_oracle_by_name_or_in_order():
    from archsearch.engine.assembly import create_search_oracle
    from archsearch.engine.settings import TunerSettings
    from archsearch.sweeper.config import SweeperSettings
    from archsearch.sweeper.sweeper import sweep_objective

    for given in ({"b": 2.0, "a": 0.25}, [0.25, 2.0]):
        settings = SweeperSettings.from_config({"objective": ["a", "b"], "direction": ["maximize", "minimize"],
                                                "reference_point": given})
        assert settings.reference_point == {"a": 0.25, "b": 2.0}
        oracle = create_search_oracle(TunerSettings.from_config({"name": "bayesian"}), searched_oracle().hyperparameters,
                                      sweep_objective(settings.objective), settings.reference_point,
                                      "hydra.sweeper.reference_point")
        assert oracle.reference_costs.tolist() == [-0.25, 2.0]  # costs: a (maximised) negated
    assert SweeperSettings.from_config({"direction": ["maximize", "minimize"]}).reference_point is None


def test_a_reference_point_is_refused_by_the_sweepers_name_for_one_objective_or_the_wrong_count():
    from archsearch.engine.assembly import create_search_oracle
    from archsearch.engine.settings import TunerSettings
    from archsearch.errors import ConfigError
    from archsearch.sweeper.config import SweeperSettings

    with pytest.raises(ConfigError, match=r"^hydra.sweeper.reference_point: \[1, 2\] is set, but the sweep has one "
                                          r"objective \(give hydra.sweeper.direction a list"):
        SweeperSettings.from_config({"objective": "loss", "reference_point": [1, 2]})
    with pytest.raises(ConfigError, match=r"^hydra.sweeper.reference_point: \{'c': 1\} is not one number for each"):
        SweeperSettings.from_config({"direction": ["maximize", "minimize"], "objective": ["a", "b"],
                                     "reference_point": {"c": 1}})
    with pytest.raises(ConfigError, match=r"^hydra.sweeper.reference_point: .* leave hydra.sweeper.reference_point"):
        create_search_oracle(TunerSettings.from_config({"name": "random"}), searched_oracle().hyperparameters,
                             Objective("a", "max"), [1, 2], "hydra.sweeper.reference_point")


def test_a_pareto_sweeps_front_scores_the_hypervolume_against_the_configured_point(tmp_path, capsys):
    from types import SimpleNamespace

    from archsearch.sweeper.sweeper import _write_front

    oracle = searched_oracle()
    space = SimpleNamespace(overrides=lambda hparams: [f"+x={hparams['x']}"])
    _write_front(tmp_path, oracle, space, {"a": 0.0, "b": 2.0})
    out = capsys.readouterr().out
    assert "(reference point a=0, b=2; hydra.sweeper.reference_point)" in out
    front = np.array([[-t.metrics["a"], t.metrics["b"]] for t in oracle.pareto_front()])
    assert f"Hypervolume: {pareto.hypervolume(front, np.array([0.0, 2.0])):.6g}," in out
    written = OmegaConf.to_container(OmegaConf.load(tmp_path / "optimization_results.yaml"))["hypervolume"]
    assert written == {"value": pytest.approx(pareto.hypervolume(front, np.array([0.0, 2.0]))), "derived": False,
                       "reference_point": {"a": 0.0, "b": 2.0}}  # for scripts: the console's number and point
    _write_front(tmp_path, oracle, space)  # none configured: derived, and the line says where to fix it
    assert "fix it with hydra.sweeper.reference_point to compare runs" in capsys.readouterr().out
    assert OmegaConf.load(tmp_path / "optimization_results.yaml").hypervolume.derived is True


def test_a_sweeps_report_reads_its_reference_point_from_the_sweepers_stored_settings():
    from archsearch.report.pareto import configured_reference, reference_setting

    stored = {"sweeper": {"reference_point": {"b": 2.0, "a": 0.5}}, "params": {"x": "interval(0, 1)"}}
    assert reference_setting(stored) == "hydra.sweeper.reference_point"
    assert configured_reference(stored, ["a", "b"]) == [0.5, 2.0]
    assert configured_reference({"sweeper": {"reference_point": None}}, ["a", "b"]) is None
    assert reference_setting({"search": {}}) == "search.reference_point"


def test_a_continued_sweep_keeps_its_reference_point_and_tuner_options_unless_forced(tmp_path):
    from archsearch.errors import ConfigError
    from archsearch.sweeper.config import SweeperSettings
    from archsearch.sweeper.sweeper import _same_search

    class Store:  # what the check reads of the sweep's store: its stored config and how many trials it holds
        def __init__(self, point, count=1):
            self.meta = {"config": {"sweeper": {"reference_point": point}, "params": {}}}
            self.count = lambda: count

        def get_meta(self, key):
            return self.meta.get(key)

        def set_meta(self, key, value):
            self.meta[key] = value

    def settings(point, resume=False):
        return SweeperSettings.from_config({"direction": ["max", "min"], "objective": ["a", "b"],
                                            "reference_point": point, "resume": resume})

    _same_search(Store({"a": 0.0, "b": 2.0}), settings([0, 2]), tmp_path)  # the same point
    _same_search(Store(None, count=0), settings([0, 2]), tmp_path)  # nothing run yet: a new sweep
    with pytest.raises(ConfigError, match=r"^hydra.sweeper.reference_point: \{'a': 0.0, 'b': 3.0\} differs from "
                                          r"the \{'a': 0.0, 'b': 2.0\}.*hydra.sweeper.resume=force"):
        _same_search(Store({"a": 0.0, "b": 2.0}), settings([0, 3]), tmp_path)
    store = Store({"a": 0.0, "b": 2.0})
    _same_search(store, settings([0, 3], "force"), tmp_path)
    assert store.meta["config"]["sweeper"]["reference_point"] == {"a": 0.0, "b": 3.0}  # what the report reads
    # The tuner's options too (the command line's resume refuses them alike): asha's max_epochs 9 -> 27.
    store = Store(None)
    store.meta["config"]["sweeper"].update(tuner_options={"max_epochs": 9}, pruner="none")
    asha = lambda resume=False: SweeperSettings.from_config(  # noqa: E731
        {"direction": ["max", "min"], "objective": ["a", "b"], "tuner": {"name": "asha", "max_epochs": 27},
         "resume": resume})
    with pytest.raises(ConfigError, match=r"^hydra.sweeper.tuner: \{'max_epochs': 27\} differs from the "
                                          r"\{'max_epochs': 9\}"):
        _same_search(store, asha(), tmp_path)
    _same_search(store, asha("force"), tmp_path)
    assert store.meta["config"]["sweeper"]["tuner_options"] == {"max_epochs": 27}
