"""SQLite run inline on the event loop's thread, for the deterministic simulator.

aiosqlite gives each connection a worker thread, and when a statement's result comes back
depends on how the operating system schedules that thread: the order of events between
simulated occurrences would leak in from outside the simulation. Here every statement runs
at once on the loop's thread, and its result is handed back through the loop like any other
wake-up, so the loop (seeded) alone decides what runs next.

One connection serves every occurrence of the simulated fleet: a transaction holds it and
the next waits for it in the pool's queue (no lock file, no busy wait, which would block
the one thread everything runs on). Nothing outside the process is told of a change: the
simulated occurrences share one Store, and their loops poll.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any

from aiosqlite.core import Connection as AiosqliteConnection
from sqlalchemy.engine import URL
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from sqlalchemy.pool import AsyncAdaptedQueuePool

from persistence.backends.sqlite import URL_PREFIX, SQLiteBackend, tune_engine
from persistence.changes import Change
from persistence.write_gate import WriteGate


class _RunAtOnce:
    """Stands where aiosqlite's queue to its worker thread stands: runs each call now."""

    def put_nowait(self, item: tuple[Any, Callable[[], Any]]) -> None:
        future, function = item
        try:
            result = function()
        except BaseException as exc:  # handed to the awaiting task, as the thread would
            if future is not None and not future.done():
                future.set_exception(exc)
        else:
            if future is not None and not future.done():
                future.set_result(result)


class InlineConnection(AiosqliteConnection):
    """An aiosqlite connection without its thread (SQLAlchemy's adapter is unchanged)."""

    def __init__(self, connector: Callable[[], sqlite3.Connection]) -> None:
        super().__init__(connector, iter_chunk_size=64)
        self._tx = _RunAtOnce()  # type: ignore[assignment]

    def __await__(self) -> Any:
        return self._connect().__await__()  # no thread to start


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

        async def connect() -> InlineConnection:
            connection = InlineConnection(lambda: sqlite3.connect(path, check_same_thread=False))
            await connection._connect()
            return connection

        engine = create_async_engine(
            url,
            async_creator=connect,
            poolclass=AsyncAdaptedQueuePool,
            pool_size=1,
            max_overflow=0,
            **kwargs,
        )
        tune_engine(engine, read_only=False)
        return engine

    def write_gate(self, database: str | None) -> WriteGate | None:
        return None  # one connection: transactions already take turns

    def wake_file(self, database: str | None, change: Change) -> Path | None:
        return None

    def change_source(self, url: URL) -> None:
        return None
