"""What one occurrence should do next, decided from one snapshot of the fleet (pure)."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from enum import StrEnum

from coordinator.policy.rollout_machine import last_wave_index
from schemas import (
    LifecycleKind,
    OccurrenceRecord,
    OccurrenceState,
    RolloutRecord,
    RolloutStatus,
    SharedTask,
    TaskStatus,
    WaveRecord,
    WaveStatus,
    kind_policy,
)
from schemas.fleet import FleetView

ACTIVE_STATES = (OccurrenceState.STARTING, OccurrenceState.WAKEUP, OccurrenceState.WORK)
"""States of an occurrence that takes part in decisions and rollouts."""


class Act(StrEnum):
    WAIT = "wait"
    OPEN_WAKEUP = "open_wakeup"
    CLAIM = "claim"
    JOIN_LAST_WAVE = "join_last_wave"
    ENTER_WORK = "enter_work"
    LEAVE = "leave"
    STOP_REJECTED = "stop_rejected"


@dataclass(frozen=True)
class MemberAction:
    act: Act
    why: str = ""
    rollout: RolloutRecord | None = None
    wave: WaveRecord | None = None
    task: SharedTask | None = None


def claimable(task: SharedTask, now: float) -> bool:
    if task.status is TaskStatus.PENDING:
        return True
    expired = task.lease_expires_at is not None and task.lease_expires_at < now
    return task.status is TaskStatus.ACTIVE and expired


def may_drive(rollout: RolloutRecord, occurrence_id: str, state: OccurrenceState) -> bool:
    """Whether this occurrence is a preferred driver: any active occurrence for a wakeup;
    for a shutdown, members of its last wave or occurrences outside it, so the driver
    rarely has to stay past its own wave. Others take over only when no preferred driver
    picked a free lease up (see RolloutDriver)."""
    if state not in (OccurrenceState.WAKEUP, OccurrenceState.WORK):
        return False
    if not kind_policy(rollout.kind).driver_leaves_last:
        return True
    return rollout.wave_of(occurrence_id) is None or in_last_wave(rollout, occurrence_id)


def in_last_wave(rollout: RolloutRecord, occurrence_id: str) -> bool:
    """Whether ``occurrence_id`` is planned in the rollout's last wave with members."""
    wave = rollout.wave_of(occurrence_id)
    return wave is not None and wave.index >= last_wave_index(rollout)


LEAVING_STATES = (OccurrenceState.SHUTTING_DOWN, OccurrenceState.SHUTDOWN)


def leaves_last(rollout: RolloutRecord, occurrence_id: str) -> bool:
    """Whether ``occurrence_id`` is in the last wave (with members) of a shutdown: such
    a member leaves only once the rollout's result is recorded, by itself if need be."""
    if not kind_policy(rollout.kind).members_leave:
        return False
    return in_last_wave(rollout, occurrence_id)


def may_hold_lease(rollout: RolloutRecord, occurrence_id: str, state: OccurrenceState) -> bool:
    """Whether this occurrence may hold (or take) the rollout's driver lease at all: any
    serving occurrence, and a member of a shutdown's last wave while it leaves (else a
    last wave whose driver was lost mid-leave would end with nobody to record it)."""
    if state in (OccurrenceState.WAKEUP, OccurrenceState.WORK):
        return True
    return state in LEAVING_STATES and leaves_last(rollout, occurrence_id)


def next_action(
    view: FleetView,
    me: OccurrenceRecord,
    state: OccurrenceState,
    *,
    driving: Collection[str] = (),
) -> MemberAction:
    """What ``me`` does next from ``view``. An incarnation whose named decision engine
    did not load (``engine_error``: it runs the built-in one, which accepts everything)
    never claims a decision: it follows the ones the others make."""
    if state not in ACTIVE_STATES:
        return MemberAction(Act.WAIT, f"nothing to do in state {state.value}")
    leave = _shutdown_signal(view, me, driving)
    if leave is not None:
        return leave
    if state is OccurrenceState.WORK:
        return (
            _left_out_of_shutdown(view, me)
            or _claim_shutdown(view, me)
            or MemberAction(Act.WAIT, "serving")
        )
    return _waking(view, me)


