"""Typed settings of the sections the engine reads, each validated and built in one step.

Every section of the composed config that the engine reads (``tuner``, ``executor``, ``data``,
``export``, ``report``, ``logger``, ``retrain`` and the top-level search keys) has one dataclass
here.  Its ``from_config`` reads the section's plain data (the CLI turns OmegaConf into dicts; the
engine never sees it), checks each field and raises, on the first mistake, a ConfigError naming the
field, the value and the fix; then builds the instance.  Every Python default is stated in its class
and nowhere else: conf/*.yaml states the same value or leaves the key out (tests/test_defaults.py).
The trainer's section is the trial runner's (``TrainerSettings`` in archsearch/training); the CLI's
one pass (archsearch/cli/config.py ``read_settings``) reads it alongside these.
"""

from __future__ import annotations

import inspect
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from archsearch.core.checks import boolean, real_number, whole_number
from archsearch.core.constraints import Constraints
from archsearch.core.measures import MEASURES
from archsearch.core.objective import Objective, ParetoObjective
from archsearch.errors import ConfigError

# Tuners whose oracle sets each trial's epochs (trainer.epochs is then not used).
BUDGETED_TUNERS = ("hyperband", "bohb", "asha")
# Where trials run, not how the tuner chooses: read into TunerSettings.parallel_trials, not passed to the oracle.
PARALLEL_KEYS = ("parallel_trials", "max_parallel_trials")


def _section(value: Any, name: str) -> dict[str, Any]:
    """A section as a dict; ``None`` is empty, anything else that is not a mapping is refused by name."""
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise ConfigError(name, f"{value!r} is not a mapping of settings", f"e.g. {name}.<key>=<value>")
    return dict(value)


@dataclass
class SearchSettings:
    """The driver's own settings (top-level keys, and ``trainer.keep_top_models``)."""

    max_consecutive_failed_trials: int = 3  # stop when this many trials fail in a row
    max_failed_trials: int | None = None  # stop when this many have failed in all (the cloud's maxFailedTrials)
    keep_top_models: int | None = 5  # best-epoch weights kept for this many best trials (None: all)
    summary_trials: int = 10  # rows of the final results table
    overwrite: bool = False
    progress: bool = True  # the live display on a terminal
    verbose_backend: bool = False

    @classmethod
    def from_config(cls, cfg: Mapping[str, Any]) -> SearchSettings:
        trainer = _section(cfg.get("trainer"), "trainer")
        default = cls()
        return cls(
            max_consecutive_failed_trials=int(whole_number(
                cfg.get("max_consecutive_failed_trials", default.max_consecutive_failed_trials),
                "max_consecutive_failed_trials", 1)),
            max_failed_trials=whole_number(cfg.get("max_failed_trials", default.max_failed_trials),
                                           "max_failed_trials", 1, allow_none=True),
            keep_top_models=whole_number(trainer.get("keep_top_models", default.keep_top_models),
                                         "trainer.keep_top_models", 1, allow_none=True),
            summary_trials=int(whole_number(cfg.get("summary_trials", default.summary_trials), "summary_trials", 0)),
            overwrite=boolean(cfg.get("overwrite", default.overwrite), "overwrite"),
            progress=boolean(cfg.get("progress", default.progress), "progress"),
            verbose_backend=boolean(cfg.get("verbose_backend", default.verbose_backend), "verbose_backend"),
        )


SEARCH_MODES = ("single", "pareto")


