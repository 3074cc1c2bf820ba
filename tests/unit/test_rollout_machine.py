"""The rollout state machine, driven by hand with explicit ``now`` values.

Each test builds a ``RolloutRecord``, steps it, and applies every returned change to the
record itself, the way the driver does in one fenced transaction.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from policy_records import member as record

from coordinator.policy.gate import MemberStatus
from coordinator.policy.rollout_machine import Step, last_wave_index, observe, step_rollout
from schemas import (
    WAVE_ORDER,
    CanaryGroup,
    Decision,
    EventKind,
    LifecycleKind,
    NewEvent,
    OccurrenceRecord,
    OccurrenceState,
    RolloutChange,
    RolloutRecord,
    RolloutStatus,
    Verdict,
    WaveRecord,
    WaveStatus,
)

PROPERTY = settings(max_examples=150, deadline=None, database=None)

ROLLOUT_ID = "rollout-1"
TASK_ID = "task-1"
WAKEUP, SHUTDOWN = LifecycleKind.WAKEUP, LifecycleKind.SHUTDOWN
EXPLORER, EARLY, GENERAL = CanaryGroup.EXPLORER, CanaryGroup.EARLY_ADOPTER, CanaryGroup.GENERAL
S = OccurrenceState

# The plan used by most tests: soaks 30 / 60 / 0, checks every 5 s for up to 300 s.
SOAKS = (30.0, 60.0, 0.0)
POLL = 5.0
TIMEOUT = 300.0


def make_rollout(
    kind: LifecycleKind = WAKEUP,
    *,
    explorer: Sequence[str] = ("occ-1",),
    early: Sequence[str] = ("occ-2", "occ-3"),
    general: Sequence[str] = ("occ-4", "occ-5", "occ-6"),
    soaks: Sequence[float] = SOAKS,
    health_poll: float = POLL,
    health_timeout: float = TIMEOUT,
    status: RolloutStatus = RolloutStatus.RUNNING,
) -> RolloutRecord:
    groups = (tuple(explorer), tuple(early), tuple(general))
    waves = tuple(
        WaveRecord(
            rollout_id=ROLLOUT_ID,
            index=index,
            group=group,
            members=members,
            status=WaveStatus.PENDING,
            soak=soak,
        )
        for index, (group, members, soak) in enumerate(zip(WAVE_ORDER, groups, soaks, strict=True))
    )
    return RolloutRecord(
        rollout_id=ROLLOUT_ID,
        task_id=TASK_ID,
        kind=kind,
        status=status,
        decision=Decision(verdict=Verdict.ACCEPT, reason="ok", decided_by="occ-1", decided_at=0.0),
        request_reason=None,
        created_at=0.0,
        finished_at=None,
        abort_reason=None,
        health_timeout=health_timeout,
        health_poll=health_poll,
        expected_occurrences=None,
        discovered_occurrences=sum(len(g) for g in groups),
        driver_id=None,
        driver_token=1,
        driver_lease_expires_at=None,
        waves=waves,
    )


def apply(rollout: RolloutRecord, change: RolloutChange) -> RolloutRecord:
    """What the driver persists: the changed waves merged in, and the rollout's status."""
    assert change.based_on == rollout.version, "a step must name the state it came from"
    waves = list(rollout.waves)
    for wave in change.waves:
        waves[wave.index] = wave
    return rollout.model_copy(
        update={
            "status": change.status,
            "finished_at": change.finished_at,
            "abort_reason": change.abort_reason,
            "waves": tuple(waves),
            "version": rollout.version + 1,
        }
    )


@dataclass
class Run:
    """A rollout, the fleet the driver observes, and everything the steps produced."""

    rollout: RolloutRecord
    driver: str | None = None
    fleet: dict[str, MemberStatus] = field(default_factory=dict)
    events: list[NewEvent] = field(default_factory=list)
    changes: list[RolloutChange] = field(default_factory=list)

    def __post_init__(self) -> None:
        # Before anything is signalled: waking members are starting, serving ones work.
        initial = S.STARTING if self.rollout.kind is WAKEUP else S.WORK
        for wave in self.rollout.waves:
            self.set(initial, *wave.members)

    def set(self, state: OccurrenceState, *members: str, alive: bool = True) -> None:
        for member in members:
            self.fleet[member] = MemberStatus(state=state, alive=alive)

    def step(self, now: float) -> Step:
        step = step_rollout(self.rollout, dict(self.fleet), now, driver=self.driver)
        if step.change is not None:
            self.rollout = apply(self.rollout, step.change)
            self.events.extend(step.change.events)
            self.changes.append(step.change)
        return step

    def wave(self, group: CanaryGroup) -> WaveRecord:
        return next(w for w in self.rollout.waves if w.group is group)

    def status(self, group: CanaryGroup) -> WaveStatus:
        return self.wave(group).status

    def event_kinds(self) -> list[tuple[str, CanaryGroup | None]]:
        return [(e.kind, e.wave) for e in self.events]

    def signalled(self) -> list[CanaryGroup]:
        return [e.wave for e in self.events if e.kind == EventKind.WAVE_SIGNALLED and e.wave]


