"""An operator's hand on one rollout: pause, resume, abort, retry.

Each action is one transaction: the command's row, its audit events and the change it
makes, or the row and the refusal alone when the rollout's state does not allow it.
Every rollout update is conditional on the status it was read in, so a driver's fenced
step racing an operator's action cannot both win: the driver's step requires ``running``
and the lease the pause or abort just freed.
"""

from __future__ import annotations

from sqlalchemy import desc, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from persistence.commands import CONFLICT, CommandLog, command_event, insert_command
from persistence.engine import serialize_lifecycle
from persistence.queries import IN_PROGRESS_STATUSES, open_tasks, select_rollouts
from persistence.tables import events, rollouts, tasks, waves
from schemas import (
    CommandKind,
    CommandRecord,
    CommandStatus,
    EventKind,
    NewEvent,
    NotFound,
    RolloutAction,
    RolloutRecord,
    RolloutStatus,
    TaskStatus,
    Verdict,
    WaveRecord,
    WaveStatus,
)

IN_PROGRESS = IN_PROGRESS_STATUSES


class RolloutControlStore(CommandLog):
    async def control_rollout(
        self, rollout_id: str, action: RolloutAction, *, issued_by: str, reason: str
    ) -> CommandRecord:
        """Apply ``action`` to the rollout, or record why it cannot be applied.

        Raises ``NotFound`` for an unknown rollout (nothing is recorded). Returns the
        command: ``accepted``, or ``refused`` with ``refusal == "conflict"`` and a
        ``detail`` that says what state stood in the way.
        """

        async def work(conn: AsyncConnection) -> CommandRecord:
            await serialize_lifecycle(conn)
            now = self.now()
            found = await select_rollouts(conn, rollouts.c.rollout_id == rollout_id)
            if not found:
                raise NotFound(f"no rollout with id {rollout_id!r}")
            rollout = found[0]
            problem = await _conflict(conn, rollout, action)
            if problem is None:
                applied = await _APPLY[action](conn, rollout, now, reason)
                problem = None if applied else f"the rollout changed meanwhile ({action.value})"
            status = CommandStatus.ACCEPTED if problem is None else CommandStatus.REFUSED
            record = await insert_command(
                conn,
                now,
                CommandKind(action.value),
                status,
                issued_by=issued_by,
                reason=reason,
                rollout_id=rollout_id,
                refusal=None if problem is None else CONFLICT,
                detail=problem or f"{action.value} applied to {rollout.kind.value} {rollout_id}",
            )
            new = [command_event(record)]
            if problem is None:
                new.append(_action_event(rollout, action, record, reason))
            await self._append(conn, now, new)
            return record

        return await self._write(work)


async def _conflict(
    conn: AsyncConnection, rollout: RolloutRecord, action: RolloutAction
) -> str | None:
    """Why ``action`` cannot apply to ``rollout`` now, or None."""
    status = rollout.status
    if action is RolloutAction.PAUSE and status is not RolloutStatus.RUNNING:
        return f"only a running rollout can be paused; this one is {status.value}"
    if action is RolloutAction.RESUME and status is not RolloutStatus.PAUSED:
        return f"only a paused rollout can be resumed; this one is {status.value}"
    if action is RolloutAction.ABORT and status.is_finished:
        return f"the rollout is already {status.value}"
    if action is RolloutAction.RETRY:
        return await _retry_conflict(conn, rollout)
    return None


async def _retry_conflict(conn: AsyncConnection, rollout: RolloutRecord) -> str | None:
    if rollout.status is not RolloutStatus.ABORTED or _failed_wave(rollout) is None:
        return (
            "only a rollout aborted by a failed health gate can be retried; "
            f"this one is {rollout.status.value}"
            + (" without a failed wave" if rollout.status is RolloutStatus.ABORTED else "")
        )
    other = await conn.scalar(
        select(rollouts.c.rollout_id)
        .where(rollouts.c.status.in_(IN_PROGRESS))
        .where(rollouts.c.rollout_id != rollout.rollout_id)
        .limit(1)
    )
    if other is not None:
        return f"rollout {other} is in progress; one rollout at a time"
    newer = await conn.scalar(
        select(rollouts.c.rollout_id)
        .where(rollouts.c.created_at > rollout.created_at)
        .where(rollouts.c.verdict == Verdict.ACCEPT.value)
        .limit(1)
    )
    if newer is not None:
        return f"rollout {newer} was decided after this one; retrying would undo it"
    if any(t.kind is rollout.kind for t in await open_tasks(conn)):
        return f"a new {rollout.kind.value} is being decided"
    return None


def _failed_wave(rollout: RolloutRecord) -> WaveRecord | None:
    return next((w for w in rollout.waves if w.status is WaveStatus.FAILED), None)