@dataclass
class ObjectiveSettings:
    """``objective``, ``search.*`` and ``constraints``: what a search optimises and within which limits.

    ``mode=single`` optimises one number (a list objective is KerasTuner's sum); ``mode=pareto``
    searches the front of the listed objectives.  ``measures`` are model measures to record besides
    those the objectives and constraints name; ``reference_point`` (Pareto mode) is the hypervolume's
    reference, one value per objective in its own units (None: derived from the trials and printed).
    """

    objective: Objective
    mode: str = "single"
    constraints: Constraints = field(default_factory=Constraints)
    measures: tuple[str, ...] = ()
    reference_point: dict[str, float] | None = None

    @property
    def recorded_measures(self) -> tuple[str, ...]:
        """Every model measure to compute per trial: named by an objective, a constraint or ``search.measures``."""
        named = [*self.objective.metric_names, *self.constraints.names, *self.measures]
        return tuple(dict.fromkeys(n for n in named if n in MEASURES))

    @classmethod
    def from_config(cls, cfg: Mapping[str, Any]) -> ObjectiveSettings:
        section = _section(cfg.get("search"), "search")
        unknown = sorted(set(section) - {"mode", "measures", "reference_point"})
        if unknown:
            raise ConfigError(f"search.{unknown[0]}", "is not a setting of search",
                              "use search.mode, search.measures or search.reference_point")
        default = cls(Objective("val_accuracy"))
        mode = str(section.get("mode", default.mode)).lower()
        if mode not in SEARCH_MODES:
            raise ConfigError("search.mode", f"{section.get('mode')!r} is not a search mode",
                              "use single (one objective) or pareto (the front of several)")
        spec = cfg.get("objective")
        if spec is None:  # the Python API's None is KerasTuner's default; a config names a metric
            raise ConfigError("objective", "is not set", "name the metric to optimise, e.g. objective=val_accuracy")
        objective = ParetoObjective.of(spec) if mode == "pareto" else Objective.create(spec).single()
        measures = section.get("measures", default.measures) or ()
        if isinstance(measures, str):
            measures = [measures]
        for name in measures:
            if name not in MEASURES:
                raise ConfigError("search.measures", f"{name!r} is not a measure archsearch computes",
                                  f"use any of {', '.join(MEASURES)}")
        return cls(objective=objective, mode=mode, constraints=Constraints.parse(cfg.get("constraints")),
                   measures=tuple(measures), reference_point=_reference_point(section.get("reference_point"), objective))


def _reference_point(value: Any, objective: Objective) -> dict[str, float] | None:
    """``search.reference_point``: a number for every objective of a Pareto search, by name."""
    from archsearch.core.pareto import as_values, reference_costs

    if value is None:
        return None
    if not objective.is_pareto:
        raise ConfigError("search.reference_point", f"{value!r} is set, but the search has one objective",
                          "set search.mode=pareto, or leave search.reference_point null")
    costs = reference_costs(objective, value, "search.reference_point")  # also refuses what a log scale cannot count
    return dict(zip([o.name for o in objective.components], as_values(objective, costs)))


@dataclass
class TunerSettings:
    """``tuner.*``: which oracle, its own options (typed by its constructor) and how many trials at a time."""

    name: str
    options: dict[str, Any] = field(default_factory=dict)
    # Trials at a time: auto is executor.trials_per_gpu per visible GPU (1 without one).  The Python API's
    # Tuner(parallel_trials=1) mirrors KerasTuner instead (one at a time).
    parallel_trials: int | str = "auto"

    @classmethod
    def from_config(cls, section: Any) -> TunerSettings:
        from archsearch.oracles import available_oracles

        tuner = _section(section, "tuner")
        options = {k: v for k, v in tuner.items() if k not in PARALLEL_KEYS}
        name = options.pop("name", None)
        if not name:
            raise ConfigError("tuner.name", "is missing", "choose a tuner, e.g. tuner=random")
        name = str(name)
        if name not in available_oracles():
            raise ConfigError("tuner.name", f"unknown tuner {name!r}", f"choose one of: {', '.join(available_oracles())}")
        options = {k: v for k, v in options.items() if v is not None or k in ("max_trials",)}
        return cls(name, oracle_option_types(name, options), _parallel_trials(tuner))

    @property
    def slots(self) -> int:
        """``parallel_trials`` as a number (auto: the visible GPUs)."""
        from archsearch.executors.process import parallel_trials

        return parallel_trials(self.parallel_trials, "tuner.parallel_trials")

    @property
    def sets_budgets(self) -> bool:
        """Whether the oracle chooses each trial's epochs (so ``trainer.epochs`` is not used)."""
        return self.name in BUDGETED_TUNERS and "max_epochs" in self.options


