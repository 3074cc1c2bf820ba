"""A shutdown's last wave records the result before it leaves, with real processes.

Found by a 60 s cut of every PostgreSQL connection mid-shutdown: when it healed, the
last wave's driver was already leaving, released its lease and left; the others left
too; nobody recorded completion and the rollout showed ``running`` for good. Here the
same hole is opened on purpose, in an order that no load can change: the other member of
the last wave is frozen (SIGSTOP) before that wave is signalled, so the driver cannot
record the result on its own; once the driver holds the lease with the last wave
signalled it is frozen and killed, and the other member is let go. It reaches shutdown
after the driver is lost, so it must stay to record the result before it leaves.
"""

from __future__ import annotations

import signal
from collections.abc import Iterator
from pathlib import Path

import anyio
import pytest
from fleet import Fleet, coordinator, coordinator_env, wait_rollout
from invariants import check_fleet_invariants

from persistence import Store
from schemas import EventKind, LifecycleKind, RolloutStatus

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
        # Time to freeze the last wave's other member before that wave is signalled.
        COORDINATOR_EXPLORER_SOAK="15",
        # It stays frozen for about the two soaks: it must not be judged gone meanwhile.
        COORDINATOR_MEMBER_TTL="90",
        # The canary groups as planned (1 / 1 / 2): a last wave of two, one to freeze.
        COORDINATOR_MIN_SERVING_FRACTION="0",
    )
    fleet = Fleet(tmp_path, env)
    fleets.append(fleet)
    for i in (1, 2, 3, 4):
        fleet.start(f"occurrence-{i}")
    store = await Store.open(database_url)
    try:
        wakeup = await wait_rollout(store, LifecycleKind.WAKEUP, deadline=240)
        assert wakeup.status is RolloutStatus.COMPLETED
        requested = coordinator("shutdown", "--reason", "last wave test", env=env)
        assert requested.returncode == 0, requested.stderr

        with anyio.fail_after(120):
            while not (found := await store.rollouts(kind=LifecycleKind.SHUTDOWN, limit=1)):
                await anyio.sleep(0.05)
        (shutdown,) = found
        last = shutdown.waves[-1]
        assert len(last.members) == 2, last
        # Whichever of the two does not hold the lease now (the driver leaves in the last
        # wave, so the one holding it by then is the other).
        other = next(m for m in last.members if m != shutdown.driver_id)
        held = fleet.processes[other]
        held.send_signal(signal.SIGSTOP)
        try:
            before = await store.rollout(shutdown.rollout_id)
            assert before.waves[-1].signalled_at is None, "the test froze the member too late"

            # The last wave is signalled; its driver is the member that is not frozen.
            with anyio.fail_after(120):
                while True:
                    shutdown = await store.rollout(shutdown.rollout_id)
                    last = shutdown.waves[-1]
                    if last.signalled_at is not None and shutdown.driver_id in last.members:
                        break
                    await anyio.sleep(0.05)
            driver = shutdown.driver_id
            assert driver is not None and driver != other
            frozen = fleet.processes[driver]
            frozen.send_signal(signal.SIGSTOP)
            still = await store.rollout(shutdown.rollout_id)
            assert still.status is RolloutStatus.RUNNING, "the driver recorded without the other"
            frozen.kill()
        finally:
            held.send_signal(signal.SIGCONT)

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
