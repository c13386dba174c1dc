"""User-facing errors.

Anything the user can fix (a config value, a path, a search-space declaration)
raises a subclass of :class:`ArchsearchError`.  The CLI prints such errors as
one clear line and exits non-zero; every other exception is an internal bug
and keeps its traceback.
"""

from __future__ import annotations


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


class SearchSpaceError(ConfigError):
    """A hyperparameter declaration is invalid (min > max, empty choice, ...)."""


class DataError(ArchsearchError):
    """A dataset cannot be read or does not match what the model expects."""


class ObjectiveError(ConfigError):
    """The objective names a metric the model does not produce."""
