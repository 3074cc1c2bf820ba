"""The one exception family of the project.

Defined in the bottom layer so that every layer can raise and catch it. Each class's
docstring is its default message; subclasses also subclass the builtin they refine, so
callers that only know ``ValueError`` or ``LookupError`` still catch them.
"""

from __future__ import annotations


class CoordinatorError(Exception):
    """Something went wrong in coordinator."""

    def __init__(self, message: str | None = None) -> None:
        super().__init__(message or (self.__doc__ or "").strip())


class ConfigurationError(CoordinatorError, ValueError):
    """A setting has a value coordinator cannot work with."""


class InvalidOccurrenceId(ConfigurationError):
    """An occurrence id must be 1-64 letters, digits, '.', '_' or '-', and not '__shared__'."""


class InvalidFleetId(ConfigurationError):
    """A fleet id must be 1-64 letters, digits, '.', '_' or '-'."""


class UnknownTargets(CoordinatorError, ValueError):
    """An emergency command names occurrences this fleet has never seen; nothing was
    recorded."""


class NotFound(CoordinatorError, LookupError):
    """The requested record does not exist."""


class StaleFencingToken(CoordinatorError):
    """A write carried a fencing token that is no longer current: another holder took over."""


class StaleRolloutView(CoordinatorError):
    """A rollout step was computed from a state that has changed since: nothing was
    written; read the rollout again and recompute."""


class Superseded(CoordinatorError):
    """A newer incarnation of this occurrence id registered; this one must stop."""


class DatabaseUnavailable(CoordinatorError, ConnectionError):
    """The database did not answer after the bounded retries."""


class CommandConflict(CoordinatorError):
    """The command does not fit the current state (e.g. resuming a rollout that is not
    paused, or a second shutdown while one runs); nothing was changed."""
