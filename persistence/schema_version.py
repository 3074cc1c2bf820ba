"""The schema version a database was written with, checked when a Store opens it.

One row in ``coordinator_schema`` holds the version of the newest code that created or
wrote the schema. Code meeting a newer version refuses the database before touching it
(it would not know the newer tables and columns, and could corrupt them); an older or
absent version (a database made before this row existed) is brought up to this version
as before: missing tables are created and the stopgap column added. Real migrations will
take the older case over.
"""

from __future__ import annotations

from sqlalchemy import inspect, select
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine

from persistence.tables import DATABASE_SCHEMA_VERSION, schema_version
from schemas import DatabaseUnavailable

_ROW = 1  # the key of the one row


class NewerSchema(DatabaseUnavailable):
    """The database was written by a newer coordinator than this one."""

    def __init__(self, found: int) -> None:
        super().__init__(
            f"the database has schema version {found}, newer than this coordinator's "
            f"{DATABASE_SCHEMA_VERSION}: upgrade coordinator on this host to the version "
            "the rest of the fleet runs (this one would not understand the data)"
        )
        self.found = found


def stored_version(conn: Connection) -> int | None:
    """The version the database records; None where it records none."""
    if not inspect(conn).has_table(schema_version.name):
        return None
    found = conn.scalar(select(schema_version.c.version).where(schema_version.c.id == _ROW))
    return None if found is None else int(found)


def refuse_newer(conn: Connection) -> None:
    """Raise ``NewerSchema`` if a newer coordinator wrote the database."""
    found = stored_version(conn)
    if found is not None and found > DATABASE_SCHEMA_VERSION:
        raise NewerSchema(found)


def record_version(conn: Connection) -> None:
    """Record this code's version (after its schema was created or brought up to date)."""
    found = stored_version(conn)
    if found is None:
        conn.execute(schema_version.insert().values(id=_ROW, version=DATABASE_SCHEMA_VERSION))
    elif found < DATABASE_SCHEMA_VERSION:
        conn.execute(
            schema_version.update()
            .where(schema_version.c.id == _ROW)
            .values(version=DATABASE_SCHEMA_VERSION)
        )


async def refuse_newer_schema(engine: AsyncEngine) -> None:
    """Raise ``NewerSchema`` if a newer coordinator wrote the database (a read-only open
    checks this alone; ``create_schema`` checks it before creating anything)."""
    async with engine.connect() as conn:
        await conn.run_sync(refuse_newer)
