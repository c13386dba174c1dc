"""``hydra/sweeper=archsearch``: a Hydra sweeper that searches with archsearch's tuners, one job per trial.

Hydra's three sweeper methods (``__init__`` with the config, ``setup`` with the launcher, ``sweep``; the class
lives in hydra_plugins/archsearch_sweeper, where Hydra requires it) call :func:`sweep`, around archsearch's one
assembly (archsearch/engine/assembly.py): the oracle proposes values, a
:class:`~archsearch.sweeper.job_runner.HydraJobRunner` turns each trial into one job of the app launched
through the app's own launcher, and the threads executor keeps ``parallel_trials`` jobs in flight, each slot
refilled the moment its job ends (no batch waits for its slowest job).  Everything lives in the sweep folder
(``hydra.sweep.dir``): ``trials.db`` (so re-running the sweep there continues it: job numbers go on, jobs that
finished are not run again, jobs cut off are run again), ``trials.csv``, ``optimization_results.yaml`` (the
Optuna sweeper's keys), ``report.html``; the job folders are Hydra's own.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from archsearch.errors import ArchsearchError, ConfigError, ConfigRuntimeError
from archsearch.sweeper.config import REFERENCE_SETTING

log = logging.getLogger("archsearch")


def sweep(conf: dict[str, Any], config: DictConfig, launcher: Any, arguments: list[str],
          config_loader: Any = None) -> Any:
    """The sweeper's ``sweep``: read ``hydra.sweeper`` (``conf``), run the sweep; a mistake is one line and
    status 2, as archsearch's own command line says it, never Hydra's traceback."""
    from archsearch.sweeper.config import SweeperSettings

    try:
        settings = SweeperSettings.from_config(_plain_conf(conf))
        return run_sweep(settings, config, launcher, arguments, config_loader)
    except ArchsearchError as exc:
        import sys

        from archsearch.cli.console import error_line

        error_line(exc)
        sys.exit(2)
    except KeyboardInterrupt:
        log.warning("sweep interrupted: finished trials are kept; run the same command again to continue")
        raise


def run_sweep(settings: Any, config: DictConfig, launcher: Any, arguments: list[str],
              config_loader: Any = None) -> list[Any]:
    """The whole sweep: assemble, run every trial as a job, write the sweep's results."""
    from archsearch.core.console import ConsoleEvents, say
    from archsearch.core.store import STORE_FILE
    from archsearch.engine.assembly import Assembly, create_search_oracle
    from archsearch.engine.search import SearchAborted
    from archsearch.engine.settings import ExecutorSettings, SearchSettings, TunerSettings
    from archsearch.sweeper.job_runner import HydraJobRunner, JobSettings
    from archsearch.sweeper.params import space_from_params

    sweep_dir = Path(str(config.hydra.sweep.dir))
    sweep_dir.mkdir(parents=True, exist_ok=True)
    OmegaConf.save(config, sweep_dir / "multirun.yaml")
    space = space_from_params(settings.params, arguments)
    if not space.space.space:
        raise ConfigError("hydra.sweeper.params", "declares no parameter to search",
                          "e.g. hydra.sweeper.params: {model.lr: tag(log, interval(1e-4, 1e-1))}")
    objective = sweep_objective(settings.objective)
    tuner = TunerSettings.from_config({"name": settings.tuner, **settings.tuner_options,
                                       "max_trials": settings.max_trials, "seed": settings.seed,
                                       "pruner": settings.pruner})
    oracle = create_search_oracle(tuner, space.space, objective, settings.reference_point, REFERENCE_SETTING)
    slots = settings.parallel_trials
    if slots > 1 and type(launcher).__name__ == "BasicLauncher":
        say(f"Note: Hydra's basic launcher runs one job at a time in this process: parallel_trials={slots} needs "
            "a launcher that runs jobs elsewhere (hydra/launcher=joblib, submitit, ray); running 1 at a time.")
        slots = 1
    if settings.resume is True and not (sweep_dir / STORE_FILE).exists():
        raise ConfigError("hydra.sweeper.resume", f"is true, but {sweep_dir} holds no sweep to continue",
                          "run with hydra.sweep.dir=<the folder of the sweep to continue>")
    assembly = Assembly(sweep_dir)
    try:
        # The sweep's identity is its space, objective and tuner (the fingerprint): the same sweep continues
        # (job numbers go on, max_trials counts the total); a changed space is refused unless resume=force.
        try:
            store = assembly.open(oracle, {"sweeper": _plain(settings), "params": dict(settings.params)},
                                  accept_changes=settings.resume == "force")
        except ConfigRuntimeError as exc:
            raise ConfigError("hydra.sweep.dir", f"{sweep_dir} holds another sweep ({exc.problem})",
                              "continue it with the same params and tuner, pass hydra.sweeper.resume=force to go on "
                              "with the changed ones, or choose another hydra.sweep.dir") from None
        _same_search(store, settings, sweep_dir)
        said = assembly.restore()
        if said:
            say(said.replace("the search", "the sweep"))
        runner = HydraJobRunner(sweep_dir, launcher, space, objective,
                                JobSettings(budget_param=settings.budget_param, metrics_file=settings.metrics_file),
                                sweep_dir, job_subdir=_subdir(config))
        if config_loader is not None:
            _check_a_job_composes(config_loader, config, space)
        max_failed = max(1, int(settings.max_failure_rate * settings.max_trials) + 1)
        search_settings = SearchSettings(max_consecutive_failed_trials=settings.max_trials + 1,
                                         max_failed_trials=max_failed, keep_top_models=None)
        say(f"archsearch sweeper{f' ({settings.study_name})' if settings.study_name else ''}: tuner={oracle.name}, "
            f"{len(space.space.space)} parameters, "
            f"objective={objective.label}, {settings.max_trials} trials, {slots} at a time -> {sweep_dir}")
        with assembly.lock.searching():
            try:
                assembly.search(runner, ExecutorSettings("threads", max_retries=0), slots, search_settings,
                                [ConsoleEvents()]).run()
            except SearchAborted:
                failed = [r for r in store.rows() if r["status"] == "failed" and r["failure_kind"] != "infeasible"]
                raise SearchAborted(f"hydra.sweeper.max_failure_rate={settings.max_failure_rate}: {len(failed)} of "
                                    f"max_trials={settings.max_trials} trials failed; the last: trial "
                                    f"{failed[-1]['id']}, {failed[-1]['error']}") from None
            finally:
                _write_results(sweep_dir, oracle, store, space, settings)
        return []
    finally:
        assembly.lock.release()


