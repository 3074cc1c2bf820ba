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
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any, TypeVar, cast

from sqlalchemy import create_engine as create_sync_engine
from sqlalchemy.engine import URL, Connection, Engine, Result
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.pool import StaticPool
from sqlalchemy.sql.dml import Delete, Update

from persistence.backends.base import WRITE_OPTION
from persistence.backends.sqlite import INLINE_WRITE_INFO as WRITE_INFO
from persistence.backends.sqlite import URL_PREFIX, SQLiteBackend, tune_engine
from persistence.changes import Change
from persistence.write_gate import WriteGate

T = TypeVar("T")


class InlineConnection:
    """The fleet's one connection, for the transaction whose turn it is.

    Its transaction is begun and ended on the driver's connection (``BEGIN``, ``COMMIT``)
    and a plain write statement (no ``RETURNING``, no parameter rendered at execution)
    runs on the driver's cursor, compiled once, its values converted by its types:
    SQLAlchemy's transaction and execution paths cost several times what SQLite does for
    a heartbeat. Everything else runs through
    SQLAlchemy, inside the same transaction (``tune_engine`` begins none of its own
    while one is open), and a transaction SQLAlchemy took part in is ended by it."""

    def __init__(self, sync: Connection) -> None:
        self.sync_connection = sync
        self.dialect = sync.dialect
        self._raw = _driver_connection(sync)

    @property
    def info(self) -> dict[Any, Any]:
        return self.sync_connection.info

    async def execution_options(self, **options: Any) -> InlineConnection:
        if WRITE_OPTION in options:
            self.info[WRITE_INFO] = bool(options.pop(WRITE_OPTION))
        if options:
            self.sync_connection.execution_options(**options)
        return self

    @asynccontextmanager
    async def begin(self) -> AsyncIterator[InlineConnection]:
        sync, raw = self.sync_connection, self._raw
        if sync.in_transaction() or raw.in_transaction:  # nested: the outer one ends it
            yield self
            return
        raw.execute("BEGIN IMMEDIATE" if self.info.get(WRITE_INFO) else "BEGIN")
        try:
            yield self
        except BaseException:
            sync.rollback() if sync.in_transaction() else raw.execute("ROLLBACK")
            raise
        if sync.in_transaction():
            sync.commit()
        else:
            raw.execute("COMMIT")

    async def execute(self, statement: Any, parameters: Any = None, **kwargs: Any) -> Any:
        plain = None if kwargs else _plain_write(statement, self.dialect)
        if plain is not None and self._raw.in_transaction:
            values = plain.values(parameters)
            if values is not None:
                return _RowCount(self._raw.execute(plain.sql, values).rowcount)
        return self.sync_connection.execute(statement, parameters, **kwargs)

    async def scalar(self, statement: Any, parameters: Any = None, **kwargs: Any) -> Any:
        return self.sync_connection.scalar(statement, parameters, **kwargs)

    async def scalars(self, statement: Any, parameters: Any = None, **kwargs: Any) -> Any:
        return self.sync_connection.scalars(statement, parameters, **kwargs)

    async def exec_driver_sql(self, statement: str, parameters: Any = None) -> Result[Any]:
        return self.sync_connection.exec_driver_sql(statement, parameters)

    async def run_sync(self, function: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        return function(self.sync_connection, *args, **kwargs)


def _driver_connection(sync: Connection) -> Any:
    """The ``sqlite3.Connection`` under ``sync``."""
    return sync.connection.dbapi_connection


@dataclass(frozen=True)
class _RowCount:
    """What a plain write's result is asked for: how many rows it changed."""

    rowcount: int


@dataclass(frozen=True)
class _PlainWrite:
    """A write statement compiled once, with the order of its parameters."""

    sql: str
    names: tuple[str, ...]
    fixed: dict[str, Any]
    convert: dict[str, Callable[[Any], Any]]
    """The types' bind processors, as SQLAlchemy would apply them."""

    def values(self, parameters: Any) -> tuple[Any, ...] | None:
        """The driver's values for ``parameters``; None where the statement compiled once
        is not the one SQLAlchemy would run (several rows, or a name it would add to the
        statement): then SQLAlchemy runs it."""
        if parameters is None:
            parameters = {}
        elif not isinstance(parameters, Mapping) or not parameters.keys() <= self.accepted:
            return None  # several rows, or a name SQLAlchemy would add to the statement
        given = {**self.fixed, **parameters}
        convert = self.convert
        try:
            return tuple(
                convert[name](given[name]) if name in convert else given[name]
                for name in self.names
            )
        except KeyError:  # a parameter left out: SQLAlchemy says which
            return None

    @cached_property
    def accepted(self) -> frozenset[str]:
        return frozenset(self.names)


_SEEN_ONCE = "seen once"
_PLAIN: dict[int, tuple[Any, _PlainWrite | str | None]] = {}
"""By statement identity (the statement kept beside, so its id stays its own)."""


def _plain_write(statement: Any, dialect: Any) -> _PlainWrite | None:
    """The plain form of a statement run before: one built anew at each call is left to
    SQLAlchemy (whose cache knows it by its shape), not compiled here every time."""
    known = _PLAIN.get(id(statement))
    if known is None or known[0] is not statement:
        _remember(statement, _SEEN_ONCE)
        return None
    if known[1] is not _SEEN_ONCE:
        return cast(_PlainWrite | None, known[1])
    plain = None
    # An UPDATE that names what it sets, or a DELETE: what it compiles to does not
    # depend on the parameters (an INSERT's columns and an UPDATE's bare SET do).
    explicit = isinstance(statement, Update) and bool(statement._values)
    if (explicit or isinstance(statement, Delete)) and not statement._returning:
        compiled = statement.compile(dialect=dialect)
        # No parameter rendered at execution (an expanding IN): the string is final.
        if not compiled.literal_execute_params and not compiled.post_compile_params:
            names = tuple(compiled.positiontup or ())
            fixed = {
                name: bind.value
                for name, bind in compiled.binds.items()
                if bind.callable is None and not bind.required
            }
            plain = _PlainWrite(compiled.string, names, fixed, dict(compiled._bind_processors))
    _remember(statement, plain)
    return plain


def _remember(statement: Any, plain: _PlainWrite | str | None) -> None:
    if len(_PLAIN) > 1000:
        _PLAIN.clear()
    _PLAIN[id(statement)] = (statement, plain)


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
            sync.info[WRITE_INFO] = False  # each turn says its own
            try:
                yield InlineConnection(sync)
            finally:
                if sync.in_transaction():  # left open by a failure: nothing half-done stays
                    sync.rollback()
                elif (raw := _driver_connection(sync)).in_transaction:
                    raw.execute("ROLLBACK")
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
    # A simulation's file outlives no crash of the host: what a commit must survive is
    # the simulated kill of a process, which the file does by being written at all.
    cursor.execute("PRAGMA synchronous = OFF")


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