def to_soak_end_of_explorer(run: Run) -> None:
    """t=0 signals the explorer; t=30 the explorer (in work / shut down) passes."""
    run.step(0.0)
    run.set(S.WORK if run.rollout.kind is WAKEUP else S.SHUTDOWN, *run.wave(EXPLORER).members)
    run.step(30.0)


def completed_event(run: Run) -> NewEvent:
    return next(e for e in run.events if e.kind == EventKind.ROLLOUT_COMPLETED)


# --- the first step -----------------------------------------------------------------------


def test_first_step_signals_the_explorer_and_nothing_else() -> None:
    run = Run(make_rollout())

    step = run.step(0.0)

    assert step.change is not None
    assert step.change.status is RolloutStatus.RUNNING
    assert [w.group for w in step.change.waves] == [EXPLORER]
    explorer = run.wave(EXPLORER)
    assert explorer.status is WaveStatus.SIGNALLED
    assert explorer.signalled_at == 0.0
    assert explorer.next_check_at == 30.0  # the explorer soak
    assert explorer.deadline == 30.0 + TIMEOUT  # health checks last up to the timeout
    assert step.wake_at == 30.0
    for group in (EARLY, GENERAL):
        assert run.status(group) is WaveStatus.PENDING
        assert run.wave(group).signalled_at is None
    assert run.event_kinds() == [(EventKind.WAVE_SIGNALLED, EXPLORER)]
    assert run.events[0].details == {"members": ["occ-1"], "soak": 30.0}


def test_stepping_again_at_the_same_instant_changes_nothing() -> None:
    run = Run(make_rollout())
    run.step(0.0)

    assert run.step(0.0) == Step(None, 30.0)


# --- soak and health checks ---------------------------------------------------------------


@pytest.mark.parametrize("now", [0.5, 10.0, 29.999])
def test_nothing_happens_during_the_soak_even_if_the_member_is_already_healthy(
    now: float,
) -> None:
    run = Run(make_rollout())
    run.step(0.0)
    run.set(S.WORK, "occ-1")

    assert run.step(now) == Step(None, 30.0)
    assert run.status(EXPLORER) is WaveStatus.SIGNALLED
    assert run.signalled() == [EXPLORER]


def test_gate_passes_at_soak_end_and_next_wave_is_signalled_in_the_same_step() -> None:
    run = Run(make_rollout())
    run.step(0.0)
    run.set(S.WORK, "occ-1")

    step = run.step(30.0)

    explorer, early = run.wave(EXPLORER), run.wave(EARLY)
    assert explorer.status is WaveStatus.HEALTHY
    assert (explorer.finished_at, explorer.reached, explorer.failed) == (30.0, ("occ-1",), ())
    assert early.status is WaveStatus.SIGNALLED
    assert early.signalled_at == 30.0
    assert early.next_check_at == 30.0 + 60.0
    assert step.wake_at == 90.0
    assert run.status(GENERAL) is WaveStatus.PENDING
    assert run.event_kinds()[1:] == [
        (EventKind.WAVE_HEALTHY, EXPLORER),
        (EventKind.WAVE_SIGNALLED, EARLY),
    ]


