"""``python -m archsearch`` run inside the test process: the CLI's own code, without a process's start-up.

A subprocess CLI run costs a Python start, TensorFlow's import and, with the default process executor,
a worker's start too (~15 s each on a busy 2-core machine). Most CLI tests check what a search does with
its config (exit status, the lines it prints, the files it writes), not the process boundary, so they run
the entry point here: ``archsearch/__main__.py`` executed afresh with ``runpy`` and ``sys.argv`` set, as
``python -m archsearch`` does, through Hydra's command-line parsing, config composition and callbacks.

What a process would keep to itself is put back afterwards: the environment, the working directory,
``sys.argv``, the signal handlers the entry point installs, the logging set-up Hydra configures, the
import hooks the quiet start adds. ``sys.stdout`` and ``sys.stderr`` are captured as the returned
``CompletedProcess``'s text, and warnings are shown on that stderr under Python's default filters, as a
fresh interpreter would show them. What C code writes to file descriptors 1 and 2 (TensorFlow's start-up
notices) is not captured: tests of that, of signals, kills and exit codes seen by a shell stay in
subprocesses (``conftest.run_cli``).
"""

from __future__ import annotations

import contextlib
import io
import logging
import logging.config
import os
import runpy
import signal
import subprocess
import sys
import warnings
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent

# A fresh interpreter's warning filters (python -c 'import warnings; print(warnings.filters)'), first wins.
_PYTHON_DEFAULT_FILTERS = [
    ("default", DeprecationWarning, "__main__"),
    ("ignore", DeprecationWarning, ""),
    ("ignore", PendingDeprecationWarning, ""),
    ("ignore", ImportWarning, ""),
    ("ignore", ResourceWarning, ""),
]


def run_cli_inprocess(args: list[str], run_dir: Path, env: dict | None = None) -> subprocess.CompletedProcess:
    """Run ``python -m archsearch <args> hydra.run.dir=<run_dir>`` in this process; the result reads like
    :func:`conftest.run_cli`'s (``returncode``, ``stdout``, ``stderr``).

    ``env`` is set for the run alone (None removes a variable); a ``PYTHONPATH`` in it is put on ``sys.path``
    too (a custom builder's module). Pass ``executor=inline`` in ``args`` unless the test is about workers.
    """
    argv = ["archsearch", *args, f"hydra.run.dir={run_dir}"]
    out, err = io.StringIO(), io.StringIO()
    with _process_state_restored(), pytest.MonkeyPatch.context() as patch:
        variables = {"TF_CPP_MIN_LOG_LEVEL": "3", "ARCHSEARCH_REPORT": "false", **(env or {})}
        for name, value in variables.items():
            if value is None:
                patch.delenv(name, raising=False)
            else:
                patch.setenv(name, str(value))
        for path in reversed((variables.get("PYTHONPATH") or "").split(os.pathsep)):
            if path:
                patch.syspath_prepend(path)
        patch.chdir(REPO)
        patch.setattr(sys, "argv", argv)
        # Hydra's logging.config.dictConfig closes every handler the process has: in a fresh process there are
        # none, here they are the test process's (absl's closes pytest's captured stderr with it).
        patch.setattr(logging.config, "_clearExistingHandlers", logging._handlers.clear)
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err), _warnings_on(err), \
                _modules_forgotten(variables.get("PYTHONPATH")):
            code = _run_entry_point(err)
    return subprocess.CompletedProcess(argv, code, out.getvalue(), err.getvalue())


def _run_entry_point(err: io.StringIO) -> int:
    """``python -m archsearch``: the module runs as ``__main__``, from scratch (its globals are per process)."""
    try:
        runpy.run_module("archsearch", run_name="__main__", alter_sys=True)
    except SystemExit as exc:
        if exc.code is None:
            return 0
        if isinstance(exc.code, int):
            return exc.code
        print(exc.code, file=err)  # sys.exit("message"): Python prints it and exits 1
        return 1
    return 0


@contextlib.contextmanager
def _warnings_on(err: io.StringIO) -> Iterator[None]:
    """Warnings as a fresh interpreter shows them (pytest records them instead), written to ``err`` at the end."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.resetwarnings()
        for action, category, module in reversed(_PYTHON_DEFAULT_FILTERS):
            warnings.filterwarnings(action, category=category, module=module)
        try:
            yield
        finally:
            for w in caught:
                err.write(warnings.formatwarning(w.message, w.category, w.filename, w.lineno, w.line))


@contextlib.contextmanager
def _modules_forgotten(pythonpath: str | None) -> Iterator[None]:
    """A builder module imported from ``PYTHONPATH`` is forgotten afterwards: the next test's module of the
    same name, in its own folder, is imported afresh, as in a new process."""
    folders = [Path(p).resolve() for p in (pythonpath or "").split(os.pathsep) if p]
    before = set(sys.modules)
    try:
        yield
    finally:
        for name in set(sys.modules) - before:
            file = getattr(sys.modules[name], "__file__", None)
            if file and any(Path(file).resolve().is_relative_to(folder) for folder in folders):
                del sys.modules[name]


@contextlib.contextmanager
def _process_state_restored() -> Iterator[None]:
    """Put back what the entry point changes for its whole process: env, handlers, logging, import hooks,
    and Hydra's per-process singletons (the run's ``HydraConfig`` would otherwise outlive it)."""
    from hydra.core.hydra_config import HydraConfig

    environ = dict(os.environ)
    hydra_config = HydraConfig.instance().cfg
    handlers = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    meta_path = list(sys.meta_path)
    raise_exceptions = logging.raiseExceptions
    loggers = _logging_state()
    try:
        yield
    finally:
        _restore_logging(loggers)
        HydraConfig.instance().cfg = hydra_config
        logging.raiseExceptions = raise_exceptions
        # The import hooks the entry point added (the quiet start's); another library's (six's, imported during
        # the run and still in sys.modules) must stay, or its modules stop importing.
        sys.meta_path[:] = [hook for hook in sys.meta_path
                            if hook in meta_path or not type(hook).__module__.startswith("archsearch")]
        for s, handler in handlers.items():
            signal.signal(s, handler)
        os.environ.clear()
        os.environ.update(environ)


def _logging_state() -> dict[str, tuple]:
    everyone = [logging.getLogger(), *(x for x in logging.root.manager.loggerDict.values()
                                       if isinstance(x, logging.Logger))]
    return {x.name: (x, x.level, list(x.handlers), x.propagate, x.disabled) for x in everyone}


def _restore_logging(state: dict[str, tuple]) -> None:
    """Hydra's job logging (console on the captured stdout, the run's log file) goes; the earlier set-up returns.

    Loggers first made during the run keep what their library gave them, less the run's handlers."""
    kept = {id(h) for _, _, handlers, _, _ in state.values() for h in handlers}
    added = []
    for logger, level, handlers, propagate, disabled in state.values():
        added += [h for h in logger.handlers if id(h) not in kept]
        logger.handlers, logger.propagate, logger.disabled = handlers, propagate, disabled
        logger.setLevel(level)  # and clears the loggers' cached levels
    for handler in added:
        handler.close()
    for logger in logging.root.manager.loggerDict.values():
        if isinstance(logger, logging.Logger) and logger.name not in state:
            logger.handlers = [h for h in logger.handlers if h not in added]
