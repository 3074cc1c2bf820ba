"""Invariant 6 through a long outage: while the network to PostgreSQL is silently
partitioned, and later while the server is gone altogether, every occurrence keeps
serving in its state and decides nothing; when the database returns, the fleet catches
up, and the rollout it missed completes with every invariant intact.

The fleet reaches the database only through a relay process (``tests/tcp_proxy.py``):
pausing it is a dead link (nothing errors, queries just hang), killing it is a server
that went away (connections reset, new ones refused)."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path

import anyio
import pytest
from fleet import Fleet, coordinator, coordinator_env, wait_members, wait_rollout
from invariants import check_fleet_invariants
from network import Relay
from sqlalchemy import make_url

from persistence import Store
from schemas import LifecycleKind, OccurrenceState, RolloutStatus, TaskStatus

pytestmark = pytest.mark.processes

OCCURRENCES = ("occurrence-1", "occurrence-2", "occurrence-3", "occurrence-4")
# Longer than every timeout that could end the fleet's patience: the lease (3 s), a
# member's TTL (10 s) and one PostgreSQL transaction's deadline (10 s).
PARTITION = 25.0
SERVER_GONE = 15.0


@pytest.fixture
def relay(postgres_url: str) -> Iterator[Relay]:
    url = make_url(postgres_url)
    running = Relay("127.0.0.1", url.host or "127.0.0.1", url.port or 5432)
    running.start()
    try:
        yield running
    finally:
        running.kill()


@pytest.fixture
def fleet(tmp_path: Path, postgres_url: str, relay: Relay) -> Iterator[Fleet]:
    running = Fleet(
        tmp_path,
        coordinator_env(
            relay.url_for(postgres_url),
            AGENT_OCCURRENCE_COUNT=str(len(OCCURRENCES)),
            COORDINATOR_EXPLORER_SOAK="2",
            COORDINATOR_EARLY_ADOPTER_SOAK="2",
        ),
    )
    try:
        yield running
    finally:
        running.stop_all()


async def test_a_fleet_cut_off_from_its_database_keeps_serving_then_catches_up(
    fleet: Fleet, relay: Relay, postgres_url: str
) -> None:
    for occurrence_id in OCCURRENCES:
        fleet.start(occurrence_id)
    # The test itself reaches the server directly, like an operator on another network.
    store = await Store.open(postgres_url)
    try:
        wakeup = await wait_rollout(store, LifecycleKind.WAKEUP, deadline=120)
        assert wakeup.status is RolloutStatus.COMPLETED
        await wait_members(
            store,
            lambda ms: sum(m.state is OccurrenceState.WORK for m in ms) == len(OCCURRENCES),
            deadline=60,
            what="every occurrence serving",
        )

        relay.partition()
        # The operator asks for a shutdown the fleet cannot hear about yet.
        requested, created = await store.request_shutdown("outage drill", "operator")
        assert created
        await anyio.sleep(PARTITION)
        assert all(p.poll() is None for p in fleet.processes.values()), "a process gave up"
        task = await store.task(requested.task_id)
        assert task is not None and task.status is TaskStatus.PENDING  # nobody claimed it blind
        members = await store.members()
        assert {m.state for m in members} == {OccurrenceState.WORK}  # still serving
        # Every heartbeat is now older than the TTL: the first to reconnect must not take
        # the others for gone.
        assert all(store.now() - m.last_heartbeat_at > 10 for m in members)
        relay.heal()
        with anyio.fail_after(90):  # the fleet hears of the request and starts the rollout
            while not await store.rollouts(kind=LifecycleKind.SHUTDOWN):
                await anyio.sleep(0.2)

        relay.kill()  # now the server is gone in the middle of the shutdown rollout
        await anyio.sleep(SERVER_GONE)
        assert any(p.poll() is None for p in fleet.processes.values())
        relay.start()  # same port: the server is back

        done = await wait_rollout(store, LifecycleKind.SHUTDOWN, deadline=180)
        if done.status is not RolloutStatus.COMPLETED:
            trail = [(e.kind, e.occurrence_id, e.details) for e in await store.events()]
            pytest.fail(f"the shutdown ended {done.status}: {done}\n{trail[-40:]}")
        # Everyone was cut off together: the decider waited for their heartbeats to land
        # again instead of planning a shutdown of itself alone.
        assert {m for wave in done.waves for m in wave.members} == set(OCCURRENCES)
        await check_fleet_invariants(store)
        codes = await fleet.wait_exits(deadline=90)
        assert set(codes.values()) == {0}, {
            k: fleet.log_of(k)[-3000:] for k, c in codes.items() if c != 0
        }
        logs = "".join(fleet.log_of(k) for k in OCCURRENCES)
        assert "Traceback" not in logs
        assert "database_retry" in logs  # they noticed, and waited it out
    finally:
        await store.close()


async def test_a_sqlite_file_locked_for_long_delays_the_fleet_but_never_crashes_it(
    tmp_path: Path, sqlite_url: str
) -> None:
    """SQLite's outage: another program holds the write lock far longer than the busy
    timeout (5 s) and every retry. Readers still read (WAL), writers wait it out."""
    fleet = Fleet(
        tmp_path,
        coordinator_env(sqlite_url, AGENT_OCCURRENCE_COUNT="3", COORDINATOR_EXPLORER_SOAK="1"),
    )
    store = await Store.open(sqlite_url)
    try:
        for occurrence_id in OCCURRENCES[:3]:
            fleet.start(occurrence_id)
        wakeup = await wait_rollout(store, LifecycleKind.WAKEUP, deadline=120)
        assert wakeup.status is RolloutStatus.COMPLETED

        path = make_url(sqlite_url).database
        assert path is not None
        blocker = sqlite3.connect(path, isolation_level=None)
        blocker.execute("BEGIN EXCLUSIVE")  # heartbeats and every other write now wait
        try:
            await anyio.sleep(PARTITION)
            assert all(p.poll() is None for p in fleet.processes.values()), "a process gave up"
        finally:
            blocker.execute("ROLLBACK")
            blocker.close()

        stopped = coordinator("shutdown", "--reason", "after the lock", "--wait", env=fleet.env)
        assert stopped.returncode == 0, stopped.stdout + stopped.stderr
        codes = await fleet.wait_exits(deadline=90)
        assert set(codes.values()) == {0}, {
            k: fleet.log_of(k)[-3000:] for k, c in codes.items() if c != 0
        }
        await check_fleet_invariants(store)
        logs = "".join(fleet.log_of(k) for k in fleet.processes)
        assert "Traceback" not in logs
        assert "database_retry" in logs
    finally:
        fleet.stop_all()
        await store.close()