def _shutdown_signal(
    view: FleetView, me: OccurrenceRecord, driving: Collection[str]
) -> MemberAction | None:
    shutdown = view.latest_shutdown
    if shutdown is None:
        return None
    wave = shutdown.wave_of(me.occurrence_id)
    # Only a signal given to this incarnation counts, not one its predecessor obeyed.
    if wave is None or wave.signalled_at is None or wave.signalled_at < me.started_at:
        return None
    if not shutdown.status.is_finished and shutdown.rollout_id in driving:
        return MemberAction(Act.WAIT, "driving the shutdown: leaving after the others")
    return MemberAction(Act.LEAVE, rollout=shutdown, wave=wave)


def _left_out_of_shutdown(view: FleetView, me: OccurrenceRecord) -> MemberAction | None:
    """A serving occurrence the shutdown's plan left out (its decider could not judge it,
    say, while it was cut off) is not left serving: it joins the last wave while that is
    pending, and leaves by itself once the waves are past, if it served when the shutdown
    was decided. One started after that decision is a new start, not a straggler."""
    shutdown = view.latest_shutdown
    if shutdown is None or shutdown.wave_of(me.occurrence_id) is not None:
        return None
    last = shutdown.waves[-1]
    if shutdown.status is RolloutStatus.RUNNING and last.status is WaveStatus.PENDING:
        return MemberAction(Act.JOIN_LAST_WAVE, rollout=shutdown)
    waves_past = shutdown.status is RolloutStatus.COMPLETED or (
        shutdown.status is RolloutStatus.RUNNING and last.signalled_at is not None
    )
    if waves_past and me.started_at < shutdown.created_at:
        return MemberAction(Act.LEAVE, "left out of the shutdown's plan", rollout=shutdown)
    return None


NO_ENGINE = "the decision engine named by COORDINATOR_ENGINE did not load: the others decide"


def _claim(task: SharedTask, me: OccurrenceRecord) -> MemberAction:
    if me.engine_error is not None:
        return MemberAction(Act.WAIT, NO_ENGINE)
    return MemberAction(Act.CLAIM, task=task)


def _claim_shutdown(view: FleetView, me: OccurrenceRecord) -> MemberAction | None:
    task = view.open_task(LifecycleKind.SHUTDOWN)
    if task is None:
        return None
    if view.running:
        return MemberAction(Act.WAIT, "shutdown requested; waiting for the running rollout")
    if claimable(task, view.now):
        return _claim(task, me)
    return MemberAction(Act.WAIT, f"{task.claimed_by} is deciding the shutdown")


def _waking(view: FleetView, me: OccurrenceRecord) -> MemberAction:
    wakeup = view.current_wakeup
    if wakeup is None:
        if view.running_of(LifecycleKind.SHUTDOWN) is not None:
            return MemberAction(Act.WAIT, "a shutdown rollout is running; waking up after it")
        task = view.open_task(LifecycleKind.WAKEUP)
        if task is None:
            return MemberAction(Act.OPEN_WAKEUP)
        if claimable(task, view.now):
            return _claim(task, me)
        return MemberAction(Act.WAIT, f"{task.claimed_by} is deciding the wakeup")
    if wakeup.status is RolloutStatus.REJECTED:
        return MemberAction(Act.STOP_REJECTED, wakeup.decision.reason, rollout=wakeup)
    wave = wakeup.wave_of(me.occurrence_id)
    if wave is not None and wave.signalled_at is not None:
        return MemberAction(Act.ENTER_WORK, rollout=wakeup, wave=wave)
    if wakeup.status is RolloutStatus.ABORTED:
        # The fleet waits for an operator; a shutdown request is one way out.
        return _claim_shutdown(view, me) or MemberAction(
            Act.WAIT, f"wakeup rollout aborted ({wakeup.abort_reason}); waiting for an operator"
        )
    if wave is not None:
        return MemberAction(Act.WAIT, f"waiting for the {wave.group.value} wave")
    if not wakeup.status.is_finished and wakeup.waves[-1].status is WaveStatus.PENDING:
        return MemberAction(Act.JOIN_LAST_WAVE, rollout=wakeup)
    # The wakeup is past its last wave: skip the ritual and join the active pool.
    return MemberAction(Act.ENTER_WORK, rollout=wakeup)
