"""Which database errors a retry may cure: the one predicate every retry loop shares.

The README promises that occurrences keep serving through database trouble and retry.
That holds only if every error class that can heal is retried here: a crash on one that
heals (a full server, a full disk) takes a whole fleet down within a second.
"""

from __future__ import annotations

from sqlalchemy.exc import DBAPIError, OperationalError

# PostgreSQL SQLSTATEs (and classes) that heal: serialization failure and deadlock; the
# connection-exception class (08); insufficient resources (53: disk full, out of memory,
# too many clients); a lock not available or a statement cancelled by a timeout; the
# server shutting down or starting up; a system or I/O error on the server (58).
_TRANSIENT_SQLSTATES = frozenset({"40001", "40P01", "55P03", "57014", "57P01", "57P02", "57P03"})
_TRANSIENT_CLASSES = frozenset({"08", "53", "58"})

# SQLite's words (sqlite3 gives no codes through SQLAlchemy): a busy or locked file, a
# full disk (SQLITE_FULL) and an I/O error (SQLITE_IOERR), which heal when space frees
# or the device comes back.
_TRANSIENT_SQLITE = ("locked", "busy", "database or disk is full", "disk i/o error")


def is_transient(exc: BaseException) -> bool:
    """True for errors that a retry may cure: a busy or full SQLite file, a dropped
    connection, a PostgreSQL server that is full, restarting or in conflict."""
    if not isinstance(exc, DBAPIError):
        return False
    if exc.connection_invalidated:
        return True
    sqlstate = getattr(exc.orig, "sqlstate", None) or getattr(exc.orig, "pgcode", None)
    if isinstance(sqlstate, str):
        return sqlstate in _TRANSIENT_SQLSTATES or sqlstate[:2] in _TRANSIENT_CLASSES
    if isinstance(exc, OperationalError):
        text = str(exc.orig).lower()
        return any(words in text for words in _TRANSIENT_SQLITE)
    return False
