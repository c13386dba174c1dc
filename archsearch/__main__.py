"""``python -m archsearch``: the Hydra entry point, kept thin.

Compose the config, run the search, and report user errors as one clear line
instead of a traceback.  Exit statuses: 0 done, 2 a config, data or run-folder
error (Hydra's own config errors included), 130 stopped by Ctrl-C or SIGTERM
(what finished is kept and exported), 1 an internal bug (with its traceback).
"""

from __future__ import annotations

import os
import sys

from archsearch.cli.signals import INTERRUPTS, exit_interrupted
from archsearch.cli.signals import install as install_signal_handlers


EXIT_USER_ERROR = 2

# Installed before anything slow is imported, so a Ctrl-C during start-up is one clean line too.
install_signal_handlers()

from pathlib import Path  # noqa: E402

_TASK_STARTED = False


def _config_dir() -> str:
    """conf/ ships inside the wheel as archsearch/conf; in a checkout it is the repository's conf/."""
    packaged = Path(__file__).resolve().parent / "conf"
    if packaged.is_dir():
        return str(packaged)
    return str(Path(__file__).resolve().parent.parent / "conf")


def _task(cfg) -> None:
    """One search (one job of a multirun), or mode=retrain of a finished one."""
    global _TASK_STARTED
    INTERRUPTS.arm()
    _TASK_STARTED = True
    try:
        _search_or_retrain(cfg)
    finally:
        INTERRUPTS.hold()


def _search_or_retrain(cfg) -> None:
    from archsearch.cli.console import console_and_log_file

    with console_and_log_file():  # every line the job shows, in its archsearch.log too
        _checked_job(cfg)


def _checked_job(cfg) -> None:
    from archsearch.cli.app import run
    from archsearch.cli.config import check_overrides, run_folder
    from archsearch.cli.console import error_line
    from archsearch.core.console import say
    from archsearch.errors import ArchsearchError, DiskFullError
    from archsearch.cli.preflight import remove_unused_run_folder
    from archsearch.cli.retrain import check_mode, run_retrain

    # At once: the checks, the data and TensorFlow's import take seconds (minutes on a loaded machine)
    # before the search's header; a blank terminal meanwhile looks like a hang.
    say("archsearch: starting...")
    folder: object = "<run folder>"
    try:
        _quiet_backend(cfg)
        folder = run_folder(cfg)
        check_overrides(cfg)  # model.space={}: Hydra would merge it away silently
        if check_mode(cfg) == "retrain":
            run_retrain(cfg)
        else:
            run(cfg)
    except KeyboardInterrupt:
        _stop_interrupted(cfg, folder)
    except Exception as exc:
        if INTERRUPTS.count:  # a Ctrl-C that C code turned into another error (TensorFlow's import: ImportError)
            _stop_interrupted(cfg, folder)
        if not isinstance(exc, ArchsearchError):
            raise
        # the folder of an earlier run (resumed, or retrained: mode=retrain logs into from_run) is never tidied away
        keep = cfg.get("resume") or (cfg.get("mode") == "retrain" and cfg.get("from_run"))
        removed = not keep and isinstance(folder, Path) and remove_unused_run_folder(folder)
        if removed and isinstance(exc, DiskFullError):  # nothing to resume: the folder held no trial
            exc = ArchsearchError(f"{exc.situation}{exc.where}; free space and run the command again")
        error_line(exc)
        sys.exit(EXIT_USER_ERROR)


def _stop_interrupted(cfg, folder: object) -> None:
    """The one line a Ctrl-C or SIGTERM ends a job with, then exit 130."""
    from archsearch.cli.console import problem
    from archsearch.cli.preflight import remove_unused_run_folder

    if cfg.get("mode") == "retrain":
        problem("archsearch: retrain interrupted; the run's search is unchanged")
    elif not cfg.get("resume") and isinstance(folder, Path) and remove_unused_run_folder(folder):
        problem("archsearch: interrupted before the first trial; nothing was kept")
    else:
        problem(f"archsearch: interrupted; finished trials are kept (continue with resume={folder})")
    exit_interrupted()


