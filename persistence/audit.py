"""The audit trail: append-only events, read back in order."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from persistence.rows import event_from_row
from persistence.tables import events
from persistence.transactions import StoreBase
from schemas import EventRecord, NewEvent


class AuditStore(StoreBase):
    async def record_event(self, event: NewEvent) -> None:
        async def work(conn: AsyncConnection) -> None:
            await self._append(conn, self.now(), [event])

        await self._write(work)

    async def events(
        self,
        *,
        after_id: int = 0,
        limit: int | None = None,
        rollout_id: str | None = None,
        kinds: tuple[str, ...] = (),
    ) -> list[EventRecord]:
        """Events with ``event_id > after_id``, oldest first."""

        async def work(conn: AsyncConnection) -> list[EventRecord]:
            query = select(events).where(events.c.event_id > after_id)
            if rollout_id is not None:
                query = query.where(events.c.rollout_id == rollout_id)
            if kinds:
                query = query.where(events.c.kind.in_(kinds))
            query = query.order_by(events.c.event_id)
            if limit is not None:
                query = query.limit(limit)
            return [event_from_row(r) for r in await conn.execute(query)]

        return await self._read(work)

    async def latest_events(
        self, limit: int, *, rollout_id: str | None = None
    ) -> list[EventRecord]:
        """The ``limit`` newest events, oldest first (newest last, as a log reads)."""

        async def work(conn: AsyncConnection) -> list[EventRecord]:
            query = select(events).order_by(events.c.event_id.desc()).limit(limit)
            if rollout_id is not None:
                query = query.where(events.c.rollout_id == rollout_id)
            return [event_from_row(r) for r in reversed((await conn.execute(query)).all())]

        return await self._read(work)
