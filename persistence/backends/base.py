"""The one interface every database backend implements.

Everything that differs between SQLite and PostgreSQL is answered here, once per backend
module, so the Store, the engine factory and the change feed never branch on a dialect.
Adding a backend means one module implementing ``Backend`` and one entry in
``persistence.backends.BACKENDS`` (plus a fixture parameter in the tests).
"""

from __future__ import annotations

import threading
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol

from sqlalchemy.engine import URL
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from persistence.changes import Change, OnChange
from persistence.write_gate import WriteGate

WRITE_OPTION = "coordinator_write"
"""Execution option that marks a connection's next transaction as a write transaction."""


def sqlstate_of(exc: DBAPIError) -> str | None:
    """The SQLSTATE a driver attached to ``exc`` (asyncpg and psycopg do; sqlite3 does not)."""
    sqlstate = getattr(exc.orig, "sqlstate", None) or getattr(exc.orig, "pgcode", None)
    return sqlstate if isinstance(sqlstate, str) else None


class ChangeSource(Protocol):
    """Where a process hears that another one committed a change."""

    listening: bool
    """True while changes are being heard (not merely polled for)."""

    async def run(self, on_change: OnChange, listener: str) -> None:
        """Call ``on_change`` for every change heard until cancelled; ``listener`` names
        who listens, in the logs."""


class Backend(Protocol):
    name: str
    """The SQLAlchemy dialect name (``engine.dialect.name``), as the API reports it."""

    transaction_deadline: float
    """Seconds one transaction may take before it is abandoned and retried (``math.inf``
    where the only wait is bounded already)."""

    remote_clock: bool
    """Whether the database runs on another host's clock, so that leases are better
    judged by ``read_server_clock`` than by the local clock."""

    notifies: bool
    """Whether changes are pushed by the server (then the change source reports every
    kind of change on each (re)connect, for what it may have missed) rather than polled."""

    sole_writer: bool
    """Whether every commit to the database goes through the one Store on this backend
    (the simulator's inline SQLite): then the Store's own commit counts say exactly when
    a read could see something new, and a reader may skip a read that could not."""

    def create_engine(self, url: str, *, read_only: bool, **kwargs: Any) -> AsyncEngine:
        """The process's engine, tuned for this backend. Every write transaction (a
        connection with ``WRITE_OPTION``) must begin holding the backend's write lock if
        it has one at BEGIN (SQLite's ``BEGIN IMMEDIATE``); ``read_only`` engines must
        refuse every write and need only read access."""

    async def serialize_writes(self, conn: AsyncConnection) -> None:
        """Make this write transaction wait for, and hold off, every other transaction
        that calls it, until commit or rollback (a no-op where BEGIN already did)."""

    async def read_server_clock(self, conn: AsyncConnection) -> float:
        """The database server's clock now, in Unix seconds (``remote_clock`` backends)."""

    def is_transient(self, exc: DBAPIError) -> bool:
        """True if ``exc`` is one of this backend's errors that a retry may cure; False
        for anything else, including another backend's errors."""

    def write_gate(self, database: str | None) -> WriteGate | None:
        """The queue writers of ``database`` take before beginning, if any."""

    def wake_file(self, database: str | None, change: Change) -> Path | None:
        """The file whose modification time a commit of ``change`` bumps, for backends
        that are polled; None where the server notifies."""

    async def announce(self, conn: AsyncConnection, changes: frozenset[Change]) -> None:
        """Tell every listener, at commit, that ``changes`` were committed (a no-op
        where ``wake_file`` does that after commit)."""

    def change_source(self, url: URL) -> ChangeSource | None:
        """Where listeners hear of changes to the database at ``url`` (None: nowhere,
        as for an in-memory database)."""

    def bind_time(self, moment: datetime) -> datetime:
        """How an aware UTC ``moment`` is stored in a timestamp column."""

    def database_file(self, url: str) -> Path | None:
        """The local file the database at ``url`` lives in (None for a server)."""

    async def settle_failed_open(self, threads_before: set[threading.Thread]) -> None:
        """Wait for whatever a failed open left running (the driver's threads) to end."""
