"""An operator's hand on one rollout: when pause, resume, abort and retry apply, and what
each changes. The store reads a ``ControlView`` and writes the ``RolloutEdit``."""

from __future__ import annotations

from dataclasses import dataclass

from schemas.commands import CommandRecord, RolloutAction
from schemas.enums import LifecycleKind, RolloutStatus, TaskStatus, WaveStatus
from schemas.events import EventKind
from schemas.records import NewEvent, RolloutRecord, WaveRecord

IN_PROGRESS: tuple[RolloutStatus, ...] = (RolloutStatus.RUNNING, RolloutStatus.PAUSED)


@dataclass(frozen=True)
class ControlView:
    """What the rules of an operator's action read, in the action's transaction."""

    rollout: RolloutRecord
    now: float
    other_in_progress: str | None = None
    """Another rollout running or paused, if any."""
    decided_after: str | None = None
    """An accepted rollout decided after this one, if any."""
    open_task_kinds: frozenset[LifecycleKind] = frozenset()
    """Kinds of the shared tasks being decided."""
    paused_at: float | None = None
    """When the rollout was last paused (its latest ``rollout_paused`` event)."""


@dataclass(frozen=True)
class RolloutEdit:
    """One change to a rollout, written only while it is still at ``based_on`` and in one
    of the ``expected`` statuses it was read in; the driver lease is freed with it."""

    rollout_id: str
    task_id: str
    based_on: int
    expected: tuple[RolloutStatus, ...]
    status: RolloutStatus
    finished_at: float | None
    abort_reason: str | None
    waves: tuple[WaveRecord, ...] = ()
    """Waves whose progress it rewrites."""
    task_status: TaskStatus | None = None
    """The shared task's new status, if any ..."""
    task_only_if: TaskStatus | None = None
    """... set only while the task is in this status (None: whatever it is)."""


@dataclass(frozen=True)
class ControlDecision:
    edit: RolloutEdit | None
    """None: refused."""
    detail: str
    """What was applied, or what state stood in the way."""


def failed_wave(rollout: RolloutRecord) -> WaveRecord | None:
    return next((w for w in rollout.waves if w.status is WaveStatus.FAILED), None)


def control_conflict(view: ControlView, action: RolloutAction) -> str | None:
    """Why ``action`` cannot apply to the rollout now, or None."""
    status = view.rollout.status
    if action is RolloutAction.PAUSE and status is not RolloutStatus.RUNNING:
        return f"only a running rollout can be paused; this one is {status.value}"
    if action is RolloutAction.RESUME and status is not RolloutStatus.PAUSED:
        return f"only a paused rollout can be resumed; this one is {status.value}"
    if action is RolloutAction.ABORT and status.is_finished:
        return f"the rollout is already {status.value}"
    if action is RolloutAction.RETRY:
        return _retry_conflict(view)
    return None


def _retry_conflict(view: ControlView) -> str | None:
    rollout = view.rollout
    if rollout.status is not RolloutStatus.ABORTED or failed_wave(rollout) is None:
        return (
            "only a rollout aborted by a failed health gate can be retried; "
            f"this one is {rollout.status.value}"
            + (" without a failed wave" if rollout.status is RolloutStatus.ABORTED else "")
        )
    if view.other_in_progress is not None:
        return f"rollout {view.other_in_progress} is in progress; one rollout at a time"
    if view.decided_after is not None:
        return f"rollout {view.decided_after} was decided after this one; retrying would undo it"
    if rollout.kind in view.open_task_kinds:
        return f"a new {rollout.kind.value} is being decided"
    return None


def decide_control(view: ControlView, action: RolloutAction, reason: str) -> ControlDecision:
    """The edit ``action`` makes, or the refusal and why."""
    problem = control_conflict(view, action)
    if problem is not None:
        return ControlDecision(None, problem)
    rollout = view.rollout
    edit = _EDITS[action](view, reason)
    return ControlDecision(
        edit, f"{action.value} applied to {rollout.kind.value} {rollout.rollout_id}"
    )


def _edit(
    rollout: RolloutRecord,
    expected: tuple[RolloutStatus, ...],
    status: RolloutStatus,
    *,
    finished_at: float | None,
    abort_reason: str | None,
    waves: tuple[WaveRecord, ...] = (),
    task_status: TaskStatus | None = None,
    task_only_if: TaskStatus | None = None,
) -> RolloutEdit:
    return RolloutEdit(
        rollout_id=rollout.rollout_id,
        task_id=rollout.task_id,
        based_on=rollout.version,
        expected=expected,
        status=status,
        finished_at=finished_at,
        abort_reason=abort_reason,
        waves=waves,
        task_status=task_status,
        task_only_if=task_only_if,
    )


