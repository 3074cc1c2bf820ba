"""What one occurrence does next, from one snapshot of the fleet (FleetView built by hand)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import pytest
from policy_records import member as record

from coordinator.policy.member_policy import Act, claimable, may_drive, next_action
from persistence import FleetView
from schemas import (
    SHARED_OCCURRENCE_ID,
    WAVE_ORDER,
    CanaryGroup,
    Decision,
    LifecycleKind,
    OccurrenceRecord,
    OccurrenceState,
    RolloutRecord,
    RolloutStatus,
    SharedTask,
    TaskStatus,
    Verdict,
    WaveRecord,
    WaveStatus,
)

NOW = 1_000.0
STARTED = 500.0  # when the incarnation under test started

WAKEUP, SHUTDOWN = LifecycleKind.WAKEUP, LifecycleKind.SHUTDOWN
EXPLORER, EARLY, GENERAL = CanaryGroup.EXPLORER, CanaryGroup.EARLY_ADOPTER, CanaryGroup.GENERAL
S = OccurrenceState
GROUPS = (("occ-1",), ("occ-2", "occ-3"), ("occ-4", "occ-5"))


def occurrence(oid: str, state: OccurrenceState = S.STARTING) -> OccurrenceRecord:
    return record(oid, state=state, heartbeat=NOW - 1, started_at=STARTED)


def make_rollout(
    kind: LifecycleKind = WAKEUP,
    *,
    status: RolloutStatus = RolloutStatus.RUNNING,
    groups: Sequence[tuple[str, ...]] = GROUPS,
    signalled: Mapping[CanaryGroup, float] | None = None,
    verdict: Verdict = Verdict.ACCEPT,
    reason: str = "all good",
    abort_reason: str | None = None,
) -> RolloutRecord:
    """Waves in ``signalled`` were signalled at the given time; the others are pending
    (or skipped if the rollout was aborted)."""
    signalled = signalled or {}
    rollout_id = f"{kind.value}-rollout"
    unsignalled = WaveStatus.SKIPPED if status is RolloutStatus.ABORTED else WaveStatus.PENDING
    waves = tuple(
        WaveRecord(
            rollout_id=rollout_id,
            index=index,
            group=group,
            members=members,
            status=WaveStatus.SIGNALLED if group in signalled else unsignalled,
            soak=0.0,
            signalled_at=signalled.get(group),
        )
        for index, (group, members) in enumerate(zip(WAVE_ORDER, groups, strict=True))
    )
    return RolloutRecord(
        rollout_id=rollout_id,
        task_id=rollout_id,
        kind=kind,
        status=status,
        decision=Decision(verdict=verdict, reason=reason, decided_by="occ-1", decided_at=400.0),
        request_reason=None,
        created_at=400.0,
        finished_at=None if status is RolloutStatus.RUNNING else 450.0,
        abort_reason=abort_reason,
        health_timeout=300.0,
        health_poll=5.0,
        expected_occurrences=None,
        discovered_occurrences=sum(len(g) for g in groups),
        driver_id=None,
        driver_token=1,
        driver_lease_expires_at=None,
        waves=waves,
    )


def task(
    kind: LifecycleKind,
    status: TaskStatus = TaskStatus.PENDING,
    *,
    claimed_by: str | None = None,
    lease_expires_at: float | None = None,
) -> SharedTask:
    return SharedTask(
        task_id=f"{kind.value}-task",
        agent_occurrence_id=SHARED_OCCURRENCE_ID,
        kind=kind,
        status=status,
        reason=None,
        requested_by=None,
        outcome=None,
        created_at=NOW - 10,
        updated_at=NOW - 10,
        claimed_by=claimed_by,
        lease_expires_at=lease_expires_at,
        fencing_token=1,
        schema_v=1,
    )


def view(
    *,
    wakeup: RolloutRecord | None = None,
    shutdown: RolloutRecord | None = None,
    tasks: Sequence[SharedTask] = (),
) -> FleetView:
    rollouts = [r for r in (wakeup, shutdown) if r is not None]
    return FleetView(
        now=NOW,
        members=(),
        running=tuple(r for r in rollouts if r.status is RolloutStatus.RUNNING),
        current_wakeup=wakeup,
        latest_shutdown=shutdown,
        open_tasks=tuple(tasks),
    )


def held_by_other(kind: LifecycleKind) -> SharedTask:
    return task(kind, TaskStatus.ACTIVE, claimed_by="occ-9", lease_expires_at=NOW + 10)


# --- waking up: who decides ---------------------------------------------------------------


@pytest.mark.parametrize("state", [S.STARTING, S.WAKEUP])
def test_no_wakeup_in_force_and_no_task_opens_the_wakeup(state: OccurrenceState) -> None:
    action = next_action(view(), occurrence("occ-7"), state)

    assert action.act is Act.OPEN_WAKEUP


def test_an_open_pending_wakeup_task_is_claimed() -> None:
    open_task = task(WAKEUP)

    action = next_action(view(tasks=[open_task]), occurrence("occ-7"), S.STARTING)

    assert (action.act, action.task) == (Act.CLAIM, open_task)


def test_a_wakeup_task_whose_lease_expired_is_claimed() -> None:
    stale = task(WAKEUP, TaskStatus.ACTIVE, claimed_by="occ-9", lease_expires_at=NOW - 1)

    action = next_action(view(tasks=[stale]), occurrence("occ-7"), S.STARTING)

    assert (action.act, action.task) == (Act.CLAIM, stale)


@pytest.mark.parametrize(
    ("kind", "state"), [(WAKEUP, S.STARTING), (WAKEUP, S.WAKEUP), (SHUTDOWN, S.WORK)]
)
def test_an_occurrence_whose_engine_did_not_load_never_claims_a_decision(
    kind: LifecycleKind, state: OccurrenceState
) -> None:
    # It runs the built-in engine, which accepts everything: the others decide.
    fallback = occurrence("occ-7", state).model_copy(
        update={"engine_error": "module_missing: cannot import 'agent'"}
    )
    for claimable_task in (
        task(kind),
        task(kind, TaskStatus.ACTIVE, claimed_by="occ-9", lease_expires_at=NOW - 1),
    ):
        action = next_action(view(tasks=[claimable_task]), fallback, state)

        assert action.act is Act.WAIT
        assert "did not load" in action.why
        assert next_action(view(tasks=[claimable_task]), occurrence("occ-7", state), state).act is (
            Act.CLAIM
        )


def test_someone_else_holding_a_live_lease_means_wait() -> None:
    action = next_action(view(tasks=[held_by_other(WAKEUP)]), occurrence("occ-7"), S.STARTING)

    assert action.act is Act.WAIT
    assert "occ-9" in action.why


def test_a_running_shutdown_holds_back_a_new_wakeup() -> None:
    shutdown = make_rollout(SHUTDOWN, signalled={EXPLORER: 900.0})

    action = next_action(view(shutdown=shutdown), occurrence("occ-7"), S.STARTING)

    assert action.act is Act.WAIT


# --- waking up: following the rollout -----------------------------------------------------


@pytest.mark.parametrize("status", [RolloutStatus.RUNNING, RolloutStatus.COMPLETED])
def test_a_member_of_a_signalled_wave_enters_work(status: RolloutStatus) -> None:
    wakeup = make_rollout(status=status, signalled={EXPLORER: 900.0, EARLY: 950.0})

    action = next_action(view(wakeup=wakeup), occurrence("occ-3"), S.STARTING)

    assert action.act is Act.ENTER_WORK
    assert action.rollout == wakeup
    assert action.wave == wakeup.waves[1]


def test_a_member_of_a_pending_wave_waits_for_it() -> None:
    wakeup = make_rollout(signalled={EXPLORER: 900.0})

    action = next_action(view(wakeup=wakeup), occurrence("occ-4"), S.STARTING)

    assert action.act is Act.WAIT
    assert "general" in action.why


def test_a_late_occurrence_joins_the_last_wave_while_it_is_pending() -> None:
    wakeup = make_rollout(signalled={EXPLORER: 900.0})

    action = next_action(view(wakeup=wakeup), occurrence("occ-late"), S.STARTING)

    assert (action.act, action.rollout) == (Act.JOIN_LAST_WAVE, wakeup)


@pytest.mark.parametrize("status", [RolloutStatus.RUNNING, RolloutStatus.COMPLETED])
def test_a_late_occurrence_past_the_last_wave_enters_work_directly(
    status: RolloutStatus,
) -> None:
    wakeup = make_rollout(status=status, signalled={EXPLORER: 900.0, EARLY: 950.0, GENERAL: 990.0})

    action = next_action(view(wakeup=wakeup), occurrence("occ-late"), S.STARTING)

    assert action.act is Act.ENTER_WORK
    assert action.rollout == wakeup
    assert action.wave is None


@pytest.mark.parametrize("me", ["occ-2", "occ-late"])
def test_an_aborted_wakeup_leaves_unsignalled_occurrences_waiting(me: str) -> None:
    wakeup = make_rollout(
        status=RolloutStatus.ABORTED,
        signalled={EXPLORER: 900.0},
        abort_reason="explorer wave failed its health gate",
    )

    action = next_action(view(wakeup=wakeup), occurrence(me), S.STARTING)

    assert action.act is Act.WAIT
    assert "explorer wave failed" in action.why


def test_after_an_aborted_wakeup_an_open_shutdown_task_is_claimed() -> None:
    wakeup = make_rollout(status=RolloutStatus.ABORTED, signalled={EXPLORER: 900.0})
    shutdown_task = task(SHUTDOWN)

    action = next_action(
        view(wakeup=wakeup, tasks=[shutdown_task]), occurrence("occ-4"), S.STARTING
    )

    assert (action.act, action.task) == (Act.CLAIM, shutdown_task)


def test_after_an_aborted_wakeup_a_shutdown_task_held_by_another_means_wait() -> None:
    wakeup = make_rollout(status=RolloutStatus.ABORTED, signalled={EXPLORER: 900.0})

    action = next_action(
        view(wakeup=wakeup, tasks=[held_by_other(SHUTDOWN)]), occurrence("occ-4"), S.STARTING
    )

    assert action.act is Act.WAIT


@pytest.mark.parametrize("me", ["occ-1", "occ-4", "occ-late"])
def test_a_rejected_wakeup_stops_every_occurrence(me: str) -> None:
    wakeup = make_rollout(
        status=RolloutStatus.REJECTED, verdict=Verdict.REJECT, reason="identity not confirmed"
    )

    action = next_action(view(wakeup=wakeup), occurrence(me), S.WAKEUP)

    assert action.act is Act.STOP_REJECTED
    assert action.why == "identity not confirmed"
    assert action.rollout == wakeup


# --- shutting down ------------------------------------------------------------------------


@pytest.mark.parametrize("status", [RolloutStatus.RUNNING, RolloutStatus.COMPLETED])
def test_a_working_occurrence_whose_shutdown_wave_was_signalled_leaves(
    status: RolloutStatus,
) -> None:
    shutdown = make_rollout(SHUTDOWN, status=status, signalled={EXPLORER: STARTED + 1})

    action = next_action(view(shutdown=shutdown), occurrence("occ-1", S.WORK), S.WORK)

    assert action.act is Act.LEAVE
    assert action.rollout == shutdown
    assert action.wave == shutdown.waves[0]


def test_a_signal_given_exactly_when_the_incarnation_started_still_counts() -> None:
    shutdown = make_rollout(SHUTDOWN, signalled={EXPLORER: STARTED})

    action = next_action(view(shutdown=shutdown), occurrence("occ-1", S.WORK), S.WORK)

    assert action.act is Act.LEAVE


def test_a_shutdown_signal_older_than_this_incarnation_is_ignored() -> None:
    # The predecessor obeyed it and stopped; this restarted process must not leave again.
    shutdown = make_rollout(
        SHUTDOWN,
        status=RolloutStatus.COMPLETED,
        signalled={EXPLORER: STARTED - 100, EARLY: STARTED - 50, GENERAL: STARTED - 10},
    )

    action = next_action(view(shutdown=shutdown), occurrence("occ-1", S.WORK), S.WORK)

    assert action.act is Act.WAIT


def test_a_working_occurrence_in_an_unsignalled_shutdown_wave_keeps_serving() -> None:
    shutdown = make_rollout(SHUTDOWN, signalled={EXPLORER: 900.0})

    action = next_action(view(shutdown=shutdown), occurrence("occ-4", S.WORK), S.WORK)

    assert action.act is Act.WAIT


def test_the_driver_of_a_running_shutdown_waits_instead_of_leaving() -> None:
    shutdown = make_rollout(SHUTDOWN, signalled={EXPLORER: 900.0, EARLY: 950.0, GENERAL: 990.0})
    me = occurrence("occ-5", S.WORK)

    driving = next_action(view(shutdown=shutdown), me, S.WORK, driving=[shutdown.rollout_id])
    not_driving = next_action(view(shutdown=shutdown), me, S.WORK)

    assert driving.act is Act.WAIT
    assert not_driving.act is Act.LEAVE


def test_the_driver_leaves_once_the_shutdown_it_drove_is_finished() -> None:
    shutdown = make_rollout(
        SHUTDOWN,
        status=RolloutStatus.COMPLETED,
        signalled={EXPLORER: 900.0, EARLY: 950.0, GENERAL: 990.0},
    )

    action = next_action(
        view(shutdown=shutdown),
        occurrence("occ-5", S.WORK),
        S.WORK,
        driving=[shutdown.rollout_id],
    )

    assert action.act is Act.LEAVE


# --- a serving occurrence the shutdown's plan left out -----------------------------------
# (found by the deterministic simulator: one cut off from the database while the shutdown
# was decided was left serving after the fleet shut down)


def test_one_left_out_of_a_running_shutdown_joins_its_pending_last_wave() -> None:
    shutdown = make_rollout(SHUTDOWN, signalled={EXPLORER: 900.0})

    action = next_action(view(shutdown=shutdown), occurrence("occ-7", S.WORK), S.WORK)

    assert (action.act, action.rollout) == (Act.JOIN_LAST_WAVE, shutdown)


@pytest.mark.parametrize("status", [RolloutStatus.RUNNING, RolloutStatus.COMPLETED])
def test_one_left_out_leaves_directly_once_the_waves_are_past(status: RolloutStatus) -> None:
    shutdown = make_rollout(
        SHUTDOWN, status=status, signalled={EXPLORER: 900.0, EARLY: 950.0, GENERAL: 990.0}
    )
    serving = record("occ-7", state=S.WORK, heartbeat=NOW - 1, started_at=shutdown.created_at - 1)

    action = next_action(view(shutdown=shutdown), serving, S.WORK)

    assert (action.act, action.rollout, action.wave) == (Act.LEAVE, shutdown, None)


def test_one_started_after_the_shutdown_was_decided_is_a_new_start() -> None:
    shutdown = make_rollout(
        SHUTDOWN,
        status=RolloutStatus.COMPLETED,
        signalled={EXPLORER: 900.0, EARLY: 950.0, GENERAL: 990.0},
    )
    late = record("occ-7", state=S.WORK, heartbeat=NOW - 1, started_at=shutdown.created_at + 1)

    action = next_action(view(shutdown=shutdown), late, S.WORK)

    assert action.act is Act.WAIT


@pytest.mark.parametrize("status", [RolloutStatus.ABORTED, RolloutStatus.PAUSED])
def test_one_left_out_of_a_held_shutdown_keeps_serving(status: RolloutStatus) -> None:
    shutdown = make_rollout(SHUTDOWN, status=status, signalled={EXPLORER: 900.0})

    action = next_action(view(shutdown=shutdown), occurrence("occ-7", S.WORK), S.WORK)

    assert action.act is Act.WAIT


def test_a_working_occurrence_claims_an_open_shutdown_task() -> None:
    shutdown_task = task(SHUTDOWN)

    action = next_action(view(tasks=[shutdown_task]), occurrence("occ-3", S.WORK), S.WORK)

    assert (action.act, action.task) == (Act.CLAIM, shutdown_task)


def test_a_shutdown_task_waits_while_another_rollout_is_running() -> None:
    wakeup = make_rollout(signalled={EXPLORER: 900.0})

    action = next_action(
        view(wakeup=wakeup, tasks=[task(SHUTDOWN)]), occurrence("occ-1", S.WORK), S.WORK
    )

    assert action.act is Act.WAIT


def test_a_shutdown_task_held_by_another_means_wait() -> None:
    action = next_action(view(tasks=[held_by_other(SHUTDOWN)]), occurrence("occ-3", S.WORK), S.WORK)

    assert action.act is Act.WAIT
    assert "occ-9" in action.why


def test_a_working_occurrence_with_nothing_to_do_serves() -> None:
    wakeup = make_rollout(status=RolloutStatus.COMPLETED, signalled={EXPLORER: 900.0})

    action = next_action(view(wakeup=wakeup), occurrence("occ-1", S.WORK), S.WORK)

    assert action.act is Act.WAIT


@pytest.mark.parametrize("state", [S.SHUTTING_DOWN, S.SHUTDOWN, S.FAILED])
def test_leaving_or_stopped_occurrences_do_nothing(state: OccurrenceState) -> None:
    shutdown = make_rollout(SHUTDOWN, signalled={EXPLORER: 900.0})

    action = next_action(
        view(shutdown=shutdown, tasks=[task(WAKEUP)]), occurrence("occ-1", state), state
    )

    assert action.act is Act.WAIT


# --- claimable and may_drive --------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "lease_expires_at", "expected"),
    [
        (TaskStatus.PENDING, None, True),
        (TaskStatus.ACTIVE, NOW - 0.001, True),
        (TaskStatus.ACTIVE, NOW + 5, False),
        (TaskStatus.ACTIVE, None, False),
        (TaskStatus.COMPLETED, NOW - 100, False),
        (TaskStatus.FAILED, NOW - 100, False),
    ],
)
def test_claimable(status: TaskStatus, lease_expires_at: float | None, expected: bool) -> None:
    candidate = task(WAKEUP, status, claimed_by="occ-9", lease_expires_at=lease_expires_at)

    assert claimable(candidate, NOW) is expected


@pytest.mark.parametrize("me", ["occ-1", "occ-3", "occ-5", "outsider"])
@pytest.mark.parametrize("state", [S.WAKEUP, S.WORK])
def test_any_active_occurrence_may_drive_a_wakeup(me: str, state: OccurrenceState) -> None:
    assert may_drive(make_rollout(WAKEUP), me, state) is True


@pytest.mark.parametrize("kind", [WAKEUP, SHUTDOWN])
@pytest.mark.parametrize("state", [S.SHUTTING_DOWN, S.SHUTDOWN, S.FAILED])
def test_leaving_or_stopped_occurrences_never_drive(
    kind: LifecycleKind, state: OccurrenceState
) -> None:
    assert may_drive(make_rollout(kind), "occ-5", state) is False


@pytest.mark.parametrize(
    ("me", "expected"),
    [
        ("occ-1", False),  # explorer: leaves first
        ("occ-2", False),  # early adopter: leaves before the last wave
        ("occ-4", True),  # general: the last wave
        ("outsider", True),  # not in any wave: never leaves during this rollout
    ],
)
def test_a_shutdown_is_driven_only_from_the_last_wave_or_outside_it(
    me: str, expected: bool
) -> None:
    assert may_drive(make_rollout(SHUTDOWN), me, S.WORK) is expected


def test_with_an_empty_general_wave_early_adopters_may_drive_a_shutdown() -> None:
    shutdown = make_rollout(SHUTDOWN, groups=(("occ-1",), ("occ-2",), ()))

    assert may_drive(shutdown, "occ-2", S.WORK) is True
    assert may_drive(shutdown, "occ-1", S.WORK) is False
