"""Read helpers shared by the store modules; each takes an open connection."""

from __future__ import annotations

import functools
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, Row, ScalarSelect, bindparam, or_, select
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
from schemas.policy import wakeup_in_force

__all__ = [
    "IN_PROGRESS_STATUSES",
    "RolloutsOfInterest",
    "any_of",
    "load_rollouts",
    "open_tasks",
    "rollouts_of_interest",
    "select_rollouts",
    "wakeup_in_force",  # moved to schemas.policy; kept importable from here
]


# The statements every poll runs are built once: building one costs more than running it.
_WAVES_OF = select(waves).where(waves.c.rollout_id.in_(bindparam("ids", expanding=True)))


def any_of(column: ColumnElement[Any], values: Sequence[Any]) -> ColumnElement[bool]:
    """``column IN (values)`` for a fixed set, as equalities: an ``in_`` list is an
    expanding parameter, rendered again at every execution of a statement built once."""
    return or_(*(column == value for value in values))


_FIXED_UP_TO = 16
"""Up to this many rollouts, their waves are read by a statement built for the count."""


@functools.cache
def _waves_of(count: int) -> Any:
    return select(waves).where(
        or_(*(waves.c.rollout_id == bindparam(f"id{i}") for i in range(count)))
    )


async def load_rollouts(conn: AsyncConnection, rows: Sequence[Row[Any]]) -> list[RolloutRecord]:
    """Attach waves to rollout rows with one query (a fixed one for the usual few rows:
    see ``any_of``)."""
    ids = [r.rollout_id for r in rows]
    if not ids:
        return []
    if len(ids) <= _FIXED_UP_TO:
        wave_rows = await conn.execute(
            _waves_of(len(ids)), {f"id{i}": v for i, v in enumerate(ids)}
        )
    else:
        wave_rows = await conn.execute(_WAVES_OF, {"ids": ids})
    by_rollout: dict[str, list[WaveRecord]] = defaultdict(list)
    for w in wave_rows:
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


def _latest(kind: LifecycleKind, *, accepted: bool = False) -> ScalarSelect[Any]:
    query = select(rollouts.c.rollout_id).where(rollouts.c.kind == kind.value)
    if accepted:
        query = query.where(rollouts.c.verdict == Verdict.ACCEPT.value)
    return query.order_by(rollouts.c.created_at.desc()).limit(1).scalar_subquery()


@dataclass(frozen=True)
class RolloutsOfInterest:
    running: tuple[RolloutRecord, ...]
    latest_wakeup: RolloutRecord | None
    latest_shutdown: RolloutRecord | None
    """The newest accepted shutdown, running or finished."""

    def wakeup_in_force(self, now: float, window: float) -> RolloutRecord | None:
        """The wakeup decision in force (the decision window: ``schemas.policy``)."""
        return wakeup_in_force(self.latest_wakeup, self.latest_shutdown, now, window)


IN_PROGRESS_STATUSES = (RolloutStatus.RUNNING.value, RolloutStatus.PAUSED.value)


def _of_interest() -> Any:
    wakeup_id = _latest(LifecycleKind.WAKEUP)
    shutdown_id = _latest(LifecycleKind.SHUTDOWN, accepted=True)
    query = select(rollouts, wakeup_id.label("latest_wakeup"), shutdown_id.label("latest_shutdown"))
    return query.where(
        any_of(rollouts.c.status, IN_PROGRESS_STATUSES)
        | (rollouts.c.rollout_id == wakeup_id)
        | (rollouts.c.rollout_id == shutdown_id)
    )


_OF_INTEREST = _of_interest()


async def rollouts_of_interest(conn: AsyncConnection) -> RolloutsOfInterest:
    """Rollouts in progress (running or paused), the newest wakeup and the newest
    accepted shutdown, in two queries."""
    rows = (await conn.execute(_OF_INTEREST)).all()
    found = {r.rollout_id: r for r in await load_rollouts(conn, rows)}
    marks = rows[0] if rows else None
    return RolloutsOfInterest(
        running=tuple(r for r in found.values() if not r.status.is_finished),
        latest_wakeup=found.get(marks.latest_wakeup) if marks else None,
        latest_shutdown=found.get(marks.latest_shutdown) if marks else None,
    )


_OPEN_TASKS = (
    select(tasks)
    .where(tasks.c.agent_occurrence_id == SHARED_OCCURRENCE_ID)
    .where(any_of(tasks.c.status, [s.value for s in OPEN_TASK_STATUSES]))
)


async def open_tasks(conn: AsyncConnection) -> list[SharedTask]:
    return [task_from_row(r) for r in await conn.execute(_OPEN_TASKS)]