def _parallel_trials(tuner: Mapping[str, Any]) -> int | str:
    """``tuner.parallel_trials`` or its alias ``max_parallel_trials`` (one of them), checked now."""
    from archsearch.executors.process import parallel_trials

    given = {k: tuner[k] for k in PARALLEL_KEYS if tuner.get(k) not in (None, "auto")}
    if len(set(map(str, given.values()))) > 1:
        raise ConfigError("tuner.max_parallel_trials", f"{given['max_parallel_trials']!r} differs from "
                          f"tuner.parallel_trials={given['parallel_trials']!r}", "set only one of them")
    key = next(iter(given), "parallel_trials")
    value = given.get(key, TunerSettings.parallel_trials)
    parallel_trials(value, f"tuner.{key}")  # a typo is refused now; auto is counted when the executor starts
    return value


def oracle_option_types(tuner_name: str, options: Mapping[str, Any]) -> dict[str, Any]:
    """Options annotated ``int``/``float`` in the oracle's signature must be numbers (``max_trials=abc``),
    and those annotated ``bool`` strict booleans; returns the options with booleans read.

    Only the type is checked here; each oracle checks its own ranges (``factor >= 2``, ...).
    """
    from archsearch.oracles.base import oracle_class

    annotations: dict[str, str] = {}
    for klass in reversed(oracle_class(tuner_name).__mro__):
        init = vars(klass).get("__init__")
        if init is not None:
            for p in inspect.signature(init).parameters.values():
                annotations[p.name] = str(p.annotation)
    checked = dict(options)
    for name, value in options.items():
        kind = annotations.get(name, "")
        allow_none = "None" in kind
        if kind.startswith("bool"):
            if value is not None or not allow_none:
                checked[name] = boolean(value, f"tuner.{name}")
        elif kind.startswith("int"):
            whole_number(value, f"tuner.{name}", 0 if name == "seed" else None, allow_none=allow_none)
        elif kind.startswith("float"):
            real_number(value, f"tuner.{name}", allow_none=allow_none)
    if "schedule" in options and "schedule" in annotations:  # Hyperband's plan: checked before the data loads
        from archsearch.oracles.successive_halving import check_schedule

        check_schedule(options["schedule"])
    return checked


# The driver retries a trial whose worker died this many times (executor.max_retries).
DEFAULT_MAX_RETRIES = 2


@dataclass
class ExecutorSettings:
    """``executor.*``: where trials run; ``options`` are the executor's own (each executor checks its names)."""

    name: str = "inline"  # no executor section: trials train in the search's own process
    max_retries: int = DEFAULT_MAX_RETRIES
    options: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_config(cls, section: Any) -> ExecutorSettings:
        from archsearch.executors import EXECUTORS

        executor = _section(section, "executor") or {"name": cls.name}
        name = executor.pop("name", None)
        if name not in EXECUTORS:
            raise ConfigError("executor", f"unknown executor {name!r}", f"choose one of: {', '.join(EXECUTORS)}")
        retries = int(whole_number(executor.pop("max_retries", cls.max_retries), "executor.max_retries", 0))
        if "max_trials_per_worker" in executor:
            whole_number(executor["max_trials_per_worker"], "executor.max_trials_per_worker", 1)
        _check_gpu_sharing(executor)
        return cls(str(name), retries, executor)

    def slots(self, parallel_trials: int | str) -> int:
        """``tuner.parallel_trials`` as a number on this executor: ``auto`` is ``trials_per_gpu`` x the GPUs."""
        from archsearch.executors.process import parallel_trials as count

        return count(parallel_trials, "tuner.parallel_trials", self.options)


def _check_gpu_sharing(executor: Mapping[str, Any]) -> None:
    """``trials_per_gpu`` and ``gpu_memory_fraction`` typos refused before the data loads."""
    from archsearch.executors.gpu_sharing import memory_fraction_setting, trials_per_gpu_setting

    if "trials_per_gpu" in executor:
        trials_per_gpu_setting(executor["trials_per_gpu"])
    if "gpu_memory_fraction" in executor:
        memory_fraction_setting(executor["gpu_memory_fraction"])


