"""Each occurrence's answer to an emergency command: one row per incarnation, written
once, and for a ``stopped`` answer the occurrence's own stop in the same transaction.

This is the write a fleet-wide stop multiplies by the fleet's size, so it holds as few
statements as it can: no verification, no fleet-wide read.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import insert, select
from sqlalchemy.ext.asyncio import AsyncConnection

from persistence.membership import change_state, stopped_events
from persistence.tables import emergency_acks
from persistence.transactions import Change, StoreBase
from schemas import (
    AckVerdict,
    CommandRecord,
    EmergencyAck,
    EventKind,
    NewEvent,
    OccurrenceRecord,
    OccurrenceState,
    RunState,
    Superseded,
)

EMERGENCY_ONLY = frozenset({Change.EMERGENCY})


class EmergencyAckStore(StoreBase):
    async def acknowledge_emergency(
        self,
        record: CommandRecord,
        me: OccurrenceRecord,
        verdict: AckVerdict,
        detail: str,
        *,
        leave: str | None = None,
    ) -> EmergencyAck:
        """Record this incarnation's answer to a command (once: a repeat returns the first).

        With ``leave`` (the reason it leaves), a ``stopped`` answer also reports the state
        ``shutdown`` and ends the incarnation in the same transaction: the stop is one
        write, so a fleet-wide stop queues one write per occurrence for SQLite's lock,
        and an acknowledged occurrence is a stopped one at the same instant.
        """

        command_id = record.command_id

        async def work(conn: AsyncConnection) -> EmergencyAck:
            now = self.now()
            existing = (
                await conn.execute(
                    select(emergency_acks)
                    .where(emergency_acks.c.command_id == command_id)
                    .where(emergency_acks.c.incarnation_id == me.incarnation_id)
                )
            ).first()
            if existing is not None:
                return EmergencyAck.model_validate(dict(existing._mapping))
            # The fewer statements, the shorter SQLite's write lock is held while a whole
            # fleet queues for it to acknowledge: the command's time comes from the caller.
            ack = EmergencyAck(
                command_id=command_id,
                occurrence_id=me.occurrence_id,
                incarnation_id=me.incarnation_id,
                verdict=verdict,
                detail=detail,
                acked_at=now,
                latency=max(0.0, now - record.created_at),
            )
            await conn.execute(insert(emergency_acks).values(**ack.model_dump(mode="json")))
            details: dict[str, Any] = {
                "command_id": command_id,
                "detail": detail,
                "latency_ms": round(ack.latency * 1000, 1),
            }
            kind = (
                EventKind.EMERGENCY_ACKNOWLEDGED
                if verdict is AckVerdict.STOPPED
                else EventKind.EMERGENCY_REFUSED
            )
            new = [NewEvent(kind=kind, occurrence_id=me.occurrence_id, details=details)]
            if verdict is AckVerdict.STOPPED:
                new.append(
                    NewEvent(
                        kind=EventKind.RUN_STATE,
                        occurrence_id=me.occurrence_id,
                        details={"state": RunState.CANCELLED.value, **details},
                    )
                )
            changes = EMERGENCY_ONLY  # an answer alone changes nothing a poll reads
            if leave is not None and verdict is AckVerdict.STOPPED:
                new += await _leave(conn, now, me, command_id, leave)
                changes = frozenset({Change.FLEET})
            await self._append(conn, now, new, changes)
            return ack

        return await self._write(work)

    async def emergency_acks(self, command_id: str) -> list[EmergencyAck]:
        async def work(conn: AsyncConnection) -> list[EmergencyAck]:
            rows = await conn.execute(
                select(emergency_acks)
                .where(emergency_acks.c.command_id == command_id)
                .order_by(emergency_acks.c.acked_at)
            )
            return [EmergencyAck.model_validate(dict(r._mapping)) for r in rows]

        return await self._read(work)


async def _leave(
    conn: AsyncConnection, now: float, me: OccurrenceRecord, command_id: str, reason: str
) -> list[NewEvent]:
    """``me`` reports ``shutdown`` and stops; nothing if it was already superseded."""
    try:
        changed = await change_state(
            conn, now, me, OccurrenceState.SHUTDOWN, details={"emergency": command_id}, stop=True
        )
    except Superseded:  # replaced by a newer incarnation: nothing of this one to stop
        return []
    return [*([changed] if changed else []), *stopped_events(me, reason=reason)]