def test_full_wakeup_runs_the_three_waves_in_order_and_completes() -> None:
    run = Run(make_rollout())
    to_soak_end_of_explorer(run)
    run.set(S.WORK, "occ-2", "occ-3")

    step = run.step(90.0)  # early adopters pass; general (soak 0) is signalled
    assert run.status(EARLY) is WaveStatus.HEALTHY
    assert run.wave(GENERAL).signalled_at == 90.0
    assert step.wake_at == 90.0

    step = run.step(90.0)  # the final wave waits for its members to settle
    assert run.status(GENERAL) is WaveStatus.SIGNALLED
    assert step.wake_at == 95.0

    run.set(S.WORK, "occ-4", "occ-5", "occ-6")
    step = run.step(95.0)

    assert step.wake_at is None
    assert run.rollout.status is RolloutStatus.COMPLETED
    assert run.rollout.finished_at == 95.0
    assert [w.status for w in run.rollout.waves] == [WaveStatus.HEALTHY] * 3
    assert run.signalled() == [EXPLORER, EARLY, GENERAL]
    assert completed_event(run).details == {"failed_members": []}


def test_checks_repeat_every_health_poll_while_the_wave_is_pending() -> None:
    run = Run(make_rollout())
    run.step(0.0)
    run.set(S.WAKEUP, "occ-1")

    step = run.step(30.0)
    assert step.wake_at == 35.0
    assert run.wave(EXPLORER).next_check_at == 35.0
    assert step.change is not None and step.change.events == ()
    assert run.step(33.0) == Step(None, 35.0)

    step = run.step(35.0)
    assert step.wake_at == 40.0
    assert run.wave(EXPLORER).next_check_at == 40.0
    assert run.signalled() == [EXPLORER]

    run.set(S.WORK, "occ-1")
    run.step(40.0)
    assert run.status(EXPLORER) is WaveStatus.HEALTHY
    assert run.wave(EARLY).signalled_at == 40.0


def test_a_late_step_is_judged_at_its_own_time() -> None:
    run = Run(make_rollout())
    run.step(0.0)
    run.set(S.WORK, "occ-1")

    run.step(47.5)  # the driver was away past the soak end

    assert run.wave(EXPLORER).finished_at == 47.5
    assert run.wave(EARLY).signalled_at == 47.5
    assert run.wave(EARLY).next_check_at == 47.5 + 60.0


# --- failures -----------------------------------------------------------------------------


def test_explorer_failure_aborts_fails_the_task_and_signals_nothing_more() -> None:
    run = Run(make_rollout())
    run.step(0.0)
    run.set(S.FAILED, "occ-1")

    step = run.step(30.0)

    assert step.wake_at is None
    assert step.change is not None
    assert step.change.fail_task is True
    assert run.rollout.status is RolloutStatus.ABORTED
    assert run.rollout.finished_at == 30.0
    assert run.rollout.abort_reason is not None and "explorer" in run.rollout.abort_reason
    assert run.status(EXPLORER) is WaveStatus.FAILED
    assert run.wave(EXPLORER).failed == ("occ-1",)
    assert [run.status(g) for g in (EARLY, GENERAL)] == [WaveStatus.SKIPPED] * 2
    assert run.event_kinds()[1:] == [
        (EventKind.WAVE_FAILED, EXPLORER),
        (EventKind.WAVE_SKIPPED, EARLY),
        (EventKind.WAVE_SKIPPED, GENERAL),
        (EventKind.ROLLOUT_ABORTED, EXPLORER),
    ]

    # Keep stepping with a perfectly healthy fleet: the aborted rollout never moves again.
    run.set(S.WORK, *run.fleet)
    for now in (35.0, 90.0, 1_000.0, 10**9):
        assert run.step(float(now)) == Step(None, None)
    assert run.signalled() == [EXPLORER]
    assert run.wave(EARLY).signalled_at is None
    assert run.wave(GENERAL).signalled_at is None


@pytest.mark.parametrize(
    "early_states",
    [
        pytest.param((S.FAILED, S.FAILED), id="both-failed"),
        pytest.param((S.SHUTDOWN, S.WORK), id="one-shut-down-one-stale"),
    ],
)
def test_early_adopter_failure_aborts_before_general_without_failing_the_task(
    early_states: tuple[OccurrenceState, OccurrenceState],
) -> None:
    run = Run(make_rollout())
    to_soak_end_of_explorer(run)
    run.set(early_states[0], "occ-2")
    run.set(early_states[1], "occ-3", alive=False)

    step = run.step(90.0)

    assert step.change is not None and step.change.fail_task is False
    assert run.rollout.status is RolloutStatus.ABORTED
    assert run.rollout.abort_reason is not None and "early_adopter" in run.rollout.abort_reason
    assert run.status(EARLY) is WaveStatus.FAILED
    assert run.status(GENERAL) is WaveStatus.SKIPPED
    assert run.wave(GENERAL).signalled_at is None
    assert run.signalled() == [EXPLORER, EARLY]
    assert run.step(1_000.0) == Step(None, None)


