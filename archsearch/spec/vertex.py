"""The newer spec (Vertex AI): a hyperparameter tuning job's body, ``studySpec`` and its neighbours.

``maxTrialCount``, ``parallelTrialCount`` and ``maxFailedTrialCount`` sit beside ``studySpec`` in the
job (they are read inside it too); snake_case spellings, as the Python SDK writes them, are the same
fields.  ``trialJobSpec`` describes the cloud's machines: its Python module, arguments and environment
are used, the rest become notes.
"""

from __future__ import annotations

import re
from typing import Any

from archsearch.errors import ConfigError
from archsearch.spec import params
from archsearch.spec.fields import Section, boolean, enum, integer, number, show, string
from archsearch.spec.legacy import ALGORITHMS, GOALS, grid_refusal, read_max_failed
from archsearch.spec.reader import Search

_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_COUNTS = ("maxTrialCount", "parallelTrialCount", "maxFailedTrialCount")
TOP_FIELDS = {"studySpec", "trialJobSpec", "displayName", "labels", "encryptionSpec", *_COUNTS}
STUDY_FIELDS = ("metrics", "parameters", "algorithm", "observationNoise", "measurementSelectionType",
                "medianAutomatedStoppingSpec", "decayCurveStoppingSpec", "convexAutomatedStoppingSpec",
                "convexStopConfig", "studyStoppingConfig", *_COUNTS)
METRIC_FIELDS = ("metricId", "goal", "safetyConfig")
PARAMETER_FIELDS = ("parameterId", "doubleValueSpec", "integerValueSpec", "categoricalValueSpec",
                    "discreteValueSpec", "scaleType", "conditionalParameterSpecs")
VALUE_FIELDS = {"doubleValueSpec": ("minValue", "maxValue", "defaultValue"),
                "integerValueSpec": ("minValue", "maxValue", "defaultValue"),
                "categoricalValueSpec": ("values", "defaultValue"),
                "discreteValueSpec": ("values", "defaultValue")}
# The parent condition a conditional parameter needs, by its parent's value spec.
PARENT_CONDITIONS = {"discreteValueSpec": "parentDiscreteValues", "integerValueSpec": "parentIntValues",
                     "categoricalValueSpec": "parentCategoricalValues"}
CONDITIONAL_FIELDS = ("parameterSpec", *PARENT_CONDITIONS.values())
MEASUREMENTS = {"MEASUREMENT_SELECTION_TYPE_UNSPECIFIED": "last", "LAST_MEASUREMENT": "last",
                "BEST_MEASUREMENT": "best"}
NOISE = {"OBSERVATION_NOISE_UNSPECIFIED": None, "LOW": "low", "HIGH": "high"}
# The service's automated stopping rules and archsearch's pruners (archsearch/oracles/pruners.py).
STOPPING_RULES = {"medianAutomatedStoppingSpec": "median", "decayCurveStoppingSpec": "decay_curve"}
# Stopping rules archsearch has no counterpart for, and what to write instead.
REFUSED_STUDY_FIELDS = {
    "convexAutomatedStoppingSpec": ("archsearch has no convex-fit stopping rule",
                                    "use medianAutomatedStoppingSpec: {} (archsearch's median pruner)"),
    "convexStopConfig": ("archsearch has no convex-fit stopping rule (and the service deprecated it)",
                         "use medianAutomatedStoppingSpec: {} (archsearch's median pruner)"),
    "studyStoppingConfig": ("archsearch does not stop a study on these conditions",
                            "remove it; the search stops after maxTrialCount trials (tuner.max_trials)"),
}
_CLOUD_ONLY = "a cloud setting; nothing to do on this machine"
TOP_NOTES = {"displayName": "the run folder names the search (hydra.run.dir)", "labels": _CLOUD_ONLY,
             "encryptionSpec": _CLOUD_ONLY}
