"""The poll loop's fleet views, shared with whoever needs a fresh one.

The poll loop reads one snapshot of the fleet every poll; the decider plans from the
same snapshots rather than reading the members itself, so an occurrence has one view
of its fleet and one cadence of reads, whatever it is doing.

Where the Store is the database's sole writer (the simulator's inline SQLite), a poll
skips a read that could not see anything new: nothing was committed since the last one
(``Store.commits``) but heartbeats. Those only move ``last_heartbeat_at`` forward, and
every reader of a view judges that field by age alone (alive while younger than the
member TTL), so the last view, judged at the new time, reads the same as a fresh one as
long as every member it holds that has not left is still alive by it. A decider waiting
for a view (``next``) compares heartbeats with the time its view began: it always gets
a fresh read. Elsewhere (other processes write too) every poll reads, as before.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import anyio

from persistence import Store
from schemas.fleet import FleetView


@dataclass(frozen=True)
class _Read:
    view: FleetView
    fleet_commits: int
    """``Store.commits.fleet`` (for a light view ``.rollouts``) before the read began."""
    oldest_beat: float
    """The oldest heartbeat of a member of the view that has not left: every one is
    alive by the view while this one is (``OccurrenceRecord.is_alive``, the same sum)."""


class FleetViews:
    def __init__(
        self,
        poll_now: Callable[[], None],
        store: Store | None = None,
        *,
        decision_window: float = math.inf,
        member_ttl: float = 0.0,
    ) -> None:
        self._poll_now = poll_now
        self._store = store
        self._window = decision_window
        self._member_ttl = member_ttl
        self._latest: FleetView | None = None
        self._published = anyio.Event()
        self._waiting = 0
        """Callers of ``next``: while one waits, every poll reads afresh."""
        self._read: _Read | None = None

    async def read(self, *, members: bool = True) -> FleetView:
        """A fresh view from the store (kept for ``reusable``); with the members if asked
        or while a decider waits for a view (it judges them)."""
        store = self._store
        assert store is not None
        self._read = None
        members = members or self._waiting > 0
        commits = _seen(store, members)  # before: a commit during the read is not missed
        view = await store.fleet_view(self._window, members=members)
        if store.sole_writer:
            beats = [m.last_heartbeat_at for m in view.members if m.stopped_at is None]
            self._read = _Read(view, commits, min(beats, default=math.inf))
        return view

    def reusable(self, now: float) -> FleetView | None:
        """The last view judged at ``now``, if a fresh read would return the same."""
        read, store = self._read, self._store
        if read is None or store is None or self._waiting or store.degraded is not None:
            return None
        if not store.sole_writer:  # a fault is due (simulator): the read must be made
            return None
        seen = _seen(store, read.view.with_members)
        if seen != read.fleet_commits or now - read.oldest_beat >= self._member_ttl:
            return None
        return read.view.at(now, self._window)

    def forget(self) -> None:
        """The next poll reads afresh (a read failed: the database must answer first)."""
        self._read = None

    def publish(self, view: FleetView) -> None:
        self._latest = view
        published, self._published = self._published, anyio.Event()
        published.set()

    async def next(self, *, at_once: bool = False) -> FleetView:
        """The first view read after this call: never one read before it (a plan must
        see heartbeats that landed after its claim). ``at_once`` cuts the poll loop's
        nap short; otherwise the view comes at the loop's own pace."""
        self._waiting += 1
        try:
            while True:
                published = self._published
                if at_once:
                    self._poll_now()
                await published.wait()
                assert self._latest is not None
                if self._latest.with_members:
                    return self._latest
                # A light view, read as this call began: the next read has the members.
                at_once = True
        finally:
            self._waiting -= 1


def _seen(store: Store, members: bool) -> int:
    """The commits a view could see: all the fleet's, or (light) all but the members'."""
    return store.commits.fleet if members else store.commits.rollouts