def test_early_adopters_pass_with_one_member_in_work_and_one_failed() -> None:
    run = Run(make_rollout())
    to_soak_end_of_explorer(run)
    run.set(S.WORK, "occ-2")
    run.set(S.FAILED, "occ-3")

    run.step(90.0)

    early = run.wave(EARLY)
    assert (early.status, early.reached, early.failed) == (
        WaveStatus.HEALTHY,
        ("occ-2",),
        ("occ-3",),
    )
    assert run.signalled() == [EXPLORER, EARLY, GENERAL]


def test_general_partial_failure_completes_and_records_the_failures() -> None:
    run = Run(make_rollout())
    to_soak_end_of_explorer(run)
    run.set(S.WORK, "occ-2", "occ-3")
    run.step(90.0)
    run.set(S.WORK, "occ-4")
    run.set(S.FAILED, "occ-5")
    run.set(S.WAKEUP, "occ-6", alive=False)

    run.step(90.0)

    general = run.wave(GENERAL)
    assert run.rollout.status is RolloutStatus.COMPLETED
    assert (general.status, general.reached, general.failed) == (
        WaveStatus.HEALTHY,
        ("occ-4",),
        ("occ-5", "occ-6"),
    )
    assert completed_event(run).details == {"failed_members": ["occ-5", "occ-6"]}
    assert run.changes[-1].fail_task is False


def test_general_total_failure_still_completes_the_rollout() -> None:
    run = Run(make_rollout())
    to_soak_end_of_explorer(run)
    run.set(S.WORK, "occ-2", "occ-3")
    run.step(90.0)
    run.set(S.FAILED, "occ-4", "occ-5", "occ-6")

    step = run.step(90.0)

    assert step.wake_at is None
    assert run.rollout.status is RolloutStatus.COMPLETED
    assert run.rollout.abort_reason is None
    assert run.status(GENERAL) is WaveStatus.FAILED
    assert run.changes[-1].fail_task is False
    assert completed_event(run).details == {"failed_members": ["occ-4", "occ-5", "occ-6"]}


def test_health_timeout_fails_the_wave_with_checks_capped_at_the_deadline() -> None:
    run = Run(make_rollout(health_timeout=302.0))  # deadline 30 + 302 = 332
    run.step(0.0)
    run.set(S.WAKEUP, "occ-1")  # alive, but never reaches work

    checks: list[float] = []
    now: float | None = 30.0
    while now is not None:
        checks.append(now)
        now = run.step(now).wake_at

    assert checks == [30.0 + POLL * k for k in range(61)] + [332.0]
    assert run.status(EXPLORER) is WaveStatus.FAILED
    assert run.rollout.status is RolloutStatus.ABORTED
    failed = next(e for e in run.events if e.kind == EventKind.WAVE_FAILED)
    assert failed.details["timed_out"] is True
    assert failed.details["pending"] == ["occ-1"]


def test_final_wakeup_wave_with_nobody_in_work_fails_at_the_deadline_and_completes() -> None:
    run = Run(make_rollout(explorer=("occ-1",), early=(), general=()))
    run.step(0.0)
    run.set(S.WAKEUP, "occ-1")

    now: float | None = 30.0
    while now is not None and now < 330.0:
        now = run.step(now).wake_at
    assert run.rollout.status is RolloutStatus.RUNNING  # still waiting, never gave up early
    assert now == 330.0

    run.step(330.0)
    assert run.status(EXPLORER) is WaveStatus.FAILED  # nobody in work: fail at the deadline
    assert run.rollout.status is RolloutStatus.COMPLETED  # the last wave does not abort


def run_to_general_with_one_stuck_member(kind: LifecycleKind) -> Run:
    """Explorer and early adopter pass; in general occ-3 reaches the target, occ-4 stays
    stuck (alive, never settling) until the health timeout. Steps at every wake_at."""
    run = Run(make_rollout(kind, explorer=("occ-1",), early=("occ-2",), general=("occ-3", "occ-4")))
    done, stuck = (S.WORK, S.WAKEUP) if kind is WAKEUP else (S.SHUTDOWN, S.SHUTTING_DOWN)
    to_soak_end_of_explorer(run)
    run.set(done, "occ-2", alive=kind is WAKEUP)
    run.step(90.0)  # general (soak 0) signalled at 90: deadline 90 + 300
    run.set(done, "occ-3", alive=kind is WAKEUP)
    run.set(stuck, "occ-4")
    now: float | None = 90.0
    while now is not None:
        assert run.rollout.status is RolloutStatus.RUNNING
        last = now
        now = run.step(now).wake_at
    assert last == 390.0  # settled at the deadline, not before
    return run


