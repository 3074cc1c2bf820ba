"""The poll loop's fleet views, shared with whoever needs a fresh one.

The poll loop reads one snapshot of the fleet every poll; the decider plans from the
same snapshots rather than reading the members itself, so an occurrence has one view
of its fleet and one cadence of reads, whatever it is doing.
"""

from __future__ import annotations

from collections.abc import Callable

import anyio

from schemas.fleet import FleetView


class FleetViews:
    def __init__(self, poll_now: Callable[[], None]) -> None:
        self._poll_now = poll_now
        self._latest: FleetView | None = None
        self._published = anyio.Event()

    def publish(self, view: FleetView) -> None:
        self._latest = view
        published, self._published = self._published, anyio.Event()
        published.set()

    async def next(self, *, at_once: bool = False) -> FleetView:
        """The first view read after this call: never one read before it (a plan must
        see heartbeats that landed after its claim). ``at_once`` cuts the poll loop's
        nap short; otherwise the view comes at the loop's own pace."""
        published = self._published
        if at_once:
            self._poll_now()
        await published.wait()
        assert self._latest is not None
        return self._latest
