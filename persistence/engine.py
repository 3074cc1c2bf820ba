"""Engine factory: one async engine per process, tuned per backend.

SQLite: WAL, ``synchronous=NORMAL``, a busy timeout, and ``BEGIN IMMEDIATE`` for every
write transaction (plain ``BEGIN`` read-then-write transactions fail at once with
"database is locked" under many processes, whatever the busy timeout; see DESIGN.md).

A read-only engine (``read_only=True``, for ``status`` and ``events``) needs no write
access anywhere: SQLite opens the file with ``mode=ro`` and leaves its journal mode
alone; PostgreSQL runs every transaction read-only; and neither creates the schema.

PostgreSQL (asyncpg): pooled connections are checked before use, so a restarted server
costs a reconnect, not an error; writes that must not interleave take a transaction-scoped
advisory lock (``serialize_lifecycle``), which SQLite's ``BEGIN IMMEDIATE`` already gives.
"""

from __future__ import annotations

import os
import threading
import time
from typing import Any
from urllib.parse import quote

import anyio
import anyio.to_thread
from sqlalchemy import event, inspect, text
from sqlalchemy.engine import URL, Connection, make_url
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


def create_engine(database_url: str, *, read_only: bool = False, **kwargs: Any) -> AsyncEngine:
    if database_url.startswith("postgresql"):
        kwargs.setdefault("pool_pre_ping", True)
        # An occurrence needs a few connections at once (poll, heartbeat, one action);
        # a small pool keeps a large fleet within the server's max_connections.
        kwargs.setdefault("pool_size", POSTGRES_POOL_SIZE)
        kwargs.setdefault("max_overflow", POSTGRES_POOL_OVERFLOW)
        connect_args: dict[str, Any] = {"timeout": POSTGRES_CONNECT_TIMEOUT}
        if read_only:
            connect_args["server_settings"] = {"default_transaction_read_only": "on"}
        kwargs.setdefault("connect_args", connect_args)
    target: str | URL = database_url
    if read_only and not database_url.startswith("postgresql"):
        target = read_only_sqlite_url(database_url)
    engine = create_async_engine(target, **kwargs)
    if engine.dialect.name == "sqlite":
        _tune_sqlite(engine, read_only=read_only)
    return engine


def read_only_sqlite_url(database_url: str) -> URL:
    """The URL that opens a SQLite file read-only (``file:PATH?mode=ro`` as a URI), so no
    write access to the file is needed; an in-memory database as it is.

    A WAL database is read through its ``-shm`` file, which exists while any process has
    it open. When none has (the fleet is stopped) and the directory is not writable, the
    ``-shm`` cannot be created and ``mode=ro`` alone fails with "attempt to write a
    readonly database"; then the file is opened ``immutable``: with no ``-shm`` there is
    no writer, so the file alone is the whole database.
    """
    url = make_url(database_url)
    path = url.database
    if not path or path == ":memory:" or path.startswith("file:"):
        return url
    query = {"mode": "ro", "uri": "true"}
    directory = os.path.dirname(os.path.abspath(path))
    if not os.path.exists(path + "-shm") and not os.access(directory, os.W_OK):
        query["immutable"] = "1"
    # A URL object, not its text: rendered and parsed again, the quoted path would be
    # quoted twice. SQLAlchemy hands database and query to sqlite3 as "file:...?mode=ro".
    return url.set(database="file:" + quote(path), query=query)


async def serialize_lifecycle(conn: AsyncConnection) -> None:
    """Make this write transaction wait for, and hold off, every other lifecycle write.

    PostgreSQL: a transaction-scoped advisory lock, released at commit or rollback.
    SQLite: nothing to do, ``BEGIN IMMEDIATE`` already serializes every writer.
    """
    if conn.dialect.name == "postgresql":
        await conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": LIFECYCLE_LOCK})


def _tune_sqlite(engine: AsyncEngine, *, read_only: bool) -> None:
    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Take transaction control away from the driver so we can emit BEGIN IMMEDIATE.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        try:
            cursor.execute(f"PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS}")
            cursor.execute("PRAGMA foreign_keys = ON")
            cursor.execute("PRAGMA synchronous = NORMAL")
            if not read_only:  # switching the journal mode is a write
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


async def missing_tables(engine: AsyncEngine) -> list[str]:
    """The tables of the schema the database lacks (a read-only store cannot create
    them, so it says which are missing instead)."""
    async with engine.connect() as conn:
        present = set(await conn.run_sync(lambda sync: inspect(sync).get_table_names()))
    return [table.name for table in metadata.sorted_tables if table.name not in present]


_SQLITE_WORKER = "_connection_worker_thread"  # the target of aiosqlite's threads
_SETTLE_TIMEOUT = 1.0  # seconds


async def settle_failed_connections(threads_before: set[threading.Thread]) -> None:
    """Wait (briefly) for the threads of connections that failed to open to end.

    aiosqlite stops the thread of a connection that failed to open without waiting for
    it; if the event loop closes first (a command that reports the error and exits), the
    thread's last callback meets a closed loop and prints a traceback on stderr.
    """
    for thread in set(threading.enumerate()) - threads_before:
        if _SQLITE_WORKER in thread.name:
            await anyio.to_thread.run_sync(thread.join, _SETTLE_TIMEOUT)