def test_final_wakeup_wave_waits_for_a_stuck_member_until_the_deadline_then_passes() -> None:
    run = run_to_general_with_one_stuck_member(WAKEUP)

    assert run.rollout.status is RolloutStatus.COMPLETED
    assert run.status(GENERAL) is WaveStatus.HEALTHY
    assert run.wave(GENERAL).reached == ("occ-3",)
    assert run.wave(GENERAL).finished_at == 390.0


def test_final_shutdown_wave_with_a_stuck_member_fails_at_the_deadline_and_completes() -> None:
    run = run_to_general_with_one_stuck_member(SHUTDOWN)

    assert run.rollout.status is RolloutStatus.COMPLETED
    assert run.status(GENERAL) is WaveStatus.FAILED
    failed = next(e for e in run.events if e.kind == EventKind.WAVE_FAILED)
    assert (failed.details["pending"], failed.details["timed_out"]) == (["occ-4"], True)


@pytest.mark.parametrize("kind", [WAKEUP, SHUTDOWN])
def test_final_wave_members_stuck_until_the_timeout_are_recorded_as_failed(
    kind: LifecycleKind,
) -> None:
    run = run_to_general_with_one_stuck_member(kind)

    assert "occ-4" in run.wave(GENERAL).failed
    assert "occ-4" in completed_event(run).details["failed_members"]


# --- empty waves --------------------------------------------------------------------------


def test_an_empty_middle_wave_is_skipped_and_the_next_one_signalled_at_once() -> None:
    run = Run(make_rollout(early=()))
    to_soak_end_of_explorer(run)

    early = run.wave(EARLY)
    assert (early.status, early.signalled_at, early.finished_at) == (WaveStatus.SKIPPED, None, 30.0)
    assert run.wave(GENERAL).signalled_at == 30.0
    assert run.event_kinds()[1:] == [
        (EventKind.WAVE_HEALTHY, EXPLORER),
        (EventKind.WAVE_SKIPPED, EARLY),
        (EventKind.WAVE_SIGNALLED, GENERAL),
    ]
    assert run.events[2].details == {"reason": "no members"}


def test_an_empty_explorer_wave_is_skipped_and_early_adopters_signalled_first() -> None:
    run = Run(make_rollout(explorer=()))

    step = run.step(0.0)

    assert run.status(EXPLORER) is WaveStatus.SKIPPED
    assert run.wave(EARLY).signalled_at == 0.0
    assert step.wake_at == 60.0


def test_with_an_empty_general_wave_the_early_adopters_are_last_and_do_not_abort() -> None:
    run = Run(make_rollout(general=()))
    to_soak_end_of_explorer(run)
    run.set(S.FAILED, "occ-2", "occ-3")

    run.step(90.0)

    assert run.status(EARLY) is WaveStatus.FAILED
    assert run.status(GENERAL) is WaveStatus.SKIPPED
    assert run.rollout.status is RolloutStatus.COMPLETED
    assert completed_event(run).details == {"failed_members": ["occ-2", "occ-3"]}


def test_a_rollout_without_members_completes_in_one_step() -> None:
    run = Run(make_rollout(explorer=(), early=(), general=()))

    step = run.step(5.0)

    assert step.wake_at is None
    assert run.rollout.status is RolloutStatus.COMPLETED
    assert [w.status for w in run.rollout.waves] == [WaveStatus.SKIPPED] * 3
    assert run.signalled() == []


# --- shutdown -----------------------------------------------------------------------------