async def _set_status(
    conn: AsyncConnection, rollout: RolloutRecord, expected: tuple[str, ...], **values: object
) -> bool:
    result = await conn.execute(
        update(rollouts)
        .where(rollouts.c.rollout_id == rollout.rollout_id)
        .where(rollouts.c.status.in_(expected))
        .values(version=rollouts.c.version + 1, **values)
    )
    return result.rowcount == 1


async def _pause(conn: AsyncConnection, rollout: RolloutRecord, now: float, reason: str) -> bool:
    # The lease is freed: the driver's next fenced step fails, and nobody drives until
    # the rollout runs again.
    return await _set_status(
        conn,
        rollout,
        (RolloutStatus.RUNNING.value,),
        status=RolloutStatus.PAUSED.value,
        driver_id=None,
        driver_lease_expires_at=now,
    )


async def _resume(conn: AsyncConnection, rollout: RolloutRecord, now: float, reason: str) -> bool:
    paused_at = await conn.scalar(
        select(events.c.at)
        .where(events.c.rollout_id == rollout.rollout_id)
        .where(events.c.kind == EventKind.ROLLOUT_PAUSED.value)
        .order_by(desc(events.c.event_id))
        .limit(1)
    )
    held = max(0.0, now - paused_at) if paused_at is not None else 0.0
    # A pause stops the clock of the wave in progress: its soak and gate deadline move
    # by the time it was held, so a pause never fails a wave by itself.
    for wave in rollout.waves:
        if wave.status is WaveStatus.SIGNALLED and wave.deadline and wave.next_check_at:
            await conn.execute(
                update(waves)
                .where(waves.c.rollout_id == rollout.rollout_id)
                .where(waves.c.wave_index == wave.index)
                .values(next_check_at=wave.next_check_at + held, deadline=wave.deadline + held)
            )
    return await _set_status(
        conn,
        rollout,
        (RolloutStatus.PAUSED.value,),
        status=RolloutStatus.RUNNING.value,
        driver_id=None,
        driver_lease_expires_at=now,
    )


async def _abort(conn: AsyncConnection, rollout: RolloutRecord, now: float, reason: str) -> bool:
    return await abort_rollout(conn, rollout, now, f"aborted by an operator: {reason}")


async def abort_rollout(
    conn: AsyncConnection, rollout: RolloutRecord, now: float, abort_reason: str
) -> bool:
    """End a rollout in progress: no further wave, the lease freed, the task FAILED.
    False (and nothing written) if it was no longer in progress."""
    changed = await _set_status(
        conn,
        rollout,
        IN_PROGRESS,
        status=RolloutStatus.ABORTED.value,
        finished_at=now,
        abort_reason=abort_reason,
        driver_id=None,
        driver_lease_expires_at=now,
    )
    if changed:
        await conn.execute(
            update(waves)
            .where(waves.c.rollout_id == rollout.rollout_id)
            .where(waves.c.status.in_([WaveStatus.PENDING.value, WaveStatus.SIGNALLED.value]))
            .values(status=WaveStatus.SKIPPED.value, finished_at=now)
        )
        await conn.execute(
            update(tasks)
            .where(tasks.c.task_id == rollout.task_id)
            .values(status=TaskStatus.FAILED.value, updated_at=now)
        )
    return changed


async def _retry(conn: AsyncConnection, rollout: RolloutRecord, now: float, reason: str) -> bool:
    failed = _failed_wave(rollout)
    assert failed is not None  # checked by _retry_conflict
    changed = await _set_status(
        conn,
        rollout,
        (RolloutStatus.ABORTED.value,),
        status=RolloutStatus.RUNNING.value,
        finished_at=None,
        abort_reason=None,
        driver_id=None,
        driver_lease_expires_at=now,
    )
    if not changed:
        return False
    # The failed wave's gate runs again from now, for a whole health timeout; the waves
    # the abort skipped are pending again. Members already signalled are not re-signalled.
    await conn.execute(
        update(waves)
        .where(waves.c.rollout_id == rollout.rollout_id)
        .where(waves.c.wave_index == failed.index)
        .values(
            status=WaveStatus.SIGNALLED.value,
            next_check_at=now,
            deadline=now + rollout.health_timeout,
            finished_at=None,
            reached=[],
            failed=[],
        )
    )
    await conn.execute(
        update(waves)
        .where(waves.c.rollout_id == rollout.rollout_id)
        .where(waves.c.wave_index > failed.index)
        .values(status=WaveStatus.PENDING.value, finished_at=None)
    )
    await conn.execute(
        update(tasks)
        .where(tasks.c.task_id == rollout.task_id)
        .where(tasks.c.status == TaskStatus.FAILED.value)
        .values(status=TaskStatus.COMPLETED.value, updated_at=now)  # the decision stands
    )
    return True


_APPLY = {
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


def _action_event(
    rollout: RolloutRecord, action: RolloutAction, record: CommandRecord, reason: str
) -> NewEvent:
    current = next((w for w in rollout.waves if not w.status.is_settled), None)
    wave = _failed_wave(rollout) if action is RolloutAction.RETRY else current
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
