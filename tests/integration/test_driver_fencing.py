"""A driver that takes over must not step from a view read before it held the lease.

The chaos trial that found it (`scripts/chaos.py --trials 7 --occurrences 9 --seed 101`)
ended with "explorer signalled again while signalled". Here the same interleaving is
forced with two real ``RolloutDriver``s on one store and a fake clock, on both backends:
A's lease runs out, B reads the fleet, A renews and signals the explorer, A's lease runs
out again, B takes the lease and steps from the view it read before.
"""

from __future__ import annotations

import pytest
import structlog
from invariants import check_fleet_invariants
from support import fast_settings

from coordinator.clock import FakeClock
from coordinator.connectivity import Connectivity
from coordinator.driver import RolloutDriver
from coordinator.policy.planning import build_plan
from persistence import Store
from schemas import (
    Decision,
    EventKind,
    LifecycleKind,
    OccurrenceState,
    RolloutAction,
    RolloutRecord,
    Settings,
    Verdict,
    WaveStatus,
)

SETTINGS = fast_settings()
LEASE = SETTINGS.lease_ttl
WINDOW = 86400.0


def driver_for(store: Store, clock: FakeClock, occurrence_id: str) -> RolloutDriver:
    settings = SETTINGS.model_copy(update={"occurrence_id": occurrence_id})
    connectivity = Connectivity(clock, settings.heartbeat_interval)
    log = structlog.get_logger("test").bind(occurrence_id=occurrence_id)
    return RolloutDriver(store, settings, log, connectivity)


async def decided_wakeup(
    store: Store, clock: FakeClock, settings: Settings = SETTINGS
) -> RolloutRecord:
    """A wakeup decided by "a", who drives it; a, b and c are live members."""
    members = {}
    for name in ("a", "b", "c"):
        members[name] = await store.register(name, host="h", pid=1, protocol_version=1)
        await store.set_state(members[name], OccurrenceState.WAKEUP)
    task = await store.open_wakeup_task("a", WINDOW)
    assert task is not None
    claim = await store.claim_task(task.task_id, "a", LEASE)
    assert claim is not None
    decision = Decision(verdict=Verdict.ACCEPT, reason="ok", decided_by="a", decided_at=clock.now())
    plan = build_plan(LifecycleKind.WAKEUP, "a", ["a", "b", "c"], settings)
    return await store.record_decision(claim, decision, plan, driver="a", lease_ttl=LEASE)


async def explorer_signals(store: Store, rollout_id: str) -> int:
    events = await store.events(kinds=(EventKind.WAVE_SIGNALLED,))
    return sum(1 for e in events if e.rollout_id == rollout_id and e.wave == "explorer")


async def test_a_driver_that_takes_over_does_not_repeat_a_step_from_a_stale_view(
    store: Store, clock: FakeClock
) -> None:
    rollout = await decided_wakeup(store, clock)
    a, b = driver_for(store, clock, "a"), driver_for(store, clock, "b")
    a.adopt(rollout.rollout_id, rollout.driver_token)

    clock.advance(LEASE + 0.1)  # A's lease runs out (A was slow, or paused)
    stale = await store.fleet_view(WINDOW)  # B reads the fleet: explorer pending, lease free
    assert stale.running[0].waves[0].status is WaveStatus.PENDING

    await a.drive(await store.fleet_view(WINDOW), OccurrenceState.WAKEUP)  # A signals
    assert await explorer_signals(store, rollout.rollout_id) == 1
    signalled = (await store.rollout(rollout.rollout_id)).waves[0]

    clock.advance(LEASE + 0.1)  # A's lease runs out again
    await b.drive(stale, OccurrenceState.WAKEUP)  # B takes the lease, steps from its old view

    after = await store.rollout(rollout.rollout_id)
    assert after.driver_id == "b", "B took the free lease"
    assert await explorer_signals(store, rollout.rollout_id) == 1, "explorer signalled twice"
    assert after.waves[0] == signalled
    await check_fleet_invariants(store)

    # B recomputes from a fresh view and carries on from where A left off.
    clock.advance(SETTINGS.explorer_soak)
    await b.drive(await store.fleet_view(WINDOW), OccurrenceState.WAKEUP)
    assert await explorer_signals(store, rollout.rollout_id) == 1
    await check_fleet_invariants(store)


async def test_every_write_to_a_rollout_moves_its_version(store: Store, clock: FakeClock) -> None:
    """The fence only holds if nothing else changes a rollout without bumping it."""
    rollout = await decided_wakeup(store, clock)
    versions = [rollout.version]
    a = driver_for(store, clock, "a")
    a.adopt(rollout.rollout_id, rollout.driver_token)
    await a.drive(await store.fleet_view(WINDOW), OccurrenceState.WAKEUP)  # a step
    versions.append((await store.rollout(rollout.rollout_id)).version)
    await store.join_last_wave(rollout.rollout_id, "late")  # a late joiner
    versions.append((await store.rollout(rollout.rollout_id)).version)
    for action in (RolloutAction.PAUSE, RolloutAction.RESUME, RolloutAction.ABORT):
        record = await store.control_rollout(
            rollout.rollout_id, action, issued_by="op", reason="test"
        )
        assert record.accepted, record.detail
        versions.append((await store.rollout(rollout.rollout_id)).version)
    assert versions == sorted(set(versions)), f"a write left the version unchanged: {versions}"


@pytest.mark.parametrize("renewals", [1, 5])
async def test_a_renewal_changes_no_version_and_keeps_the_lease(
    store: Store, clock: FakeClock, renewals: int
) -> None:
    long_soak = SETTINGS.model_copy(update={"explorer_soak": LEASE * renewals})
    rollout = await decided_wakeup(store, clock, long_soak)
    a = driver_for(store, clock, "a")
    a.adopt(rollout.rollout_id, rollout.driver_token)
    await a.drive(await store.fleet_view(WINDOW), OccurrenceState.WAKEUP)  # signal explorer
    stepped = await store.rollout(rollout.rollout_id)
    for _ in range(renewals):
        clock.advance(LEASE * 0.6)  # inside the soak: nothing to step, the lease needs renewing
        await a.drive(await store.fleet_view(WINDOW), OccurrenceState.WAKEUP)
    renewed = await store.rollout(rollout.rollout_id)
    assert renewed.version == stepped.version
    assert renewed.driver_lease_expires_at is not None
    assert renewed.driver_lease_expires_at > clock.now()
    assert a.holding == {rollout.rollout_id}
