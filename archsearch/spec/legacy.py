"""The older spec (AI Platform Training): ``trainingInput.hyperparameters``.

A file whose top is ``hyperparameters:`` (the block without its ``trainingInput`` wrapper) is read the
same way; the job's other fields (machines, region, runtime) only mean something on the cloud and
become notes.
"""

from __future__ import annotations

from typing import Any

from archsearch.errors import ConfigError
from archsearch.spec import params
from archsearch.spec.fields import Section, boolean, enum, integer, show, string
from archsearch.spec.reader import Search

TOP_FIELDS = {"trainingInput", "hyperparameters", "jobId", "labels"}

_ON_THIS_MACHINE = "trials run on this machine (executor, tuner.parallel_trials)"
_ONE_PROCESS = "no cluster is set up: each trial is one process on this machine (no TF_CONFIG)"
_CLOUD_ONLY = "a cloud setting; nothing to do on this machine"
# trainingInput's fields that only mean something on the cloud, and what happens here instead.
INPUT_NOTES = {
    "scaleTier": _ON_THIS_MACHINE,
    "masterType": _ON_THIS_MACHINE,
    "masterConfig": _ON_THIS_MACHINE,
    "workerType": _ONE_PROCESS,
    "workerConfig": _ONE_PROCESS,
    "workerCount": _ONE_PROCESS,
    "parameterServerType": _ONE_PROCESS,
    "parameterServerConfig": _ONE_PROCESS,
    "parameterServerCount": _ONE_PROCESS,
    "evaluatorType": _ONE_PROCESS,
    "evaluatorConfig": _ONE_PROCESS,
    "evaluatorCount": _ONE_PROCESS,
    "useChiefInTfConfig": _ONE_PROCESS,
    "region": _ON_THIS_MACHINE,
    "runtimeVersion": "the program runs with the packages installed here (the environment of trial.command)",
    "pythonVersion": "the program runs with the interpreter trial.command names",
    "packageUris": "nothing is installed: install the package where trial.command runs (pip install -e .)",
    "scheduling": "no job-level time limit here; limit each trial with trial.timeout",
    "network": _CLOUD_ONLY,
    "serviceAccount": _CLOUD_ONLY,
    "encryptionConfig": _CLOUD_ONLY,
    "enableWebAccess": _CLOUD_ONLY,
}
INPUT_FIELDS = ("hyperparameters", "args", "jobDir", "pythonModule", *INPUT_NOTES)
TOP_NOTES = {"jobId": "the run folder names the search (hydra.run.dir)", "labels": _CLOUD_ONLY}
HYPERPARAMETER_FIELDS = ("goal", "hyperparameterMetricTag", "maxTrials", "maxParallelTrials", "maxFailedTrials",
                         "enableTrialEarlyStopping", "algorithm", "resumePreviousJobId", "params")
PARAM_FIELDS = ("parameterName", "type", "minValue", "maxValue", "categoricalValues", "discreteValues", "scaleType")
GOALS = {"MAXIMIZE": "max", "MINIMIZE": "min"}
ALGORITHMS = {"ALGORITHM_UNSPECIFIED": "bayesian", "GRID_SEARCH": "grid", "RANDOM_SEARCH": "random"}
TYPES = ("INTEGER", "DOUBLE", "CATEGORICAL", "DISCRETE")
# Which of a parameter's value fields each type takes (the others must be left out, as the service says).
_TYPE_FIELDS = {"INTEGER": {"minValue", "maxValue", "scaleType"}, "DOUBLE": {"minValue", "maxValue", "scaleType"},
                "CATEGORICAL": {"categoricalValues"}, "DISCRETE": {"discreteValues", "scaleType"}}


def read(body: Any, search: Search) -> None:
    top = Section(body, "", TOP_FIELDS)
    if top.has("trainingInput") and top.has("hyperparameters"):
        raise top.error("hyperparameters", "given both inside trainingInput and at the top",
                        "keep trainingInput.hyperparameters")
    for name in top.present():
        if name in TOP_NOTES:
            search.note(top.at(name), top.get(name), TOP_NOTES[name])
    if top.has("trainingInput"):
        training = top.section("trainingInput", INPUT_FIELDS)
        _training_input(training, search)
        if not training.has("hyperparameters"):
            raise ConfigError(training.at("hyperparameters"), "missing: the spec has nothing to tune",
                              "add hyperparameters: {goal, hyperparameterMetricTag, maxTrials, params}")
        _hyperparameters(training.section("hyperparameters", HYPERPARAMETER_FIELDS), search)
    else:
        _hyperparameters(top.section("hyperparameters", HYPERPARAMETER_FIELDS), search)


