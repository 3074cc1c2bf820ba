"""Database trouble that heals must not kill occurrences, with real processes.

Probing found two error classes treated as fatal: a PostgreSQL server that is full
(SQLSTATE 53300, "too many clients") crashed occurrences with exit 1, and a full disk
under SQLite ("database or disk is full") crashed a whole fleet within 0.3 s. Both heal
when the resource frees. Each test runs a fleet into the trouble, checks that every
occurrence stays up and says it is degraded, lets the trouble heal, checks that the
fleet recovers (and records it), and completes a coordinated shutdown.
"""

from __future__ import annotations

import os
import subprocess
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import anyio
import pytest
from fleet import Fleet, coordinator, coordinator_env, wait_members, wait_rollout
from invariants import check_fleet_invariants
from sqlalchemy import make_url, text
from sqlalchemy.ext.asyncio import create_async_engine
from support import POSTGRES_ENV, POSTGRES_SKIP

from persistence import Store
from schemas import EventKind, LifecycleKind, OccurrenceState, RolloutStatus

pytestmark = pytest.mark.processes

OCCURRENCES = ("occurrence-1", "occurrence-2")
TROUBLE = 8.0  # seconds the resource stays exhausted: several failed retry rounds


async def serve_until_degraded(fleet: Fleet, store: Store) -> None:
    """Every occurrence logs that it is degraded, and none exits."""
    with anyio.fail_after(90):
        while not all("database_degraded" in fleet.log_of(o) for o in OCCURRENCES):
            assert all(p.poll() is None for p in fleet.processes.values()), _exits(fleet)
            await anyio.sleep(0.25)
    await anyio.sleep(TROUBLE)
    assert all(p.poll() is None for p in fleet.processes.values()), _exits(fleet)


async def recover_and_shut_down(fleet: Fleet, store: Store, env: dict[str, str]) -> None:
    await wait_members(
        store,
        lambda ms: all(m.is_alive(store.now(), 3.0) for m in ms if m.occurrence_id in OCCURRENCES),
        deadline=90,
        what="heartbeats to land again",
    )
    with anyio.fail_after(90):
        while len(await store.events(kinds=(EventKind.DATABASE_RECOVERED,))) < len(OCCURRENCES):
            await anyio.sleep(0.25)
    recovered = await store.events(kinds=(EventKind.DATABASE_RECOVERED,))
    assert {e.occurrence_id for e in recovered} >= set(OCCURRENCES)
    requested = coordinator("shutdown", "--reason", "after the trouble", "--wait", env=env)
    assert requested.returncode == 0, requested.stdout + requested.stderr
    codes = await fleet.wait_exits(deadline=90)
    assert set(codes.values()) == {0}, codes
    for name in OCCURRENCES:
        log = fleet.log_of(name)
        assert "database_recovered" in log
        assert "Traceback" not in log and "occurrence_crashed" not in log
    await check_fleet_invariants(store)


def _exits(fleet: Fleet) -> str:
    return ", ".join(f"{k} exited {p.poll()}" for k, p in fleet.processes.items())


async def start_fleet(tmp_path: Path, env: dict[str, str], store: Store) -> Fleet:
    fleet = Fleet(tmp_path, env)
    for name in OCCURRENCES:
        fleet.start(name)
    wakeup = await wait_rollout(store, LifecycleKind.WAKEUP, deadline=120)
    assert wakeup.status is RolloutStatus.COMPLETED
    await wait_members(
        store,
        lambda ms: sum(m.state is OccurrenceState.WORK for m in ms) == len(OCCURRENCES),
        deadline=60,
        what="the fleet to serve",
    )
    return fleet


# -- PostgreSQL: a full server -------------------------------------------------------


