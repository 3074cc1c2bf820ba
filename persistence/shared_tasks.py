"""Shared tasks: created once (``task_requests``), claimed by exactly one occurrence under
a fenced lease, completed with the decision."""

from __future__ import annotations

from typing import Any

from sqlalchemy import insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from persistence.engine import serialize_lifecycle
from persistence.queries import load_rollouts
from persistence.rows import task_from_row, wave_values
from persistence.tables import rollouts, tasks, waves
from persistence.task_requests import TaskRequestStore
from persistence.transactions import wrote_nothing
from schemas import (
    Claim,
    Decision,
    EventKind,
    NewEvent,
    RolloutPlan,
    RolloutRecord,
    RolloutStatus,
    SharedTask,
    StaleFencingToken,
    TaskStatus,
    WaveRecord,
    WaveStatus,
)


class SharedTaskStore(TaskRequestStore):
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
                wrote_nothing(conn)
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
