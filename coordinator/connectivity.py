"""How long this occurrence has seen the database without a break, from its heartbeats.

A member whose heartbeat is older than ``MEMBER_TTL`` counts as gone. That judgement is
only sound from an observer that could itself have seen the member heartbeat through a
whole TTL. After a partition that cut the whole fleet off, every heartbeat is old, and
the first occurrence to reconnect would otherwise plan a shutdown of itself alone.
"""

from __future__ import annotations

import math

from coordinator.clock import Clock

GAP_FACTOR = 2.0
"""A heartbeat landing more than this many intervals after the previous one ends a gap."""


class Connectivity:
    def __init__(self, clock: Clock, heartbeat_interval: float) -> None:
        self._clock = clock
        self._gap = GAP_FACTOR * heartbeat_interval
        self._registered = self._last_landed = clock.now()  # a write that landed
        self._since: float | None = None  # None: no gap seen since registration

    def heartbeat_landed(self) -> None:
        now = self._clock.now()
        if now - self._last_landed > self._gap:
            self._since = now
        self._last_landed = now

    def unbroken_for(self) -> float:
        """Seconds of unbroken view of the database: 0 while a heartbeat is overdue (a
        hung write completes without error once a partition heals, so its claim may land
        before its heartbeat does), infinite if no gap was ever seen."""
        now = self._clock.now()
        if now - self._last_landed > self._gap:
            return 0.0
        if self._since is None:
            return math.inf
        return now - self._since

    def view_age(self) -> float:
        """Seconds since this occurrence's present view of the database began: since it
        registered, or since the first heartbeat that landed after its last gap. A
        member whose last heartbeat is older than that was never seen alive by it."""
        return self._clock.now() - (self._since if self._since is not None else self._registered)
