"""An operator's hand on one rollout: pause, resume, abort, retry.

Each action is one transaction: the command's row, its audit events and the change it
makes, or the row and the refusal alone when the rollout's state does not allow it. The
rules (when an action applies, what it changes) are ``schemas.policy.rollout_control``;
this module reads what they need and writes what they decide. The rollout is read
locked and every rollout update is conditional on the status and version it was read
at, so a driver's fenced step racing an operator's action cannot both win: the driver's
step requires ``running`` and the lease the pause or abort just freed.
"""

from __future__ import annotations

from sqlalchemy import ColumnElement, desc, select
from sqlalchemy.ext.asyncio import AsyncConnection

from persistence.commands import CONFLICT, CommandLog, command_event, insert_command
from persistence.deciding import DecidingStore, apply_rollout_edit
from persistence.queries import IN_PROGRESS_STATUSES, load_rollouts, open_tasks
from persistence.tables import events, rollouts
from schemas import (
    CommandKind,
    CommandRecord,
    CommandStatus,
    EventKind,
    NotFound,
    RolloutAction,
    RolloutRecord,
    Verdict,
)
from schemas.policy import ControlDecision, ControlView, action_event, decide_control

IN_PROGRESS = IN_PROGRESS_STATUSES


async def locked_rollouts(
    conn: AsyncConnection, *where: ColumnElement[bool]
) -> list[RolloutRecord]:
    """Rollouts (newest first) read under a row lock, so what a rule decides from them
    cannot be overtaken by a concurrent step before it is written (PostgreSQL; SQLite's
    write transaction already excludes every other writer)."""
    query = select(rollouts).where(*where).order_by(rollouts.c.created_at.desc())
    rows = (await conn.execute(query.with_for_update())).all()
    return await load_rollouts(conn, rows)


async def _control_view(conn: AsyncConnection, rollout_id: str, now: float) -> ControlView:
    found = await locked_rollouts(conn, rollouts.c.rollout_id == rollout_id)
    if not found:
        raise NotFound(f"no rollout with id {rollout_id!r}")
    rollout = found[0]
    other = await conn.scalar(
        select(rollouts.c.rollout_id)
        .where(rollouts.c.status.in_(IN_PROGRESS))
        .where(rollouts.c.rollout_id != rollout_id)
        .limit(1)
    )
    newer = await conn.scalar(
        select(rollouts.c.rollout_id)
        .where(rollouts.c.created_at > rollout.created_at)
        .where(rollouts.c.verdict == Verdict.ACCEPT.value)
        .limit(1)
    )
    paused_at = await conn.scalar(
        select(events.c.at)
        .where(events.c.rollout_id == rollout_id)
        .where(events.c.kind == EventKind.ROLLOUT_PAUSED.value)
        .order_by(desc(events.c.event_id))
        .limit(1)
    )
    return ControlView(
        rollout=rollout,
        now=now,
        other_in_progress=other,
        decided_after=newer,
        open_task_kinds=frozenset(t.kind for t in await open_tasks(conn)),
        paused_at=paused_at,
    )


class RolloutControlStore(CommandLog, DecidingStore):
    async def control_rollout(
        self, rollout_id: str, action: RolloutAction, *, issued_by: str, reason: str
    ) -> CommandRecord:
        """Apply ``action`` to the rollout, or record why it cannot be applied.

        Raises ``NotFound`` for an unknown rollout (nothing is recorded). Returns the
        command: ``accepted``, or ``refused`` with ``refusal == "conflict"`` and a
        ``detail`` that says what state stood in the way.
        """

        async def read(conn: AsyncConnection, now: float) -> ControlView:
            return await _control_view(conn, rollout_id, now)

        def decide(view: ControlView, now: float) -> ControlDecision:
            return decide_control(view, action, reason)

        async def write(
            conn: AsyncConnection, view: ControlView, decision: ControlDecision, now: float
        ) -> CommandRecord:
            problem: str | None = None
            if decision.edit is None:
                problem = decision.detail
            elif not await apply_rollout_edit(conn, decision.edit, now):
                problem = f"the rollout changed meanwhile ({action.value})"
            record = await insert_command(
                conn,
                now,
                CommandKind(action.value),
                CommandStatus.ACCEPTED if problem is None else CommandStatus.REFUSED,
                issued_by=issued_by,
                reason=reason,
                rollout_id=rollout_id,
                refusal=None if problem is None else CONFLICT,
                detail=problem or decision.detail,
            )
            new = [command_event(record)]
            if problem is None:
                new.append(action_event(view.rollout, action, record, reason))
            await self._append(conn, now, new)
            return record

        return await self._decide(read, decide, write)
