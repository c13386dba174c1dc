"""A quiet start: TensorFlow's C++ start-up notices kept off the console.

TensorFlow writes its notices (oneDNN, "could not find cuda drivers", a ``cuInit`` error on every
CPU machine, each twice) from C++ before absl's logging is set up, so ``TF_CPP_MIN_LOG_LEVEL`` cannot
hide them.  So TensorFlow's first import, and its first device query, run with the process's stderr
file descriptor pointed at a temporary file, then every line that is not one of those notices is put
back.  That first import is caught by an import hook (:func:`quiet_first_backend_import`), installed
by ``import archsearch`` and by the CLI, rather than done up front: whatever needs TensorFlow first
gets it quietly, and a command that fails on its config or data never waits for it.  Worker processes
do the same (the driver's choice travels in :data:`QUIET_ENV`).  A user who wants the notices says
``verbose_backend=true`` (the CLI) or ``verbose_backend=True`` (a tuner: it also shows those already
held back), or sets ``TF_CPP_MIN_LOG_LEVEL`` themselves: then nothing is filtered.
"""

from __future__ import annotations

import importlib.abc
import importlib.util
import json
import os
import re
import sys
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from types import ModuleType

from archsearch.core.interrupts import signals_held

QUIET_ENV = "ARCHSEARCH_QUIET_BACKEND"  # "1": filter the notices (the CLI's default), also in workers
DROPPED: list[str] = []  # the notices this process filtered, in order: shown if a tuner asks for verbose_backend

# absl's preamble, its info and warning lines (I1201 / W0000 ...), the follow-on line of the CPU
# feature notice, and the cuInit error a machine without a GPU always shows.
_NOISE = re.compile(
    r"^(WARNING: All log messages before absl::InitializeLog\(\) is called are written to STDERR"
    r"|[IW]\d{4} \d\d:\d\d:\d+\.\d+ +\d+ \S+:\d+\] .*"
    r"|E\d{4} \d\d:\d\d:\d+\.\d+ +\d+ cuda_(platform|executor|diagnostics)\.cc:\d+\] .*"
    r"|To enable the following instructions: .*in other operations, rebuild TensorFlow with the appropriate"
    r" compiler flags\.)$"
)


def is_backend_notice(line: str) -> bool:
    """Whether a stderr line is one of TensorFlow's start-up notices (never a real problem)."""
    return bool(_NOISE.match(line.rstrip("\n")))


def wants_quiet_start(verbose_backend: bool, environ: dict[str, str] | None = None) -> bool:
    """The notices are filtered unless asked not to: by config (``verbose_backend``), by the user's own
    log level, or by ``ARCHSEARCH_QUIET_BACKEND=0`` (how a verbose choice reaches a process's workers)."""
    env = os.environ if environ is None else environ
    return not verbose_backend and "TF_CPP_MIN_LOG_LEVEL" not in env and env.get(QUIET_ENV) != "0"


def configured_backend() -> str:
    """Keras' backend name, read as Keras reads it (``KERAS_BACKEND``, else ``keras.json``) without importing
    Keras: checks that depend on it run before TensorFlow's slow import."""
    loaded = getattr(sys.modules.get("keras"), "backend", None)  # None while Keras itself is importing
    if loaded is not None:
        return loaded.backend()
    if os.environ.get("KERAS_BACKEND"):
        return os.environ["KERAS_BACKEND"]
    home = Path(os.environ.get("KERAS_HOME") or Path(os.path.expanduser("~")) / ".keras")
    try:
        return str(json.loads((home / "keras.json").read_text()).get("backend") or "tensorflow")
    except (OSError, ValueError, AttributeError):
        return "tensorflow"


def _drop_notice(line: str) -> bool:
    if is_backend_notice(line):
        DROPPED.append(line)
        return True
    return False


def start_backend_quietly(setup: Callable[[], None] | None = None) -> None:
    """Import Keras' TensorFlow backend with its start-up notices filtered (no-op for jax/torch).

    ``setup`` runs first, inside the filter (a worker sets its thread pools, which imports
    TensorFlow).  Once TensorFlow is imported the notices are past: then only ``setup`` runs.
    """
    if configured_backend() != "tensorflow" or "tensorflow" in sys.modules:
        if setup is not None:
            setup()
        return
    with stderr_filtered(_drop_notice):
        if setup is not None:
            setup()
        try:
            import tensorflow as tf

            tf.config.list_physical_devices("GPU")  # the cuInit notice comes from the first device query
        except ImportError:
            pass  # Keras reports a missing backend itself, unfiltered


