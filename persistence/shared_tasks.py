"""Shared tasks: created once, claimed by exactly one occurrence under a fenced lease."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from sqlalchemy import insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from persistence.commands import CONFLICT, command_event, insert_command
from persistence.deciding import DecidingStore
from persistence.engine import serialize_lifecycle
from persistence.queries import (
    IN_PROGRESS_STATUSES,
    load_rollouts,
    open_tasks,
    rollouts_of_interest,
    select_rollouts,
)
from persistence.rows import task_from_row, wave_values
from persistence.tables import SCHEMA_VERSION, rollouts, tasks, waves
from schemas import (
    SHARED_OCCURRENCE_ID,
    Claim,
    CommandKind,
    CommandRecord,
    CommandStatus,
    Decision,
    EventKind,
    LifecycleKind,
    NewEvent,
    RolloutPlan,
    RolloutRecord,
    RolloutStatus,
    SharedTask,
    StaleFencingToken,
    TaskStatus,
    WaveRecord,
    WaveStatus,
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


class SharedTaskStore(DecidingStore):
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

    async def claim_task(self, task_id: str, holder: str, lease_ttl: float) -> Claim | None:
        """Claim a pending task, or take over one whose lease expired; None if taken.

        The claim is one conditional UPDATE: of any number of racing claimers exactly
        one matches the condition. Each claim increments the task's fencing token.
        """

        async def work(conn: AsyncConnection) -> Claim | None:
            now = self.now()
            before = await conn.execute(select(tasks).where(tasks.c.task_id == task_id))
            previous = before.first()
            row = (
                await conn.execute(
                    update(tasks)
                    .where(tasks.c.task_id == task_id)
                    .where(
                        (tasks.c.status == TaskStatus.PENDING.value)
                        | (
                            (tasks.c.status == TaskStatus.ACTIVE.value)
                            & (tasks.c.lease_expires_at < now)
                        )
                    )
                    .values(
                        status=TaskStatus.ACTIVE.value,
                        claimed_by=holder,
                        lease_expires_at=now + lease_ttl,
                        fencing_token=tasks.c.fencing_token + 1,
                        updated_at=now,
                    )
                    .returning(*tasks.c)
                )
            ).first()
            if row is None:
                return None
            task = task_from_row(row)
            details: dict[str, Any] = {"fencing_token": task.fencing_token}
            if previous is not None and previous.claimed_by:
                details["took_over_from"] = previous.claimed_by
            event = NewEvent(
                kind=EventKind.TASK_CLAIMED, occurrence_id=holder, task_id=task_id, details=details
            )
            await self._append(conn, now, [event])
            return Claim(
                task=task,
                holder=holder,
                fencing_token=task.fencing_token,
                lease_expires_at=now + lease_ttl,
            )

        return await self._write(work)

    async def _fenced_task_update(self, conn: AsyncConnection, claim: Claim, **values: Any) -> None:
        result = await conn.execute(
            update(tasks)
            .where(tasks.c.task_id == claim.task.task_id)
            .where(tasks.c.status == TaskStatus.ACTIVE.value)
            .where(tasks.c.claimed_by == claim.holder)
            .where(tasks.c.fencing_token == claim.fencing_token)
            .values(updated_at=self.now(), **values)
        )
        if result.rowcount == 0:
            raise StaleFencingToken(
                f"claim on {claim.task.task_id} with token {claim.fencing_token} "
                "is no longer current"
            )

    async def renew_claim(self, claim: Claim, lease_ttl: float) -> Claim:
        async def work(conn: AsyncConnection) -> Claim:
            expires = self.now() + lease_ttl
            await self._fenced_task_update(conn, claim, lease_expires_at=expires)
            return claim.model_copy(update={"lease_expires_at": expires})

        return await self._write(work)

    async def release_claim(self, claim: Claim, *, error: str) -> None:
        """Give the task back (the decision failed) so another attempt can claim it."""

        async def work(conn: AsyncConnection) -> None:
            await self._fenced_task_update(
                conn,
                claim,
                status=TaskStatus.PENDING.value,
                claimed_by=None,
                lease_expires_at=None,
            )
            event = NewEvent(
                kind=EventKind.TASK_RELEASED,
                occurrence_id=claim.holder,
                task_id=claim.task.task_id,
                details={"error": error},
            )
            await self._append(conn, self.now(), [event])

        await self._write(work)

    async def record_decision(
        self,
        claim: Claim,
        decision: Decision,
        plan: RolloutPlan,
        *,
        driver: str | None,
        lease_ttl: float,
    ) -> RolloutRecord:
        """Complete the task with the decision and create its rollout, fenced by the claim.

        A rejected decision creates a rollout in status ``rejected`` whose waves are all
        ``skipped``: the plan that was refused, kept for the record. ``driver`` (if given)
        holds the new rollout's driver lease from the start.
        """

        async def work(conn: AsyncConnection) -> RolloutRecord:
            # Held off while another occurrence checks whether a wakeup is in force.
            await serialize_lifecycle(conn)
            now = self.now()
            task_id = claim.task.task_id
            outcome = {**decision.model_dump(mode="json"), "plan": plan.model_dump(mode="json")}
            await self._fenced_task_update(
                conn,
                claim,
                status=TaskStatus.COMPLETED.value,
                outcome=outcome,
                lease_expires_at=None,
            )
            accepted = decision.accepted
            holder = driver if accepted else None
            await conn.execute(
                insert(rollouts).values(
                    rollout_id=task_id,
                    task_id=task_id,
                    kind=plan.kind.value,
                    status=(RolloutStatus.RUNNING if accepted else RolloutStatus.REJECTED).value,
                    verdict=decision.verdict.value,
                    decision_reason=decision.reason,
                    decided_by=decision.decided_by,
                    decided_at=decision.decided_at,
                    request_reason=plan.request_reason,
                    created_at=now,
                    finished_at=None if accepted else now,
                    abort_reason=None,
                    health_timeout=plan.health_timeout,
                    health_poll=plan.health_poll,
                    expected_occurrences=plan.expected_occurrences,
                    discovered_occurrences=plan.discovered_occurrences,
                    driver_id=holder,
                    driver_token=1 if holder else 0,
                    # Without a holder the lease is free from now on (see acquire_driver).
                    driver_lease_expires_at=now + lease_ttl if holder else now,
                )
            )
            wave_status = WaveStatus.PENDING if accepted else WaveStatus.SKIPPED
            wave_rows = [
                WaveRecord(
                    rollout_id=task_id,
                    index=i,
                    group=w.group,
                    members=w.members,
                    status=wave_status,
                    soak=w.soak,
                )
                for i, w in enumerate(plan.waves)
            ]
            await conn.execute(insert(waves), [wave_values(w) for w in wave_rows])
            common = {"rollout_id": task_id, "task_id": task_id}
            notes = [
                NewEvent(
                    kind=EventKind.DECISION_MADE,
                    occurrence_id=decision.decided_by,
                    details={
                        "kind": plan.kind.value,
                        "verdict": decision.verdict.value,
                        "reason": decision.reason,
                    },
                    **common,
                ),
                NewEvent(
                    kind=EventKind.ROLLOUT_STARTED if accepted else EventKind.ROLLOUT_REJECTED,
                    occurrence_id=decision.decided_by,
                    details={
                        "kind": plan.kind.value,
                        "groups": {w.group.value: list(w.members) for w in plan.waves},
                    },
                    **common,
                ),
            ]
            if holder:
                notes.append(
                    NewEvent(
                        kind=EventKind.DRIVER_ACQUIRED,
                        occurrence_id=holder,
                        details={"driver_token": 1},
                        **common,
                    )
                )
            await self._append(conn, now, notes)
            row = (
                await conn.execute(select(rollouts).where(rollouts.c.rollout_id == task_id))
            ).one()
            return (await load_rollouts(conn, [row]))[0]

        return await self._write(work)

    async def task(self, task_id: str) -> SharedTask | None:
        async def work(conn: AsyncConnection) -> SharedTask | None:
            row = (await conn.execute(select(tasks).where(tasks.c.task_id == task_id))).first()
            return task_from_row(row) if row else None

        return await self._read(work)
