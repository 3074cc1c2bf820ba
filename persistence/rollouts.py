"""Rollouts: the driver lease and fenced steps (the reads are in ``fleet_reads``)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import ColumnElement, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from persistence.deciding import write_wave_progress
from persistence.queries import (
    load_rollouts,
)
from persistence.tables import rollouts, tasks, waves
from persistence.transactions import StoreBase, wrote_nothing
from schemas import (
    EventKind,
    NewEvent,
    NotFound,
    RolloutChange,
    RolloutStatus,
    StaleFencingToken,
    StaleRolloutView,
    TaskStatus,
    WaveRecord,
    WaveStatus,
)


def _held_by(rollout_id: str, holder: str, token: int) -> tuple[ColumnElement[bool], ...]:
    """The driver-lease fence: a running rollout whose lease ``holder`` holds with ``token``."""
    return (
        rollouts.c.rollout_id == rollout_id,
        rollouts.c.driver_id == holder,
        rollouts.c.driver_token == token,
        rollouts.c.status == RolloutStatus.RUNNING.value,
    )


async def _raise_why_not_applied(
    conn: AsyncConnection, rollout_id: str, holder: str, token: int, based_on: int
) -> None:
    """A fenced step matched no row: say which fence stopped it."""
    row = (
        await conn.execute(
            select(
                rollouts.c.driver_id,
                rollouts.c.driver_token,
                rollouts.c.status,
                rollouts.c.version,
            ).where(rollouts.c.rollout_id == rollout_id)
        )
    ).first()
    held = row is not None and (row.driver_id, row.driver_token) == (holder, token)
    if not held or row is None or row.status != RolloutStatus.RUNNING.value:
        raise StaleFencingToken(
            f"driver token {token} of {holder!r} is no longer current for {rollout_id}"
        )
    raise StaleRolloutView(
        f"rollout {rollout_id} is at version {row.version}; the step was computed from "
        f"version {based_on}"
    )


class RolloutStore(StoreBase):
    async def acquire_driver(
        self, rollout_id: str, holder: str, lease_ttl: float, *, grace: float = 0.0
    ) -> int | None:
        """Take the driver lease of a running rollout if it has been free (released or
        expired) for at least ``grace`` seconds.

        Returns the new fencing token, or None if someone else holds a valid lease.
        ``driver_lease_expires_at`` is the expiry of a held lease, or the moment a
        released lease became free.
        """

        async def work(conn: AsyncConnection) -> int | None:
            now = self.now()
            previous = await conn.scalar(
                select(rollouts.c.driver_id).where(rollouts.c.rollout_id == rollout_id)
            )
            token = await conn.scalar(
                update(rollouts)
                .where(rollouts.c.rollout_id == rollout_id)
                .where(rollouts.c.status == RolloutStatus.RUNNING.value)
                .where(
                    rollouts.c.driver_lease_expires_at.is_(None)
                    | (rollouts.c.driver_lease_expires_at <= now - grace)
                )
                .values(
                    driver_id=holder,
                    driver_token=rollouts.c.driver_token + 1,
                    driver_lease_expires_at=now + lease_ttl,
                )
                .returning(rollouts.c.driver_token)
            )
            if token is None:
                wrote_nothing(conn)
                return None
            details: dict[str, Any] = {"driver_token": token}
            if previous:
                details["took_over_from"] = previous
            event = NewEvent(
                kind=EventKind.DRIVER_ACQUIRED,
                occurrence_id=holder,
                rollout_id=rollout_id,
                task_id=rollout_id,
                details=details,
            )
            await self._append(conn, now, [event])
            return int(token)

        return await self._write(work)

    async def apply_step(
        self,
        rollout_id: str,
        holder: str,
        token: int,
        change: RolloutChange,
        *,
        lease_ttl: float,
        release: bool = False,
    ) -> None:
        """Apply one step of the state machine and renew (or release) the driver lease.

        Fenced twice, and writes nothing unless both hold: ``StaleFencingToken`` if
        ``token`` is no longer the rollout's current driver token or the rollout is no
        longer running; ``StaleRolloutView`` if the rollout changed since the version the
        step was computed from (``change.based_on``): the step is then recomputed.
        """

        async def work(conn: AsyncConnection) -> None:
            now = self.now()
            keep = not release and not change.status.is_finished
            result = await conn.execute(
                update(rollouts)
                .where(*_held_by(rollout_id, holder, token))
                .where(rollouts.c.version == change.based_on)
                .values(
                    status=change.status.value,
                    finished_at=change.finished_at,
                    abort_reason=change.abort_reason,
                    driver_id=holder if keep else None,
                    driver_lease_expires_at=now + lease_ttl if keep else now,
                    version=rollouts.c.version + 1,
                )
            )
            if result.rowcount == 0:
                await _raise_why_not_applied(conn, rollout_id, holder, token, change.based_on)
            await self._apply_waves(conn, rollout_id, change, now)

        await self._write(work)

    async def renew_driver(
        self, rollout_id: str, holder: str, token: int, lease_ttl: float
    ) -> None:
        """Extend the driver lease without changing the rollout (nothing to step).

        Fenced by the token alone, and bumps no version: a renewal changes no state a
        step is computed from. Raises ``StaleFencingToken`` if the lease is no longer
        this holder's or the rollout no longer runs.
        """

        async def work(conn: AsyncConnection) -> None:
            result = await conn.execute(
                update(rollouts)
                .where(*_held_by(rollout_id, holder, token))
                .values(driver_lease_expires_at=self.now() + lease_ttl)
            )
            if result.rowcount == 0:
                raise StaleFencingToken(
                    f"driver token {token} of {holder!r} is no longer current for {rollout_id}"
                )

        await self._write(work)

    async def conclude_rollout(self, rollout_id: str, change: RolloutChange) -> bool:
        """Apply a final ``change`` to a rollout nobody drives (see ``conclude_abandoned``):
        only while it is still running, at the version the change was computed from, and
        with its driver lease free or expired. Returns whether it was applied; False
        means someone else moved it first, and nothing was written."""

        async def work(conn: AsyncConnection) -> bool:
            now = self.now()
            result = await conn.execute(
                update(rollouts)
                .where(rollouts.c.rollout_id == rollout_id)
                .where(rollouts.c.status == RolloutStatus.RUNNING.value)
                .where(rollouts.c.version == change.based_on)
                .where(
                    rollouts.c.driver_lease_expires_at.is_(None)
                    | (rollouts.c.driver_lease_expires_at <= now)
                )
                .values(
                    status=change.status.value,
                    finished_at=change.finished_at,
                    abort_reason=change.abort_reason,
                    driver_id=None,
                    driver_lease_expires_at=now,
                    version=rollouts.c.version + 1,
                )
            )
            if result.rowcount == 0:
                return False
            await self._apply_waves(conn, rollout_id, change, now)
            return True

        return await self._write(work)

    async def _apply_waves(
        self, conn: AsyncConnection, rollout_id: str, change: RolloutChange, now: float
    ) -> None:
        """The rest of a fenced step, once its rollout row matched: waves, task, events."""
        await write_wave_progress(conn, rollout_id, change.waves)
        if change.fail_task:
            await conn.execute(
                update(tasks)
                .where(tasks.c.task_id == rollout_id)
                .values(status=TaskStatus.FAILED.value, updated_at=now)
            )
        await self._append(conn, now, change.events)

    async def release_driver(self, rollout_id: str, holder: str, token: int) -> None:
        """Give the lease up at once (a clean exit), so takeover is one poll away."""

        async def work(conn: AsyncConnection) -> None:
            await conn.execute(
                update(rollouts)
                .where(rollouts.c.rollout_id == rollout_id)
                .where(rollouts.c.driver_id == holder)
                .where(rollouts.c.driver_token == token)
                .values(driver_id=None, driver_lease_expires_at=self.now())
            )

        await self._write(work)

    async def join_last_wave(self, rollout_id: str, occurrence_id: str) -> WaveRecord | None:
        """Add a late occurrence to the rollout's last wave while that wave is pending.

        Returns the wave it belongs to (already a member, or just joined), or None when
        the last wave was already signalled or the rollout is over.
        """

        async def work(conn: AsyncConnection) -> WaveRecord | None:
            row = (
                await conn.execute(
                    select(rollouts).where(rollouts.c.rollout_id == rollout_id).with_for_update()
                )
            ).first()
            if row is None:
                raise NotFound(f"no rollout with id {rollout_id!r}")
            rollout = (await load_rollouts(conn, [row]))[0]
            existing = rollout.wave_of(occurrence_id)
            if existing is not None:
                return existing
            last = rollout.waves[-1]
            if rollout.status.is_finished or last.status is not WaveStatus.PENDING:
                return None
            members = (*last.members, occurrence_id)
            await conn.execute(
                update(rollouts)
                .where(rollouts.c.rollout_id == rollout_id)
                .values(version=rollouts.c.version + 1)
            )
            await conn.execute(
                update(waves)
                .where(waves.c.rollout_id == rollout_id)
                .where(waves.c.wave_index == last.index)
                .values(members=list(members))
            )
            event = NewEvent(
                kind=EventKind.OCCURRENCE_JOINED,
                occurrence_id=occurrence_id,
                rollout_id=rollout_id,
                task_id=rollout.task_id,
                wave=last.group,
                details={"late": True},
            )
            await self._append(conn, self.now(), [event])
            return last.model_copy(update={"members": members})

        return await self._write(work)
