"""Membership: one row per process incarnation, heartbeats, and reported states."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import Select, and_, bindparam, func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from persistence.rows import occurrence_from_row
from persistence.tables import occurrences
from persistence.transactions import StoreBase
from schemas import (
    CanaryGroup,
    EngineIdentity,
    EngineKind,
    EventKind,
    NewEvent,
    OccurrenceRecord,
    OccurrenceState,
    RunState,
    Superseded,
)


def _latest_incarnations() -> Select[Any]:
    newer = occurrences.alias("newer")
    newest = (
        ~select(newer.c.incarnation_id)
        .where(
            and_(
                newer.c.occurrence_id == occurrences.c.occurrence_id,
                newer.c.generation > occurrences.c.generation,
            )
        )
        .exists()
    )
    return select(occurrences).where(newest).order_by(occurrences.c.occurrence_id)


_LATEST_INCARNATIONS = _latest_incarnations()  # every poll runs it: built once
_HEARTBEAT = (
    update(occurrences)
    .where(occurrences.c.incarnation_id == bindparam("beat_incarnation"))
    .where(occurrences.c.stopped_at.is_(None))
    .values(last_heartbeat_at=bindparam("beat_at"))
)

# A member's state changes a few times in its life, and a whole wave changes at once.
_STATE_OF = select(occurrences.c.state).where(
    occurrences.c.incarnation_id == bindparam("incarnation"), occurrences.c.stopped_at.is_(None)
)
_SET_STATE = (
    update(occurrences)
    .where(occurrences.c.incarnation_id == bindparam("incarnation"))
    .values(state=bindparam("state"), last_heartbeat_at=bindparam("at"))
)
_SET_STATE_AND_STOP = _SET_STATE.values(stopped_at=bindparam("at"))


async def latest_incarnations(conn: AsyncConnection) -> list[OccurrenceRecord]:
    """The newest incarnation of every occurrence id, stopped ones included."""
    return [occurrence_from_row(r) for r in await conn.execute(_LATEST_INCARNATIONS)]


def run_state_event(occurrence_id: str, state: RunState, **details: Any) -> NewEvent:
    return NewEvent(
        kind=EventKind.RUN_STATE,
        occurrence_id=occurrence_id,
        details={"state": state.value, **details},
    )


async def change_state(
    conn: AsyncConnection,
    now: float,
    me: OccurrenceRecord,
    state: OccurrenceState,
    *,
    rollout_id: str | None = None,
    wave: CanaryGroup | None = None,
    details: dict[str, Any] | None = None,
    stop: bool = False,
) -> NewEvent | None:
    """Set ``me``'s state inside the caller's write transaction; the audit event to
    append, or None if it already was in ``state``. Raises ``Superseded``.

    With ``stop`` the same update ends the incarnation (add ``stopped_events``): one
    statement fewer for a transaction that holds SQLite's write lock."""
    previous = await conn.scalar(_STATE_OF, {"incarnation": me.incarnation_id})
    if previous is None:
        raise Superseded(f"occurrence {me.occurrence_id!r} is no longer registered")
    if previous == state.value and not stop:
        return None
    values = {"incarnation": me.incarnation_id, "state": state.value, "at": now}
    await conn.execute(_SET_STATE_AND_STOP if stop else _SET_STATE, values)
    if previous == state.value:
        return None
    return NewEvent(
        kind=EventKind.OCCURRENCE_STATE_CHANGED,
        occurrence_id=me.occurrence_id,
        rollout_id=rollout_id,
        wave=wave,
        details={"from": previous, "to": state.value, **(details or {})},
    )


async def end_incarnation(
    conn: AsyncConnection,
    now: float,
    me: OccurrenceRecord,
    *,
    reason: str,
    run_state: RunState | None = None,
) -> list[NewEvent]:
    """Stop ``me`` inside the caller's write transaction; the audit events to append
    (none if it had already stopped)."""
    result = await conn.execute(
        update(occurrences)
        .where(occurrences.c.incarnation_id == me.incarnation_id)
        .where(occurrences.c.stopped_at.is_(None))
        .values(stopped_at=now)
    )
    return stopped_events(me, reason=reason, run_state=run_state) if result.rowcount else []


def stopped_events(
    me: OccurrenceRecord, *, reason: str, run_state: RunState | None = None
) -> list[NewEvent]:
    """The audit events of ``me`` ending, and the run state it ended in, if any."""
    details = {"incarnation_id": me.incarnation_id, "reason": reason}
    notes = [
        NewEvent(kind=EventKind.OCCURRENCE_STOPPED, occurrence_id=me.occurrence_id, details=details)
    ]
    if run_state is not None:
        notes.append(run_state_event(me.occurrence_id, run_state, **details))
    return notes


def _engine_columns(engine: EngineIdentity | None) -> dict[str, Any]:
    if engine is None:
        return {"engine_kind": EngineKind.UNKNOWN.value, "engine_name": None, "engine_error": None}
    return {
        "engine_kind": engine.kind.value,
        "engine_name": engine.name,
        "engine_error": engine.error,
    }