TRIAL_JOB_NOTES = {
    "scheduling": "no job-level limits here; limit each trial with trial.timeout",
    "baseOutputDirectory": "each trial writes in its own folder trials/trial_NNNN (ARCHSEARCH_TRIAL_DIR)",
    "tensorboard": "TensorBoard event files a trial writes are read for metrics (trial.metrics.tensorboard)",
    **{name: _CLOUD_ONLY for name in ("serviceAccount", "network", "reservedIpRanges", "protectedArtifactLocationId",
                                      "enableWebAccess", "enableDashboardAccess", "experiment", "experimentRun",
                                      "models", "persistentResourceId", "pscInterfaceConfig")},
}
TRIAL_JOB_FIELDS = ("workerPoolSpecs", *TRIAL_JOB_NOTES)
_ON_THIS_MACHINE = "trials run on this machine (executor, tuner.parallel_trials)"
POOL_NOTES = {"machineSpec": _ON_THIS_MACHINE, "replicaCount": _ON_THIS_MACHINE, "diskSpec": _ON_THIS_MACHINE,
              "nfsMounts": "nothing is mounted: the program sees this machine's files"}
POOL_FIELDS = ("pythonPackageSpec", "containerSpec", *POOL_NOTES)
PACKAGE_FIELDS = ("pythonModule", "args", "env", "executorImageUri", "packageUris")
CONTAINER_FIELDS = ("imageUri", "command", "args", "env")
PROGRAM_NOTES = {
    "executorImageUri": "the program runs with the packages installed here (the environment of trial.command)",
    "packageUris": "nothing is installed: install the package where trial.command runs (pip install -e .)",
    "imageUri": "no container is started: the program runs here (give it as trial.command)",
    "command": "the container's command is not run: give the program as trial.command",
}


def read(body: Any, search: Search) -> None:
    top = Section(body, "", TOP_FIELDS)
    for name in top.present():
        if name in TOP_NOTES:
            search.note(top.at(name), top.get(name), TOP_NOTES[name])
    if not top.has("studySpec"):
        raise ConfigError("studySpec", "missing: the spec has nothing to tune",
                          "add studySpec: {metrics, parameters}")
    study = top.section("studySpec", STUDY_FIELDS)
    _counts(top, study, search)
    _study(study, search)
    if top.has("trialJobSpec"):
        _trial_job(top.section("trialJobSpec", TRIAL_JOB_FIELDS), search)


def _counts(top: Section, study: Section, search: Search) -> None:
    """The job's trial counts, beside studySpec (the API's place) or inside it."""
    for name in _COUNTS:
        if top.has(name) and study.has(name):
            raise study.error(name, f"given twice: also as {top.at(name)}", "keep the one beside studySpec")
    for name in _COUNTS:
        spec = top if top.has(name) else study
        if not spec.has(name):
            continue
        if name == "maxTrialCount":
            search.max_trials = integer(spec.get(name), spec.at(name), minimum=1)
        elif name == "parallelTrialCount":
            search.parallel_trials = integer(spec.get(name), spec.at(name), minimum=1)
        else:
            read_max_failed(spec, name, search)


def _study(study: Section, search: Search) -> None:
    for name, (problem, fix) in REFUSED_STUDY_FIELDS.items():
        if study.has(name):
            raise study.error(name, problem, fix)
    metrics = study.items("metrics")
    if len(metrics) > 1:
        raise ConfigError(study.at("metrics"), f"{len(metrics)} metrics: archsearch optimises one metric here "
                          "(a Pareto search of several is not supported yet)", "keep the one metric to optimise")
    _metric(Section(metrics[0][1], metrics[0][0], METRIC_FIELDS), search)
    if study.has("algorithm"):
        search.tuner = enum(study.get("algorithm"), study.at("algorithm"), ALGORITHMS)
    if study.has("measurementSelectionType"):
        search.measurement = enum(study.get("measurementSelectionType"), study.at("measurementSelectionType"),
                                  MEASUREMENTS)
    if study.has("observationNoise"):
        noise = enum(study.get("observationNoise"), study.at("observationNoise"), NOISE)
        if noise:
            search.note(study.at("observationNoise"), study.get("observationNoise"),
                        "tuner=bayesian fits the scores' noise itself (tuner.alpha sets its least value)")
    stopping = [(field, pruner) for field, pruner in STOPPING_RULES.items() if study.has(field)]
    if len(stopping) > 1:
        raise study.error(stopping[1][0], f"cannot be combined with {stopping[0][0]}", "give one stopping rule")
    for field, pruner in stopping:
        rule = study.section(field, ("useElapsedDuration",))
        if rule.has("useElapsedDuration") and boolean(rule.get("useElapsedDuration"), rule.at("useElapsedDuration")):
            raise rule.error("useElapsedDuration", f"archsearch's {pruner} pruner compares trials at the same step, "
                             "not after the same time", "set useElapsedDuration: false or leave it out")
        search.pruner = pruner
    for where, item in study.items("parameters"):
        _parameter(item, where, search)


