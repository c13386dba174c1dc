"""``trial=command``: a search whose trials run the user's own training program.

The same assembly as a Keras search (archsearch/engine/assembly.py), with the command runner
(archsearch/command/runner.py) as its trial runner: the oracle, store, executors, resume, lock, console,
progress, loggers and report are shared.  What differs is around it: the search space is the top-level
``space`` (or the cloud service's spec), there is no data to load and no model to export — ``best/``
holds the best values and the command line that reproduces the best trial.
"""

from __future__ import annotations

import os
import shlex
import shutil
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml
from omegaconf import DictConfig

from archsearch.cli import config as C
from archsearch.cli.resume import command_line_overrides, search_config
from archsearch.cli.signals import signals_deferred
from archsearch.core.console import say
from archsearch.errors import ConfigError

# Sections only a Keras trial reads: given for a command trial, they would silently do nothing.
KERAS_ONLY = ("model", "data", "trainer")


def is_command_trial(cfg: Mapping[str, Any]) -> bool:
    trial = cfg.get("trial")
    return isinstance(trial, Mapping) and trial.get("name") == "command"


def check_trial_kind(cfg: Mapping[str, Any]) -> None:
    """``space`` and ``spec`` belong to command trials, ``model``/``data``/``trainer`` to Keras trials:
    a setting the chosen kind would not read is refused by name."""
    command = is_command_trial(cfg)
    if not command:
        for key in ("space", "spec"):
            if cfg.get(key) not in (None, ""):
                raise ConfigError(key, "is only read by trial=command (your own training program)",
                                  f"add trial=command trial.command='python train.py', or for a Keras model family "
                                  f"put the space under model.space and leave {key}= out")
        return
    for text in command_line_overrides() or []:
        key = text.split("=", 1)[0].lstrip("+~").split("@", 1)[0].strip()
        section = key.split(".", 1)[0]
        if section in KERAS_ONLY:
            raise ConfigError(key, "is not used by trial=command (your program trains its own model on its own data)",
                              f"pass it to your program instead, e.g. in trial.command, or leave {key}= out")


def check_no_measures(measures: Sequence[str]) -> None:
    """``search.measures`` asks archsearch to measure a Keras model; a program's trials have none it could
    measure, so asking would record nothing: refused.  (An objective or constraint may still name
    ``latency_ms`` or ``params``: the program reports them itself.)"""
    if measures:
        raise ConfigError("search.measures", f"{list(measures)} are measured on a Keras model, but trial=command "
                          "runs your own program",
                          f"report them from your program (e.g. archsearch.report({measures[0]}=...)) and leave "
                          "search.measures empty")


def read_space(value: Any) -> Any:
    """The search space of ``space=``: inline (a mapping) or a YAML file holding one (or a ``space:`` key)."""
    from archsearch.space.hyperparameters import HyperParameters

    if value in (None, ""):
        raise ConfigError("space", "is not set", "give the search space, e.g. space='{lr: {type: float, min: 1e-4, "
                                                 "max: 1e-1, sampling: log}}', space=space.yaml, or spec=<file>")
    where = "space"
    if isinstance(value, str):
        path = Path(value).expanduser()
        if not path.is_file():
            raise ConfigError("space", f"{value!r} is neither a file nor a mapping",
                              "give a YAML file of parameters, or the parameters inline: space='{x: {type: float, "
                              "min: 0, max: 1}}'")
        try:
            loaded = yaml.safe_load(path.read_text())
        except (OSError, yaml.YAMLError) as exc:
            raise ConfigError("space", f"{value} cannot be read ({exc})", "give a YAML mapping of parameters") from None
        value = loaded.get("space", loaded) if isinstance(loaded, Mapping) else loaded
        where = f"space ({path})"
    if not isinstance(value, Mapping) or not value:
        raise ConfigError(where, f"{value!r} is not a mapping of parameters",
                          "e.g. {lr: {type: float, min: 1e-4, max: 1e-1, sampling: log}, layers: [1, 2, 3]}")
    return HyperParameters.from_config(dict(value), where=where)


def program_of(config: Mapping[str, Any]) -> tuple[Any, list[str]]:
    """``trial.command``, completed from the spec when it names the program (``trainingInput.pythonModule``,
    ``args``, ``jobDir``); and the spec's notes."""
    trial = dict(config.get("trial") or {})
    notes: list[str] = []
    if config.get("spec"):
        from archsearch.spec import read_spec

        spec = read_spec(str(config["spec"]))
        notes = list(spec.notes)
        command = trial.get("command")
        if command in (None, "", "???") and spec.module:
            command = [sys.executable, "-m", spec.module]
        if spec.program and command not in (None, "", "???"):
            from archsearch.command.settings import command_words

            command = [*command_words(command), *spec.program]
        trial["command"] = command
    return trial, notes


