"""An emergency stop and the rollouts in progress."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from schemas.commands import CommandRecord
from schemas.events import EventKind
from schemas.policy.rollout_control import RolloutEdit, abort_edit
from schemas.records import NewEvent, RolloutRecord

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
