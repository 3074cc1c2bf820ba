"""Who is live, as seen by an observer that may itself have been cut off.

A stale heartbeat proves a member dead only to an observer that was connected the
whole time the heartbeat went stale (``trust_staleness``): one that was cut off within
the last member TTL cannot tell a dead member from its own blindness. A member that
left (``stopped_at``) is gone to everyone.
"""

from __future__ import annotations

from collections.abc import Iterable
from enum import StrEnum

from coordinator.policy.gate import MemberStatus
from schemas import OccurrenceRecord


class Liveness(StrEnum):
    FRESH = "fresh"
    """Its heartbeat is younger than the member TTL."""
    UNKNOWN = "unknown"
    """Its heartbeat is stale, but the observer cannot trust staleness."""
    GONE = "gone"
    """It left, or its heartbeat is stale and the observer can trust that."""


def liveness(
    member: OccurrenceRecord, now: float, member_ttl: float, *, trust_staleness: bool
) -> Liveness:
    if member.stopped_at is not None:
        return Liveness.GONE
    if member.is_alive(now, member_ttl):
        return Liveness.FRESH
    return Liveness.GONE if trust_staleness else Liveness.UNKNOWN


def observe(
    members: Iterable[OccurrenceRecord],
    now: float,
    member_ttl: float,
    *,
    trust_staleness: bool = True,
) -> dict[str, MemberStatus]:
    """Each member's status for the gate: alive unless it is gone (a member the observer
    cannot judge counts as alive: only a member that left, or went stale while the
    observer watched, fails a wave for being dead)."""
    return {
        m.occurrence_id: MemberStatus(
            state=m.state,
            alive=liveness(m, now, member_ttl, trust_staleness=trust_staleness)
            is not Liveness.GONE,
        )
        for m in members
    }
