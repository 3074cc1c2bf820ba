"""The database records the schema version it was written with; a coordinator refuses a
database written by a newer schema, before it changes anything, and says what to do. An
older or absent version (a database made before the record existed) opens as before."""

from __future__ import annotations

import pytest
from sqlalchemy import delete, select, update

from persistence import Store, create_engine
from persistence.schema_version import NewerSchema
from persistence.tables import DATABASE_SCHEMA_VERSION, schema_version
from schemas import DatabaseUnavailable


async def stored(database_url: str) -> list[int]:
    """The versions recorded, read around the Store (which would refuse a newer one)."""
    engine = create_engine(database_url, read_only=True)
    try:
        async with engine.connect() as conn:
            return list((await conn.scalars(select(schema_version.c.version))).all())
    finally:
        await engine.dispose()


async def rewrite(database_url: str, version: int | None) -> None:
    """Make the database look written by ``version`` (None: before the record existed)."""
    store = await Store.open(database_url)
    try:
        async with store.engine.begin() as conn:
            if version is None:
                await conn.run_sync(schema_version.drop)
            else:
                await conn.execute(update(schema_version).values(version=version))
    finally:
        await store.close()


async def test_a_new_database_records_this_schema_version(database_url: str) -> None:
    await (await Store.open(database_url)).close()
    await (await Store.open(database_url)).close()  # a second open adds no second row
    assert await stored(database_url) == [DATABASE_SCHEMA_VERSION]


@pytest.mark.parametrize("read_only", [False, True])
async def test_a_database_of_a_newer_schema_is_refused_untouched(
    database_url: str, read_only: bool
) -> None:
    newer = DATABASE_SCHEMA_VERSION + 1
    await rewrite(database_url, newer)
    with pytest.raises(NewerSchema, match="upgrade coordinator") as refused:
        await Store.open(database_url, read_only=read_only)
    assert isinstance(refused.value, DatabaseUnavailable)  # every command reports it so
    assert f"schema version {newer}" in str(refused.value)
    assert await stored(database_url) == [newer]


async def test_a_database_without_a_version_opens_and_is_stamped(database_url: str) -> None:
    await rewrite(database_url, None)
    reader = await Store.open(database_url, read_only=True)  # a reader needs no record
    await reader.close()
    writer = await Store.open(database_url)
    try:
        await writer.request_shutdown("still works", requested_by="test")
    finally:
        await writer.close()
    assert await stored(database_url) == [DATABASE_SCHEMA_VERSION]


async def test_an_older_version_is_brought_up_to_this_one(database_url: str) -> None:
    await rewrite(database_url, DATABASE_SCHEMA_VERSION - 1)
    await (await Store.open(database_url)).close()
    assert await stored(database_url) == [DATABASE_SCHEMA_VERSION]


async def test_an_empty_record_is_an_absent_one(database_url: str) -> None:
    store = await Store.open(database_url)
    try:
        async with store.engine.begin() as conn:
            await conn.execute(delete(schema_version))
    finally:
        await store.close()
    await (await Store.open(database_url)).close()
    assert await stored(database_url) == [DATABASE_SCHEMA_VERSION]
