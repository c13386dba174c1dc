"""The run folder, checked before Hydra writes into it, and tidied when a run never started.

* ``resume=<folder>`` makes that folder the run's output folder (the resolver below), so a
  resumed search logs into the run it continues instead of a new near-empty folder;
* :class:`RunFolderChecks`, a Hydra callback, refuses a resume folder that does not exist or
  cannot be written, a new run whose folder cannot be created, and a full disk, as one line
  with exit status 2 — before Hydra's own ``OSError`` traceback could happen;
* :func:`remove_unused_run_folder` deletes what a run that failed before training left behind.
"""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from archsearch.core.disk import MARGIN_BYTES, device_of, free_bytes
from archsearch.errors import ArchsearchError, ConfigError, DiskFullError, FolderNotWritable
from archsearch.core.store import STORE_FILE, STORE_FILES, TrialStore, UnreadableStoreError

RESOLVER = "archsearch.run_dir"
# Hydra's output subfolder of a resumed run: beside the first run's .hydra/, never over it.
SUBDIR_RESOLVER = "archsearch.output_subdir"


def _given(value: Any) -> bool:
    return value not in (None, "", "None", "null")


def _run_dir(resume: Any, from_run: Any, default: str) -> str:
    """The folder resumed, else the folder retrained (mode=retrain), else a new one."""
    return str(resume) if _given(resume) else str(from_run) if _given(from_run) else default


def _output_subdir(resume: Any, from_run: Any, stamp: str) -> str:
    if _given(resume):
        return f".hydra/resume_{stamp}"
    return f".hydra/retrain_{stamp}" if _given(from_run) else ".hydra"


for _name, _fn in ((RESOLVER, _run_dir), (SUBDIR_RESOLVER, _output_subdir)):
    if not OmegaConf.has_resolver(_name):
        OmegaConf.register_new_resolver(_name, _fn)


try:
    from hydra.experimental.callback import Callback
except ImportError:  # pragma: no cover - Hydra < 1.1
    Callback = object  # type: ignore[assignment,misc]


class RunFolderChecks(Callback):
    """Hydra callback: check where the run will write before Hydra creates anything there."""

    def on_run_start(self, config: DictConfig, **kwargs: Any) -> None:
        _or_exit(lambda: check_from_run(config.get("mode"), config.get("from_run")))
        _or_exit(lambda: check_run_destination(config.get("resume"), str(config.hydra.run.dir)))

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        _or_exit(lambda: check_run_destination(None, str(config.hydra.sweep.dir)))


def check_run_destination(resume: Any, run_dir: str) -> None:
    """The checks :class:`RunFolderChecks` runs, as a plain function (raises ArchsearchError)."""
    from archsearch.cli.config import check_resume_folder

    if resume not in (None, ""):
        check_resume_folder(Path(str(resume)).expanduser())
        target = Path(str(resume)).expanduser()
    else:
        target = Path(run_dir)
        parent = _nearest_existing(target)
        if not parent.is_dir():
            raise ConfigError("hydra.run.dir", f"{parent} is a file, so the run folder {target} cannot be created",
                              "choose another hydra.run.dir")
        if not os.access(parent, os.W_OK | os.X_OK):
            raise FolderNotWritable(
                f"cannot create the run folder {target}: {parent} is not writable; run from a folder you can "
                "write, or choose another with hydra.run.dir=<folder>")
    free = free_bytes(target)
    if free < MARGIN_BYTES:
        raise DiskFullError(device_of(target), None, str(resume) if resume else None, free=free, needed=MARGIN_BYTES)


def check_from_run(mode: Any, from_run: Any) -> None:
    """mode=retrain logs into ``from_run``: it must exist, or Hydra would create an empty folder there;
    and a search must not log into it."""
    from archsearch.cli.retrain import check_mode

    if _given(from_run) and mode != "retrain":
        check_mode(OmegaConf.create({"mode": mode, "from_run": from_run}))  # says what is wrong
    if _given(from_run) and not Path(str(from_run)).expanduser().is_dir():
        raise ConfigError("from_run", f"{from_run} does not exist",
                          "point from_run= at the run folder of a finished search (e.g. outputs/<date>/<time>)")


def _or_exit(check) -> None:
    try:
        check()
    except ArchsearchError as exc:
        from archsearch.cli.console import problem

        problem(f"archsearch: error: {exc}")
        sys.exit(2)


def _nearest_existing(path: Path) -> Path:
    path = path.absolute()
    while not path.exists() and path.parent != path:
        path = path.parent
    return path


# What a run leaves before its first trial: Hydra's files, the lock, an empty store.
_START_UP_FILES = (".hydra", ".archsearch.lock", *STORE_FILES)


def remove_unused_run_folder(folder: Path) -> bool:
    """Delete a new run folder that holds nothing of value (a run that failed before training).

    Only files a starting run writes are removed, and only when the store holds no trial;
    anything else in the folder keeps it.  Returns whether the folder is gone.
    """
    folder = Path(folder)
    if not folder.is_dir():
        return False
    if any(e.name not in _START_UP_FILES and not e.name.endswith(".log") for e in folder.iterdir()):
        return False
    if (folder / STORE_FILE).exists() and _stored_trials(folder) != 0:
        return False
    for entry in list(folder.iterdir()):  # listed after reading the store, which may leave its journal files
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry, ignore_errors=True)
        else:
            entry.unlink(missing_ok=True)
    try:
        folder.rmdir()
    except OSError:
        return False
    return True


def _stored_trials(folder: Path) -> int | None:
    """How many trials the folder's store holds: 0 for a store a kill or a full disk left without tables
    (or empty), None when it cannot be read (then the folder is kept)."""
    try:
        with TrialStore.open_read_only(folder / STORE_FILE) as store:
            return store.count()
    except UnreadableStoreError as exc:
        return 0 if exc.blank else None
    except OSError:
        return None
