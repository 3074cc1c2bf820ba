"""Invariants 1 and 4 with real processes: a decider or a driver killed (kill -9) or
paused (SIGSTOP) is replaced once its lease expires, and nothing is decided or signalled
twice. The audit trail shows each takeover."""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator
from pathlib import Path

import anyio
import pytest
from fleet import Fleet, coordinator, coordinator_env, wait_rollout
from invariants import check_fleet_invariants

from persistence import Store
from schemas import EventKind, LifecycleKind, RolloutRecord, RolloutStatus, WaveStatus

pytestmark = pytest.mark.processes

HERE = Path(__file__).parent


def takeover_env(database_url: str, marks: Path, **extra: str) -> dict[str, str]:
    path = os.pathsep.join(p for p in (str(HERE), os.environ.get("PYTHONPATH", "")) if p)
    return coordinator_env(
        database_url,
        COORDINATOR_TEST_MARKS=str(marks),
        PYTHONPATH=path,
        **extra,
    )


@pytest.fixture
def marks(tmp_path: Path) -> Path:
    folder = tmp_path / "marks"
    folder.mkdir()
    return folder


@pytest.fixture
def fleet_of(tmp_path: Path) -> Iterator[list[Fleet]]:
    fleets: list[Fleet] = []
    yield fleets
    for fleet in fleets:
        fleet.stop_all()


async def wait_for_mark(marks: Path, deadline: float) -> Path:
    with anyio.fail_after(deadline):
        while not (found := sorted(marks.iterdir())):
            await anyio.sleep(0.1)
    return found[0]


async def test_a_decider_killed_mid_decision_is_taken_over(
    tmp_path: Path, database_url: str, marks: Path, fleet_of: list[Fleet]
) -> None:
    env = takeover_env(
        database_url,
        marks,
        AGENT_OCCURRENCE_COUNT="3",
        COORDINATOR_ENGINE="engines:FirstDeciderStalls",
    )
    fleet = Fleet(tmp_path, env)
    fleet_of.append(fleet)
    for i in (1, 2, 3):
        fleet.start(f"occurrence-{i}")
    first = await wait_for_mark(marks, deadline=90)
    task_id, pid = first.name.rsplit(".", 1)
    killed = first.read_text()
    os.kill(int(pid), signal.SIGKILL)

    store = await Store.open(database_url)
    try:
        with anyio.fail_after(90):
            while not await store.rollouts(kind=LifecycleKind.WAKEUP):
                await anyio.sleep(0.25)
        (rollout,) = await store.rollouts(kind=LifecycleKind.WAKEUP)
        assert rollout.task_id == task_id
        assert rollout.decision.decided_by != killed
        claims = await store.events(kinds=(EventKind.TASK_CLAIMED,))
        assert claims[0].occurrence_id == killed
        assert claims[-1].details.get("took_over_from") == killed
        assert len(await store.events(kinds=(EventKind.DECISION_MADE,))) == 1
        assert len(list(marks.glob(f"{task_id}.*"))) == 2  # asked twice, decided once
        await check_fleet_invariants(store)
    finally:
        await store.close()


async def start_fleet_and_shutdown(
    tmp_path: Path, database_url: str, marks: Path, fleet_of: list[Fleet]
) -> tuple[Fleet, Store, RolloutRecord]:
    """Four occurrences woken up, then a shutdown whose explorer wave is under way."""
    env = takeover_env(
        database_url,
        marks,
        AGENT_OCCURRENCE_COUNT="4",
        COORDINATOR_EXPLORER_SOAK="4",
        COORDINATOR_EARLY_ADOPTER_SOAK="4",
        # No capacity floor: the shutdown keeps an early-adopter wave (1 / 1 / 2) for the
        # driver to be killed across; at the default 0.8 a fleet of four has none.
        COORDINATOR_MIN_SERVING_FRACTION="0",
    )
    fleet = Fleet(tmp_path, env)
    fleet_of.append(fleet)
    for i in (1, 2, 3, 4):
        fleet.start(f"occurrence-{i}")
    store = await Store.open(database_url)
    wakeup = await wait_rollout(store, LifecycleKind.WAKEUP, deadline=120)
    assert wakeup.status is RolloutStatus.COMPLETED
    requested = coordinator("shutdown", "--reason", "takeover test", env=env)
    assert requested.returncode == 0, requested.stderr
    with anyio.fail_after(60):
        while True:
            found = await store.rollouts(kind=LifecycleKind.SHUTDOWN, limit=1)
            if found and found[0].driver_id and found[0].waves[0].signalled_at is not None:
                return fleet, store, found[0]
            await anyio.sleep(0.1)


async def test_a_killed_driver_is_replaced_and_the_rollout_resumes(
    tmp_path: Path, database_url: str, marks: Path, fleet_of: list[Fleet]
) -> None:
    fleet, store, rollout = await start_fleet_and_shutdown(tmp_path, database_url, marks, fleet_of)
    try:
        driver = rollout.driver_id
        assert driver is not None
        assert rollout.wave_of(driver) is rollout.waves[-1]  # never in a wave leaving first
        fleet.processes[driver].kill()

        done = await wait_rollout(store, LifecycleKind.SHUTDOWN, deadline=120)
        assert done.status is RolloutStatus.COMPLETED
        assert [w.status for w in done.waves[:2]] == [WaveStatus.HEALTHY, WaveStatus.HEALTHY]
        takeovers = [
            e
            for e in await store.events(
                rollout_id=done.rollout_id, kinds=(EventKind.DRIVER_ACQUIRED,)
            )
            if e.details.get("took_over_from") == driver
        ]
        assert len(takeovers) == 1 and takeovers[0].occurrence_id != driver
        assert driver in done.waves[-1].failed  # the dead driver never reached shutdown
        await check_fleet_invariants(store)
        codes = await fleet.wait_exits(deadline=60)
        assert codes.pop(driver) == -signal.SIGKILL
        assert set(codes.values()) == {0}
    finally:
        await store.close()


async def test_a_paused_driver_loses_its_lease_and_changes_nothing(
    tmp_path: Path, database_url: str, marks: Path, fleet_of: list[Fleet]
) -> None:
    fleet, store, rollout = await start_fleet_and_shutdown(tmp_path, database_url, marks, fleet_of)
    try:
        driver = rollout.driver_id
        assert driver is not None
        paused = fleet.processes[driver]
        paused.send_signal(signal.SIGSTOP)
        try:
            with anyio.fail_after(60):
                while (await store.rollout(rollout.rollout_id)).driver_id == driver:
                    await anyio.sleep(0.1)
        finally:
            paused.send_signal(signal.SIGCONT)

        done = await wait_rollout(store, LifecycleKind.SHUTDOWN, deadline=120)
        assert done.status is RolloutStatus.COMPLETED
        await check_fleet_invariants(store)  # every wave signalled and settled exactly once
        codes = await fleet.wait_exits(deadline=60)
        assert set(codes.values()) == {0}
        assert "driver_lease_lost" in fleet.log_of(driver)
        acquired = await store.events(
            rollout_id=done.rollout_id, kinds=(EventKind.DRIVER_ACQUIRED,)
        )
        assert any(e.details.get("took_over_from") == driver for e in acquired)
    finally:
        await store.close()
