"""``hydra/sweeper=archsearch``: the sweeper's structured config, and the settings read from it.

The config takes archsearch's own keys (``tuner``, ``objective``, ``max_trials``, ``parallel_trials``, ...)
and, so a sweep written for Hydra's Optuna sweeper runs after changing only the sweeper's name, the Optuna
sweeper's keys too (``n_trials``, ``n_jobs``, ``direction``, ``sampler`` with its ``hydra/sweeper/sampler``
options, ``study_name``, ``storage``, ``max_failure_rate``).  :meth:`SweeperSettings.from_config` reads both,
refuses what would silently not apply (a ``storage`` URL, a ``custom_search_space`` function, the same
setting under both names), and states each default once.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional

from archsearch.core.checks import real_number, whole_number
from archsearch.errors import ConfigError

TARGET = "hydra_plugins.archsearch_sweeper.archsearch_sweeper.ArchsearchSweeper"  # Hydra wants it there
# The Optuna sweeper's samplers (its hydra/sweeper/sampler options) and the archsearch tuner that plays each part.
SAMPLERS = {
    "optuna.samplers.TPESampler": "bayesian", "optuna.samplers.GPSampler": "bayesian",
    "optuna.samplers.CmaEsSampler": "bayesian", "optuna.samplers.RandomSampler": "random",
    "optuna.samplers.QMCSampler": "random", "optuna.samplers.GridSampler": "grid",
}
SAMPLER_OPTIONS = {"tpe": "optuna.samplers.TPESampler", "random": "optuna.samplers.RandomSampler",
                   "cmaes": "optuna.samplers.CmaEsSampler", "grid": "optuna.samplers.GridSampler",
                   "qmc": "optuna.samplers.QMCSampler", "nsgaii": "optuna.samplers.NSGAIISampler",
                   "motpe": "optuna.samplers.MOTPESampler", "gp": "optuna.samplers.GPSampler"}
# The Optuna samplers' options that carry over (the rest would silently not apply: refused by name).
SAMPLER_KEYS = {"_target_", "seed", "n_startup_trials"}
# Keys of the sweeper that a tuner's options also take: given once, at the sweeper's level.
OWN_KEYS = ("max_trials", "seed", "pruner", "parallel_trials", "max_parallel_trials")
DIRECTIONS = {"minimize": "min", "maximize": "max", "min": "min", "max": "max"}
RESUME = (False, True, "force")
REFERENCE_SETTING = "hydra.sweeper.reference_point"  # where a sweep fixes its hypervolume's reference point


@dataclass
class ArchsearchSweeperConf:
    """What ``hydra.sweeper`` holds; ``None`` means "archsearch's default" (SweeperSettings)."""

    _target_: str = TARGET
    _recursive_: bool = False  # the Optuna sweeper's sampler node names an Optuna class: read, never built
    # The Optuna sweeper's sampler group is in the defaults list (empty), so its configs' override line composes.
    defaults: List[Any] = field(default_factory=lambda: [{"sampler": None}])
    tuner: Any = None  # a tuner name, or {name: asha, max_epochs: 9, ...}
    objective: Any = None  # a metric name, {name:, direction:}; None: the task function's return value
    direction: Any = None  # the Optuna sweeper's: minimize | maximize
    reference_point: Any = None  # a Pareto sweep's hypervolume reference: {objective: value} or a list in order
    max_trials: Optional[int] = None
    n_trials: Optional[int] = None  # the Optuna sweeper's name for max_trials
    parallel_trials: Optional[int] = None
    n_jobs: Optional[int] = None  # the Optuna sweeper's name for parallel_trials
    seed: Optional[int] = None
    sampler: Any = None  # the Optuna sweeper's: {_target_: optuna.samplers.TPESampler, seed: 1}
    pruner: Any = None
    budget_param: Optional[str] = None
    metrics_file: Optional[str] = None
    max_failure_rate: Optional[float] = None
    resume: Any = False
    params: Any = None  # Any: so a whole mapping may be given on the command line too
    study_name: Optional[str] = None
    storage: Optional[str] = None
    custom_search_space: Optional[str] = None
    search_space: Dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class SweeperSettings:
    """The sweeper's settings, checked."""

    tuner: str = "bayesian"
    tuner_options: Mapping[str, Any] = field(default_factory=dict)
    objective: Any = "objective"  # the return value's name when the task function returns a number
    # A Pareto sweep's hypervolume reference point, each objective's value by name (None: derived from the trials).
    reference_point: dict[str, float] | None = None
    max_trials: int = 20
    parallel_trials: int = 1
    seed: int | None = None
    pruner: Any = "none"
    budget_param: str | None = None
    metrics_file: str | None = None
    max_failure_rate: float = 0.5  # stop once failures pass this fraction of max_trials (never on one failure)
    resume: Any = False
    params: Mapping[str, Any] = field(default_factory=dict)
    study_name: str | None = None

    @classmethod
    def from_config(cls, conf: Mapping[str, Any]) -> SweeperSettings:
        default = cls()
        where = "hydra.sweeper"
        for key in ("storage", "custom_search_space", "search_space"):
            if conf.get(key) not in (None, {}, ""):
                fixes = {"storage": "the sweep is kept in its folder's store (hydra.sweep.dir); remove storage",
                         "custom_search_space": "declare the parameters under hydra.sweeper.params",
                         "search_space": "write them under hydra.sweeper.params in Hydra's sweep grammar, e.g. "
                                         "model.lr: tag(log, interval(1e-4, 1e-1))"}
                raise ConfigError(f"{where}.{key}", f"{conf.get(key)!r} is not supported by hydra/sweeper=archsearch",
                                  fixes[key])
        max_trials = _one_of(conf, "max_trials", "n_trials", default.max_trials)
        parallel = _one_of(conf, "parallel_trials", "n_jobs", default.parallel_trials)
        tuner, options = _tuner(conf.get("tuner"), conf.get("sampler"))
        seed = conf.get("seed")
        sampler_seed = (conf.get("sampler") or {}).get("seed") if isinstance(conf.get("sampler"), Mapping) else None
        if seed is not None and sampler_seed is not None and seed != sampler_seed:
            raise ConfigError(f"{where}.seed", f"{seed} differs from {where}.sampler.seed={sampler_seed}", "give one")
        seed = seed if seed is not None else sampler_seed
        resume = conf.get("resume", False)
        if isinstance(resume, str) and resume.lower() in ("true", "false"):
            resume = resume.lower() == "true"
        if resume not in RESUME:
            raise ConfigError(f"{where}.resume", f"{resume!r} is not allowed", "use false, true or force")
        rate = real_number(conf.get("max_failure_rate", default.max_failure_rate)
                           if conf.get("max_failure_rate") is not None else default.max_failure_rate,
                           f"{where}.max_failure_rate", 0.0)
        if rate > 1.0:
            raise ConfigError(f"{where}.max_failure_rate", f"{rate} is not a fraction", "use a number from 0 to 1")
        objective = _objective(conf.get("objective"), conf.get("direction"))
        return cls(
            tuner=tuner, tuner_options=options, objective=objective,
            reference_point=_reference_point(conf.get("reference_point"), objective),
            max_trials=int(whole_number(max_trials, f"{where}.max_trials", 1)),
            parallel_trials=int(whole_number(parallel, f"{where}.parallel_trials", 1)),
            seed=whole_number(seed, f"{where}.seed", 0, allow_none=True),
            pruner=conf.get("pruner") if conf.get("pruner") is not None else default.pruner,
            budget_param=conf.get("budget_param"), metrics_file=conf.get("metrics_file"),
            max_failure_rate=float(rate), resume=resume, params=dict(conf.get("params") or {}),
            study_name=conf.get("study_name"),
        )