async def _limited_role_database() -> AsyncIterator[tuple[str, str]]:
    """A database owned by a login role of its own (superusers ignore connection
    limits), as (url, role); both dropped afterwards."""
    base = os.environ.get(POSTGRES_ENV)
    if not base:
        pytest.skip(POSTGRES_SKIP)
    suffix = uuid.uuid4().hex[:10]
    role, name = f"coordinator_full_{suffix}", f"coordinator_test_{suffix}"
    admin = create_async_engine(base, isolation_level="AUTOCOMMIT")
    async with admin.connect() as conn:
        await conn.execute(text(f'CREATE ROLE "{role}" LOGIN'))
        await conn.execute(text(f'CREATE DATABASE "{name}" OWNER "{role}"'))
    try:
        url = make_url(base).set(database=name, username=role, password=None)
        yield url.render_as_string(hide_password=False), role
    finally:
        async with admin.connect() as conn:
            await conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            await conn.execute(text(f'DROP ROLE IF EXISTS "{role}"'))
        await admin.dispose()


@pytest.fixture
async def limited_role_database() -> AsyncIterator[tuple[str, str]]:
    async for pair in _limited_role_database():
        yield pair


async def test_a_full_postgresql_server_degrades_the_fleet_and_it_recovers(
    tmp_path: Path, limited_role_database: tuple[str, str]
) -> None:
    url, role = limited_role_database
    env = coordinator_env(url, AGENT_OCCURRENCE_COUNT=str(len(OCCURRENCES)))
    base = os.environ[POSTGRES_ENV]
    admin = create_async_engine(base, isolation_level="AUTOCOMMIT")
    store = await Store.open(url)
    fleet: Fleet | None = None
    try:
        fleet = await start_fleet(tmp_path, env, store)
        await store.close()  # the test's own connections would count against the limit too
        async with admin.connect() as conn:
            # No new connection for the role, and every one it has is cut: each
            # reconnect is refused with SQLSTATE 53300 until the limit is lifted.
            await conn.execute(text(f'ALTER ROLE "{role}" CONNECTION LIMIT 0'))
            await conn.execute(
                text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = :r"),
                {"r": role},
            )
        await serve_until_degraded(fleet, store)
        assert any("53300" in fleet.log_of(o) or "too many" in fleet.log_of(o) for o in OCCURRENCES)
        async with admin.connect() as conn:
            await conn.execute(text(f'ALTER ROLE "{role}" CONNECTION LIMIT -1'))
        store = await Store.open(url)
        await recover_and_shut_down(fleet, store, env)
    finally:
        if fleet is not None:
            fleet.stop_all()
        await store.close()
        await admin.dispose()


# -- SQLite: a full disk ----------------------------------------------------------------


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 16 MiB tmpfs: a real file system that really fills up."""
    mount = tmp_path / "disk"
    mount.mkdir()
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=16m", "tmpfs", str(mount)],
        capture_output=True,
        text=True,
    )
    if done.returncode != 0:
        pytest.skip(f"a full disk needs a tmpfs mount, which failed here: {done.stderr.strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def fill(disk: Path) -> Path:
    """Write a ballast file until the disk is full; returns it."""
    ballast = disk / "ballast"
    chunk = b"\0" * 65536
    with ballast.open("wb") as out:
        try:
            while True:
                out.write(chunk)
                out.flush()
        except OSError:
            pass
    return ballast


async def test_a_full_disk_degrades_a_sqlite_fleet_and_it_recovers(
    tmp_path: Path, small_disk: Path
) -> None:
    url = f"sqlite+aiosqlite:///{small_disk / 'fleet.db'}"
    env = coordinator_env(url, AGENT_OCCURRENCE_COUNT=str(len(OCCURRENCES)))
    store = await Store.open(url)
    fleet: Fleet | None = None
    try:
        fleet = await start_fleet(tmp_path, env, store)
        ballast = fill(small_disk)
        await serve_until_degraded(fleet, store)
        assert any("disk is full" in fleet.log_of(o) for o in OCCURRENCES)
        ballast.unlink()
        await recover_and_shut_down(fleet, store, env)
    finally:
        if fleet is not None:
            fleet.stop_all()
        await store.close()
