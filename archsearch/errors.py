"""User-facing errors.

Anything the user can fix (a config value, a path, a search-space declaration)
raises a subclass of :class:`ArchsearchError`.  The CLI prints such errors as
one clear line and exits non-zero; every other exception is an internal bug
and keeps its traceback.
"""

from __future__ import annotations


def describe_exception(exc: BaseException) -> str:
    """``ZeroDivisionError: division by zero (my_models.py, line 3)``: the error and where it happened."""
    import traceback
    from pathlib import Path

    text = f"{type(exc).__name__}: {exc}"
    if isinstance(exc, SyntaxError):
        return text
    frames = traceback.extract_tb(exc.__traceback__)
    if frames:
        text += f" ({Path(frames[-1].filename).name}, line {frames[-1].lineno})"
    return text


class ArchsearchError(Exception):
    """Base class for errors caused by user input, shown without a traceback."""


class ConfigError(ArchsearchError, ValueError):
    """A configuration value is invalid.  The message names the field and the fix."""

    def __init__(self, field: str, problem: str, fix: str | None = None):
        self.field = field
        self.problem = problem
        self.fix = fix
        message = f"{field}: {problem}"
        if fix:
            message += f" ({fix})"
        super().__init__(message)

    def __reduce__(self):  # sent from worker processes to the driver
        return (self.__class__, (self.field, self.problem, self.fix))


class SearchSpaceError(ConfigError):
    """A hyperparameter declaration is invalid (min > max, empty choice, ...)."""


class ConfigTypeError(ConfigError, TypeError):
    """A value of the wrong type where KerasTuner raises TypeError (an objective given as a number)."""


class SearchSpaceTypeError(SearchSpaceError, TypeError):
    """A hyperparameter declaration holds values of the wrong type (KerasTuner raises TypeError there)."""


class SearchSpaceRuntimeError(SearchSpaceError, RuntimeError):
    """The search space cannot hold what a builder declares (``allow_new_entries=False``): KerasTuner
    raises RuntimeError there."""


class ConfigRuntimeError(ConfigError, RuntimeError):
    """A ConfigError where KerasTuner raises a RuntimeError (a run folder holding another search, data
    SklearnTuner cannot split), so code written against it still catches it."""


class MissingExtraError(ConfigError, ImportError):
    """An optional extra the user's code needs is not installed: an ImportError, as KerasTuner raises."""


class InactiveHyperParameterError(SearchSpaceError, KeyError):
    """``hp.get(name)``/``hp[name]`` for a declared parameter whose conditions do not hold: a ValueError
    as in KerasTuner, and a KeyError (there is no value)."""

    __str__ = ConfigError.__str__  # the message as written, not KeyError's quoted form


class DataError(ArchsearchError):
    """A dataset cannot be read or does not match what the model expects."""


class ObjectiveError(ConfigError):
    """The objective names a metric the model does not produce."""


class BuilderError(ArchsearchError):
    """The model builder does not return a Keras model (or cannot run at all): every trial would fail."""


class RunFolderBusy(ArchsearchError):
    """Another search process owns the run folder (it holds the folder's lock)."""


class DiskFullError(ArchsearchError):
    """No space left on the device of the run folder: the search stops, what is stored stays intact."""

    def __init__(self, device: str, file: str | None, run_folder: str | None = None, free: int | None = None,
                 needed: int | None = None) -> None:
        self.device = device
        self.file = file
        self.run_folder = run_folder
        self.free = free  # from the check before a write: the bytes free and the bytes it wanted
        self.needed = needed
        super().__init__(f"{self.situation}{self.where}; free space and "
                         f"{'resume=' + str(run_folder) if run_folder else 'resume=<run folder>'}")

    @property
    def situation(self) -> str:
        """``no space left on /x``, or what the check before a write found on a disk not quite full:
        a search keeps a margin free, so a few free MiB are not reported as none."""
        if not self.free or self.needed is None:
            return f"no space left on {self.device}"
        return (f"less than {_mib(self.needed)} free on {self.device} ({_mib(self.free)} left; a search keeps "
                "2 MiB spare for its store and logs)")

    @property
    def where(self) -> str:
        return f" while writing {self.file}" if self.file else ""

    def __reduce__(self):
        return (self.__class__, (self.device, self.file, self.run_folder, self.free, self.needed))


def _mib(size: int) -> str:
    """``2 MiB``, ``1.4 MiB``, ``300 KiB``."""
    if size < 1024 * 1024:
        return f"{size / 1024:.0f} KiB"
    mib = size / (1024 * 1024)
    return f"{mib:.0f} MiB" if mib == int(mib) or mib >= 100 else f"{mib:.1f} MiB"


class FolderNotWritable(ArchsearchError):
    """The run folder (or the folder a new run would be created in) cannot be written."""


# KerasTuner's error contract, for code written against it: raise these from a builder, a
# ``HyperModel.fit`` or a ``Tuner.run_trial``.

class FailedTrialError(Exception):
    """This trial cannot be trained (a configuration known not to work): it is recorded as failed
    with the message, and the search goes on."""


class FatalError(ArchsearchError):
    """Stop the whole search: retrying other configurations would fail the same way."""


class FatalValueError(FatalError, ValueError):
    """A fatal error about a value (e.g. a result without the objective)."""


class FatalTypeError(FatalError, TypeError):
    """A fatal error about a type (e.g. ``run_trial`` returned None)."""


class FatalRuntimeError(FatalError, RuntimeError):
    """A fatal error while running (e.g. too many trials failed in a row)."""


class NotAModelError(BuilderError, FatalTypeError):
    """The builder returned something that is not a Keras model: our BuilderError, KerasTuner's FatalTypeError."""