def _one_of(conf: Mapping[str, Any], ours: str, optuna: str, default: Any) -> Any:
    """archsearch's key or the Optuna sweeper's; both, with different values, would leave one unapplied."""
    a, b = conf.get(ours), conf.get(optuna)
    if a is not None and b is not None and a != b:
        raise ConfigError(f"hydra.sweeper.{optuna}", f"{b} differs from hydra.sweeper.{ours}={a}",
                          f"give one of {ours} and {optuna} (the Optuna sweeper's name)")
    return a if a is not None else b if b is not None else default


def _tuner(tuner: Any, sampler: Any) -> tuple[str, dict[str, Any]]:
    """The archsearch tuner and its options, from ``tuner`` or the Optuna sweeper's ``sampler``."""
    if tuner is not None:
        if isinstance(tuner, Mapping):
            options = dict(tuner)
            name = options.pop("name", None)
            if not name:
                raise ConfigError("hydra.sweeper.tuner", f"{dict(tuner)} has no name", "e.g. {name: asha, max_epochs: 9}")
            for key in OWN_KEYS:  # the sweeper's own keys: stated twice, one would silently not apply
                if key in options:
                    raise ConfigError(f"hydra.sweeper.tuner.{key}", "is a key of the sweeper itself",
                                      f"give it as hydra.sweeper.{key}")
            return str(name), options
        return str(tuner), {}
    if isinstance(sampler, Mapping) and sampler.get("_target_"):
        target = str(sampler["_target_"])
        if target not in SAMPLERS:
            raise ConfigError("hydra.sweeper.sampler", f"{target} has no counterpart in archsearch",
                              f"set hydra.sweeper.tuner to an archsearch tuner (samplers understood: "
                              f"{', '.join(sorted(SAMPLERS))})")
        extra = sorted(k for k, v in sampler.items() if k not in SAMPLER_KEYS and v is not None)
        if extra:
            raise ConfigError(f"hydra.sweeper.sampler.{extra[0]}", f"({sampler[extra[0]]!r}) has no counterpart in "
                              f"archsearch's {SAMPLERS[target]} tuner", "remove it, or set hydra.sweeper.tuner with "
                              "archsearch's own options (e.g. {name: bayesian, num_initial_points: 10})")
        tuner = SAMPLERS[target]
        startup = sampler.get("n_startup_trials")
        if startup is not None and tuner != "bayesian":
            raise ConfigError("hydra.sweeper.sampler.n_startup_trials", f"({startup}) has no counterpart in "
                              f"archsearch's {tuner} tuner", "remove it")
        return tuner, ({"num_initial_points": startup} if startup is not None and tuner == "bayesian" else {})
    return SweeperSettings.tuner, {}


