"""The cloud tuning service's spec read unchanged (archsearch/spec): each field mapped to an override
that composes into archsearch's config, noted as cloud-only, or refused with one error naming it."""

from __future__ import annotations

import copy
import re
from pathlib import Path

import pytest

from archsearch.errors import ConfigError
from archsearch.space.categorical import Choice
from archsearch.space.hyperparameters import HyperParameters
from archsearch.space.numeric import Float, Int
from archsearch.spec import CloudSpec, read_spec

REPO = Path(__file__).resolve().parents[1]

# The seed's hptune.yaml (a Cloud ML Engine tutorial's spec), verbatim.
SEED_SPEC = """\
trainingInput:
  pythonVersion: "3.5"
  scaleTier: CUSTOM
  masterType: standard_gpu
  hyperparameters:
    goal: MAXIMIZE
    hyperparameterMetricTag: accuracy
    maxTrials: 10
    maxParallelTrials: 1
    params:
      - parameterName: num-steps
        type: INTEGER
        minValue: 200
        maxValue: 10000
        scaleType: UNIT_LINEAR_SCALE
      - parameterName: lr
        type: DOUBLE
        minValue: 0.001
        maxValue: 0.1
        scaleType: UNIT_LOG_SCALE
"""

LEGACY = {"trainingInput": {"hyperparameters": {
    "goal": "MINIMIZE", "hyperparameterMetricTag": "loss", "maxTrials": 6,
    "params": [
        {"parameterName": "x", "type": "DOUBLE", "minValue": 0.0, "maxValue": 1.0},
        {"parameterName": "lr", "type": "DOUBLE", "minValue": 1e-4, "maxValue": 0.1, "scaleType": "UNIT_LOG_SCALE"},
        {"parameterName": "kind", "type": "CATEGORICAL", "categoricalValues": ["good", "bad"]},
        {"parameterName": "batch", "type": "DISCRETE", "discreteValues": [16, 32, 64]},
    ]}}}

VERTEX = {
    "displayName": "tune",
    "maxTrialCount": 8,
    "parallelTrialCount": 2,
    "studySpec": {
        "metrics": [{"metricId": "val_loss", "goal": "MINIMIZE"}],
        "parameters": [
            {"parameterId": "lr", "doubleValueSpec": {"minValue": 1e-4, "maxValue": 1e-1, "defaultValue": 1e-3},
             "scaleType": "UNIT_LOG_SCALE"},
            {"parameterId": "optimizer", "categoricalValueSpec": {"values": ["adam", "sgd"]},
             "conditionalParameterSpecs": [
                 {"parentCategoricalValues": {"values": ["sgd"]},
                  "parameterSpec": {"parameterId": "momentum",
                                    "discreteValueSpec": {"values": [0.0, 0.5, 0.9], "defaultValue": 0.9},
                                    "conditionalParameterSpecs": [
                                        {"parentDiscreteValues": {"values": [0.5, 0.9]},
                                         "parameterSpec": {"parameterId": "nesterov",
                                                           "categoricalValueSpec": {"values": ["yes", "no"]}}}]}}]},
            {"parameterId": "layers", "integerValueSpec": {"minValue": "1", "maxValue": "3"},
             "scaleType": "UNIT_LINEAR_SCALE",
             "conditionalParameterSpecs": [
                 {"parentIntValues": {"values": [2, 3]},
                  "parameterSpec": {"parameterId": "units_2", "integerValueSpec": {"minValue": 8, "maxValue": 64},
                                    "scaleType": "UNIT_REVERSE_LOG_SCALE"}}]},
        ],
    },
}


def compose(*overrides: str):
    """The config the CLI composes from ``overrides`` and a user's ``trial=command trial.command=x``."""
    from hydra import compose as hydra_compose, initialize_config_dir

    with initialize_config_dir(config_dir=str(REPO / "conf"), version_base=None):
        return hydra_compose("config", overrides=[*overrides, "trial=command", "trial.command=x"])


def test_a_spec_selects_the_command_trial():
    """Its parameters go to a program: composing needs only the program, not trial=command too."""
    from hydra import compose as hydra_compose, initialize_config_dir

    spec = read_spec(LEGACY)
    with initialize_config_dir(config_dir=str(REPO / "conf"), version_base=None):
        cfg = hydra_compose("config", overrides=[*spec.overrides, "trial.command=python train.py"])
    assert cfg.trial.name == "command" and cfg.trial.measurement == "last" and "x" in cfg.space


def space_of(spec: CloudSpec) -> HyperParameters:
    """The search space a run of ``spec`` builds, through the composed config."""
    from omegaconf import OmegaConf

    return HyperParameters.from_config(OmegaConf.to_container(compose(*spec.overrides).space))


