"""SQLite (aiosqlite): one file on this host, shared by every process that opens it.

Engine: WAL, ``synchronous=NORMAL``, a busy timeout, and ``BEGIN IMMEDIATE`` for every
write transaction (plain ``BEGIN`` read-then-write transactions fail at once with
"database is locked" under many processes, whatever the busy timeout; see DESIGN.md).
``BEGIN IMMEDIATE`` already serializes every writer, and the write gate (``write_gate``)
queues them in the kernel first.

A read-only engine opens the file with ``mode=ro`` and leaves its journal mode alone.

Change notification: SQLite has no NOTIFY. Every committed change touches a wake file per
kind of change beside the database, and listeners ``stat()`` them every 50 ms (no SQL, no
thread hop), so a change reaches every process within about 50 ms.
"""

from __future__ import annotations

import math
import os
import threading
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

import anyio
import anyio.to_thread
from sqlalchemy import event
from sqlalchemy.engine import URL, Connection, Engine, make_url
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

from persistence.backends.base import WRITE_OPTION, sqlstate_of
from persistence.changes import Change, OnChange
from persistence.retry import WAL_SWITCH, retrying_in_greenlet
from persistence.write_gate import WriteGate, gate_file_of

INLINE_WRITE_INFO = "coordinator_inline_write"
"""``Connection.info`` key of the simulator's inline connection: its turn's transaction
is a write (``BEGIN IMMEDIATE``), see ``sqlite_inline``."""

SQLITE_BUSY_TIMEOUT_MS = 5_000
WAKE_SUFFIX = "-wake"
WAKE_CHECK = 0.05  # seconds between stat() calls of the wake files
URL_PREFIX = "sqlite+aiosqlite:///"

# sqlite3 gives no codes through SQLAlchemy, only words: a busy or locked file, a full
# disk (SQLITE_FULL) and an I/O error (SQLITE_IOERR), which heal when space frees or the
# device comes back.
_TRANSIENT_WORDS = ("locked", "busy", "database or disk is full", "disk i/o error")

_WORKER_THREAD = "_connection_worker_thread"  # the target of aiosqlite's threads
_SETTLE_TIMEOUT = 1.0  # seconds


def wake_file_of(database: str | None, change: Change = Change.FLEET) -> Path | None:
    """The wake file of a SQLite database path for ``change`` (none for an in-memory
    database). Fleet changes keep the plain name, ``<database>-wake``."""
    if not database or database == ":memory:" or database.startswith("file:"):
        return None
    topic = "" if change is Change.FLEET else f"-{change.value}"
    return Path(database + WAKE_SUFFIX + topic)


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


def tune_engine(
    engine: Engine,
    *,
    read_only: bool,
    enable_wal: Callable[[Any], None] | None = None,
    begin_on_cursor: bool = False,
) -> None:
    """Pragmas at connect, and ``BEGIN IMMEDIATE`` for writes, on ``engine`` (an async
    engine's ``sync_engine``, or the simulator's inline one); ``enable_wal`` switches a
    new connection's file to WAL (by default with retries, in SQLAlchemy's greenlet)."""
    switch_to_wal = enable_wal or _enable_wal

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Take transaction control away from the driver so we can emit BEGIN IMMEDIATE.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        try:
            cursor.execute(f"PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS}")
            cursor.execute("PRAGMA foreign_keys = ON")
            cursor.execute("PRAGMA synchronous = NORMAL")
            if not read_only:  # switching the journal mode is a write
                switch_to_wal(cursor)
        finally:
            cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Connection) -> None:
        if not begin_on_cursor:
            write = connection.get_execution_options().get(WRITE_OPTION, False)
            connection.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")
            return
        # The simulator's one connection (``sqlite_inline``): its transactions are begun on
        # the driver's connection, and SQLAlchemy joins the one open; it finds no file
        # busy, so its errors need no wrapping.
        raw: Any = connection.connection.dbapi_connection
        if not raw.in_transaction:
            write = connection.info.get(INLINE_WRITE_INFO, False)
            raw.execute("BEGIN IMMEDIATE" if write else "BEGIN")


