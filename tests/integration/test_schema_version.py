"""A Store opens only a database at this coordinator's schema revision, or one with none of
the schema (which it creates); anything else is refused before it changes anything, with
what to do. The coordinators from before migrations read ``coordinator_schema`` only: it
records a version that makes them refuse a migrated database."""

from __future__ import annotations

import pytest
from raw_sql import read_sql, write_sql
from sqlalchemy import select, update

from persistence import Store, create_engine
from persistence.migration import SchemaBehind, UnknownRevision, head_revision
from persistence.schema_version import NewerSchema
from persistence.tables import DATABASE_SCHEMA_VERSION, schema_version
from schemas import DatabaseUnavailable


async def test_a_new_database_is_made_at_head_and_records_the_version(database_url: str) -> None:
    await (await Store.open(database_url)).close()
    await (await Store.open(database_url)).close()  # a second open adds no second row
    assert await read_sql(database_url, "SELECT version_num FROM alembic_version") == [
        (head_revision(),)
    ]
    assert await read_sql(database_url, "SELECT version FROM coordinator_schema") == [
        (DATABASE_SCHEMA_VERSION,)
    ]


@pytest.mark.parametrize("read_only", [False, True])
async def test_a_database_of_a_newer_schema_is_refused_untouched(
    database_url: str, read_only: bool
) -> None:
    await (await Store.open(database_url)).close()
    newer = DATABASE_SCHEMA_VERSION + 1
    engine = create_engine(database_url)
    async with engine.begin() as conn:
        await conn.execute(update(schema_version).values(version=newer))
    await engine.dispose()
    with pytest.raises(NewerSchema, match="upgrade coordinator") as refused:
        await Store.open(database_url, read_only=read_only)
    assert isinstance(refused.value, DatabaseUnavailable)  # every command reports it so
    assert f"schema version {newer}" in str(refused.value)
    assert await read_sql(database_url, "SELECT version FROM coordinator_schema") == [(newer,)]


@pytest.mark.parametrize("read_only", [False, True])
async def test_a_revision_this_code_does_not_know_is_refused_untouched(
    database_url: str, read_only: bool
) -> None:
    await (await Store.open(database_url)).close()
    await write_sql(database_url, "UPDATE alembic_version SET version_num = 'r9999'")
    with pytest.raises(UnknownRevision, match="newer coordinator"):
        await Store.open(database_url, read_only=read_only)
    assert await read_sql(database_url, "SELECT version_num FROM alembic_version") == [("r9999",)]


async def test_a_database_made_before_migrations_is_refused_and_names_migrate(
    database_url: str,
) -> None:
    store = await Store.open(database_url)
    await store.request_shutdown("before migrations", requested_by="test")
    await store.close()
    await write_sql(database_url, "DROP TABLE alembic_version")  # as create_all left it
    with pytest.raises(SchemaBehind, match="coordinator migrate --dry-run") as refused:
        await Store.open(database_url)
    assert "made before migrations" in str(refused.value)
    assert await read_sql(database_url, "SELECT count(*) FROM tasks") == [(1,)]
    tables = await read_sql(database_url, "SELECT version FROM coordinator_schema")
    assert tables == [(DATABASE_SCHEMA_VERSION,)]


async def test_the_version_record_is_read_for_the_coordinators_before_migrations(
    database_url: str,
) -> None:
    # Their check: refuse a recorded version above their own (1), as this one refuses 3.
    await (await Store.open(database_url)).close()
    engine = create_engine(database_url, read_only=True)
    async with engine.connect() as conn:
        found = await conn.scalar(select(schema_version.c.version))
    await engine.dispose()
    assert found is not None and found > 1
