"""SQL run around the Store, which may refuse the database (tests of schema and migration)."""

from __future__ import annotations

from sqlalchemy import text

from persistence import create_engine


async def read_sql(database_url: str, query: str) -> list[tuple[object, ...]]:
    engine = create_engine(database_url, read_only=True)
    try:
        async with engine.connect() as conn:
            return [tuple(r) for r in await conn.execute(text(query))]
    finally:
        await engine.dispose()


async def write_sql(database_url: str, *statements: str) -> None:
    """The statements in one transaction."""
    engine = create_engine(database_url)
    try:
        async with engine.begin() as conn:
            for statement in statements:
                await conn.execute(text(statement))
    finally:
        await engine.dispose()