@contextmanager
def stderr_filtered(drop: Callable[[str], bool]) -> Iterator[None]:
    """Capture file descriptor 2 (C++ and Python alike) in the block; replay the lines ``drop`` keeps."""
    try:
        saved = os.dup(2)
    except OSError:  # no stderr at all (a daemon): nothing to filter
        yield
        return
    with tempfile.TemporaryFile(mode="w+b") as capture:
        sys.stderr.flush()
        os.dup2(capture.fileno(), 2)
        try:
            yield
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            capture.seek(0)
            kept = [line for line in capture.read().decode("utf-8", "replace").splitlines(keepends=True)
                    if not drop(line)]
            if kept:
                sys.stderr.write("".join(kept))
                sys.stderr.flush()


class _QuietFirstImport(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """The first ``import tensorflow``, whoever asks for it (Keras, a data loader, the user's builder),
    runs with Ctrl-C and SIGTERM held (:func:`archsearch.core.interrupts.signals_held`: one landing in
    TensorFlow's C start-up would be printed with a traceback and dropped) and, when ``quiet``, inside
    the notice filter; until then nothing slow is imported, so config and data errors that need no
    backend answer at once."""

    def __init__(self, quiet: bool = True) -> None:
        self.quiet = quiet

    def find_spec(self, fullname: str, path: object = None, target: object = None):
        if fullname != "tensorflow" or self not in sys.meta_path:
            return None
        sys.meta_path.remove(self)  # one use: the import below takes the ordinary path
        with signals_held():
            if self.quiet:
                start_backend_quietly()  # imports tensorflow (the module lock is re-entrant) and queries devices
            else:
                try:
                    importlib.import_module("tensorflow")
                except ImportError:
                    pass  # the ordinary finders answer below, with the ordinary error
        module = sys.modules.get("tensorflow")
        if module is None:  # not installed, or another backend: the ordinary finders answer
            return None
        self._module, self._spec = module, module.__spec__
        return importlib.util.spec_from_loader(fullname, self)

    def create_module(self, spec) -> ModuleType:
        return self._module  # already imported: the import machinery only records it

    def exec_module(self, module: ModuleType) -> None:
        module.__spec__ = self._spec  # the machinery set ours; TensorFlow's own describes its package


def quiet_first_backend_import(quiet: bool = True) -> None:
    """Guard TensorFlow's first import, if it has not happened yet (else: nothing to do): signals held,
    and its start-up notices filtered when ``quiet``.

    Installs an import hook rather than importing now: a command that fails on its config never waits
    for TensorFlow.
    """
    if "tensorflow" in sys.modules:
        return
    hooks = [f for f in sys.meta_path if isinstance(f, _QuietFirstImport)]
    if hooks:
        hooks[0].quiet = quiet
        return
    sys.meta_path.insert(0, _QuietFirstImport(quiet))


def allow_backend_notices() -> None:
    """``verbose_backend``: TensorFlow's notices stay on stderr, in this process and its workers."""
    os.environ[QUIET_ENV] = "0"
    for hook in sys.meta_path:
        if isinstance(hook, _QuietFirstImport):
            hook.quiet = False  # its import still holds Ctrl-C


def settle_backend_notices(verbose_backend: bool) -> None:
    """The Python API's quiet start (``archsearch.Tuner``), the CLI's by default.

    ``import archsearch`` already filters TensorFlow's first import (when it comes after it); here the
    workers are told (:data:`QUIET_ENV`) and the device query that prints the ``cuInit`` error runs
    filtered.  ``verbose_backend=True`` shows what was filtered so far and lets the rest through.
    """
    if verbose_backend:
        allow_backend_notices()
        replay_dropped_notices()
        return
    if os.environ.get(QUIET_ENV) != "1" and not wants_quiet_start(False):
        return  # the user's own TF_CPP_MIN_LOG_LEVEL, or a verbose choice made for the whole process
    os.environ[QUIET_ENV] = "1"
    if "tensorflow" in sys.modules and configured_backend() == "tensorflow":
        with stderr_filtered(_drop_notice):
            sys.modules["tensorflow"].config.list_physical_devices("GPU")  # a no-op after the first query


def replay_dropped_notices() -> None:
    """Show the notices filtered so far (``verbose_backend=True`` after the quiet import): once each."""
    if DROPPED:
        sys.stderr.write("".join(DROPPED))
        sys.stderr.flush()
        DROPPED.clear()
