"""An emergency stop, the rollouts in progress and the decisions not yet made."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from schemas.commands import CommandRecord
from schemas.events import EventKind
from schemas.policy.rollout_control import RolloutEdit, abort_edit
from schemas.records import NewEvent, RolloutRecord, SharedTask

EMERGENCY_STOP_REASON = "emergency stop"


@dataclass(frozen=True)
class FleetStopAbort:
    edit: RolloutEdit
    event: NewEvent
    """Recorded if the edit applied."""


def fleet_stop_aborts(
    command: CommandRecord, in_progress: Iterable[RolloutRecord], now: float
) -> tuple[FleetStopAbort, ...]:
    """A whole-fleet stop (an accepted command naming no targets) ends every rollout in
    progress: nobody is left to drive it. A stop of named occurrences ends none."""
    if not command.accepted or command.targets:
        return ()
    reason = f"{EMERGENCY_STOP_REASON} ({command.command_id}): {command.reason}"
    return tuple(
        FleetStopAbort(
            abort_edit(rollout, now, reason),
            NewEvent(
                kind=EventKind.ROLLOUT_ABORTED,
                rollout_id=rollout.rollout_id,
                task_id=rollout.task_id,
                details={"reason": reason, "command_id": command.command_id, "emergency": True},
            ),
        )
        for rollout in in_progress
        if not rollout.status.is_finished
    )


def fleet_stop_cancels(
    command: CommandRecord, open_tasks: Iterable[SharedTask]
) -> tuple[NewEvent, ...]:
    """A whole-fleet stop also cancels the decisions not yet made: each open shared task
    (pending, or claimed while its decider asks the engine) is failed, one event each.

    Without this, a decision recorded between the stop's commit and its decider's
    emergency loop answering it would start a rollout that no stop ever ends, and the
    next incarnations (which read only the commands since their own start) would drive
    it. Failed, the task refuses that decision at its fence (``status = active``); a
    fresh wakeup is opened by the next start. The protocol model checks both sides of
    this (docs/model/README.md, ``STRICT_EMERGENCY``). A stop of named occurrences
    cancels nothing."""
    if not command.accepted or command.targets:
        return ()
    return tuple(
        NewEvent(
            kind=EventKind.TASK_CANCELLED,
            task_id=task.task_id,
            details={
                "reason": f"{EMERGENCY_STOP_REASON} ({command.command_id}): {command.reason}",
                "command_id": command.command_id,
                "was": task.status.value,
                "claimed_by": task.claimed_by,
            },
        )
        for task in open_tasks
    )
