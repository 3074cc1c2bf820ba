"""``conclude_abandoned``: the end of a shutdown nobody is left to drive (pure)."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st
from policy_records import member as record
from test_rollout_machine import PROPERTY, SHUTDOWN, WAKEUP, apply, make_rollout

from coordinator.policy.gate import MemberStatus
from coordinator.policy.member_policy import leaves_last, may_hold_lease
from coordinator.policy.rollout_machine import conclude_abandoned, step_rollout
from schemas import (
    EventKind,
    OccurrenceState,
    RolloutStatus,
    WaveStatus,
)

NOW = 1000.0
TTL = 10.0
S = OccurrenceState
IDS = ("occ-1", "occ-2", "occ-3", "occ-4", "occ-5", "occ-6")


def member(name: str, state: OccurrenceState, *, left: bool = True, silent_for: float = 0.0):
    return record(
        name, state=state, heartbeat=NOW - silent_for, stopped_at=NOW - 1 if left else None
    )


def at_last_wave():
    """A shutdown whose explorer and early adopters passed and whose general wave runs."""
    rollout = make_rollout(SHUTDOWN, soaks=(0.0, 0.0, 0.0), health_poll=1.0)
    fleet = {m: MemberStatus(state=S.WORK, alive=True) for m in IDS}
    t = 0.0
    while rollout.waves[-1].status is WaveStatus.PENDING:
        for wave in rollout.waves:
            if wave.status is WaveStatus.SIGNALLED and wave.index < 2:
                for m in wave.members:
                    fleet[m] = MemberStatus(state=S.SHUTDOWN, alive=False)
        step = step_rollout(rollout, fleet, t, driver="occ-6")
        if step.change is not None:
            rollout = apply(rollout, step.change)
        t += 1.0
    return rollout


def everyone(state_of, *, left: bool = True, silent_for: float = 0.0):
    return [member(m, state_of(m), left=left, silent_for=silent_for) for m in IDS]


def test_all_left_in_shutdown_completes_with_the_last_wave_healthy() -> None:
    rollout = at_last_wave()
    change = conclude_abandoned(rollout, everyone(lambda m: S.SHUTDOWN), NOW)
    assert change is not None and change.status is RolloutStatus.COMPLETED
    assert change.based_on == rollout.version
    (last,) = change.waves
    assert last.status is WaveStatus.HEALTHY and set(last.reached) == {"occ-4", "occ-5", "occ-6"}
    assert [e.kind for e in change.events] == [EventKind.WAVE_HEALTHY, EventKind.ROLLOUT_COMPLETED]
    assert all(e.details["abandoned"] for e in change.events)


def test_a_last_wave_member_that_left_serving_fails_the_wave_but_the_rollout_completes() -> None:
    rollout = at_last_wave()
    members = everyone(lambda m: S.WORK if m == "occ-5" else S.SHUTDOWN)
    change = conclude_abandoned(rollout, members, NOW)
    assert change is not None and change.status is RolloutStatus.COMPLETED
    assert change.waves[0].failed == ("occ-5",)


def test_anyone_still_in_the_fleet_means_not_abandoned() -> None:
    rollout = at_last_wave()
    members = everyone(lambda m: S.SHUTDOWN)
    members[-1] = member("occ-6", S.SHUTDOWN, left=False)
    assert conclude_abandoned(rollout, members, NOW) is None
    # ...unless the observer may trust staleness and it has been silent for a TTL.
    members[-1] = member("occ-6", S.WORK, left=False, silent_for=TTL)
    assert conclude_abandoned(rollout, members, NOW) is None
    change = conclude_abandoned(rollout, members, NOW, member_ttl=TTL)
    assert change is not None and change.waves[0].failed == ("occ-6",)


def test_a_wave_never_signalled_is_skipped_and_an_earlier_failure_aborts() -> None:
    rollout = make_rollout(SHUTDOWN)
    rollout = apply(rollout, step_rollout(rollout, {}, 0.0).change)  # explorer signalled
    members = everyone(lambda m: S.WORK)  # everyone left without shutting down (SIGTERM)
    change = conclude_abandoned(rollout, members, NOW)
    assert change is not None and change.status is RolloutStatus.ABORTED
    assert [w.status for w in change.waves] == [
        WaveStatus.FAILED,
        WaveStatus.SKIPPED,
        WaveStatus.SKIPPED,
    ]
    assert change.fail_task


def test_wakeups_and_finished_rollouts_are_never_concluded() -> None:
    members = everyone(lambda m: S.SHUTDOWN)
    assert conclude_abandoned(make_rollout(WAKEUP), members, NOW) is None
    for status in (RolloutStatus.PAUSED, RolloutStatus.COMPLETED, RolloutStatus.ABORTED):
        assert conclude_abandoned(make_rollout(SHUTDOWN, status=status), members, NOW) is None


@PROPERTY
@given(states=st.lists(st.sampled_from([S.SHUTDOWN, S.WORK, S.FAILED]), min_size=6, max_size=6))
def test_a_concluded_rollout_settles_every_wave(states: list[OccurrenceState]) -> None:
    rollout = at_last_wave()
    members = [member(m, s) for m, s in zip(IDS, states, strict=True)]
    change = conclude_abandoned(rollout, members, NOW)
    assert change is not None and change.status.is_finished
    final = apply(rollout, change)
    assert all(w.status.is_settled for w in final.waves)
    assert step_rollout(final, {}, NOW + 1).change is None  # nothing more to do


def test_only_last_wave_members_of_a_shutdown_may_drive_while_leaving() -> None:
    rollout = make_rollout(SHUTDOWN)
    for state in (S.SHUTTING_DOWN, S.SHUTDOWN):
        assert may_hold_lease(rollout, "occ-5", state) and leaves_last(rollout, "occ-5")
        assert not may_hold_lease(rollout, "occ-2", state)
        assert not may_hold_lease(make_rollout(WAKEUP), "occ-5", state)
    assert may_hold_lease(rollout, "occ-2", S.WORK)
    assert not may_hold_lease(rollout, "occ-5", S.FAILED)