def test_shutdown_needs_every_member_down_and_excludes_the_driver_in_the_final_wave() -> None:
    run = Run(make_rollout(SHUTDOWN), driver="occ-6")
    to_soak_end_of_explorer(run)
    assert run.status(EXPLORER) is WaveStatus.HEALTHY

    run.set(S.SHUTDOWN, "occ-2", alive=False)
    run.set(S.SHUTTING_DOWN, "occ-3")
    assert run.step(90.0).wake_at == 95.0  # one early adopter still going down: wait
    assert run.status(EARLY) is WaveStatus.SIGNALLED

    run.set(S.SHUTDOWN, "occ-3", alive=False)
    run.step(95.0)
    assert run.status(EARLY) is WaveStatus.HEALTHY
    assert run.wave(GENERAL).signalled_at == 95.0

    run.set(S.SHUTDOWN, "occ-4", "occ-5", alive=False)  # the driver occ-6 is still in work
    step = run.step(95.0)

    assert step.wake_at is None
    assert run.rollout.status is RolloutStatus.COMPLETED
    general = run.wave(GENERAL)
    assert (general.status, general.reached, general.failed) == (
        WaveStatus.HEALTHY,
        ("occ-4", "occ-5"),
        (),
    )


def test_a_shutdown_driver_is_not_judged_in_its_own_wave_in_any_wave() -> None:
    # A fallback driver from an early wave (the preferred ones are dead) stays to drive
    # the rest and leaves last: its own wave's gate does not wait for it.
    run = Run(make_rollout(SHUTDOWN), driver="occ-1")
    run.step(0.0)  # the driver stays in work

    run.step(30.0)

    assert run.status(EXPLORER) is WaveStatus.HEALTHY
    assert run.signalled() == [EXPLORER, EARLY]


def test_shutdown_with_one_early_adopter_failing_aborts() -> None:
    run = Run(make_rollout(SHUTDOWN))
    to_soak_end_of_explorer(run)
    run.set(S.SHUTDOWN, "occ-2", alive=False)
    run.set(S.FAILED, "occ-3")

    step = run.step(90.0)

    assert step.change is not None and step.change.fail_task is False
    assert run.rollout.status is RolloutStatus.ABORTED
    assert run.wave(EARLY).reached == ("occ-2",)
    assert run.status(GENERAL) is WaveStatus.SKIPPED


def test_shutdown_explorer_stuck_until_timeout_aborts_and_fails_the_task() -> None:
    run = Run(make_rollout(SHUTDOWN))
    run.step(0.0)
    run.set(S.SHUTTING_DOWN, "occ-1")

    run.step(30.0)
    step = run.step(330.0)

    assert step.change is not None and step.change.fail_task is True
    assert run.rollout.status is RolloutStatus.ABORTED
    assert run.signalled() == [EXPLORER]


# --- finished rollouts and events ---------------------------------------------------------


@pytest.mark.parametrize(
    "status", [RolloutStatus.COMPLETED, RolloutStatus.ABORTED, RolloutStatus.REJECTED]
)
def test_stepping_a_finished_rollout_does_nothing(status: RolloutStatus) -> None:
    rollout = make_rollout(status=status)
    fleet = {m: MemberStatus(S.WORK, alive=True) for w in rollout.waves for m in w.members}

    assert step_rollout(rollout, fleet, 100.0, driver="occ-1") == Step(None, None)


def test_every_event_names_the_rollout_the_task_the_driver_and_its_wave() -> None:
    run = Run(make_rollout(early=()), driver="occ-9")
    to_soak_end_of_explorer(run)
    run.set(S.WORK, "occ-4", "occ-5")
    run.set(S.FAILED, "occ-6")
    run.step(30.0)

    assert run.rollout.status is RolloutStatus.COMPLETED
    kinds = {e.kind for e in run.events}
    assert {EventKind.WAVE_SIGNALLED, EventKind.WAVE_SKIPPED, EventKind.WAVE_HEALTHY} <= kinds
    for event in run.events:
        assert (event.rollout_id, event.task_id, event.occurrence_id) == (
            ROLLOUT_ID,
            TASK_ID,
            "occ-9",
        )
        if event.kind == EventKind.ROLLOUT_COMPLETED:
            assert event.wave is None  # about the whole rollout, not one wave
        else:
            assert event.wave is not None
            if "members" in event.details:
                assert tuple(event.details["members"]) == run.wave(event.wave).members
            if "reached" in event.details:
                assert tuple(event.details["reached"]) == run.wave(event.wave).reached


# --- observe and last_wave_index ----------------------------------------------------------


def occurrence(
    oid: str, state: OccurrenceState, heartbeat: float, stopped_at: float | None = None
) -> OccurrenceRecord:
    return record(oid, state=state, heartbeat=heartbeat, stopped_at=stopped_at)