def check_program(words: tuple[str, ...], cwd: Path) -> None:
    """The program exists, before any trial is started (a typo costs one line, not max_trials failures)."""
    program = words[0]
    found = shutil.which(program) if os.sep not in program else None
    path = Path(program) if Path(program).is_absolute() else cwd / program
    if found is None and not (os.sep in program and path.is_file()):
        raise ConfigError("trial.command", f"{program!r} was not found (from {cwd})",
                          "give the program's path, or its interpreter first: trial.command='python train.py'")


def run_command_search(cfg: DictConfig) -> Path | None:
    """The whole search of a command trial; returns ``best/`` (None when no trial completed)."""
    from archsearch.command.runner import CommandRunner
    from archsearch.command.settings import CommandSettings
    from archsearch.core.console import ConsoleEvents
    from archsearch.core.lock import RunFolderLock
    from archsearch.engine.assembly import Assembly, create_search_oracle
    from archsearch.loggers import create_loggers

    folder = C.run_folder(cfg)
    with RunFolderLock(folder):
        cfg, config, overwrite = search_config(cfg, folder)
        check_trial_kind(config)
        settings = C.read_settings(config)
        check_no_measures(settings.goal.measures)
        trial_section, spec_notes = program_of(config)
        command = CommandSettings.from_config(trial_section)
        start_dir = Path.cwd()
        check_program(command.command, Path(command.cwd or start_dir))
        space = read_space(config.get("space"))
        for note in spec_notes:
            say(f"Note: {note}")
        oracle = create_search_oracle(settings.tuner, space, settings.objective, settings.goal.reference_point)
        loggers = create_loggers(settings.loggers.trackers or None, folder, config)
        assembly = Assembly(folder, overwrite)
        try:
            store = assembly.open(oracle, config)
            resumed = assembly.restore()
            if resumed:
                say(resumed)
            runner = CommandRunner(folder, command, settings.objective, start_dir=start_dir)
            slots, note = assembly.slots_for_the_trials_left(
                settings.executor.slots(settings.tuner.parallel_trials))
            if note:
                say(note)
            say(f"archsearch: tuner={oracle.name} trial=command ({shlex.join(command.command)}) "
                f"{len(oracle.hyperparameters.space)} parameters, objective={settings.objective.label} -> {folder}")
            listeners: list[Any] = [ConsoleEvents(), *_progress(cfg), *([loggers] if loggers is not None else [])]
            best = None
            with assembly.lock.searching():
                try:
                    # The program reports its own measures (latency_ms, ...): the constraints are checked on them.
                    assembly.search(runner, settings.executor, slots, settings.search, listeners,
                                    constraints=settings.goal.constraints).run()
                finally:
                    with signals_deferred():
                        stopping = sys.exc_info()[1]
                        try:
                            if store.count() > 0:
                                best = _summarise_and_export(folder, oracle, store, settings, runner)
                        finally:
                            if loggers is not None:
                                loggers.on_results(best)
                                loggers.close(stopping or sys.exc_info()[1])
            return best
        finally:
            assembly.lock.release()


def _progress(cfg: DictConfig) -> list[Any]:
    from archsearch.cli.progress import SearchProgress, live_display_wanted

    show, note = live_display_wanted(bool(cfg.get("progress", True)), 0, sys.stdout)
    if note:
        say(note)
    return [SearchProgress(1)] if show else []


def _summarise_and_export(folder: Path, oracle: Any, store: Any, settings: Any, runner: Any) -> Path | None:
    from archsearch.export.values import export_best_values
    from archsearch.keras_tuner.results import pruning_line, results_table, status_labels
    from archsearch.report.html import write_report_safely

    rows = store.rows()
    say(results_table(oracle, settings.search.summary_trials, folder, status_labels(rows) or None,
                      settings.goal.reference_point))
    pruning = pruning_line(rows)
    if pruning:
        say(pruning)
    best = export_best_values(folder, oracle, store, runner)
    if best is not None:
        say(f"Best values exported to {best}")
    page = write_report_safely(folder, settings.report.mode)
    if page is not None:
        say(f"Report: {page}")
    return best
