"""New requests for a lifecycle decision: the wakeup an occurrence opens, the shutdown an
operator (or the agent) asks for. The rule (open, join, wait or refuse) is
``schemas.policy.requests``; this module reads what it needs and writes what it decides."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from sqlalchemy import insert, select
from sqlalchemy.ext.asyncio import AsyncConnection

from persistence.commands import CONFLICT, command_event, insert_command
from persistence.deciding import DecidingStore
from persistence.queries import (
    IN_PROGRESS_STATUSES,
    open_tasks,
    rollouts_of_interest,
    select_rollouts,
)
from persistence.rows import task_from_row
from persistence.tables import SCHEMA_VERSION, rollouts, tasks
from schemas import (
    SHARED_OCCURRENCE_ID,
    CommandKind,
    CommandRecord,
    CommandStatus,
    EventKind,
    LifecycleKind,
    NewEvent,
    RolloutRecord,
    SharedTask,
    TaskStatus,
    kind_policy,
)
from schemas.policy import RequestAnswer, RequestOutcome, answer_request


def _new_task_values(kind: LifecycleKind, now: float, **extra: Any) -> dict[str, Any]:
    return {
        "task_id": f"{kind.value}_{uuid.uuid4().hex[:12]}",
        "agent_occurrence_id": SHARED_OCCURRENCE_ID,
        "kind": kind.value,
        "status": TaskStatus.PENDING.value,
        "outcome": None,
        "created_at": now,
        "updated_at": now,
        "claimed_by": None,
        "lease_expires_at": None,
        "fencing_token": 0,
        "schema_v": SCHEMA_VERSION,
        "reason": None,
        "requested_by": None,
        **extra,
    }


async def _task(conn: AsyncConnection, task_id: str) -> SharedTask:
    return task_from_row(
        (await conn.execute(select(tasks).where(tasks.c.task_id == task_id))).one()
    )


@dataclass(frozen=True)
class _RequestView:
    """What the rule for a new request reads (see ``answer_request``)."""

    in_force: RolloutRecord | None
    in_progress: tuple[RolloutRecord, ...]
    open_tasks: tuple[SharedTask, ...]

    def answer(self, kind: LifecycleKind) -> RequestAnswer:
        return answer_request(
            kind_policy(kind),
            in_force=self.in_force,
            in_progress=self.in_progress,
            open_tasks=self.open_tasks,
        )


async def _request_view(
    conn: AsyncConnection, now: float, *, window: float | None = None
) -> _RequestView:
    """With ``window`` (a wakeup's decision window), also the wakeup decision in force."""
    if window is not None:
        interest = await rollouts_of_interest(conn)
        in_force = interest.wakeup_in_force(now, window)
        in_progress = interest.running
    else:
        in_force = None
        in_progress = tuple(
            await select_rollouts(conn, rollouts.c.status.in_(IN_PROGRESS_STATUSES))
        )
    return _RequestView(in_force, in_progress, tuple(await open_tasks(conn)))


class TaskRequestStore(DecidingStore):
    async def open_wakeup_task(self, requested_by: str, window: float) -> SharedTask | None:
        """The open wakeup task, created if no wakeup decision is in force.

        Returns None when a wakeup decision is in force (join it) or a shutdown rollout
        is still running (wait for it). Check and create are one write transaction, so
        no occurrence can open a second wakeup while another records the first.
        """

        async def read(conn: AsyncConnection, now: float) -> _RequestView:
            return await _request_view(conn, now, window=window)

        def decide(view: _RequestView, now: float) -> RequestAnswer:
            return view.answer(LifecycleKind.WAKEUP)

        async def write(
            conn: AsyncConnection, view: _RequestView, answer: RequestAnswer, now: float
        ) -> SharedTask | None:
            if answer.outcome is RequestOutcome.JOIN_TASK:
                return next(t for t in view.open_tasks if t.task_id == answer.task_id)
            if answer.outcome is not RequestOutcome.OPEN:
                return None  # join the decision in force, or wait for the shutdown
            values = _new_task_values(LifecycleKind.WAKEUP, now, requested_by=requested_by)
            await conn.execute(insert(tasks).values(**values))
            event = NewEvent(
                kind=EventKind.TASK_CREATED,
                occurrence_id=requested_by,
                task_id=values["task_id"],
                details={"kind": LifecycleKind.WAKEUP.value},
            )
            await self._append(conn, now, [event])
            return SharedTask(**values)

        return await self._decide(read, decide, write)

    async def request_shutdown(self, reason: str, requested_by: str) -> tuple[SharedTask, bool]:
        """Open the shared shutdown task; returns ``(task, created)``. See
        ``submit_shutdown``, for callers that only need the task (the runtime)."""
        task, command = await self.submit_shutdown(reason, requested_by)
        return task, command.accepted

    async def submit_shutdown(
        self, reason: str, requested_by: str
    ) -> tuple[SharedTask, CommandRecord]:
        """Open the shared shutdown task, recorded as an operator command.

        Refused (a ``refused`` command with ``refusal == "conflict"`` and a
        ``command_refused`` event, nothing else changed) while a shutdown is already
        requested or rolling out (running or paused); the task returned is then that
        shutdown's. Every caller, the CLI, the API and the runtime, shares this rule.
        """

        async def read(conn: AsyncConnection, now: float) -> _RequestView:
            return await _request_view(conn, now)

        def decide(view: _RequestView, now: float) -> RequestAnswer:
            return view.answer(LifecycleKind.SHUTDOWN)

        async def write(
            conn: AsyncConnection, view: _RequestView, answer: RequestAnswer, now: float
        ) -> tuple[SharedTask, CommandRecord]:
            if answer.outcome is RequestOutcome.REFUSE:
                assert answer.task_id is not None
                refused = await insert_command(
                    conn,
                    now,
                    CommandKind.SHUTDOWN,
                    CommandStatus.REFUSED,
                    issued_by=requested_by,
                    reason=reason,
                    rollout_id=answer.task_id,
                    refusal=CONFLICT,
                    detail=answer.detail,
                )
                await self._append(conn, now, [command_event(refused)])
                return await _task(conn, answer.task_id), refused
            values = _new_task_values(
                LifecycleKind.SHUTDOWN, now, reason=reason, requested_by=requested_by
            )
            await conn.execute(insert(tasks).values(**values))
            accepted = await insert_command(
                conn,
                now,
                CommandKind.SHUTDOWN,
                CommandStatus.ACCEPTED,
                issued_by=requested_by,
                reason=reason,
                rollout_id=values["task_id"],
                detail=f"shutdown requested ({values['task_id']})",
            )
            event = NewEvent(
                kind=EventKind.SHUTDOWN_REQUESTED,
                task_id=values["task_id"],
                details={
                    "reason": reason,
                    "requested_by": requested_by,
                    "command_id": accepted.command_id,
                },
            )
            await self._append(conn, now, [event])
            return SharedTask(**values), accepted

        return await self._decide(read, decide, write)