def test_observe_reports_state_and_liveness_by_heartbeat_age() -> None:
    members = [
        occurrence("fresh", S.WORK, heartbeat=95.0),
        occurrence("stale", S.WORK, heartbeat=69.0),
        occurrence("edge", S.WAKEUP, heartbeat=70.0),
        occurrence("stopped", S.SHUTDOWN, heartbeat=99.0, stopped_at=99.5),
    ]

    observed = observe(members, now=100.0, member_ttl=30.0)

    assert observed == {
        "fresh": MemberStatus(S.WORK, alive=True),
        "stale": MemberStatus(S.WORK, alive=False),
        "edge": MemberStatus(S.WAKEUP, alive=False),  # exactly one TTL old: no longer fresh
        "stopped": MemberStatus(S.SHUTDOWN, alive=False),
    }


def test_observe_without_trusting_staleness_counts_only_departed_members_as_dead() -> None:
    # The observer itself was cut off within the last TTL: an old heartbeat proves nothing.
    members = [
        occurrence("fresh", S.WORK, heartbeat=95.0),
        occurrence("stale", S.WORK, heartbeat=10.0),
        occurrence("stopped", S.SHUTDOWN, heartbeat=99.0, stopped_at=99.5),
    ]

    observed = observe(members, now=100.0, member_ttl=30.0, trust_staleness=False)

    assert observed == {
        "fresh": MemberStatus(S.WORK, alive=True),
        "stale": MemberStatus(S.WORK, alive=True),
        "stopped": MemberStatus(S.SHUTDOWN, alive=False),
    }


@pytest.mark.parametrize(
    ("sizes", "expected"),
    [((1, 2, 6), 2), ((1, 2, 0), 1), ((1, 0, 0), 0), ((0, 0, 0), 2), ((0, 1, 0), 1)],
)
def test_last_wave_index_is_the_last_wave_with_members(
    sizes: tuple[int, int, int], expected: int
) -> None:
    names = iter(f"occ-{n}" for n in range(1, 100))
    explorer, early, general = ([next(names) for _ in range(k)] for k in sizes)

    assert (
        last_wave_index(make_rollout(explorer=explorer, early=early, general=general)) == expected
    )


# --- property: order, gating and outcome for random member behaviour ----------------------

OUTCOMES = ("reached", "failed", "never")
Groups = tuple[tuple[str, ...], tuple[str, ...], tuple[str, ...]]


@dataclass(frozen=True)
class Scenario:
    kind: LifecycleKind
    groups: Groups
    outcomes: dict[str, str]
    """How each member ends once its wave is signalled: reached / failed / never settles."""
    driver: str | None
    soaks: tuple[float, float, float]
    poll: float
    timeout: float
    lateness: tuple[float, ...]
    """How late the driver steps after each wake_at, cycled."""

    @property
    def last(self) -> int:
        non_empty = [i for i, members in enumerate(self.groups) if members]
        return max(non_empty, default=len(self.groups) - 1)

    def judged(self, index: int) -> tuple[str, ...]:
        """Members a wave's gate judges: all, but a shutdown's driver (it leaves last)."""
        members = self.groups[index]
        if self.kind is SHUTDOWN:
            return tuple(m for m in members if m != self.driver)
        return members


@st.composite
def scenarios(draw: st.DrawFn) -> Scenario:
    names = iter(f"occ-{n}" for n in range(1, 10))
    explorer, early, general = (
        tuple(next(names) for _ in range(draw(st.integers(0, 3)))) for _ in WAVE_ORDER
    )
    everyone = [*explorer, *early, *general]
    soak = st.integers(0, 90).map(float)
    return Scenario(
        kind=draw(st.sampled_from([WAKEUP, SHUTDOWN])),
        groups=(explorer, early, general),
        outcomes={m: draw(st.sampled_from(OUTCOMES)) for m in everyone},
        driver=draw(st.none() | st.sampled_from(everyone)) if everyone else None,
        soaks=(draw(soak), draw(soak), draw(soak)),
        poll=float(draw(st.integers(1, 20))),
        timeout=float(draw(st.integers(1, 120))),
        lateness=tuple(
            draw(st.lists(st.sampled_from([0.0, 0.0, 0.5, 3.0, 17.0]), min_size=1, max_size=8))
        ),
    )


def acting_state(kind: LifecycleKind, outcome: str) -> MemberStatus:
    """What a signalled member reports, given how it will end."""
    if kind is WAKEUP:
        state = {"reached": S.WORK, "failed": S.FAILED, "never": S.WAKEUP}[outcome]
        return MemberStatus(state, alive=True)
    if outcome == "reached":
        return MemberStatus(S.SHUTDOWN, alive=False)
    return MemberStatus(S.FAILED if outcome == "failed" else S.SHUTTING_DOWN, alive=True)


