"""A shutdown nobody is left to finish is concluded by whoever reads the fleet next.

On the Store of both backends, with the real driver for the steps before: the last wave
is signalled, then every member leaves (or dies) without anyone recording the result.
``status`` (and the control API, which shares ``collect_status``) must conclude it once.
"""

from __future__ import annotations

import structlog
from invariants import check_fleet_invariants
from support import fast_settings

from coordinator.clock import FakeClock
from coordinator.connectivity import Connectivity
from coordinator.driver import RolloutDriver
from coordinator.fleet_report import collect_status
from coordinator.policy.planning import build_plan
from persistence import Store
from schemas import (
    Decision,
    EventKind,
    LifecycleKind,
    OccurrenceRecord,
    OccurrenceState,
    RolloutRecord,
    RolloutStatus,
    Verdict,
    WaveStatus,
)

# No capacity floor: the FSD's groups, so an early adopter (b) leaves before the last wave
# (at the default MIN_SERVING_FRACTION a shutdown of four has no early adopter).
SETTINGS = fast_settings(occurrence_id="d", min_serving_fraction=0.0)
WINDOW = 86400.0
TTL = SETTINGS.member_ttl


async def shutdown_to_its_last_wave(
    store: Store, clock: FakeClock
) -> tuple[RolloutRecord, dict[str, OccurrenceRecord]]:
    """Explorer a and early adopter b have left in order; general c, d signalled; d drives."""
    me = {}
    for name in "abcd":
        me[name] = await store.register(name, host="h", pid=1, protocol_version=1)
        await store.set_state(me[name], OccurrenceState.WORK)
    task, _ = await store.request_shutdown("test", requested_by="op")
    claim = await store.claim_task(task.task_id, "a", SETTINGS.lease_ttl)
    assert claim is not None
    decision = Decision(verdict=Verdict.ACCEPT, reason="ok", decided_by="a", decided_at=clock.now())
    plan = build_plan(LifecycleKind.SHUTDOWN, "a", list("abcd"), SETTINGS)
    assert [w.members for w in plan.waves] == [("a",), ("b",), ("c", "d")]
    rollout = await store.record_decision(
        claim, decision, plan, driver=None, lease_ttl=SETTINGS.lease_ttl
    )
    log = structlog.get_logger("test")
    driver = RolloutDriver(store, SETTINGS, log, Connectivity(clock, SETTINGS.heartbeat_interval))

    async def drive() -> RolloutRecord:
        await driver.drive(await store.fleet_view(WINDOW), OccurrenceState.WORK)
        return await store.rollout(rollout.rollout_id)

    for leaver, soak in (("a", SETTINGS.explorer_soak), ("b", SETTINGS.early_adopter_soak)):
        await drive()  # signal the wave
        await store.set_state(me[leaver], OccurrenceState.SHUTDOWN)
        await store.deregister(me[leaver], reason="coordinated shutdown")
        clock.advance(soak)
        for name in "cd":
            await store.heartbeat(me[name])
    current = await drive()  # the early adopters' gate passes; general signalled
    assert current.waves[-1].status is WaveStatus.SIGNALLED, current.waves
    await driver.release_all()  # d is lost mid-leave: the lease goes free, nothing recorded
    return current, me


async def test_a_last_wave_that_all_left_is_concluded_once_by_status(
    store: Store, clock: FakeClock
) -> None:
    rollout, me = await shutdown_to_its_last_wave(store, clock)
    for name in "cd":
        await store.set_state(me[name], OccurrenceState.SHUTDOWN)
        await store.deregister(me[name], reason="coordinated shutdown")

    report = await collect_status(store, TTL, limit=10)
    (shown,) = [r for r in report["rollouts"] if r["rollout_id"] == rollout.rollout_id]
    assert shown["status"] == "completed"
    done = await store.rollout(rollout.rollout_id)
    assert done.status is RolloutStatus.COMPLETED
    assert done.waves[-1].status is WaveStatus.HEALTHY
    assert set(done.waves[-1].reached) == {"c", "d"}

    await collect_status(store, TTL, limit=10)  # seen again: nothing more is written
    completed = await store.events(
        rollout_id=rollout.rollout_id, kinds=(EventKind.ROLLOUT_COMPLETED,)
    )
    assert len(completed) == 1 and completed[0].details["abandoned"] is True
    await check_fleet_invariants(store)


async def test_a_member_silent_for_a_ttl_counts_as_gone_and_fails_its_wave(
    store: Store, clock: FakeClock
) -> None:
    rollout, me = await shutdown_to_its_last_wave(store, clock)
    await store.set_state(me["c"], OccurrenceState.SHUTDOWN)
    await store.deregister(me["c"], reason="coordinated shutdown")
    # d was killed: no leave, its heartbeat ages.
    await collect_status(store, TTL, limit=10)
    assert (await store.rollout(rollout.rollout_id)).status is RolloutStatus.RUNNING

    clock.advance(TTL)
    await collect_status(store, TTL, limit=10)
    done = await store.rollout(rollout.rollout_id)
    assert done.status is RolloutStatus.COMPLETED  # the last wave failing is only logged
    assert done.waves[-1].failed == ("d",) and done.waves[-1].reached == ("c",)
    await check_fleet_invariants(store)


async def test_a_rollout_someone_still_drives_is_left_alone(store: Store, clock: FakeClock) -> None:
    rollout, me = await shutdown_to_its_last_wave(store, clock)
    await store.set_state(me["c"], OccurrenceState.SHUTDOWN)
    await store.deregister(me["c"], reason="coordinated shutdown")
    token = await store.acquire_driver(rollout.rollout_id, "d", SETTINGS.lease_ttl)
    assert token is not None  # d is alive and drives again
    await store.set_state(me["d"], OccurrenceState.SHUTDOWN)
    await store.deregister(me["d"], reason="coordinated shutdown")  # left, lease still held

    await collect_status(store, TTL, limit=10)
    assert (await store.rollout(rollout.rollout_id)).status is RolloutStatus.RUNNING
    clock.advance(SETTINGS.lease_ttl)  # the lease runs out: nobody drives any more
    await collect_status(store, TTL, limit=10)
    assert (await store.rollout(rollout.rollout_id)).status is RolloutStatus.COMPLETED