def _metric(metric: Section, search: Search) -> None:
    if metric.has("safetyConfig"):
        raise metric.error("safetyConfig", "archsearch has no safety metrics", "remove it")
    search.metric = string(metric.get("metricId"), metric.at("metricId"))
    if not metric.has("goal"):
        raise ConfigError(metric.at("goal"), "missing", "goal: MAXIMIZE or goal: MINIMIZE")
    search.direction = enum(metric.get("goal"), metric.at("goal"), GOALS)


def _parameter(value: Any, where: str, search: Search, when: dict | None = None) -> None:
    """One parameter and, after it, its conditional parameters (active only for some of its values)."""
    p = Section(value, where, PARAMETER_FIELDS)
    name = params.parameter_name(p.get("parameterId"), p.at("parameterId"), search.space)
    kinds = [k for k in VALUE_FIELDS if p.has(k)]
    if len(kinds) != 1:
        raise ConfigError(where, f"has {', '.join(kinds) or 'no value spec'}",
                          f"give exactly one of {', '.join(VALUE_FIELDS)}")
    kind = kinds[0]
    values = p.section(kind, VALUE_FIELDS[kind])
    sampling = params.scale(p.get("scaleType"), p.at("scaleType"))
    default, default_at = values.get("defaultValue"), values.at("defaultValue")
    if kind in ("doubleValueSpec", "integerValueSpec"):
        if kind == "doubleValueSpec" and search.tuner == "grid":
            raise grid_refusal(p.at(kind), "DOUBLE")
        at = {"min": values.at("minValue"), "max": values.at("maxValue"), "scale": p.at("scaleType"),
              "default": default_at}
        entry = params.numeric("int" if kind == "integerValueSpec" else "float", values.get("minValue"),
                               values.get("maxValue"), sampling, default, at)
    elif kind == "categoricalValueSpec":
        if sampling:
            raise p.error("scaleType", "does not apply to a categorical parameter", "remove it")
        entry = params.categorical(values.get("values"), values.at("values"), default, default_at)
    else:
        params.check_discrete_scale(sampling, p.at("scaleType"))
        entry = params.discrete(values.get("values"), values.at("values"), default, default_at)
    if when:
        entry["when"] = when
    search.space[name] = entry
    if p.has("conditionalParameterSpecs"):
        for child_at, child in p.items("conditionalParameterSpecs"):
            _conditional(Section(child, child_at, CONDITIONAL_FIELDS), name, kind, entry, search)


def _conditional(child: Section, parent: str, kind: str, entry: dict, search: Search) -> None:
    if kind not in PARENT_CONDITIONS:
        raise ConfigError(child.path, "a DOUBLE parameter cannot have conditional parameters",
                          "make the parent INTEGER, DISCRETE or CATEGORICAL")
    expected = PARENT_CONDITIONS[kind]
    given = [c for c in PARENT_CONDITIONS.values() if child.has(c)]
    if given != [expected]:
        raise ConfigError(child.path, f"has {', '.join(given) or 'no parent values'}",
                          f"its parent '{parent}' has a {kind}: give exactly {expected}: {{values: [...]}}")
    condition = child.section(expected, ("values",))
    values = [_parent_value(v, f"{condition.at('values')}[{i}]", kind, entry)
              for i, v in enumerate(_list(condition, "values"))]
    if not child.has("parameterSpec"):
        raise ConfigError(child.at("parameterSpec"), "missing", "give the conditional parameter's spec")
    _parameter(child.get("parameterSpec"), child.at("parameterSpec"), search, {parent: values})


