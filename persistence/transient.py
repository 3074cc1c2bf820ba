"""Which database errors a retry may cure: the one predicate every retry loop shares.

The README promises that occurrences keep serving through database trouble and retry.
That holds only if every error class that can heal is retried here: a crash on one that
heals (a full server, a full disk) takes a whole fleet down within a second. Each backend
names its own (``Backend.is_transient``); a dropped connection heals on any of them.
"""

from __future__ import annotations

from sqlalchemy.exc import DBAPIError

from persistence.backends import BACKENDS


def is_transient(exc: BaseException) -> bool:
    """True for errors that a retry may cure: a busy or full SQLite file, a dropped
    connection, a PostgreSQL server that is full, restarting or in conflict."""
    if not isinstance(exc, DBAPIError):
        return False
    if exc.connection_invalidated:
        return True
    return any(backend.is_transient(exc) for backend in BACKENDS.values())
