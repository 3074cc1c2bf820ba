"""Shared fixtures: a real SQLite file per test, a store on a fake clock, fast settings."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from coordinator.clock import FakeClock
from persistence import Store
from schemas import Settings, load_settings

# Timings small enough for tests, in the ratios the defaults keep.
FAST_TIMINGS: dict[str, Any] = {
    "poll_interval": 0.25,
    "heartbeat_interval": 0.5,
    "member_ttl": 5.0,
    "lease_ttl": 2.0,
    "explorer_soak": 2.0,
    "early_adopter_soak": 3.0,
    "health_poll": 0.5,
    "health_timeout": 20.0,
    "discovery_grace": 5.0,
}


@pytest.fixture(autouse=True)
def _hermetic_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Settings come from the environment: keep the developer's own out of tests."""
    import os

    for name in list(os.environ):
        ours = name.startswith(("COORDINATOR_", "AGENT_OCCURRENCE_"))
        if ours and name != "COORDINATOR_TEST_POSTGRES_URL":
            monkeypatch.delenv(name)


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite+aiosqlite:///{tmp_path / 'fleet.db'}"


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
async def store(sqlite_url: str, clock: FakeClock) -> AsyncIterator[Store]:
    opened = await Store.open(sqlite_url, clock=clock.now)
    try:
        yield opened
    finally:
        pool = opened.engine.pool
        checked_out = pool.checkedout() if hasattr(pool, "checkedout") else 0
        await opened.close()
        assert checked_out == 0, "a test left a database connection checked out"


def fast_settings(**overrides: Any) -> Settings:
    return load_settings(**{**FAST_TIMINGS, **overrides})