def _objective(objective: Any, direction: Any) -> Any:
    """``objective`` (a name or {name, direction}) with the Optuna sweeper's ``direction`` applied.

    A list of directions is the Optuna sweeper's multi-objective study: a Pareto search (:func:`_pareto`).
    """
    if direction is not None and not isinstance(direction, str):
        return _pareto(objective, list(direction))
    if direction is not None:
        direction = _direction(direction)
    if objective is None:
        return {"name": SweeperSettings.objective, "direction": direction or "min"}  # Optuna's default: minimize
    if isinstance(objective, Mapping):
        return dict(objective) if direction is None else {**dict(objective), "direction": direction}
    return str(objective) if direction is None else {"name": str(objective), "direction": direction}


def _reference_point(value: Any, objective: Any) -> dict[str, float] | None:
    """``reference_point``: a number for every objective of a Pareto sweep (by name, or a list in objective
    order, as ``search.reference_point``), kept by name; a single-objective sweep has no hypervolume to fix."""
    from archsearch.core.pareto import as_values, reference_costs

    where = REFERENCE_SETTING
    if value is None:
        return None
    if not (isinstance(objective, Mapping) and "pareto" in objective):
        raise ConfigError(where, f"{value!r} is set, but the sweep has one objective",
                          "give hydra.sweeper.direction a list of directions (a Pareto sweep), or leave "
                          f"{where} null")
    from archsearch.core.objective import ParetoObjective

    pareto = ParetoObjective.of(objective["pareto"], field="hydra.sweeper.objective")
    costs = reference_costs(pareto, value, where)  # also refuses what a log scale cannot count
    return dict(zip([p.name for p in pareto.components], as_values(pareto, costs)))