def _parent_value(value: Any, where: str, kind: str, entry: dict) -> Any:
    """One of the parent's values, as the parent's entry holds it (so the condition matches it)."""
    if kind == "integerValueSpec":
        value = integer(value, where)
        if not entry["min"] <= value <= entry["max"]:
            raise ConfigError(where, f"{value} is outside the parent's range [{entry['min']}, {entry['max']}]",
                              "give values the parent can take")
        return value
    value = number(value, where) if kind == "discreteValueSpec" else string(value, where)
    match = [v for v in entry["values"] if v == value]
    if not match:
        raise ConfigError(where, f"{show(value)} is not one of the parent's values {show(entry['values'])}",
                          "give values the parent can take")
    return match[0]


def _list(section: Section, name: str) -> list:
    value = section.get(name)
    if not isinstance(value, list) or not value:
        raise ConfigError(section.at(name), f"expected a non-empty list, got {show(value)}", "list the values")
    return value


def _trial_job(job: Section, search: Search) -> None:
    """The chief pool's Python module (or container), arguments and environment; the rest are notes."""
    for name in job.present():
        if name in TRIAL_JOB_NOTES:
            search.note(job.at(name), job.get(name), TRIAL_JOB_NOTES[name])
    if not job.has("workerPoolSpecs"):
        return
    pools = job.items("workerPoolSpecs")
    for where, pool in pools[1:]:
        search.note(where, pool, "no cluster is set up: each trial is one process on this machine")
    pool = Section(pools[0][1], pools[0][0], POOL_FIELDS)
    for name in pool.present():
        if name in POOL_NOTES:
            search.note(pool.at(name), pool.get(name), POOL_NOTES[name])
    if pool.has("pythonPackageSpec") and pool.has("containerSpec"):
        raise pool.error("containerSpec", "given with pythonPackageSpec", "keep one of them")
    if pool.has("pythonPackageSpec"):
        program = pool.section("pythonPackageSpec", PACKAGE_FIELDS)
        if program.has("pythonModule"):
            search.module = string(program.get("pythonModule"), program.at("pythonModule"))
    elif pool.has("containerSpec"):
        program = pool.section("containerSpec", CONTAINER_FIELDS)
    else:
        return
    for name in program.present():
        if name in PROGRAM_NOTES:
            search.note(program.at(name), program.get(name), PROGRAM_NOTES[name])
    if program.has("args"):
        args = program.get("args")
        if not isinstance(args, list) or any(isinstance(a, (dict, list)) or a is None for a in args):
            raise program.error("args", "expected a list of arguments", "e.g. args: [--data, /data]")
        search.program.extend(show(a) if isinstance(a, bool) else str(a) for a in args)
    if program.has("env"):
        _env(program, search)


def _env(program: Section, search: Search) -> None:
    """``env: [{name, value}]`` -> ``trial.env``: the program sees the same variables here."""
    for where, item in program.items("env"):
        variable = Section(item, where, ("name", "value"))
        name = string(variable.get("name"), variable.at("name"))
        if not _ENV_NAME.fullmatch(name):
            raise ConfigError(variable.at("name"), f"{name!r} is not an environment variable's name",
                              "use letters, digits and underscores, not starting with a digit")
        if not variable.has("value"):
            raise ConfigError(variable.at("value"), "missing", "give the variable's value")
        search.env[name] = show(variable.get("value")) if isinstance(variable.get("value"), bool) \
            else str(variable.get("value"))