@dataclass
class DataSettings:
    """``data.*``: the loader's section (each loader checks its own keys) and what the search adds to it."""

    name: str | None = None
    seed: int = 0  # the order of each trial's training batches (and of the loaders' own draws)
    augment: bool = False  # random flips and shifts of the training batches
    section: dict[str, Any] = field(default_factory=dict)  # the whole section, for archsearch.datasets.load_data

    @classmethod
    def from_config(cls, section: Any) -> DataSettings:
        data = _section(section, "data")
        seed = whole_number(data.get("seed", cls.seed), "data.seed", 0, allow_none=True)
        augment = boolean(data.get("augment", cls.augment), "data.augment")
        if "augment" in data:
            data["augment"] = augment
        return cls(data.get("name"), int(seed or 0), augment, data)


EXPORT_FORMATS = ("keras", "savedmodel", "onnx")


@dataclass
class ExportSettings:
    """``export.*``: what ``best/`` holds besides ``model.keras``."""

    format: str = "keras"

    @classmethod
    def from_config(cls, section: Any) -> ExportSettings:
        export = _section(section, "export")
        value = export.get("format")
        fmt = cls.format if value is None else str(value).lower()
        if fmt not in EXPORT_FORMATS:
            raise ConfigError("export.format", f"unknown format {value!r}", f"choose one of: {', '.join(EXPORT_FORMATS)}")
        return cls(fmt)


REPORT_MODES = ("full", "html", "off")


@dataclass
class ReportSettings:
    """``report``: true (``report.html`` and ``plots/*.png``: mode full), html (the page only) or false (off)."""

    mode: str = "full"

    @classmethod
    def from_config(cls, value: Any) -> ReportSettings:
        if value is None:
            return cls()
        if isinstance(value, str) and value.strip().lower() == "html":
            return cls("html")
        try:
            return cls("full" if boolean(value, "report") else "off")
        except ConfigError:
            raise ConfigError("report", f"{value!r} is not allowed",
                              "use true (report.html and plots/*.png), html (the page only) or false") from None


@dataclass
class LoggerSettings:
    """``logger``: the experiment trackers, name -> options (archsearch.loggers checks names and options)."""

    trackers: dict[str, dict[str, Any]] = field(default_factory=dict)

    @classmethod
    def from_config(cls, section: Any) -> LoggerSettings:
        if section is None:
            return cls()
        if isinstance(section, str):
            section = [section]
        if isinstance(section, (list, tuple)):
            section = {str(name): {} for name in section}
        if not isinstance(section, Mapping):
            raise ConfigError("logger", f"{section!r} is not a list of loggers", "e.g. logger=[tensorboard,mlflow]")
        trackers: dict[str, dict[str, Any]] = {}
        for name, options in section.items():
            options = {} if options is None else options
            if not isinstance(options, Mapping):
                raise ConfigError(f"logger.{name}", f"{options!r} is not a mapping of options",
                                  f"e.g. logger={name}, or logger.{name}.<option>=<value>")
            trackers[str(name)] = dict(options)
        return cls(trackers)


@dataclass
class RetrainOptions:
    """``retrain.*``: how ``mode=retrain`` retrains (the run's own trainer settings give the rest)."""

    repeats: int = 3  # seeds per model: mean ± std and the paired difference
    use_validation: bool = True  # train on training + validation for fixed epochs
    epochs: int | None = None  # None: the epochs the trial trained (or trainer.epochs)
    alpha: float = 0.05  # significance level of the paired t-test over seeds

    @classmethod
    def from_config(cls, section: Any) -> RetrainOptions:
        options = _section(section, "retrain")
        return cls(
            repeats=int(whole_number(options.get("repeats", cls.repeats), "retrain.repeats", 1)),
            use_validation=boolean(options.get("use_validation", cls.use_validation), "retrain.use_validation"),
            epochs=whole_number(options.get("epochs", cls.epochs), "retrain.epochs", 1, allow_none=True),
            alpha=check_alpha(options.get("alpha", cls.alpha), "retrain.alpha"),
        )


def check_alpha(value: Any, field_name: str) -> float:
    """A significance level strictly between 0 and 1 (0.05 is usual); anything else is refused by name."""
    alpha = real_number(value, field_name, 0.0, strict=True)
    if alpha is None or alpha >= 1.0:
        raise ConfigError(field_name, f"{value!r} is not a significance level", "use a number between 0 and 1, "
                          "e.g. 0.05")
    return alpha