def _pause(view: ControlView, reason: str) -> RolloutEdit:
    # The lease is freed: the driver's next fenced step fails, and nobody drives until
    # the rollout runs again.
    r = view.rollout
    return _edit(
        r,
        (RolloutStatus.RUNNING,),
        RolloutStatus.PAUSED,
        finished_at=r.finished_at,
        abort_reason=r.abort_reason,
    )


def _resume(view: ControlView, reason: str) -> RolloutEdit:
    r = view.rollout
    held = max(0.0, view.now - view.paused_at) if view.paused_at is not None else 0.0
    # A pause stops the clock of the wave in progress: its soak and gate deadline move
    # by the time it was held, so a pause never fails a wave by itself.
    shifted = tuple(
        w.model_copy(
            update={"next_check_at": w.next_check_at + held, "deadline": w.deadline + held}
        )
        for w in r.waves
        if w.status is WaveStatus.SIGNALLED and w.deadline and w.next_check_at
    )
    return _edit(
        r,
        (RolloutStatus.PAUSED,),
        RolloutStatus.RUNNING,
        finished_at=r.finished_at,
        abort_reason=r.abort_reason,
        waves=shifted,
    )


def abort_edit(rollout: RolloutRecord, now: float, abort_reason: str) -> RolloutEdit:
    """End a rollout in progress: no further wave (the unsettled ones are skipped), the
    lease freed, the task FAILED."""
    skipped = tuple(
        w.model_copy(update={"status": WaveStatus.SKIPPED, "finished_at": now})
        for w in rollout.waves
        if w.status in (WaveStatus.PENDING, WaveStatus.SIGNALLED)
    )
    return _edit(
        rollout,
        IN_PROGRESS,
        RolloutStatus.ABORTED,
        finished_at=now,
        abort_reason=abort_reason,
        waves=skipped,
        task_status=TaskStatus.FAILED,
    )


def _abort(view: ControlView, reason: str) -> RolloutEdit:
    return abort_edit(view.rollout, view.now, f"aborted by an operator: {reason}")


def _retry(view: ControlView, reason: str) -> RolloutEdit:
    r, now = view.rollout, view.now
    failed = failed_wave(r)
    assert failed is not None  # checked by _retry_conflict
    # The failed wave's gate runs again from now, for a whole health timeout; the waves
    # the abort skipped are pending again. Members already signalled are not re-signalled.
    again = failed.model_copy(
        update={
            "status": WaveStatus.SIGNALLED,
            "next_check_at": now,
            "deadline": now + r.health_timeout,
            "finished_at": None,
            "reached": (),
            "failed": (),
        }
    )
    later = tuple(
        w.model_copy(update={"status": WaveStatus.PENDING, "finished_at": None})
        for w in r.waves
        if w.index > failed.index
    )
    return _edit(
        r,
        (RolloutStatus.ABORTED,),
        RolloutStatus.RUNNING,
        finished_at=None,
        abort_reason=None,
        waves=(again, *later),
        task_status=TaskStatus.COMPLETED,  # the decision stands
        task_only_if=TaskStatus.FAILED,
    )


_EDITS = {
    RolloutAction.PAUSE: _pause,
    RolloutAction.RESUME: _resume,
    RolloutAction.ABORT: _abort,
    RolloutAction.RETRY: _retry,
}

_EVENT = {
    RolloutAction.PAUSE: EventKind.ROLLOUT_PAUSED,
    RolloutAction.RESUME: EventKind.ROLLOUT_RESUMED,
    RolloutAction.ABORT: EventKind.ROLLOUT_ABORTED,
    RolloutAction.RETRY: EventKind.ROLLOUT_RETRIED,
}


def action_event(
    rollout: RolloutRecord, action: RolloutAction, record: CommandRecord, reason: str
) -> NewEvent:
    """The audit event of an applied action (``record``: its command)."""
    current = next((w for w in rollout.waves if not w.status.is_settled), None)
    wave = failed_wave(rollout) if action is RolloutAction.RETRY else current
    return NewEvent(
        kind=_EVENT[action],
        rollout_id=rollout.rollout_id,
        task_id=rollout.task_id,
        wave=wave.group if wave else None,
        details={
            "command_id": record.command_id,
            "by": record.issued_by,
            "reason": reason,
            **({"operator": True} if action is RolloutAction.ABORT else {}),
        },
    )
