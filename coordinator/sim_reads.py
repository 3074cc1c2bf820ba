"""The simulator's own reads of the database: the rollouts it waits for and the audit
trail it prints. They poll; where the Store is the sole writer (``simulate --seed``), a
read is made again only once something was committed since the last one, so a waiting
simulator costs nothing while the fleet idles. These reads are the simulator's, not the
runtime's: what the occurrences read is left to them."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import anyio

from coordinator.clock import Clock
from coordinator.report import Timeline
from persistence import Store
from schemas import LifecycleKind, RolloutRecord

FOLLOW_INTERVAL = 0.1  # wall seconds between looks at the audit trail while following
WAIT_INTERVAL = 0.5  # simulated seconds between looks at a rollout awaited


class SimReads:
    def __init__(self, store: Store) -> None:
        self._store = store
        self._last: dict[str, tuple[tuple[int, int], Any]] = {}

    def _changed(self, key: str) -> bool:
        """Whether something (but heartbeats) was committed since the last call for
        ``key`` (always, where others may write too)."""
        commits = self._store.commits
        counts = (commits.fleet, commits.emergency)  # before the read: none is missed
        if self._store.sole_writer and self._last.get(key, (None,))[0] == counts:
            return False
        self._last[key] = (counts, None)
        return True

    async def latest_rollout(self, kind: LifecycleKind) -> RolloutRecord | None:
        key = kind.value
        if self._changed(key):
            found = await self._store.rollouts(kind=kind, limit=1)
            self._last[key] = (self._last[key][0], found[0] if found else None)
        latest: RolloutRecord | None = self._last[key][1]
        return latest

    async def finished_rollout(self, kind: LifecycleKind, clock: Clock) -> RolloutRecord:
        while True:
            found = await self.latest_rollout(kind)
            if found and found.status.is_finished:
                return found
            await clock.sleep(WAIT_INTERVAL)

    async def follow(self, origin: float, on_line: Callable[[str], None]) -> None:
        after = 0
        lines = Timeline()  # one for the whole run: it remembers each wave's members
        while True:
            new = await self._store.events(after_id=after) if self._changed("events") else []
            for event in new:
                after = event.event_id
                for line in lines.lines([event], origin):
                    on_line(line)
            await anyio.sleep(FOLLOW_INTERVAL)
