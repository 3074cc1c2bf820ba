"""A throwaway database for one script run: a SQLite file in a folder, or a fresh
database on a PostgreSQL server (created, then dropped), never the server's own."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from sqlalchemy import make_url, text
from sqlalchemy.ext.asyncio import create_async_engine


@asynccontextmanager
async def scratch_database(server: str | None, folder: Path) -> AsyncIterator[str]:
    if server is None or not server.startswith("postgres"):
        yield f"sqlite+aiosqlite:///{folder / 'fleet.db'}"
        return
    name = f"coordinator_scratch_{uuid.uuid4().hex[:10]}"
    admin = create_async_engine(server, isolation_level="AUTOCOMMIT")
    try:
        async with admin.connect() as conn:
            await conn.execute(text(f'CREATE DATABASE "{name}"'))
        yield make_url(server).set(database=name).render_as_string(hide_password=False)
    finally:
        async with admin.connect() as conn:
            await conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        await admin.dispose()