def sweep_objective(spec: Any) -> Any:
    """The sweep's objective; ``{"pareto": [...]}`` (``direction`` a list, sweeper/config.py) a Pareto search."""
    from archsearch.core.objective import Objective, ParetoObjective

    if isinstance(spec, dict) and "pareto" in spec:
        return ParetoObjective.of(spec["pareto"], field="hydra.sweeper.objective")
    return Objective.create(spec).single()


# What a sweep searches with besides its fingerprint (the oracle's name, objective and space), by the
# setting a user changes it with: a continued sweep keeps them, as the command line's resume refuses such changes.
KEPT_WHEN_CONTINUED = {"tuner_options": "hydra.sweeper.tuner", "pruner": "hydra.sweeper.pruner",
                       "reference_point": REFERENCE_SETTING}


def _same_search(store: Any, settings: Any, sweep_dir: Path) -> None:
    """A continued sweep keeps the tuner's options, the pruner and the reference point its trials were searched
    (and scored) with: a change is refused by the setting's name, or with ``resume=force`` taken into the
    stored config (which the report reads).  A sweep stored before the reference point existed had none."""
    if store.count() == 0:
        return
    stored = dict(store.get_meta("config") or {})
    sweeper = dict(stored.get("sweeper") or {})
    now = json.loads(json.dumps(_plain(settings), default=str))
    changed = [key for key in KEPT_WHEN_CONTINUED
               if (key in sweeper or key == "reference_point") and sweeper.get(key) != now[key]]
    if not changed:
        return
    if settings.resume != "force":
        key = changed[0]
        before = sweeper.get(key)
        was = "derived one (none set)" if key == "reference_point" and before is None else repr(before)
        raise ConfigError(KEPT_WHEN_CONTINUED[key], f"{now[key]!r} differs from the {was} the sweep in {sweep_dir} "
                          "runs with", "continue it with the same settings, pass hydra.sweeper.resume=force to go "
                          "on with these, or choose another hydra.sweep.dir")
    log.warning("%s: continuing a sweep whose %s changed", sweep_dir,
                ", ".join(f"{KEPT_WHEN_CONTINUED[k]} ({sweeper.get(k)!r} -> {now[k]!r})" for k in changed))
    store.set_meta("config", {**stored, "sweeper": {**sweeper, **{k: now[k] for k in changed}}})


