"""Read helpers shared by the store modules; each takes an open connection."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from typing import Any

from sqlalchemy import ColumnElement, Row, select
from sqlalchemy.ext.asyncio import AsyncConnection

from persistence.rows import rollout_from_row, task_from_row, wave_from_row
from persistence.tables import rollouts, tasks, waves
from schemas import (
    OPEN_TASK_STATUSES,
    SHARED_OCCURRENCE_ID,
    LifecycleKind,
    RolloutRecord,
    RolloutStatus,
    SharedTask,
    Verdict,
    WaveRecord,
)


async def load_rollouts(conn: AsyncConnection, rows: Sequence[Row[Any]]) -> list[RolloutRecord]:
    """Attach waves to rollout rows with one query."""
    ids = [r.rollout_id for r in rows]
    by_rollout: dict[str, list[WaveRecord]] = defaultdict(list)
    if ids:
        for w in await conn.execute(select(waves).where(waves.c.rollout_id.in_(ids))):
            by_rollout[w.rollout_id].append(wave_from_row(w))
    return [rollout_from_row(r, by_rollout[r.rollout_id]) for r in rows]


async def select_rollouts(
    conn: AsyncConnection,
    *where: ColumnElement[bool],
    limit: int | None = None,
) -> list[RolloutRecord]:
    query = select(rollouts).where(*where).order_by(rollouts.c.created_at.desc())
    if limit is not None:
        query = query.limit(limit)
    return await load_rollouts(conn, (await conn.execute(query)).all())


async def current_wakeup(conn: AsyncConnection, now: float, window: float) -> RolloutRecord | None:
    """The wakeup decision still in force: decided within ``window`` seconds and not
    followed by an accepted shutdown. New occurrences join it instead of deciding again."""
    latest = await select_rollouts(conn, rollouts.c.kind == LifecycleKind.WAKEUP.value, limit=1)
    if not latest or latest[0].created_at < now - window:
        return None
    shutdown_after = await conn.scalar(
        select(rollouts.c.rollout_id)
        .where(rollouts.c.kind == LifecycleKind.SHUTDOWN.value)
        .where(rollouts.c.verdict == Verdict.ACCEPT.value)
        .where(rollouts.c.created_at >= latest[0].created_at)
        .limit(1)
    )
    return None if shutdown_after is not None else latest[0]


async def latest_accepted_shutdown(conn: AsyncConnection) -> RolloutRecord | None:
    found = await select_rollouts(
        conn,
        rollouts.c.kind == LifecycleKind.SHUTDOWN.value,
        rollouts.c.verdict == Verdict.ACCEPT.value,
        limit=1,
    )
    return found[0] if found else None


async def running_rollouts(conn: AsyncConnection) -> list[RolloutRecord]:
    return await select_rollouts(conn, rollouts.c.status == RolloutStatus.RUNNING.value)


async def open_tasks(conn: AsyncConnection) -> list[SharedTask]:
    rows = await conn.execute(
        select(tasks)
        .where(tasks.c.agent_occurrence_id == SHARED_OCCURRENCE_ID)
        .where(tasks.c.status.in_([s.value for s in OPEN_TASK_STATUSES]))
    )
    return [task_from_row(r) for r in rows]
