"""SQLite run inline on the event loop's thread, for the deterministic simulator.

aiosqlite gives each connection a worker thread, and when a statement's result comes back
depends on how the operating system schedules that thread: the order of events between
simulated occurrences would leak in from outside the simulation. Here every statement runs
at once on the loop's thread, through SQLAlchemy's synchronous engine (the same dialect,
types and compiled statements as the aiosqlite one, without its greenlet and its thread
hop, which cost more than the statements themselves), and each transaction's result is
handed back through the loop like any other wake-up, so the loop (seeded) alone decides
what runs next.

One connection serves every occurrence of the simulated fleet: a transaction holds it and
the next waits for its turn (no lock file, no busy wait, which would block the one thread
everything runs on). Nothing outside the process is told of a change: the simulated
occurrences share one Store, and their loops poll.

``InlineEngine`` and ``InlineConnection`` stand where ``AsyncEngine`` and
``AsyncConnection`` stand, with the part of their surface the Store and the schema code
use: ``connect``, ``begin``, ``execution_options``, ``execute``, ``scalar``, ``scalars``,
``exec_driver_sql``, ``run_sync``, ``info``, ``dialect``, ``dispose``.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, TypeVar, cast

from sqlalchemy import create_engine as create_sync_engine
from sqlalchemy.engine import URL, Connection, Engine, Result
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.pool import StaticPool

from persistence.backends.base import WRITE_OPTION
from persistence.backends.sqlite import URL_PREFIX, SQLiteBackend, tune_engine
from persistence.changes import Change
from persistence.write_gate import WriteGate

T = TypeVar("T")


class InlineConnection:
    """The fleet's one connection, for the transaction whose turn it is."""

    def __init__(self, sync: Connection) -> None:
        self.sync_connection = sync
        self.dialect = sync.dialect

    @property
    def info(self) -> dict[Any, Any]:
        return self.sync_connection.info

    async def execution_options(self, **options: Any) -> InlineConnection:
        self.sync_connection.execution_options(**options)
        return self

    @asynccontextmanager
    async def begin(self) -> AsyncIterator[InlineConnection]:
        with self.sync_connection.begin():  # commits, or rolls back on any exception
            yield self

    async def execute(self, statement: Any, parameters: Any = None, **kwargs: Any) -> Result[Any]:
        return self.sync_connection.execute(statement, parameters, **kwargs)

    async def scalar(self, statement: Any, parameters: Any = None, **kwargs: Any) -> Any:
        return self.sync_connection.scalar(statement, parameters, **kwargs)

    async def scalars(self, statement: Any, parameters: Any = None, **kwargs: Any) -> Any:
        return self.sync_connection.scalars(statement, parameters, **kwargs)

    async def exec_driver_sql(self, statement: str, parameters: Any = None) -> Result[Any]:
        return self.sync_connection.exec_driver_sql(statement, parameters)

    async def run_sync(self, function: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        return function(self.sync_connection, *args, **kwargs)


class InlineEngine:
    """One synchronous connection, taken in turns (first come, first served)."""

    def __init__(self, sync_engine: Engine) -> None:
        self.sync_engine = sync_engine
        self.url = sync_engine.url
        self.dialect = sync_engine.dialect
        self._connection: Connection | None = None
        self._turn = asyncio.Lock()

    @asynccontextmanager
    async def connect(self) -> AsyncIterator[InlineConnection]:
        async with self._turn:
            if self._connection is None:
                self._connection = self.sync_engine.connect()
            sync = self._connection
            sync.execution_options(**{WRITE_OPTION: False})  # each turn says its own
            try:
                yield InlineConnection(sync)
            finally:
                if sync.in_transaction():  # left open by a failure: nothing half-done stays
                    sync.rollback()
        # The answer comes back through the loop, as a driver's would: the seeded loop
        # chooses whether this task or another goes on first.
        await asyncio.sleep(0)

    @asynccontextmanager
    async def begin(self) -> AsyncIterator[InlineConnection]:
        async with self.connect() as conn, conn.begin():
            yield conn

    async def dispose(self) -> None:
        if self._connection is not None:
            self._connection.close()
            self._connection = None
        self.sync_engine.dispose()


def _switch_to_wal(cursor: Any) -> None:
    cursor.execute("PRAGMA journal_mode = WAL")  # one process holds the file: no race


class InlineSQLiteBackend(SQLiteBackend):
    """The SQLite backend with statements run inline and one shared connection.

    One Store per database file: the simulated fleet shares it, so every commit goes
    through it (``sole_writer``), and its commit counts tell a reader when a read could
    see something new."""

    sole_writer = True

    def create_engine(self, url: str, *, read_only: bool, **kwargs: Any) -> AsyncEngine:
        if read_only or not url.startswith(URL_PREFIX):
            raise ValueError(f"the inline backend serves one writable SQLite file, not {url}")
        path = url.removeprefix(URL_PREFIX)
        sync_engine = create_sync_engine(
            f"sqlite:///{path}",
            poolclass=StaticPool,
            connect_args={"check_same_thread": False},
            **kwargs,
        )
        tune_engine(sync_engine, read_only=False, enable_wal=_switch_to_wal, begin_on_cursor=True)
        # The Store is typed against SQLAlchemy's async engine; this one has the part of
        # its surface the Store uses (see the module's docstring).
        return cast(AsyncEngine, InlineEngine(sync_engine))

    def write_gate(self, database: str | None) -> WriteGate | None:
        return None  # one connection: transactions already take turns

    def wake_file(self, database: str | None, change: Change) -> Path | None:
        return None

    def change_source(self, url: URL) -> None:
        return None
