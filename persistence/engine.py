"""Engine factory and schema creation: one async engine per process, tuned per backend.

What differs between backends (connection tuning, how a write begins, read-only engines)
lives in ``persistence.backends``; this module is the same for every backend.
"""

from __future__ import annotations

import threading
from typing import Any

from sqlalchemy import inspect
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from persistence.backends import WRITE_OPTION, Backend, backend_for, backend_named
from persistence.migration import check_usable, schema_state, upgrade_to_head
from persistence.retry import SCHEMA, retrying
from persistence.schema_version import record_version, refuse_newer
from persistence.tables import metadata, schema_version
from persistence.transient import is_transient


def create_engine(
    database_url: str, *, read_only: bool = False, backend: Backend | None = None, **kwargs: Any
) -> AsyncEngine:
    """The engine of ``database_url``, tuned by its backend (``backend``, or the one its
    URL names). A read-only engine (``read_only=True``, for ``status`` and ``events``)
    needs no write access anywhere and refuses every write."""
    backend = backend or backend_for(database_url)
    return backend.create_engine(database_url, read_only=read_only, **kwargs)


async def serialize_lifecycle(conn: AsyncConnection) -> None:
    """Make this write transaction wait for, and hold off, every other lifecycle write
    (PostgreSQL: an advisory lock; SQLite: ``BEGIN IMMEDIATE`` already did)."""
    await backend_named(conn.dialect.name).serialize_writes(conn)


async def create_schema(engine: AsyncEngine) -> None:
    """Create the schema on a database that has none of it, or check that the database is
    at this code's revision; safe to call from many processes at once. Any other database
    is refused untouched (``SchemaBehind``, ``UnknownRevision``, ``NewerSchema``): only
    ``migrate`` changes an existing schema. A busy file, a full server or disk heals, so a
    starting occurrence waits (``retry.SCHEMA``)."""
    async for attempt in retrying(SCHEMA, is_transient):
        with attempt:
            async with engine.connect() as conn:
                conn = await conn.execution_options(**{WRITE_OPTION: True})
                async with conn.begin():
                    # Concurrent CREATE TABLEs collide in PostgreSQL's catalog: one at a time.
                    await serialize_lifecycle(conn)
                    await conn.run_sync(_create_or_check)


def _create_or_check(conn: Connection) -> None:
    refuse_newer(conn)  # a coordinator from before migrations recorded a newer version
    state = schema_state(conn)
    check_usable(state)
    if state.empty:
        upgrade_to_head(conn)
        record_version(conn)


async def missing_tables(engine: AsyncEngine) -> list[str]:
    """The tables of the schema the database lacks (a read-only store cannot create
    them, so it says which are missing instead). The version table is not required: a
    database made before it existed is a coordinator database all the same."""
    async with engine.connect() as conn:
        present = set(await conn.run_sync(lambda sync: inspect(sync).get_table_names()))
    required = (table.name for table in metadata.sorted_tables if table is not schema_version)
    return [name for name in required if name not in present]


async def settle_failed_connections(
    database_url: str, threads_before: set[threading.Thread]
) -> None:
    """Wait (briefly) for what connections that failed to open left running to end, so a
    command that reports the error and exits does not print a traceback."""
    await backend_for(database_url).settle_failed_open(threads_before)
