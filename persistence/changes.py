"""What a committed change concerns, and how a listener is told: shared by every backend."""

from __future__ import annotations

from collections.abc import Callable
from enum import StrEnum


class Change(StrEnum):
    """What a committed change concerns, so listeners wake only the work it needs."""

    FLEET = "fleet"
    """Membership, states, tasks, rollouts: what a poll of the fleet view reads."""
    EMERGENCY = "emergency"
    """An emergency command recorded, settled or refused: what the emergency check reads."""


ALL_CHANGES = frozenset(Change)

OnChange = Callable[[frozenset[Change]], None]
"""Called with what changed; every kind when the feed cannot tell (after a reconnect)."""


def changes_of(payload: str) -> frozenset[Change]:
    """The changes a notification's payload names; all of them for one this version
    cannot read (a newer writer, or an older one that sent an event kind)."""
    try:
        return frozenset(Change(part) for part in payload.split(","))
    except ValueError:
        return ALL_CHANGES
