"""Invariant 6 with real processes: the database dropping every connection mid-rollout
(as a PostgreSQL restart does) delays the fleet, never corrupts it or crashes it."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import anyio
import pytest
from fleet import Fleet, coordinator, coordinator_env, wait_rollout
from invariants import check_fleet_invariants
from sqlalchemy import make_url, text
from sqlalchemy.ext.asyncio import create_async_engine
from support import POSTGRES_ENV

from persistence import Store
from schemas import LifecycleKind, RolloutStatus

pytestmark = pytest.mark.processes


@pytest.fixture
def fleet(tmp_path: Path, postgres_url: str) -> Iterator[Fleet]:
    running = Fleet(
        tmp_path,
        coordinator_env(
            postgres_url,
            AGENT_OCCURRENCE_COUNT="4",
            COORDINATOR_EXPLORER_SOAK="3",
            COORDINATOR_EARLY_ADOPTER_SOAK="3",
        ),
    )
    try:
        yield running
    finally:
        running.stop_all()


async def cut_every_connection(database: str) -> int:
    """Terminate every server process serving ``database``: each client sees its
    connection reset, as in a server restart. Other databases are left alone."""
    admin = create_async_engine(os.environ[POSTGRES_ENV], isolation_level="AUTOCOMMIT")
    try:
        async with admin.connect() as conn:
            cut = await conn.execute(
                text(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                    "WHERE datname = :db AND pid <> pg_backend_pid()"
                ),
                {"db": database},
            )
            return len(cut.all())
    finally:
        await admin.dispose()


async def test_connections_cut_mid_rollout_delay_but_never_corrupt(
    fleet: Fleet, postgres_url: str
) -> None:
    for i in (1, 2, 3, 4):
        fleet.start(f"occurrence-{i}")
    database = make_url(postgres_url).database
    assert database is not None
    store = await Store.open(postgres_url)
    try:
        wakeup = await wait_rollout(store, LifecycleKind.WAKEUP, deadline=120)
        assert wakeup.status is RolloutStatus.COMPLETED
        requested = coordinator("shutdown", "--reason", "database trouble", env=fleet.env)
        assert requested.returncode == 0, requested.stderr
        with anyio.fail_after(60):
            while not await store.rollouts(kind=LifecycleKind.SHUTDOWN):
                await anyio.sleep(0.1)

        cuts = []
        for _ in range(3):
            cuts.append(await cut_every_connection(database))
            await anyio.sleep(1.0)
        assert all(n > 0 for n in cuts)  # every cut really dropped live connections

        await store.close()  # its pooled connections were cut too
        store = await Store.open(postgres_url)
        done = await wait_rollout(store, LifecycleKind.SHUTDOWN, deadline=120)
        assert done.status is RolloutStatus.COMPLETED
        await check_fleet_invariants(store)
        codes = await fleet.wait_exits(deadline=60)
        assert set(codes.values()) == {0}, {
            k: fleet.log_of(k)[-3000:] for k, c in codes.items() if c != 0
        }
        logs = "".join(fleet.log_of(k) for k in fleet.processes)
        assert "Traceback" not in logs
        assert "notify_degraded_to_polling" in logs  # the listeners noticed, and came back
    finally:
        await store.close()