def expected_outcome(sc: Scenario) -> tuple[list[WaveStatus], RolloutStatus, bool]:
    """The FSD's rules, written independently of the machine: wave statuses, rollout
    status, and whether the shared task fails."""
    statuses: list[WaveStatus] = []
    aborted_by: CanaryGroup | None = None
    for index, group in enumerate(WAVE_ORDER):
        if aborted_by is not None or not sc.groups[index]:
            statuses.append(WaveStatus.SKIPPED)
            continue
        results = [sc.outcomes[m] for m in sc.judged(index)]
        if sc.kind is WAKEUP:
            healthy = not results or "reached" in results
        else:
            healthy = all(r == "reached" for r in results)
        statuses.append(WaveStatus.HEALTHY if healthy else WaveStatus.FAILED)
        if not healthy and index < sc.last:
            aborted_by = group
    status = RolloutStatus.ABORTED if aborted_by else RolloutStatus.COMPLETED
    return statuses, status, aborted_by is CanaryGroup.EXPLORER


def drive(sc: Scenario) -> Run:
    """Step at every wake_at (sometimes late) until the rollout finishes, probing halfway
    to each wake_at as well: nothing may change before it."""
    rollout = make_rollout(
        sc.kind,
        explorer=sc.groups[0],
        early=sc.groups[1],
        general=sc.groups[2],
        soaks=sc.soaks,
        health_poll=sc.poll,
        health_timeout=sc.timeout,
    )
    run = Run(rollout, driver=sc.driver)
    lateness = iter(sc.lateness * 1_000)
    now = 0.0
    for _ in range(2_000):
        for wave in run.rollout.waves:
            if wave.signalled_at is not None:
                for member in wave.members:
                    run.fleet[member] = acting_state(sc.kind, sc.outcomes[member])
        step = run.step(now)
        if step.wake_at is None:
            assert run.rollout.status is not RolloutStatus.RUNNING
            return run
        assert step.wake_at >= now
        if step.wake_at == now:
            assert step.change is not None, "no progress, yet asked to step again at once"
        else:
            assert run.step((now + step.wake_at) / 2) == Step(None, step.wake_at)
        now = step.wake_at + next(lateness)
    raise AssertionError("the rollout did not finish")


@PROPERTY
@given(sc=scenarios())
def test_waves_are_signalled_in_order_and_only_after_every_earlier_wave_is_healthy(
    sc: Scenario,
) -> None:
    run = drive(sc)

    non_empty = [g for g, members in zip(WAVE_ORDER, sc.groups, strict=True) if members]
    signalled = run.signalled()
    assert signalled == non_empty[: len(signalled)]  # a prefix; each wave at most once

    signalled_waves = [w for w in run.rollout.waves if w.signalled_at is not None]
    assert [w.group for w in signalled_waves] == signalled
    times = [w.signalled_at for w in signalled_waves if w.signalled_at is not None]
    assert times == sorted(times)
    for wave in signalled_waves:
        assert wave.signalled_at is not None
        for earlier in run.rollout.waves[: wave.index]:
            if earlier.members:
                assert earlier.status is WaveStatus.HEALTHY
                assert earlier.finished_at is not None
                assert earlier.finished_at <= wave.signalled_at


@PROPERTY
@given(sc=scenarios())
def test_outcome_follows_the_abort_rules(sc: Scenario) -> None:
    statuses, status, fail_task = expected_outcome(sc)

    run = drive(sc)

    assert [w.status for w in run.rollout.waves] == statuses
    assert run.rollout.status is status
    assert run.changes[-1].fail_task is fail_task
    assert (run.rollout.abort_reason is not None) == (status is RolloutStatus.ABORTED)
    for wave in run.rollout.waves:
        if wave.status is WaveStatus.SKIPPED:
            assert wave.signalled_at is None
            continue
        judged = sc.judged(wave.index)
        assert set(wave.reached) == {m for m in judged if sc.outcomes[m] == "reached"}
        assert {m for m in judged if sc.outcomes[m] == "failed"} <= set(wave.failed)
    for event in run.events:
        assert (event.rollout_id, event.task_id) == (ROLLOUT_ID, TASK_ID)
