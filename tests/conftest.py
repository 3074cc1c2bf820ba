"""Shared fixtures: a real database per test (a SQLite file, or a fresh PostgreSQL
database when COORDINATOR_TEST_POSTGRES_URL is set) and a store on a fake clock.
Helpers that tests import live in support.py.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest

# Helper modules assert too: rewrite them like test modules, so a failure shows its values.
# This must run before anything imports them (support, just below, included).
pytest.register_assert_rewrite(
    "invariants",
    "support",
    "child_processes",
    "fleet",
    "fleet_state",
    "api_server",
    "network",
    "tcp_proxy",
)

from sqlalchemy import make_url, text  # noqa: E402
from sqlalchemy.ext.asyncio import create_async_engine  # noqa: E402
from support import POSTGRES_ENV, POSTGRES_SKIP  # noqa: E402

from coordinator.clock import FakeClock  # noqa: E402
from persistence import Store  # noqa: E402

# Every process a test starts ends with the test, however the run ends.
pytest_plugins = ("child_processes",)

BACKENDS = ["sqlite", "postgresql"]
PROCESS_TEST_TIMEOUT = 600  # seconds: the backstop of a test that starts real processes


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Tests of real processes wait on them with deadlines of their own that add up past
    the suite's 300 s backstop on a busy machine: theirs is larger (unless they set one)."""
    for item in items:
        if item.get_closest_marker("processes") and not item.get_closest_marker("timeout"):
            item.add_marker(pytest.mark.timeout(PROCESS_TEST_TIMEOUT))


@pytest.fixture(autouse=True)
def _hermetic_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Settings come from the environment: keep the developer's own out of tests."""
    for name in list(os.environ):
        ours = name.startswith(("COORDINATOR_", "AGENT_OCCURRENCE_"))
        if ours and name != POSTGRES_ENV:
            monkeypatch.delenv(name)


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite+aiosqlite:///{tmp_path / 'fleet.db'}"


@asynccontextmanager
async def fresh_postgres_database() -> AsyncIterator[str]:
    """A new database on the test server, dropped afterwards: runs never share rows."""
    base = os.environ.get(POSTGRES_ENV)
    if not base:
        pytest.skip(POSTGRES_SKIP)
    name = f"coordinator_test_{uuid.uuid4().hex[:12]}"
    admin = create_async_engine(base, isolation_level="AUTOCOMMIT")
    try:
        async with admin.connect() as conn:
            await conn.execute(text(f'CREATE DATABASE "{name}"'))
    except Exception as exc:
        await admin.dispose()
        raise RuntimeError(f"{POSTGRES_ENV} is set but the server did not answer: {exc}") from exc
    try:
        yield make_url(base).set(database=name).render_as_string(hide_password=False)
    finally:
        async with admin.connect() as conn:
            await conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        await admin.dispose()


@pytest.fixture
async def postgres_url() -> AsyncIterator[str]:
    async with fresh_postgres_database() as url:
        yield url


@pytest.fixture(params=BACKENDS)
async def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[str]:
    """Every backend in turn: the Store's contract is the same on each."""
    if request.param == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path / 'fleet.db'}"
        return
    async with fresh_postgres_database() as url:
        yield url


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
async def store(database_url: str, clock: FakeClock) -> AsyncIterator[Store]:
    opened = await Store.open(database_url, clock=clock.now)
    try:
        yield opened
    finally:
        pool = opened.engine.pool
        checked_out = pool.checkedout() if hasattr(pool, "checkedout") else 0
        await opened.close()
        assert checked_out == 0, "a test left a database connection checked out"
