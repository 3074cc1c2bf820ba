"""An operator's pause, resume, abort and retry: when each applies and what it changes."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st
from policy_records import command, rollout, wave

from schemas import (
    CommandKind,
    CommandStatus,
    EventKind,
    LifecycleKind,
    RolloutAction,
    RolloutRecord,
    RolloutStatus,
    TaskStatus,
    WaveStatus,
)
from schemas.policy import ControlView, action_event, decide_control
from schemas.policy.rollout_control import IN_PROGRESS, control_conflict

PROPERTY = settings(max_examples=300, deadline=None, database=None)
W = WaveStatus


def gated_abort() -> RolloutRecord:
    """A rollout aborted by its early adopters failing the gate."""
    waves = [
        wave(0, W.HEALTHY, members=("a",), finished_at=40.0, reached=("a",)),
        wave(1, W.FAILED, members=("b", "c"), signalled_at=40.0, finished_at=90.0, failed=("b",)),
        wave(2, W.SKIPPED, members=("d",), finished_at=90.0),
    ]
    return rollout(status=RolloutStatus.ABORTED, waves=waves)


def running_in_wave_1() -> RolloutRecord:
    waves = [
        wave(0, W.HEALTHY, members=("a",), finished_at=40.0, reached=("a",)),
        wave(
            1, W.SIGNALLED, members=("b",), signalled_at=40.0, next_check_at=100.0, deadline=400.0
        ),
        wave(2, W.PENDING, members=("d",)),
    ]
    return rollout(waves=waves)


@PROPERTY
@given(
    action=st.sampled_from(RolloutAction),
    status=st.sampled_from(RolloutStatus),
    failed_wave=st.booleans(),
    other=st.booleans(),
    newer=st.booleans(),
    open_kinds=st.sets(st.sampled_from(LifecycleKind)),
    kind=st.sampled_from(LifecycleKind),
)
def test_an_action_applies_exactly_in_the_states_it_is_meant_for(
    action: RolloutAction,
    status: RolloutStatus,
    failed_wave: bool,
    other: bool,
    newer: bool,
    open_kinds: set[LifecycleKind],
    kind: LifecycleKind,
) -> None:
    waves = [wave(0, W.FAILED if failed_wave else W.HEALTHY), wave(1), wave(2)]
    view = ControlView(
        rollout=rollout(kind, status, waves=waves),
        now=500.0,
        other_in_progress="r-other" if other else None,
        decided_after="r-newer" if newer else None,
        open_task_kinds=frozenset(open_kinds),
    )
    applies = {
        RolloutAction.PAUSE: status is RolloutStatus.RUNNING,
        RolloutAction.RESUME: status is RolloutStatus.PAUSED,
        RolloutAction.ABORT: status in IN_PROGRESS,
        RolloutAction.RETRY: status is RolloutStatus.ABORTED
        and failed_wave
        and not other
        and not newer
        and kind not in open_kinds,
    }[action]
    decision = decide_control(view, action, "why")
    assert (control_conflict(view, action) is None) == applies
    assert (decision.edit is not None) == applies
    if decision.edit is not None:
        assert status in decision.edit.expected  # written only while still as read
        assert decision.edit.based_on == view.rollout.version


def test_retry_names_what_stands_in_its_way() -> None:
    view = ControlView(rollout=gated_abort(), now=500.0, other_in_progress="r-9")
    assert control_conflict(view, RolloutAction.RETRY) == (
        "rollout r-9 is in progress; one rollout at a time"
    )
    view = ControlView(rollout=gated_abort(), now=500.0, decided_after="r-8")
    assert control_conflict(view, RolloutAction.RETRY) == (
        "rollout r-8 was decided after this one; retrying would undo it"
    )
    view = ControlView(
        rollout=gated_abort(), now=500.0, open_task_kinds=frozenset({LifecycleKind.WAKEUP})
    )
    assert control_conflict(view, RolloutAction.RETRY) == "a new wakeup is being decided"
    completed = ControlView(rollout=rollout(status=RolloutStatus.COMPLETED), now=1.0)
    assert control_conflict(completed, RolloutAction.RETRY) == (
        "only a rollout aborted by a failed health gate can be retried; this one is completed"
    )
    aborted = ControlView(rollout=rollout(status=RolloutStatus.ABORTED), now=1.0)
    assert control_conflict(aborted, RolloutAction.RETRY) == (
        "only a rollout aborted by a failed health gate can be retried; "
        "this one is aborted without a failed wave"
    )


def test_pause_changes_only_the_status() -> None:
    r = running_in_wave_1()
    edit = decide_control(ControlView(rollout=r, now=150.0), RolloutAction.PAUSE, "x").edit
    assert edit is not None
    assert (edit.status, edit.expected) == (RolloutStatus.PAUSED, (RolloutStatus.RUNNING,))
    assert (edit.finished_at, edit.abort_reason, edit.waves, edit.task_status) == (
        None,
        None,
        (),
        None,
    )


def test_resume_moves_the_clock_of_the_wave_in_progress_by_the_time_it_was_held() -> None:
    r = running_in_wave_1().model_copy(update={"status": RolloutStatus.PAUSED})
    view = ControlView(rollout=r, now=250.0, paused_at=150.0)
    edit = decide_control(view, RolloutAction.RESUME, "x").edit
    assert edit is not None and edit.status is RolloutStatus.RUNNING
    (moved,) = edit.waves
    assert (moved.index, moved.next_check_at, moved.deadline) == (1, 200.0, 500.0)
    assert moved.status is W.SIGNALLED and moved.signalled_at == 40.0


def test_resume_without_a_recorded_pause_moves_nothing() -> None:
    r = running_in_wave_1().model_copy(update={"status": RolloutStatus.PAUSED})
    edit = decide_control(ControlView(rollout=r, now=250.0), RolloutAction.RESUME, "x").edit
    assert edit is not None
    assert [(w.next_check_at, w.deadline) for w in edit.waves] == [(100.0, 400.0)]


def test_abort_skips_every_unsettled_wave_and_fails_the_task() -> None:
    edit = decide_control(
        ControlView(rollout=running_in_wave_1(), now=150.0), RolloutAction.ABORT, "bad build"
    ).edit
    assert edit is not None
    assert edit.status is RolloutStatus.ABORTED and edit.finished_at == 150.0
    assert edit.abort_reason == "aborted by an operator: bad build"
    assert [(w.index, w.status, w.finished_at) for w in edit.waves] == [
        (1, W.SKIPPED, 150.0),
        (2, W.SKIPPED, 150.0),
    ]
    assert (edit.task_status, edit.task_only_if) == (TaskStatus.FAILED, None)


def test_retry_reopens_the_failed_gate_and_the_waves_after_it() -> None:
    edit = decide_control(ControlView(rollout=gated_abort(), now=500.0), RolloutAction.RETRY, "x")
    assert edit.edit is not None
    e = edit.edit
    assert (e.status, e.expected) == (RolloutStatus.RUNNING, (RolloutStatus.ABORTED,))
    assert (e.finished_at, e.abort_reason) == (None, None)
    again, later = e.waves
    assert (again.index, again.status, again.next_check_at, again.deadline) == (
        1,
        W.SIGNALLED,
        500.0,
        800.0,
    )
    assert (again.reached, again.failed, again.finished_at, again.signalled_at) == (
        (),
        (),
        None,
        40.0,  # members already signalled are not signalled again
    )
    assert (later.index, later.status, later.finished_at) == (2, W.PENDING, None)
    assert (e.task_status, e.task_only_if) == (TaskStatus.COMPLETED, TaskStatus.FAILED)


def test_the_action_event_names_the_wave_it_concerns() -> None:
    record = command(status=CommandStatus.ACCEPTED).model_copy(update={"kind": CommandKind.PAUSE})
    paused = action_event(running_in_wave_1(), RolloutAction.PAUSE, record, "why")
    assert (paused.kind, paused.wave) == (EventKind.ROLLOUT_PAUSED, wave(1).group)
    assert paused.details == {"command_id": "cmd-1", "by": "op", "reason": "why"}
    retried = action_event(gated_abort(), RolloutAction.RETRY, record, "why")
    assert (retried.kind, retried.wave) == (EventKind.ROLLOUT_RETRIED, wave(1).group)
    aborted = action_event(running_in_wave_1(), RolloutAction.ABORT, record, "why")
    assert aborted.details["operator"] is True