def _check_a_job_composes(config_loader: Any, config: DictConfig, space: Any) -> None:
    """Compose one job (the space's first values) before any is launched: a key the app's config does not
    have, or a value it cannot take, is one error now instead of a failed trial each."""
    from hydra.errors import ConfigCompositionException

    overrides = space.overrides(space.space.values)
    try:
        config_loader.load_sweep_config(master_config=config, sweep_overrides=overrides)
    except (ConfigCompositionException, ValueError, KeyError) as exc:
        raise ConfigError("hydra.sweeper.params", f"a job with {' '.join(overrides)} does not compose: "
                          f"{str(exc).splitlines()[0]}", "name keys the app's config has (prefix a new one "
                          "with +), with values it accepts") from None


def _plain_conf(conf: dict[str, Any]) -> dict[str, Any]:
    """Hydra hands the keys over as OmegaConf nodes: plain data from here on."""
    return {k: OmegaConf.to_container(v, resolve=True) if OmegaConf.is_config(v) else v for k, v in conf.items()}


def _subdir(config: DictConfig) -> str | None:
    """``hydra.sweep.subdir`` as written (unresolved), to place each job's folder before it runs."""
    try:
        node = OmegaConf.to_container(config.hydra.sweep, resolve=False)
    except Exception:  # noqa: BLE001 - an unusual config: the default (the job's number) is assumed
        return None
    subdir = node.get("subdir") if isinstance(node, dict) else None
    return str(subdir) if subdir else None


def _plain(settings: Any) -> dict[str, Any]:
    from dataclasses import asdict

    plain = asdict(settings)
    plain.pop("resume", None)  # how this run treats the stored sweep, not what the sweep is
    plain.pop("max_trials", None)  # may grow when a sweep continues
    return plain


def _write_results(sweep_dir: Path, oracle: Any, store: Any, space: Any, settings: Any) -> None:
    """``optimization_results.yaml`` (the Optuna sweeper's keys), ``trials.csv``, ``epochs.csv``, ``report.html``."""
    from archsearch.core.console import say
    from archsearch.report.html import write_report_safely

    store.export_csv(sweep_dir / "trials.csv", oracle.objective)
    store.export_epochs_csv(sweep_dir / "epochs.csv")
    best = oracle.best_trials(1)
    if best and oracle.objective.is_pareto:
        _write_front(sweep_dir, oracle, space, settings.reference_point)
    elif best:
        trial = best[0]
        results = {"name": "archsearch", "best_params": {k: v for k, v in trial.hparams.items()},
                   "best_value": float(trial.value), "best_trial": trial.id,
                   "objective": {"name": oracle.objective.name, "direction": oracle.objective.direction}}
        OmegaConf.save(OmegaConf.create(results), sweep_dir / "optimization_results.yaml")
        say(f"Best trial {trial.id}: {oracle.objective.name}={trial.value:.6g} with "
            + " ".join(space.overrides(trial.hparams)))
    page = write_report_safely(sweep_dir, "html")
    if page is not None:
        say(f"Report: {page}")


def _write_front(sweep_dir: Path, oracle: Any, space: Any, reference_point: Any = None) -> None:
    """A Pareto sweep's results: the Optuna sweeper's ``solutions`` (each front trial's params and values, in
    direction order) and the front's hypervolume with its reference point in ``optimization_results.yaml``,
    and the front table on the console, the hypervolume measured against ``reference_point``
    (``hydra.sweeper.reference_point``; None: derived, and said so)."""
    from archsearch.core.console import say
    from archsearch.core.pareto import FrontView, as_values, reference_costs
    from archsearch.keras_tuner.results import front_table

    objective = oracle.objective
    parts = list(objective.components)
    front = oracle.best_trials()  # the whole front, ordered by the first objective
    results = {"name": "archsearch",
               "solutions": [{"params": dict(t.hparams), "values": [float(t.metrics[p.name]) for p in parts],
                              "trial": t.id} for t in front],
               "objectives": [p.describe() for p in parts]}  # name, direction (and a log scale)
    told = None if reference_point is None else reference_costs(objective, reference_point, REFERENCE_SETTING)
    measured = FrontView.of(oracle.trials.values(), objective).hypervolume(told)
    if measured is not None:  # the number the console's line and report.html give, for scripts to read
        volume, reference = measured
        results["hypervolume"] = {"value": float(volume), "derived": told is None, "reference_point": {
            p.name: value for p, value in zip(parts, as_values(objective, reference))}}
    OmegaConf.save(OmegaConf.create(results), sweep_dir / "optimization_results.yaml")
    for line in front_table(oracle, reference_point=reference_point, setting=REFERENCE_SETTING):
        say(line)
    say("Front trials' overrides: " + "; ".join(f"trial {t.id}: " + " ".join(space.overrides(t.hparams))
                                                for t in front))
