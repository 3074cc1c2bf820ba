"""Read, decide, write: a pure rule run inside one write transaction.

The store reads what a rule needs, calls the rule (``schemas.policy``), and writes what
it decided, all in one write transaction serialized with every other lifecycle write,
so nothing the rule read can change before its decision is written. The SQL around a
rule reads and writes; it holds no rule. ``settle_emergency`` does the same with the
caller's verifier.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable
from typing import TypeVar

from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncConnection

from persistence.engine import serialize_lifecycle
from persistence.rows import wave_progress
from persistence.tables import rollouts, tasks, waves
from persistence.transactions import StoreBase
from schemas import WaveRecord
from schemas.policy import RolloutEdit

Seen = TypeVar("Seen")
Decided = TypeVar("Decided")
Result = TypeVar("Result")


async def read_decide_write(
    conn: AsyncConnection,
    now: float,
    read: Callable[[AsyncConnection, float], Awaitable[Seen]],
    decide: Callable[[Seen, float], Decided],
    write: Callable[[AsyncConnection, Seen, Decided, float], Awaitable[Result]],
) -> Result:
    """Within an open write transaction (serialized already): read, decide, write."""
    seen = await read(conn, now)
    return await write(conn, seen, decide(seen, now), now)


class DecidingStore(StoreBase):
    async def _decide(
        self,
        read: Callable[[AsyncConnection, float], Awaitable[Seen]],
        decide: Callable[[Seen, float], Decided],
        write: Callable[[AsyncConnection, Seen, Decided, float], Awaitable[Result]],
    ) -> Result:
        """One write transaction, serialized with every other lifecycle write: ``read``
        what ``decide`` (pure) needs, then ``write`` its decision."""

        async def work(conn: AsyncConnection) -> Result:
            await serialize_lifecycle(conn)
            return await read_decide_write(conn, self.now(), read, decide, write)

        return await self._write(work)


async def write_wave_progress(
    conn: AsyncConnection, rollout_id: str, changed: Iterable[WaveRecord]
) -> None:
    for wave in changed:
        await conn.execute(
            update(waves)
            .where(waves.c.rollout_id == rollout_id)
            .where(waves.c.wave_index == wave.index)
            .values(**wave_progress(wave))
        )


async def apply_rollout_edit(conn: AsyncConnection, edit: RolloutEdit, now: float) -> bool:
    """Write ``edit`` if the rollout is still where it was read; False (nothing written)
    if it moved meanwhile."""
    result = await conn.execute(
        update(rollouts)
        .where(rollouts.c.rollout_id == edit.rollout_id)
        .where(rollouts.c.status.in_([s.value for s in edit.expected]))
        .where(rollouts.c.version == edit.based_on)
        .values(
            status=edit.status.value,
            finished_at=edit.finished_at,
            abort_reason=edit.abort_reason,
            driver_id=None,
            driver_lease_expires_at=now,
            version=rollouts.c.version + 1,
        )
    )
    if result.rowcount != 1:
        return False
    await write_wave_progress(conn, edit.rollout_id, edit.waves)
    if edit.task_status is not None:
        task = update(tasks).where(tasks.c.task_id == edit.task_id)
        if edit.task_only_if is not None:
            task = task.where(tasks.c.status == edit.task_only_if.value)
        await conn.execute(task.values(status=edit.task_status.value, updated_at=now))
    return True