def _engine_details(engine: EngineIdentity | None) -> dict[str, Any]:
    """The registered event's record of the engine (the audit trail keeps it after the
    row is superseded): nothing when none was said."""
    if engine is None:
        return {}
    found = {"engine_kind": engine.kind.value, "engine_name": engine.name}
    return found if engine.error is None else {**found, "engine_error": engine.error}


class MembershipStore(StoreBase):
    async def register(
        self,
        occurrence_id: str,
        *,
        host: str,
        pid: int,
        protocol_version: int,
        engine: EngineIdentity | None = None,
    ) -> OccurrenceRecord:
        """Start a new incarnation of ``occurrence_id``; older live ones are superseded.

        A restarted process must not inherit the liveness of the dead one, and two
        processes configured with the same id must not both count: the newest wins and
        the older learns it on its next heartbeat. ``engine`` (which decision engine it
        loaded) is recorded on the row and in the registered event; without it the row
        says ``unknown``.
        """

        async def work(conn: AsyncConnection) -> OccurrenceRecord:
            now = self.now()
            superseded = await conn.execute(
                update(occurrences)
                .where(occurrences.c.occurrence_id == occurrence_id)
                .where(occurrences.c.stopped_at.is_(None))
                .values(stopped_at=now)
                .returning(occurrences.c.incarnation_id, occurrences.c.pid, occurrences.c.host)
            )
            notes = [
                NewEvent(
                    kind=EventKind.OCCURRENCE_SUPERSEDED,
                    occurrence_id=occurrence_id,
                    details={"incarnation_id": r.incarnation_id, "pid": r.pid, "host": r.host},
                )
                for r in superseded
            ]
            latest = await conn.scalar(
                select(func.max(occurrences.c.generation)).where(
                    occurrences.c.occurrence_id == occurrence_id
                )
            )
            values: dict[str, Any] = {
                "incarnation_id": str(uuid.uuid4()),
                "occurrence_id": occurrence_id,
                "generation": (latest or 0) + 1,
                "state": OccurrenceState.STARTING.value,
                "protocol_version": protocol_version,
                "host": host,
                "pid": pid,
                "started_at": now,
                "last_heartbeat_at": now,
                "stopped_at": None,
                **_engine_columns(engine),
            }
            await conn.execute(insert(occurrences).values(**values))
            incarnation = {"incarnation_id": values["incarnation_id"]}
            notes.append(
                NewEvent(
                    kind=EventKind.OCCURRENCE_REGISTERED,
                    occurrence_id=occurrence_id,
                    details={**incarnation, "pid": pid, "host": host, **_engine_details(engine)},
                )
            )
            notes.append(run_state_event(occurrence_id, RunState.START, **incarnation))
            await self._append(conn, now, notes)
            return OccurrenceRecord(**values)

        return await self._write(work, members_only=True)

    async def heartbeat(self, me: OccurrenceRecord) -> None:
        """Refresh liveness; raise ``Superseded`` if this incarnation was replaced."""

        async def work(conn: AsyncConnection) -> None:
            values = {"beat_incarnation": me.incarnation_id, "beat_at": self.now()}
            result = await conn.execute(_HEARTBEAT, values)
            if result.rowcount == 0:
                raise Superseded(
                    f"occurrence {me.occurrence_id!r} was registered again by another process"
                )

        await self._write(work, heartbeat=True)

    async def set_state(
        self,
        me: OccurrenceRecord,
        state: OccurrenceState,
        *,
        rollout_id: str | None = None,
        wave: CanaryGroup | None = None,
        details: dict[str, Any] | None = None,
    ) -> None:
        """Report a new state, with its audit event, in one transaction; raise
        ``Superseded`` if this incarnation is no longer registered."""

        async def work(conn: AsyncConnection) -> None:
            now = self.now()
            event = await change_state(
                conn, now, me, state, rollout_id=rollout_id, wave=wave, details=details
            )
            if event is not None:
                await self._append(conn, now, [event])

        await self._write(work, members_only=True)

    async def deregister(
        self, me: OccurrenceRecord, *, reason: str, run_state: RunState | None = None
    ) -> None:
        """End this incarnation: it no longer counts as live, and holds no lease.
        ``run_state`` (complete or error) is recorded with it."""

        async def work(conn: AsyncConnection) -> None:
            now = self.now()
            notes = await end_incarnation(conn, now, me, reason=reason, run_state=run_state)
            if notes:
                await self._append(conn, now, notes)

        await self._write(work, members_only=True)

    async def members(self) -> list[OccurrenceRecord]:
        """The newest incarnation of each occurrence id, in id order."""
        return await self._read(latest_incarnations)

    async def count_live(self, member_ttl: float) -> int:
        async def work(conn: AsyncConnection) -> int:
            since = self.now() - member_ttl
            count = await conn.scalar(
                select(func.count())
                .select_from(occurrences)
                .where(occurrences.c.stopped_at.is_(None))
                .where(occurrences.c.last_heartbeat_at > since)
            )
            return int(count or 0)

        return await self._read(work)