def _direction(direction: Any, where: str = "hydra.sweeper.direction") -> str:
    key = str(direction).lower().rsplit(".", 1)[-1]
    if key not in DIRECTIONS:
        raise ConfigError(where, f"{direction!r} is not a direction", "use minimize or maximize")
    return DIRECTIONS[key]


def _pareto(objective: Any, directions: list) -> dict[str, Any]:
    """``direction: [minimize, maximize]``: a Pareto search of as many objectives, the task function returning
    their values as a list or tuple in that order (Optuna's multi-objective study).  They are named by
    ``objective`` (a list of as many names) or else ``objective_0``, ``objective_1``, ... (Optuna's values
    have no names).  A name may say its scale, ``params:log`` (``scale: log``, as ``params:min:log`` on the
    command line: the hypervolume counts it by its logarithm)."""
    where = "hydra.sweeper.direction"
    if len(directions) < 2:
        raise ConfigError(where, f"{directions} is a list of {len(directions)} direction",
                          "give one direction (minimize or maximize), or two or more for a Pareto search")
    if objective is None:
        names = [f"{SweeperSettings.objective}_{i}" for i in range(len(directions))]
    elif isinstance(objective, (list, tuple)) and all(isinstance(n, str) for n in objective):
        names = [str(n) for n in objective]
    else:
        raise ConfigError("hydra.sweeper.objective", f"{objective!r} does not name the {len(directions)} objectives "
                          f"of direction={directions}", "give a list of as many metric names, e.g. "
                          "hydra.sweeper.objective=[val_loss,params], or leave it out")
    if len(names) != len(directions):
        raise ConfigError("hydra.sweeper.objective", f"names {len(names)} objectives but direction gives "
                          f"{len(directions)}", "give one name for each direction")
    return {"pareto": [{**_named(n, i), "direction": _direction(d, f"{where}[{i}]")}
                       for i, (n, d) in enumerate(zip(names, directions))]}


def _named(name: str, index: int) -> dict[str, str]:
    """``val_loss`` or ``params:log``: an objective's name and, after a colon, its scale (linear or log)."""
    from archsearch.core.objective import SCALES

    bare, colon, scale = name.rpartition(":")
    if not colon:
        return {"name": name}
    if scale.strip().lower() not in SCALES or not bare.strip():
        raise ConfigError(f"hydra.sweeper.objective[{index}]", f"{name!r} is not a name, nor a name and a scale",
                          f"name the metric, with :log after it to count it by its logarithm (e.g. params:log); "
                          f"its direction is hydra.sweeper.direction[{index}]")
    return {"name": bare.strip(), "scale": scale.strip().lower()}


def register_configs() -> None:
    """``hydra/sweeper=archsearch`` and, unless the Optuna sweeper registered them, its sampler options."""
    from hydra.core.config_store import ConfigStore

    store = ConfigStore.instance()
    store.store(group="hydra/sweeper", name="archsearch", node=ArchsearchSweeperConf, provider="archsearch")
    try:
        existing = set(store.list("hydra/sweeper/sampler"))
    except OSError:  # no such group yet
        existing = set()
    for name, target in SAMPLER_OPTIONS.items():
        if f"{name}.yaml" not in existing:
            store.store(group="hydra/sweeper/sampler", name=name, node={"_target_": target, "seed": None},
                        provider="archsearch")
