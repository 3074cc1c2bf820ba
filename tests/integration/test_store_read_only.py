"""A read-only Store (``status``, ``events``) reads the fleet and can change nothing, on
both backends; it creates no schema, and says so when the database holds none."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from sqlalchemy.exc import DBAPIError

from persistence import Store
from persistence.backends.sqlite import read_only_sqlite_url
from schemas import DatabaseUnavailable


async def test_a_read_only_store_reads_and_cannot_write(database_url: str) -> None:
    writer = await Store.open(database_url)
    try:
        await writer.request_shutdown("read me", requested_by="test")
    finally:
        await writer.close()

    reader = await Store.open(database_url, read_only=True)
    try:
        assert [e.details.get("reason") for e in await reader.events()] == ["read me"]
        assert await reader.members() == []
        with pytest.raises(DBAPIError, match=r"(?i)read.?only"):
            await reader.request_shutdown("write me", requested_by="test")
    finally:
        await reader.close()


async def test_a_read_only_store_creates_no_schema(postgres_url: str) -> None:
    with pytest.raises(DatabaseUnavailable, match="is not a coordinator database"):
        await Store.open(postgres_url, read_only=True)


async def test_a_read_only_store_creates_no_sqlite_file(tmp_path: Path) -> None:
    missing = tmp_path / "typo.db"
    with pytest.raises(DatabaseUnavailable, match="cannot open the database"):
        await Store.open(f"sqlite+aiosqlite:///{missing}", read_only=True)
    assert list(tmp_path.iterdir()) == []


def test_the_read_only_sqlite_url_is_a_uri_with_mode_ro(tmp_path: Path) -> None:
    path = tmp_path / "a dir" / "flöt.db"
    path.parent.mkdir()
    url = read_only_sqlite_url(f"sqlite+aiosqlite:///{path}")
    assert url.database == "file:" + str(path).replace(" ", "%20").replace("ö", "%C3%B6")
    assert dict(url.query) == {"mode": "ro", "uri": "true"}


async def test_a_read_only_store_opens_a_path_that_needs_quoting(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'a dir' / 'flöt.db'}"
    (tmp_path / "a dir").mkdir()
    writer = await Store.open(url)
    await writer.request_shutdown("odd path", requested_by="test")
    await writer.close()
    reader = await Store.open(url, read_only=True)
    try:
        assert len(await reader.events()) == 1
    finally:
        await reader.close()


def test_a_stopped_wal_database_in_a_read_only_directory_is_opened_immutable(
    tmp_path: Path,
) -> None:
    (tmp_path / "f.db").write_bytes(b"")
    os.chmod(tmp_path, 0o555)
    try:
        url = read_only_sqlite_url(f"sqlite+aiosqlite:///{tmp_path / 'f.db'}")
        writable = os.access(tmp_path, os.W_OK)  # root may write anyway (CAP_DAC_OVERRIDE)
    finally:
        os.chmod(tmp_path, 0o755)
    assert url.query.get("immutable") == (None if writable else "1")
