"""The invariant checker finds violations planted in a real audit trail."""

from __future__ import annotations

from support import fast_settings

from coordinator.audit_check import capacity_violations, fleet_violations
from coordinator.clock import FakeClock
from coordinator.policy.planning import build_plan
from persistence import Store
from schemas import (
    CanaryGroup,
    Decision,
    EventKind,
    LifecycleKind,
    NewEvent,
    OccurrenceState,
    RolloutChange,
    RolloutRecord,
    RolloutStatus,
    Verdict,
    WaveStatus,
)

MEMBERS = ["occ-1", "occ-2", "occ-3", "occ-4"]


async def decided(store: Store, clock: FakeClock, kind: LifecycleKind) -> RolloutRecord:
    if kind is LifecycleKind.WAKEUP:
        task = await store.open_wakeup_task("occ-1", 86400)
    else:
        task, _ = await store.request_shutdown("test", "op")
    assert task is not None
    claim = await store.claim_task(task.task_id, "occ-1", 10)
    assert claim is not None
    decision = Decision(
        verdict=Verdict.ACCEPT, reason="t", decided_by="occ-1", decided_at=clock.now()
    )
    plan = build_plan(kind, "occ-1", MEMBERS, fast_settings())
    return await store.record_decision(claim, decision, plan, driver="occ-4", lease_ttl=10)


async def signal(store: Store, rollout: RolloutRecord, index: int, clock: FakeClock) -> None:
    wave = rollout.waves[index]
    current = await store.rollout(rollout.rollout_id)
    change = RolloutChange(
        based_on=current.version,
        status=RolloutStatus.RUNNING,
        waves=(
            wave.model_copy(update={"status": WaveStatus.SIGNALLED, "signalled_at": clock.now()}),
        ),
        events=(
            NewEvent(
                kind=EventKind.WAVE_SIGNALLED,
                rollout_id=rollout.rollout_id,
                wave=wave.group,
                details={"members": list(wave.members)},
            ),
        ),
    )
    await store.apply_step(rollout.rollout_id, "occ-4", rollout.driver_token, change, lease_ttl=10)


async def test_a_clean_trail_has_no_violations(store: Store, clock: FakeClock) -> None:
    rollout = await decided(store, clock, LifecycleKind.WAKEUP)
    await signal(store, rollout, 0, clock)
    assert await fleet_violations(store) == []


async def test_a_second_decision_is_reported(store: Store, clock: FakeClock) -> None:
    rollout = await decided(store, clock, LifecycleKind.WAKEUP)
    await store.record_event(
        NewEvent(kind=EventKind.DECISION_MADE, occurrence_id="occ-2", task_id=rollout.task_id)
    )
    assert any("decided 2 times" in v for v in await fleet_violations(store))


async def test_a_wave_signalled_before_the_previous_settled_is_reported(
    store: Store, clock: FakeClock
) -> None:
    rollout = await decided(store, clock, LifecycleKind.WAKEUP)
    await signal(store, rollout, 0, clock)
    await signal(store, rollout, 1, clock)  # the explorer never passed its gate
    violations = await fleet_violations(store)
    assert any("early_adopter signalled before explorer settled" in v for v in violations)


async def test_acting_before_the_signal_and_leaving_early_are_reported(
    store: Store, clock: FakeClock
) -> None:
    await decided(store, clock, LifecycleKind.WAKEUP)
    shutdown = await decided(store, clock, LifecycleKind.SHUTDOWN)
    general = shutdown.waves[2].members[0]
    me = await store.register(general, host="h", pid=1, protocol_version=1)
    await store.set_state(
        me, OccurrenceState.SHUTDOWN, rollout_id=shutdown.rollout_id, wave=CanaryGroup.GENERAL
    )
    violations = await fleet_violations(store)
    assert any(f"{general} acted before general was signalled" in v for v in violations)
    assert any(f"{general} left before its wave" in v for v in await capacity_violations(store))