def _quiet_backend(cfg) -> None:
    """TensorFlow's start-up notices stay off the console unless asked for (``verbose_backend=true``,
    or the user's own ``TF_CPP_MIN_LOG_LEVEL``); worker processes inherit the choice.

    Nothing is imported here: the filter waits for TensorFlow's first import, which comes only after
    every check that needs no backend, so a config or data error answers in a second or two.
    """
    from archsearch.training.backend_logs import QUIET_ENV, allow_backend_notices, quiet_first_backend_import, wants_quiet_start
    from archsearch.core.checks import boolean

    verbose = boolean(cfg.get("verbose_backend", False), "verbose_backend")
    if wants_quiet_start(verbose):
        os.environ["TF_CPP_MIN_LOG_LEVEL"] = "2"  # and TensorFlow's later info lines
        os.environ[QUIET_ENV] = "1"
    if os.environ.get(QUIET_ENV) == "1":
        quiet_first_backend_import()
    else:
        quiet_first_backend_import(quiet=False)  # Ctrl-C is still held through TensorFlow's import
        if verbose:
            allow_backend_notices()  # `import archsearch` may have set the filter up already


def _before_hydra(argv: list[str]) -> list[str]:
    """The command line as Hydra should read it.

    ``spec=<file>``: the cloud tuning service's spec becomes overrides placed before the user's own, so
    anything typed on the command line still wins (archsearch/spec).  ``trial=<id>`` and ``trial=knee``
    (``mode=retrain``'s old spelling, now that the ``trial`` group chooses what a trial is) are refused with
    the key that names the trial to retrain, ``trial_id=``.
    """
    import re

    from archsearch.errors import ConfigError

    for arg in argv[1:]:
        if re.fullmatch(r"\+?trial=(\d+|knee)", arg):
            number = arg.split("=", 1)[1]
            raise ConfigError("trial", f"{number} is not a kind of trial (trial=keras or trial=command: the trial "
                              "group chooses what a trial is)", f"mode=retrain takes the trial to retrain as "
                              f"trial_id={number}")
    given = [arg.split("=", 1)[1] for arg in argv[1:] if arg.split("=", 1)[0].lstrip("+") == "spec" and "=" in arg]
    if not given or given[-1] in ("", "null"):
        return argv
    from archsearch.spec import read_spec

    return [argv[0], *read_spec(given[-1]).overrides, *argv[1:]]


def main() -> None:
    from archsearch.errors import ArchsearchError

    try:
        sys.argv = _before_hydra(sys.argv)
    except ArchsearchError as exc:
        from archsearch.cli.console import error_line

        error_line(exc)
        sys.exit(EXIT_USER_ERROR)
    try:
        import hydra

        import archsearch.cli.preflight  # noqa: F401  (registers the run-folder resolver the config uses)

        hydra.main(version_base=None, config_path=_config_dir(), config_name="config")(_task)()
        INTERRUPTS.arm()  # a signal after the last job (while Hydra tore down): the search itself finished
    except SystemExit as exc:
        if exc.code == 1 and not _TASK_STARTED:
            sys.exit(EXIT_USER_ERROR)  # Hydra's own config errors (unknown option or key): like ours, status 2
        raise
    except KeyboardInterrupt:
        multirun = any(arg in ("-m", "--multirun") for arg in sys.argv[1:])  # jobs ran in other processes
        said = "interrupted" if _TASK_STARTED or multirun else "interrupted while starting; nothing ran"
        from archsearch.cli.console import problem

        problem(f"archsearch: {said}")
        exit_interrupted()


def console_main() -> None:
    """The ``archsearch`` console script: ``archsearch [key=value ...] --spec FILE -- PROGRAM [ARG ...]``."""
    from archsearch.cli.console_script import hydra_arguments

    sys.argv = ["archsearch", *hydra_arguments(sys.argv[1:])]
    main()


if __name__ == "__main__":
    main()
