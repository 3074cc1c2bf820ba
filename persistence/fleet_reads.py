"""The reads every poll and every operator makes: the fleet view, the rollouts."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncConnection

from persistence.membership import latest_incarnations
from persistence.queries import (
    RolloutsOfInterest,
    open_tasks,
    rollouts_of_interest,
    select_rollouts,
)
from persistence.tables import rollouts
from persistence.transactions import StoreBase
from schemas import FleetView, LifecycleKind, NotFound, RolloutRecord, SharedTask


class FleetReadStore(StoreBase):
    async def fleet_view(self, decision_window: float, *, members: bool = True) -> FleetView:
        """One snapshot of what a poll needs; without ``members``, a light one (no member
        rows: ``FleetView.with_members`` is False)."""

        async def work(conn: AsyncConnection) -> FleetView:
            now = self.now()
            interest, tasks = await self._light_rows(conn)
            return FleetView(
                now=now,
                members=tuple(await latest_incarnations(conn)) if members else (),
                with_members=members,
                running=interest.running,
                current_wakeup=interest.wakeup_in_force(now, decision_window),
                latest_shutdown=interest.latest_shutdown,
                open_tasks=tasks,
                latest_wakeup=interest.latest_wakeup,
            )

        return await self._read(work)

    async def _light_rows(
        self, conn: AsyncConnection
    ) -> tuple[RolloutsOfInterest, tuple[SharedTask, ...]]:
        """The rollouts of interest and the open tasks. A sole writer's readers take
        turns on one connection and its commits are counted before the next turn
        (``Commits``): while nothing of these was committed since another reader read
        them, that read is what this one would read."""
        commits = self.commits
        if self.sole_writer:
            last = commits.light_rows
            if last is not None and last[0] == commits.rollouts:
                rows: tuple[RolloutsOfInterest, tuple[SharedTask, ...]] = last[1]
                return rows
        rows = (await rollouts_of_interest(conn), tuple(await open_tasks(conn)))
        if self.sole_writer:
            commits.light_rows = (commits.rollouts, rows)
        return rows

    async def rollouts(
        self, *, limit: int | None = 20, kind: LifecycleKind | None = None
    ) -> list[RolloutRecord]:
        """Rollouts, newest first."""

        async def work(conn: AsyncConnection) -> list[RolloutRecord]:
            where = [rollouts.c.kind == kind.value] if kind else []
            return await select_rollouts(conn, *where, limit=limit)

        return await self._read(work)

    async def rollout(self, rollout_id: str) -> RolloutRecord:
        async def work(conn: AsyncConnection) -> RolloutRecord:
            found = await select_rollouts(conn, rollouts.c.rollout_id == rollout_id)
            if not found:
                raise NotFound(f"no rollout with id {rollout_id!r}")
            return found[0]

        return await self._read(work)
