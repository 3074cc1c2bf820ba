"""Engine factory: one async engine per process, tuned per backend.

SQLite: WAL, ``synchronous=NORMAL``, a busy timeout, and ``BEGIN IMMEDIATE`` for every
write transaction (plain ``BEGIN`` read-then-write transactions fail at once with
"database is locked" under many processes, whatever the busy timeout; see DESIGN.md).

PostgreSQL (asyncpg): pooled connections are checked before use, so a restarted server
costs a reconnect, not an error; writes that must not interleave take a transaction-scoped
advisory lock (``serialize_lifecycle``), which SQLite's ``BEGIN IMMEDIATE`` already gives.
"""

from __future__ import annotations

import time
from typing import Any

import anyio
from sqlalchemy import event, inspect, text
from sqlalchemy.engine import Connection
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

from persistence.tables import metadata
from persistence.transient import is_transient

SQLITE_BUSY_TIMEOUT_MS = 5_000
WRITE_OPTION = "coordinator_write"
"""Execution option that marks a connection's next transaction as a write transaction."""

_WAL_ATTEMPTS = 50
_WAL_RETRY_PAUSE = 0.02  # seconds


POSTGRES_POOL_SIZE = 3
POSTGRES_POOL_OVERFLOW = 5
POSTGRES_CONNECT_TIMEOUT = 5.0  # seconds; asyncpg's own default (60 s) outlasts any lease
LIFECYCLE_LOCK = 0x636F6F72  # "coor": the advisory lock key of lifecycle writes


def create_engine(database_url: str, **kwargs: Any) -> AsyncEngine:
    if database_url.startswith("postgresql"):
        kwargs.setdefault("pool_pre_ping", True)
        # An occurrence needs a few connections at once (poll, heartbeat, one action);
        # a small pool keeps a large fleet within the server's max_connections.
        kwargs.setdefault("pool_size", POSTGRES_POOL_SIZE)
        kwargs.setdefault("max_overflow", POSTGRES_POOL_OVERFLOW)
        kwargs.setdefault("connect_args", {"timeout": POSTGRES_CONNECT_TIMEOUT})
    engine = create_async_engine(database_url, **kwargs)
    if engine.dialect.name == "sqlite":
        _tune_sqlite(engine)
    return engine


async def serialize_lifecycle(conn: AsyncConnection) -> None:
    """Make this write transaction wait for, and hold off, every other lifecycle write.

    PostgreSQL: a transaction-scoped advisory lock, released at commit or rollback.
    SQLite: nothing to do, ``BEGIN IMMEDIATE`` already serializes every writer.
    """
    if conn.dialect.name == "postgresql":
        await conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": LIFECYCLE_LOCK})


def _tune_sqlite(engine: AsyncEngine) -> None:
    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Take transaction control away from the driver so we can emit BEGIN IMMEDIATE.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        try:
            cursor.execute(f"PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS}")
            cursor.execute("PRAGMA foreign_keys = ON")
            cursor.execute("PRAGMA synchronous = NORMAL")
            _enable_wal(cursor)
        finally:
            cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(connection: Connection) -> None:
        write = connection.get_execution_options().get(WRITE_OPTION, False)
        connection.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")


def _enable_wal(cursor: Any) -> None:
    # Switching a fresh file to WAL needs a moment of exclusive access; racing processes
    # may see "database is locked" even with a busy timeout, so retry briefly.
    for attempt in range(_WAL_ATTEMPTS):
        try:
            cursor.execute("PRAGMA journal_mode = WAL")
            return
        except Exception as exc:
            if "locked" not in str(exc) or attempt == _WAL_ATTEMPTS - 1:
                raise
            time.sleep(_WAL_RETRY_PAUSE)


def _add_columns_added_since_0_1(conn: Connection) -> None:
    """Databases made by 0.1 lack ``rollouts.version``; ``create_all`` adds no column to a
    table that exists. A stopgap until schema migrations: the column's default (0) is
    right for every existing rollout."""
    columns = {c["name"] for c in inspect(conn).get_columns("rollouts")}
    if "version" not in columns:
        conn.execute(text("ALTER TABLE rollouts ADD COLUMN version INTEGER NOT NULL DEFAULT 0"))


async def create_schema(engine: AsyncEngine) -> None:
    """Create missing tables; safe to call from many processes at once."""
    for attempt in range(_WAL_ATTEMPTS):
        try:
            async with engine.connect() as conn:
                conn = await conn.execution_options(**{WRITE_OPTION: True})
                async with conn.begin():
                    # Concurrent CREATE TABLEs collide in PostgreSQL's catalog: one at a time.
                    await serialize_lifecycle(conn)
                    await conn.run_sync(metadata.create_all, checkfirst=True)
                    await conn.run_sync(_add_columns_added_since_0_1)
            return
        except DBAPIError as exc:
            # A busy file, a full server or disk: heals, so a starting occurrence waits.
            if not is_transient(exc) or attempt == _WAL_ATTEMPTS - 1:
                raise
            await anyio.sleep(min(_WAL_RETRY_PAUSE * (attempt + 1), 0.5))