def _training_input(training: Section, search: Search) -> None:
    for name in training.present():
        if name in INPUT_NOTES:
            search.note(training.at(name), training.get(name), INPUT_NOTES[name])
    if training.has("args"):
        args = training.get("args")
        if not isinstance(args, list) or any(isinstance(a, (dict, list)) or a is None for a in args):
            raise training.error("args", "expected a list of arguments", "e.g. args: [--data, gs://bucket/data]")
        search.program.extend(show(a) if isinstance(a, bool) else str(a) for a in args)
    if training.has("jobDir"):
        search.program.append(f"--job-dir={string(training.get('jobDir'), training.at('jobDir'))}")
    if training.has("pythonModule"):
        search.module = string(training.get("pythonModule"), training.at("pythonModule"))


def _hyperparameters(spec: Section, search: Search) -> None:
    if spec.has("resumePreviousJobId"):
        raise spec.error("resumePreviousJobId", "archsearch continues a search from its run folder, not a job id",
                         "remove it and run with resume=<run folder>")
    if spec.has("goal"):
        search.direction = enum(spec.get("goal"), spec.at("goal"), GOALS)
    if spec.has("hyperparameterMetricTag"):
        search.metric = string(spec.get("hyperparameterMetricTag"), spec.at("hyperparameterMetricTag"))
    if spec.has("maxTrials"):
        search.max_trials = integer(spec.get("maxTrials"), spec.at("maxTrials"), minimum=1)
    if spec.has("maxParallelTrials"):
        search.parallel_trials = integer(spec.get("maxParallelTrials"), spec.at("maxParallelTrials"), minimum=1)
    if spec.has("maxFailedTrials"):
        read_max_failed(spec, "maxFailedTrials", search)
    if spec.has("enableTrialEarlyStopping"):
        early = boolean(spec.get("enableTrialEarlyStopping"), spec.at("enableTrialEarlyStopping"))
        search.pruner = "median" if early else "none"
    if spec.has("algorithm"):
        search.tuner = enum(spec.get("algorithm"), spec.at("algorithm"), ALGORITHMS)
    for where, item in spec.items("params"):
        _parameter(Section(item, where, PARAM_FIELDS), search)


def read_max_failed(spec: Section, name: str, search: Search) -> None:
    """A positive count stops the search after that many failures; 0 is the service's "let it decide"."""
    count = integer(spec.get(name), spec.at(name), minimum=0)
    if count:
        search.max_failed_trials = count
    else:
        search.note(spec.at(name), 0, "the service would decide; here the search stops after "
                    "max_consecutive_failed_trials failures in a row (set max_failed_trials=N for a total)")


def _parameter(param: Section, search: Search) -> None:
    name = params.parameter_name(param.get("parameterName"), param.at("parameterName"), search.space)
    kind = enum(param.get("type"), param.at("type"), {t: t for t in TYPES})
    sampling = params.scale(param.get("scaleType"), param.at("scaleType"))
    for field in ("minValue", "maxValue", "categoricalValues", "discreteValues", "scaleType"):
        if param.has(field) and field not in _TYPE_FIELDS[kind] and not (field == "scaleType" and sampling is None):
            raise param.error(field, f"does not apply to type {kind}",
                              f"remove it (a {kind} parameter takes {', '.join(sorted(_TYPE_FIELDS[kind]))})")
    if kind in ("INTEGER", "DOUBLE"):
        if kind == "DOUBLE" and search.tuner == "grid":
            raise grid_refusal(param.at("type"), kind)
        where = {"min": param.at("minValue"), "max": param.at("maxValue"), "scale": param.at("scaleType"),
                 "default": ""}
        search.space[name] = params.numeric("int" if kind == "INTEGER" else "float", param.get("minValue"),
                                            param.get("maxValue"), sampling, None, where)
    elif kind == "CATEGORICAL":
        search.space[name] = params.categorical(param.get("categoricalValues"), param.at("categoricalValues"))
    else:
        params.check_discrete_scale(sampling, param.at("scaleType"))
        search.space[name] = params.discrete(param.get("discreteValues"), param.at("discreteValues"))


def grid_refusal(where: str, kind: str) -> ConfigError:
    return ConfigError(where, f"{kind}: the service's GRID_SEARCH takes only integer, categorical and discrete "
                       "parameters", "list the values to try as DISCRETE, or use another algorithm")
