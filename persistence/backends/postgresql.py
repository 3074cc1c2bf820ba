"""PostgreSQL (asyncpg): a server, possibly across a network, shared by every host.

Engine: pooled connections are checked before use, so a restarted server costs a
reconnect, not an error; a small pool keeps a large fleet within ``max_connections``. A
read-only engine runs every transaction read-only.

Writes that must not interleave take a transaction-scoped advisory lock
(``serialize_writes``); every other write relies on row locks and fencing columns.
Times are judged by the server's clock, so hosts that drift still agree on when a lease
expired. Change notification is LISTEN/NOTIFY (``postgresql_listener``).
"""

from __future__ import annotations

import threading
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import text
from sqlalchemy.engine import URL
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

from persistence.backends.base import sqlstate_of
from persistence.backends.postgresql_listener import NOTIFY_CHANNEL, NotifyListener
from persistence.changes import Change
from persistence.write_gate import WriteGate

POOL_SIZE = 3
POOL_OVERFLOW = 5
CONNECT_TIMEOUT = 5.0  # seconds; asyncpg's own default (60 s) outlasts any lease
LIFECYCLE_LOCK = 0x636F6F72  # "coor": the advisory lock key of lifecycle writes
NETWORK_DEADLINE = 10.0
"""Seconds one transaction may take. Across a network a silent partition (a dead link, a
paused server) never errors: without a deadline a query would wait for TCP to give up,
which takes many minutes, while leases expire around it."""

# SQLSTATEs (and classes) that heal: serialization failure and deadlock; the
# connection-exception class (08); insufficient resources (53: disk full, out of memory,
# too many clients); a lock not available or a statement cancelled by a timeout; the
# server shutting down or starting up; a system or I/O error on the server (58).
_TRANSIENT_SQLSTATES = frozenset({"40001", "40P01", "55P03", "57014", "57P01", "57P02", "57P03"})
_TRANSIENT_CLASSES = frozenset({"08", "53", "58"})


class PostgreSQLBackend:
    name = "postgresql"
    transaction_deadline = NETWORK_DEADLINE
    remote_clock = True
    notifies = True
    sole_writer = False

    def create_engine(self, url: str, *, read_only: bool, **kwargs: Any) -> AsyncEngine:
        kwargs.setdefault("pool_pre_ping", True)
        # An occurrence needs a few connections at once (poll, heartbeat, one action).
        kwargs.setdefault("pool_size", POOL_SIZE)
        kwargs.setdefault("max_overflow", POOL_OVERFLOW)
        connect_args: dict[str, Any] = {"timeout": CONNECT_TIMEOUT}
        if read_only:
            connect_args["server_settings"] = {"default_transaction_read_only": "on"}
        kwargs.setdefault("connect_args", connect_args)
        return create_async_engine(url, **kwargs)

    async def serialize_writes(self, conn: AsyncConnection) -> None:
        """A transaction-scoped advisory lock, released at commit or rollback."""
        await conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": LIFECYCLE_LOCK})

    async def read_server_clock(self, conn: AsyncConnection) -> float:
        return float(await conn.scalar(text("SELECT extract(epoch FROM clock_timestamp())")))

    def is_transient(self, exc: DBAPIError) -> bool:
        sqlstate = sqlstate_of(exc)
        if sqlstate is None:
            return False
        return sqlstate in _TRANSIENT_SQLSTATES or sqlstate[:2] in _TRANSIENT_CLASSES

    def write_gate(self, database: str | None) -> WriteGate | None:
        return None  # the server queues its lock waiters itself

    def wake_file(self, database: str | None, change: Change) -> Path | None:
        return None  # NOTIFY wakes listeners

    async def announce(self, conn: AsyncConnection, changes: frozenset[Change]) -> None:
        """Delivered at commit, to every listening occurrence: poll now."""
        await conn.execute(
            text("SELECT pg_notify(:channel, :changes)"),
            {"channel": NOTIFY_CHANNEL, "changes": ",".join(sorted(changes))},
        )

    def change_source(self, url: URL) -> NotifyListener:
        return NotifyListener(
            url.set(drivername="postgresql").render_as_string(hide_password=False)
        )

    def bind_time(self, moment: datetime) -> datetime:
        return moment  # TIMESTAMP WITH TIME ZONE keeps the offset

    def database_file(self, url: str) -> Path | None:
        return None

    async def settle_failed_open(self, threads_before: set[threading.Thread]) -> None:
        """Nothing: asyncpg runs on the event loop, with no threads of its own."""
