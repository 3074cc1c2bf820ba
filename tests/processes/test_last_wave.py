"""A shutdown's last wave records the result before it leaves, with real processes.

Found by a 60 s cut of every PostgreSQL connection mid-shutdown: when it healed, the
last wave's driver was already leaving, released its lease and left; the others left
too; nobody recorded completion and the rollout showed ``running`` for good. Here the
same hole is opened on purpose: while the last wave's driver holds the lease between two
gate checks, the other member of that wave leaves, and the driver is frozen (SIGSTOP)
and then killed. The member that left last must have stayed to record the result.
"""

from __future__ import annotations

import signal
from collections.abc import Iterator
from pathlib import Path

import anyio
import pytest
from fleet import Fleet, coordinator, coordinator_env, wait_members, wait_rollout
from invariants import check_fleet_invariants

from persistence import Store
from schemas import EventKind, LifecycleKind, OccurrenceState, RolloutStatus

pytestmark = pytest.mark.processes


@pytest.fixture
def fleets() -> Iterator[list[Fleet]]:
    started: list[Fleet] = []
    yield started
    for fleet in started:
        fleet.stop_all()


async def test_the_last_wave_records_the_result_even_when_its_driver_is_lost(
    tmp_path: Path, database_url: str, fleets: list[Fleet]
) -> None:
    env = coordinator_env(
        database_url,
        AGENT_OCCURRENCE_COUNT="4",
        # A slow gate: between two checks of the last wave, its driver holds the lease
        # while the other member of that wave leaves.
        COORDINATOR_HEALTH_POLL="6",
    )
    fleet = Fleet(tmp_path, env)
    fleets.append(fleet)
    for i in (1, 2, 3, 4):
        fleet.start(f"occurrence-{i}")
    store = await Store.open(database_url)
    try:
        wakeup = await wait_rollout(store, LifecycleKind.WAKEUP, deadline=180)
        assert wakeup.status is RolloutStatus.COMPLETED
        requested = coordinator("shutdown", "--reason", "last wave test", env=env)
        assert requested.returncode == 0, requested.stderr

        # The general wave (two members) is signalled; its driver is one of them.
        with anyio.fail_after(120):
            while True:
                (shutdown,) = await store.rollouts(kind=LifecycleKind.SHUTDOWN, limit=1)
                last = shutdown.waves[-1]
                if last.signalled_at is not None and shutdown.driver_id in last.members:
                    break
                await anyio.sleep(0.05)
        driver = shutdown.driver_id
        (other,) = [m for m in last.members if m != driver]
        await wait_members(
            store,
            lambda ms: any(
                m.occurrence_id == other and m.state is OccurrenceState.SHUTDOWN for m in ms
            ),
            deadline=60,
            what=f"{other} to reach shutdown",
        )
        frozen = fleet.processes[driver]
        frozen.send_signal(signal.SIGSTOP)
        still = await store.rollout(shutdown.rollout_id)
        assert still.status is RolloutStatus.RUNNING, "the driver finished before it froze"
        frozen.kill()

        done = await wait_rollout(store, LifecycleKind.SHUTDOWN, deadline=120)
        assert done.status is RolloutStatus.COMPLETED, done.abort_reason
        assert driver in done.waves[-1].failed  # it never reached shutdown
        # The member that stayed took the lease over and recorded the result; as the
        # driver of a shutdown it is not judged by the gate it records.
        assert other not in done.waves[-1].failed
        acquired = await store.events(
            rollout_id=done.rollout_id, kinds=(EventKind.DRIVER_ACQUIRED,)
        )
        assert [e.occurrence_id for e in acquired if e.details.get("took_over_from") == driver] == [
            other
        ]
        codes = await fleet.wait_exits(deadline=60)
        assert codes.pop(driver) == -signal.SIGKILL
        assert set(codes.values()) == {0}
        await check_fleet_invariants(store)
    finally:
        await store.close()