def write(tmp_path: Path, text: str, name: str = "spec.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def changed(base: dict, path: str, value) -> dict:
    """A copy of ``base`` with the field at ``path`` (``a.b[1].c``) set to ``value`` (DELETE: removed)."""
    spec = copy.deepcopy(base)
    parts = [int(p) if p.isdigit() else p for p in re.findall(r"[^.\[\]]+", path)]
    node = spec
    for part in parts[:-1]:
        node = node[part]
    if value is DELETE:
        del node[parts[-1]]
    else:
        node[parts[-1]] = value
    return spec


DELETE = object()
HP = "trainingInput.hyperparameters"


# ------------------------------------------------------------------ the seed's spec, verbatim

def test_the_seed_spec_reads_with_notes_only(tmp_path):
    spec = read_spec(write(tmp_path, SEED_SPEC, "hptune.yaml"))
    assert spec.overrides == [
        "trial=command", "tuner=bayesian", "tuner.max_trials=10", "tuner.parallel_trials=1", "tuner.pruner=none",
        "objective={name:'accuracy',direction:'max'}", "trial.measurement=last",
        "space={num-steps:{type:'int',min:200,max:10000,sampling:'linear'},"
        "lr:{type:'float',min:0.001,max:0.1,sampling:'log'}}",
    ]
    assert [n.split(":")[0] for n in spec.notes] == [
        "trainingInput.pythonVersion=3.5", "trainingInput.scaleTier=CUSTOM", "trainingInput.masterType=standard_gpu"]
    assert "trials run on this machine" in spec.notes[2]
    assert spec.source == str(tmp_path / "hptune.yaml") and spec.program == [] and spec.module is None
    cfg = compose(*spec.overrides)
    assert cfg.tuner.name == "bayesian" and cfg.tuner.max_trials == 10 and cfg.tuner.parallel_trials == 1
    assert dict(cfg.objective) == {"name": "accuracy", "direction": "max"}
    hp = space_of(spec)
    steps, lr = hp.space["num-steps"], hp.space["lr"]
    assert isinstance(steps, Int) and (steps.min_value, steps.max_value, steps.sampling) == (200, 10000, "linear")
    assert isinstance(lr, Float) and (lr.min_value, lr.max_value, lr.sampling) == (0.001, 0.1, "log")


# ------------------------------------------------------------------ the older format

def test_older_format_end_to_end_from_yaml(tmp_path):
    path = write(tmp_path, """\
jobId: my_job
trainingInput:
  pythonModule: trainer.task
  args: [--data, gs://bucket/data, --verbose]
  jobDir: gs://bucket/job
  region: us-east1
  hyperparameters:
    goal: MINIMIZE
    hyperparameterMetricTag: val_loss
    maxTrials: 12
    maxParallelTrials: 3
    maxFailedTrials: 4
    enableTrialEarlyStopping: true
    algorithm: RANDOM_SEARCH
    params:
      - {parameterName: units, type: INTEGER, minValue: 8, maxValue: 512, scaleType: UNIT_LOG_SCALE}
      - {parameterName: keep, type: DOUBLE, minValue: 0.5, maxValue: 0.99, scaleType: UNIT_REVERSE_LOG_SCALE}
      - {parameterName: act, type: CATEGORICAL, categoricalValues: [relu, "gelu: tanh, approx", yes]}
      - {parameterName: batch, type: DISCRETE, discreteValues: [16, 32, 64.5]}
""")
    spec = read_spec(path)
    assert spec.module == "trainer.task"
    assert spec.program == ["--data", "gs://bucket/data", "--verbose", "--job-dir=gs://bucket/job"]
    assert [n.split("=")[0] for n in spec.notes] == ["jobId", "trainingInput.region"]
    cfg = compose(*spec.overrides)
    assert cfg.tuner.name == "random" and cfg.tuner.max_trials == 12 and cfg.tuner.parallel_trials == 3
    assert cfg.tuner.pruner == "median" and cfg.max_failed_trials == 4 and cfg.trial.measurement == "last"
    assert dict(cfg.objective) == {"name": "val_loss", "direction": "min"}
    hp = space_of(spec)
    assert isinstance(hp.space["units"], Int) and hp.space["units"].sampling == "log"
    assert isinstance(hp.space["keep"], Float) and hp.space["keep"].sampling == "reverse_log"
    act, batch = hp.space["act"], hp.space["batch"]
    assert isinstance(act, Choice) and act.values == ["relu", "gelu: tanh, approx", "yes"] and not act.ordered
    assert isinstance(batch, Choice) and batch.values == [16, 32, 64.5] and batch.ordered


def test_the_documented_defaults_hold():
    """goal MAXIMIZE, the service's metric tag, 1 trial, 1 at a time, ALGORITHM_UNSPECIFIED -> bayesian."""
    spec = read_spec({"trainingInput": {"hyperparameters": {"params": [
        {"parameterName": "x", "type": "INTEGER", "minValue": 1, "maxValue": 4}]}}})
    cfg = compose(*spec.overrides)
    assert cfg.tuner.name == "bayesian" and cfg.tuner.max_trials == 1 and cfg.tuner.parallel_trials == 1
    assert dict(cfg.objective) == {"name": "training/hptuning/metric", "direction": "max"}
    assert cfg.tuner.pruner == "none" and cfg.max_failed_trials is None and cfg.trial.measurement == "last"
    assert "max_failed_trials=" not in " ".join(spec.overrides)
    assert space_of(spec).space["x"].sampling == "linear"


def test_the_block_without_its_training_input_wrapper_reads_the_same():
    block = copy.deepcopy(LEGACY["trainingInput"])
    assert read_spec(block).overrides == read_spec(LEGACY).overrides


@pytest.mark.parametrize("path, value, expected", [
    (f"{HP}.goal", "MAXIMIZE", "objective={name:'loss',direction:'max'}"),
    (f"{HP}.goal", "minimize", "objective={name:'loss',direction:'min'}"),
    (f"{HP}.hyperparameterMetricTag", "val/acc", "objective={name:'val/acc',direction:'min'}"),
    (f"{HP}.maxTrials", 20, "tuner.max_trials=20"),
    (f"{HP}.maxParallelTrials", 4, "tuner.parallel_trials=4"),
    (f"{HP}.maxFailedTrials", 2, "max_failed_trials=2"),
    (f"{HP}.enableTrialEarlyStopping", True, "tuner.pruner=median"),
    (f"{HP}.enableTrialEarlyStopping", False, "tuner.pruner=none"),
    (f"{HP}.algorithm", "ALGORITHM_UNSPECIFIED", "tuner=bayesian"),
    (f"{HP}.algorithm", "RANDOM_SEARCH", "tuner=random"),
    (f"{HP}.params[0].scaleType", "UNIT_LINEAR_SCALE", "x:{type:'float',min:0.0,max:1.0,sampling:'linear'}"),
    (f"{HP}.params[1].scaleType", "UNIT_REVERSE_LOG_SCALE", "sampling:'reverse_log'"),
    (f"{HP}.params[3].scaleType", "UNIT_LINEAR_SCALE", "batch:{type:'choice',values:[16,32,64],ordered:true}"),
    (f"{HP}.params[2].categoricalValues", ["a b", "c,d", "e:f"], "values:['a b','c,d','e:f']"),
    (f"{HP}.params[2].scaleType", "NONE", "kind:{type:'choice',values:['good','bad']}"),
])
def test_each_older_field_maps_to_its_override(path, value, expected):
    spec = read_spec(changed(LEGACY, path, value))
    assert expected in " ".join(spec.overrides)
    compose(*spec.overrides)  # and the overrides compose


def test_grid_search_maps_to_the_grid_tuner():
    spec = read_spec({"hyperparameters": {"algorithm": "GRID_SEARCH", "maxTrials": 4, "params": [
        {"parameterName": "n", "type": "INTEGER", "minValue": 1, "maxValue": 3},
        {"parameterName": "opt", "type": "CATEGORICAL", "categoricalValues": ["adam", "sgd"]}]}})
    cfg = compose(*spec.overrides)
    assert cfg.tuner.name == "grid" and cfg.tuner.max_trials == 4


@pytest.mark.parametrize("path, value", [(f"trainingInput.{name}", value) for name, value in [
    ("scaleTier", "BASIC_GPU"), ("masterType", "n1-highmem-8"), ("masterConfig", {"acceleratorConfig": {"count": 1}}),
    ("workerType", "n1"), ("workerConfig", {}), ("workerCount", 2), ("parameterServerType", "n1"),
    ("parameterServerConfig", {}), ("parameterServerCount", 1), ("evaluatorType", "n1"), ("evaluatorConfig", {}),
    ("evaluatorCount", 1), ("useChiefInTfConfig", True), ("region", "europe-west1"), ("runtimeVersion", "2.11"),
    ("pythonVersion", "3.7"), ("packageUris", ["gs://b/p.tar.gz"]), ("scheduling", {"maxRunningTime": "3600s"}),
    ("network", "projects/p/global/networks/n"), ("serviceAccount", "a@b"), ("encryptionConfig", {"kmsKeyName": "k"}),
    ("enableWebAccess", True)]] + [("labels", {"team": "ml"})])
def test_each_cloud_only_older_field_is_a_note(path, value):
    spec = read_spec(changed(LEGACY, path, value))
    assert spec.overrides == read_spec(LEGACY).overrides
    assert len(spec.notes) == 1 and spec.notes[0].startswith(f"{path}=")
    assert spec.notes[0].split(": ", 1)[1]  # says what happens here instead


@pytest.mark.parametrize("path, value, field, words", [
    (f"{HP}.resumePreviousJobId", "job_1", f"{HP}.resumePreviousJobId", "resume=<run folder>"),
    (f"{HP}.goal", "GOAL_TYPE_UNSPECIFIED", f"{HP}.goal", "MAXIMIZE, MINIMIZE"),
    (f"{HP}.algorithm", "HYPERBAND", f"{HP}.algorithm", "GRID_SEARCH"),
    (f"{HP}.maxTrials", 0, f"{HP}.maxTrials", ">= 1"),
    (f"{HP}.maxTrials", 2.5, f"{HP}.maxTrials", "integer"),
    (f"{HP}.maxParallelTrials", "two", f"{HP}.maxParallelTrials", "number"),
    (f"{HP}.maxFailedTrials", -1, f"{HP}.maxFailedTrials", ">= 0"),
    (f"{HP}.enableTrialEarlyStopping", "yes", f"{HP}.enableTrialEarlyStopping", "true or false"),
    (f"{HP}.hyperparameterMetricTag", "", f"{HP}.hyperparameterMetricTag", "non-empty"),
    (f"{HP}.params", [], f"{HP}.params", "non-empty list"),
    (f"{HP}.params[1].scaleType", "UNIT_EXP_SCALE", f"{HP}.params[1].scaleType", "UNIT_LOG_SCALE"),
    (f"{HP}.params[0].scaleType", "UNIT_LOG_SCALE", f"{HP}.params[0].scaleType", "minValue > 0"),
    (f"{HP}.params[0].maxValue", 0.0, f"{HP}.params[0].maxValue", "greater than minValue"),
    (f"{HP}.params[0].minValue", DELETE, f"{HP}.params[0].minValue", "missing"),
    (f"{HP}.params[1].type", "INTEGER", f"{HP}.params[1].minValue", "integer"),
    (f"{HP}.params[0].type", "FLOAT", f"{HP}.params[0].type", "INTEGER, DOUBLE"),
    (f"{HP}.params[0].type", DELETE, f"{HP}.params[0].type", "not a known value"),
    (f"{HP}.params[0].categoricalValues", ["a"], f"{HP}.params[0].categoricalValues", "does not apply to type DOUBLE"),
    (f"{HP}.params[2].scaleType", "UNIT_LINEAR_SCALE", f"{HP}.params[2].scaleType", "does not apply"),
    (f"{HP}.params[2].categoricalValues", ["a", "a"], f"{HP}.params[2].categoricalValues[1]", "twice"),
    (f"{HP}.params[2].categoricalValues", [], f"{HP}.params[2].categoricalValues", "non-empty"),
    (f"{HP}.params[3].discreteValues", [4, 2], f"{HP}.params[3].discreteValues[1]", "increasing"),
    (f"{HP}.params[3].discreteValues", [1, "x"], f"{HP}.params[3].discreteValues[1]", "number"),
    (f"{HP}.params[3].scaleType", "UNIT_LOG_SCALE", f"{HP}.params[3].scaleType", "rank"),
    (f"{HP}.params[1].parameterName", "x", f"{HP}.params[1].parameterName", "declared twice"),
    (f"{HP}.params[1].parameterName", "it's", f"{HP}.params[1].parameterName", "cannot carry"),
    (f"{HP}.params[1].parameterName", "10", f"{HP}.params[1].parameterName", "number"),
    (f"{HP}.algorithm", "GRID_SEARCH", f"{HP}.params[0].type", "GRID_SEARCH"),
    ("trainingInput.args", "--data d", "trainingInput.args", "list of arguments"),
    ("trainingInput.hyperparameters", DELETE, "trainingInput.hyperparameters", "nothing to tune"),
])
def test_each_older_field_archsearch_cannot_honour_is_refused(path, value, field, words):
    with pytest.raises(ConfigError) as error:
        read_spec(changed(LEGACY, path, value))
    assert error.value.field == field
    assert words in str(error.value)


@pytest.mark.parametrize("path, typo, known", [
    (HP, "maxTrial", "did you mean maxTrials?"),
    ("trainingInput", "masterTpye", "did you mean masterType?"),
    (f"{HP}.params[0]", "scale", "did you mean scaleType?"),
    ("", "trainingOutput", "known fields here:"),
])
def test_an_unknown_older_field_is_refused_with_the_known_ones(path, typo, known):
    spec = changed(LEGACY, f"{path}.{typo}" if path else typo, 1)
    with pytest.raises(ConfigError) as error:
        read_spec(spec)
    assert error.value.field == (f"{path}.{typo}" if path else typo) and known in str(error.value)
    assert "known fields here:" in str(error.value)


# ------------------------------------------------------------------ the newer format (Vertex AI)

def test_newer_format_end_to_end_from_yaml(tmp_path):
    import yaml

    body = changed(VERTEX, "trialJobSpec", {"workerPoolSpecs": [
        {"machineSpec": {"machineType": "n1-standard-4"}, "replicaCount": 1,
         "pythonPackageSpec": {"executorImageUri": "us-docker.pkg.dev/x", "packageUris": ["gs://b/t.tar.gz"],
                               "pythonModule": "trainer.task", "args": ["--data=gs://b/d"],
                               "env": [{"name": "MODE", "value": "fast: yes"}]}}]})
    body["studySpec"].update(measurementSelectionType="BEST_MEASUREMENT", medianAutomatedStoppingSpec={},
                             observationNoise="HIGH", maxFailedTrialCount=3)
    spec = read_spec(write(tmp_path, yaml.safe_dump(body)))
    assert spec.module == "trainer.task" and spec.program == ["--data=gs://b/d"]
    assert {n.split("=")[0] for n in spec.notes} == {
        "displayName", "studySpec.observationNoise", "trialJobSpec.workerPoolSpecs[0].machineSpec",
        "trialJobSpec.workerPoolSpecs[0].replicaCount",
        "trialJobSpec.workerPoolSpecs[0].pythonPackageSpec.executorImageUri",
        "trialJobSpec.workerPoolSpecs[0].pythonPackageSpec.packageUris"}
    cfg = compose(*spec.overrides)
    assert cfg.tuner.name == "bayesian" and cfg.tuner.max_trials == 8 and cfg.tuner.parallel_trials == 2
    assert cfg.tuner.pruner == "median" and cfg.trial.measurement == "best" and cfg.max_failed_trials == 3
    assert dict(cfg.objective) == {"name": "val_loss", "direction": "min"}
    assert dict(cfg.trial.env) == {"MODE": "fast: yes"}
    hp = space_of(spec)
    assert list(hp.space.keys()) == ["lr", "optimizer", "momentum", "nesterov", "layers", "units_2"]
    lr, momentum, units_2 = hp.space["lr"], hp.space["momentum"], hp.space["units_2"]
    assert isinstance(lr, Float) and lr.sampling == "log" and lr.default == 1e-3
    assert isinstance(momentum, Choice) and momentum.ordered and momentum.default == 0.9
    assert isinstance(units_2, Int) and units_2.sampling == "reverse_log"
    assert hp.space["nesterov"].values == ["yes", "no"]


def test_conditional_parameters_are_active_only_for_their_parents_values():
    hp = space_of(read_spec(VERTEX))
    active = {p.name for p in hp.space.values() if p.is_active({"optimizer": "adam", "layers": 1})}
    assert active == {"lr", "optimizer", "layers"}
    values = {"optimizer": "sgd", "momentum": 0.0, "layers": 2}
    active = {p.name for p in hp.space.values() if p.is_active(values)}
    assert active == {"lr", "optimizer", "momentum", "layers", "units_2"}  # nesterov only for momentum 0.5/0.9
    assert hp.space["nesterov"].is_active({"optimizer": "sgd", "momentum": 0.5})


def test_the_sdks_snake_case_spelling_reads_the_same():
    snake = {"max_trial_count": 8, "parallel_trial_count": 2, "display_name": "tune", "study_spec": {
        "metrics": [{"metric_id": "val_loss", "goal": "MINIMIZE"}],
        "parameters": [{"parameter_id": "lr", "double_value_spec": {"min_value": 1e-4, "max_value": 1e-1,
                                                                     "default_value": 1e-3},
                        "scale_type": "UNIT_LOG_SCALE"}]}}
    camel = {"maxTrialCount": 8, "parallelTrialCount": 2, "displayName": "tune",
             "studySpec": {"metrics": VERTEX["studySpec"]["metrics"],
                           "parameters": VERTEX["studySpec"]["parameters"][:1]}}
    assert read_spec(snake).overrides == read_spec(camel).overrides
    assert read_spec(snake).notes[0].startswith("display_name=")


def test_newer_defaults_and_counts_inside_the_study_spec():
    minimal = {"studySpec": {"metrics": [{"metricId": "acc", "goal": "MAXIMIZE"}],
                             "parameters": [{"parameterId": "n", "integerValueSpec": {"minValue": 1, "maxValue": 5}}]}}
    cfg = compose(*read_spec(minimal).overrides)
    assert cfg.tuner.name == "bayesian" and cfg.tuner.max_trials == 1 and cfg.tuner.parallel_trials == 1
    assert cfg.tuner.pruner == "none" and cfg.trial.measurement == "last"  # UNSPECIFIED is the last measurement
    inside = changed(minimal, "studySpec.maxTrialCount", 5)
    assert "tuner.max_trials=5" in read_spec(inside).overrides


SS = "studySpec"


@pytest.mark.parametrize("path, value, expected", [
    (f"{SS}.algorithm", "GRID_SEARCH", None),
    (f"{SS}.algorithm", "RANDOM_SEARCH", "tuner=random"),
    (f"{SS}.algorithm", "ALGORITHM_UNSPECIFIED", "tuner=bayesian"),
    (f"{SS}.measurementSelectionType", "LAST_MEASUREMENT", "trial.measurement=last"),
    (f"{SS}.measurementSelectionType", "BEST_MEASUREMENT", "trial.measurement=best"),
    (f"{SS}.medianAutomatedStoppingSpec", {"useElapsedDuration": False}, "tuner.pruner=median"),
    (f"{SS}.decayCurveStoppingSpec", {}, "tuner.pruner=decay_curve"),
    (f"{SS}.metrics[0].goal", "MAXIMIZE", "objective={name:'val_loss',direction:'max'}"),
    (f"{SS}.metrics[0].metricId", "eval/acc:top 1", r"objective={name:'eval/acc:top 1',direction:'min'}"),
    ("maxFailedTrialCount", 5, "max_failed_trials=5"),
    (f"{SS}.parameters[0].doubleValueSpec.defaultValue", DELETE, "lr:{type:'float',min:0.0001,max:0.1,sampling:'log'}"),
    (f"{SS}.parameters[2].integerValueSpec.defaultValue", 2,
     "layers:{type:'int',min:1,max:3,sampling:'linear',default:2}"),
    (f"{SS}.parameters[1].categoricalValueSpec.defaultValue", "sgd", "values:['adam','sgd'],default:'sgd'"),
])
def test_each_newer_field_maps_to_its_override(path, value, expected):
    body = changed(VERTEX, path, value)
    if value == "GRID_SEARCH":
        body = changed(body, f"{SS}.parameters", VERTEX[SS]["parameters"][1:])
        expected = "tuner=grid"
    spec = read_spec(body)
    assert expected in " ".join(spec.overrides)
    compose(*spec.overrides)


@pytest.mark.parametrize("path, value", [
    ("trialJobSpec", {"scheduling": {"timeout": "3600s"}, "serviceAccount": "a@b", "network": "n",
                      "baseOutputDirectory": {"outputUriPrefix": "gs://b/out"}, "enableWebAccess": True,
                      "tensorboard": "projects/p/tensorboards/1"}),
    ("trialJobSpec", {"workerPoolSpecs": [{"containerSpec": {"imageUri": "gcr.io/x", "command": ["python", "t.py"],
                                                             "args": ["--a=1"]}},
                                          {"replicaCount": 2, "machineSpec": {"machineType": "n1"}}]}),
    ("labels", {"team": "ml"}),
    ("encryptionSpec", {"kmsKeyName": "k"}),
    (f"{SS}.observationNoise", "LOW"),
])
def test_each_cloud_only_newer_field_is_a_note(path, value):
    spec = read_spec(changed(VERTEX, path, value))
    assert spec.overrides == read_spec(VERTEX).overrides
    notes = [n for n in spec.notes if not n.startswith("displayName=")]
    assert notes and all(n.startswith(path) and ": " in n for n in notes)
    if "containerSpec" in str(value):
        assert spec.program == ["--a=1"] and spec.module is None


P = f"{SS}.parameters"


@pytest.mark.parametrize("path, value, field, words", [
    (f"{SS}.metrics", [{"metricId": "a", "goal": "MAXIMIZE"}, {"metricId": "b", "goal": "MINIMIZE"}],
     f"{SS}.metrics", "Pareto"),
    (f"{SS}.metrics[0].goal", DELETE, f"{SS}.metrics[0].goal", "missing"),
    (f"{SS}.metrics[0].goal", "GOAL_TYPE_UNSPECIFIED", f"{SS}.metrics[0].goal", "MAXIMIZE"),
    (f"{SS}.metrics[0].safetyConfig", {"safetyThreshold": 0.1}, f"{SS}.metrics[0].safetyConfig", "safety"),
    (f"{SS}.decayCurveStoppingSpec", {"useElapsedDuration": True}, f"{SS}.decayCurveStoppingSpec.useElapsedDuration",
     "same step"),
    (f"{SS}.convexAutomatedStoppingSpec", {"maxStepCount": 10}, f"{SS}.convexAutomatedStoppingSpec", "median"),
    (f"{SS}.convexStopConfig", {"maxNumSteps": 10}, f"{SS}.convexStopConfig", "median"),
    (f"{SS}.studyStoppingConfig", {"maxNumTrials": 3}, f"{SS}.studyStoppingConfig", "maxTrialCount"),
    (f"{SS}.medianAutomatedStoppingSpec", {"useElapsedDuration": True},
     f"{SS}.medianAutomatedStoppingSpec.useElapsedDuration", "same step"),
    (f"{SS}.measurementSelectionType", "MEDIAN", f"{SS}.measurementSelectionType", "BEST_MEASUREMENT"),
    (f"{SS}.observationNoise", "LOUD", f"{SS}.observationNoise", "HIGH"),
    (f"{SS}.maxTrialCount", 3, f"{SS}.maxTrialCount", "given twice"),
    ("parallelTrialCount", 0, "parallelTrialCount", ">= 1"),
    (f"{SS}.algorithm", "GRID_SEARCH", f"{P}[0].doubleValueSpec", "GRID_SEARCH"),
    (f"{P}[0].integerValueSpec", {"minValue": 1, "maxValue": 2}, f"{P}[0]", "exactly one of"),
    (f"{P}[0].doubleValueSpec.defaultValue", 1.0, f"{P}[0].doubleValueSpec.defaultValue", "outside"),
    (f"{P}[0].doubleValueSpec.minValue", 0.0, f"{P}[0].scaleType", "minValue > 0"),
    (f"{P}[1].scaleType", "UNIT_LINEAR_SCALE", f"{P}[1].scaleType", "categorical"),
    (f"{P}[1].categoricalValueSpec.defaultValue", "rmsprop", f"{P}[1].categoricalValueSpec.defaultValue", "one of"),
    (f"{P}[1].conditionalParameterSpecs[0].parentCategoricalValues.values", ["sgdd"],
     f"{P}[1].conditionalParameterSpecs[0].parentCategoricalValues.values[0]", "parent's values"),
    (f"{P}[1].conditionalParameterSpecs[0].parentIntValues", {"values": [1]},
     f"{P}[1].conditionalParameterSpecs[0]", "parentCategoricalValues"),
    (f"{P}[1].conditionalParameterSpecs[0].parameterSpec", DELETE,
     f"{P}[1].conditionalParameterSpecs[0].parameterSpec", "missing"),
    (f"{P}[2].conditionalParameterSpecs[0].parentIntValues.values", [4],
     f"{P}[2].conditionalParameterSpecs[0].parentIntValues.values[0]", "outside the parent's range"),
    (f"{P}[2].conditionalParameterSpecs[0].parameterSpec.parameterId", "lr",
     f"{P}[2].conditionalParameterSpecs[0].parameterSpec.parameterId", "declared twice"),
    (f"{P}[2].integerValueSpec.minValue", 1.5, f"{P}[2].integerValueSpec.minValue", "integer"),
    (f"{P}[0].conditionalParameterSpecs", [{"parentDiscreteValues": {"values": [1]}, "parameterSpec": {}}],
     f"{P}[0].conditionalParameterSpecs[0]", "DOUBLE parameter cannot"),
    (f"{P}[1].conditionalParameterSpecs[0].parameterSpec.discreteValueSpec.values", [0.5, 0.0],
     f"{P}[1].conditionalParameterSpecs[0].parameterSpec.discreteValueSpec.values[1]", "increasing"),
    ("trialJobSpec", {"workerPoolSpecs": [{"pythonPackageSpec": {"pythonModule": "t", "env": [{"name": "A"}]}}]},
     "trialJobSpec.workerPoolSpecs[0].pythonPackageSpec.env[0].value", "missing"),
    (SS, DELETE, SS, "nothing to tune"),
])
def test_each_newer_field_archsearch_cannot_honour_is_refused(path, value, field, words):
    with pytest.raises(ConfigError) as error:
        read_spec(changed(VERTEX, path, value))
    assert error.value.field == field
    assert words in str(error.value)


@pytest.mark.parametrize("path, typo", [
    ("", "studySpecs"), (SS, "maxTrials"), (f"{P}[0]", "doubleValue"), (f"{P}[0].doubleValueSpec", "min"),
    (f"{SS}.metrics[0]", "metric"), ("trialJobSpec", "workerPools"),
])
def test_an_unknown_newer_field_is_refused_with_the_known_ones(path, typo):
    body = changed(VERTEX, "trialJobSpec", {}) if path.startswith("trialJobSpec") else VERTEX
    with pytest.raises(ConfigError) as error:
        read_spec(changed(body, f"{path}.{typo}" if path else typo, 1))
    assert error.value.field == (f"{path}.{typo}" if path else typo)
    assert "unknown field" in str(error.value) and "known fields here:" in str(error.value)


# ------------------------------------------------------------------ reading the file, writing the overrides

def test_names_and_values_survive_the_override_grammar():
    odd = ["it's", "a, b: c", "x=y [z] {w}", "${oc.env:HOME}", "back\\slash\\", "tab\tand (parens)", "a\\'b\\${x}"]
    spec = read_spec({"hyperparameters": {"hyperparameterMetricTag": "val: loss, 'top'", "params": [
        {"parameterName": "odd name: a,b (c)=d", "type": "CATEGORICAL", "categoricalValues": odd},
        {"parameterName": "num-steps/x.y", "type": "DISCRETE", "discreteValues": [1e-05, 0.5, 1e16]}]}})
    cfg = compose(*spec.overrides)
    assert cfg.objective.name == "val: loss, 'top'"
    assert list(cfg.space["odd name: a,b (c)=d"]["values"]) == odd
    assert list(cfg.space["num-steps/x.y"]["values"]) == [1e-05, 0.5, 1e16]


def test_the_users_overrides_still_win():
    spec = read_spec(LEGACY)
    cfg = compose(*spec.overrides, "tuner.max_trials=3", "objective=val_acc", "space.x.max=0.5", "tuner=grid")
    assert cfg.tuner.max_trials == 3 and cfg.objective == "val_acc" and cfg.space.x.max == 0.5
    assert cfg.tuner.name == "grid"
    for tuner in ("asha", "hyperband", "bohb"):  # the spec's tuner.* values exist in every tuner
        assert compose(*spec.overrides, f"tuner={tuner}").tuner.name == tuner


def test_yaml_is_read_as_the_service_reads_it(tmp_path):
    spec = read_spec(write(tmp_path, """\
hyperparameters:
  params:
    - {parameterName: flag, type: CATEGORICAL, categoricalValues: [yes, no, on, 'off', true]}
    - {parameterName: lr, type: DOUBLE, minValue: 1e-4, maxValue: 1e-1}
"""))
    hp = space_of(spec)
    assert hp.space["flag"].values == ["yes", "no", "on", "off", "true"]
    assert (hp.space["lr"].min_value, hp.space["lr"].max_value) == (1e-4, 1e-1)


@pytest.mark.parametrize("text, field, words", [
    ("hyperparameters:\n  maxTrials: 2\n  maxTrials: 3\n", "spec=", "written twice"),
    ("hyperparameters: [\n", "spec=", "not valid YAML"),
    ("- a\n- b\n", "spec=", "mapping"),
    ("jobName: x\n", "spec=", "not a tuning spec"),
    ("trainingInput: {hyperparameters: {params: [{parameterName: a, type: INTEGER, minValue: 1, maxValue: 2}]}}\n"
     "studySpec: {}\n", "spec=", "keep one of them"),
    ("hyperparameters: {}\ntrainingInput: {}\n", "hyperparameters", "trainingInput.hyperparameters"),
])
def test_a_file_that_is_not_a_spec_is_refused(tmp_path, text, field, words):
    with pytest.raises(ConfigError) as error:
        read_spec(write(tmp_path, text))
    assert error.value.field.startswith(field) and words in str(error.value)


def test_a_missing_file_is_refused(tmp_path):
    with pytest.raises(ConfigError, match="no such file"):
        read_spec(tmp_path / "nope.yaml")


def test_the_spec_package_stays_light():
    """Layer 2: reading a spec imports neither Hydra nor the engine, the CLI or TensorFlow (beyond what
    ``import archsearch`` itself loads)."""
    import subprocess
    import sys

    code = ("import sys, archsearch; before = set(sys.modules); import archsearch.spec; "
            "archsearch.spec.read_spec({'hyperparameters': {'params': ["
            "{'parameterName': 'a', 'type': 'INTEGER', 'minValue': 1, 'maxValue': 2}]}}); "
            "print(sorted(m for m in set(sys.modules) - before if m.split('.')[0] in ('hydra', 'tensorflow', 'keras') "
            "or m.startswith(('archsearch.engine', 'archsearch.cli', 'archsearch.training'))))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, check=True)
    assert out.stdout.strip() == "[]"