def _enable_wal(cursor: Any) -> None:
    # Switching a fresh file to WAL needs a moment of exclusive access; racing processes
    # may see "database is locked" even with a busy timeout, so retry briefly. This runs
    # in a connect event, inside SQLAlchemy's async adaptation: the retry's waits suspend
    # the connecting task, never the event loop's thread.
    for attempt in retrying_in_greenlet(WAL_SWITCH, _locked):
        with attempt:
            cursor.execute("PRAGMA journal_mode = WAL")


def _locked(exc: BaseException) -> bool:
    return "locked" in str(exc)


class WakeFileWatch:
    """Hears changes by ``stat()``-ing the wake files of one database."""

    def __init__(self, paths: dict[Change, Path]) -> None:
        self._paths = paths
        self.listening = False

    async def run(self, on_change: OnChange, listener: str) -> None:
        self.listening = True
        try:
            last = {change: _mtime(path) for change, path in self._paths.items()}
            while True:
                await anyio.sleep(WAKE_CHECK)
                now = {change: _mtime(path) for change, path in self._paths.items()}
                changed = frozenset(c for c in self._paths if now[c] != last[c])
                last = now
                if changed:
                    on_change(changed)
        finally:
            self.listening = False


def _mtime(path: Path) -> int | None:
    try:
        return path.stat().st_mtime_ns
    except OSError:
        return None


class SQLiteBackend:
    name = "sqlite"
    # No deadline: its only wait is for the file lock, which the busy timeout bounds;
    # and a thread stuck in sqlite3 cannot be cancelled anyway.
    transaction_deadline = math.inf
    remote_clock = False  # the database runs on this host
    notifies = False
    sole_writer = False  # other processes share the file

    def create_engine(self, url: str, *, read_only: bool, **kwargs: Any) -> AsyncEngine:
        target: str | URL = read_only_sqlite_url(url) if read_only else url
        engine = create_async_engine(target, **kwargs)
        tune_engine(engine.sync_engine, read_only=read_only)
        return engine

    async def serialize_writes(self, conn: AsyncConnection) -> None:
        """Nothing to do: ``BEGIN IMMEDIATE`` already serializes every writer."""

    async def read_server_clock(self, conn: AsyncConnection) -> float:
        return time.time()

    def is_transient(self, exc: DBAPIError) -> bool:
        if sqlstate_of(exc) is not None or not isinstance(exc, OperationalError):
            return False
        text = str(exc.orig).lower()
        return any(words in text for words in _TRANSIENT_WORDS)

    def write_gate(self, database: str | None) -> WriteGate | None:
        gate = gate_file_of(database)
        return WriteGate(gate, SQLITE_BUSY_TIMEOUT_MS / 1000) if gate else None

    def wake_file(self, database: str | None, change: Change) -> Path | None:
        return wake_file_of(database, change)

    async def announce(self, conn: AsyncConnection, changes: frozenset[Change]) -> None:
        """Nothing at commit: the Store touches the wake files once it has committed."""

    def change_source(self, url: URL) -> WakeFileWatch | None:
        paths = {c: p for c in Change if (p := wake_file_of(url.database, c)) is not None}
        return WakeFileWatch(paths) if paths else None

    def bind_time(self, moment: datetime) -> datetime:
        # SQLite stores text without an offset; naive UTC keeps its ordering lexicographic.
        return moment.replace(tzinfo=None)

    def database_file(self, url: str) -> Path | None:
        return Path(url.removeprefix(URL_PREFIX)) if url.startswith(URL_PREFIX) else None

    async def settle_failed_open(self, threads_before: set[threading.Thread]) -> None:
        """aiosqlite stops the thread of a connection that failed to open without waiting
        for it; if the event loop closes first (a command that reports the error and
        exits), the thread's last callback meets a closed loop and prints a traceback."""
        for thread in set(threading.enumerate()) - threads_before:
            if _WORKER_THREAD in thread.name:
                await anyio.to_thread.run_sync(thread.join, _SETTLE_TIMEOUT)
