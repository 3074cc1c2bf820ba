"""What one poll of an occurrence reads: one consistent snapshot of the fleet."""

from __future__ import annotations

from dataclasses import dataclass, replace

from schemas.enums import LifecycleKind
from schemas.policy.decision_window import wakeup_in_force
from schemas.records import OccurrenceRecord, RolloutRecord, SharedTask


@dataclass(frozen=True)
class FleetView:
    """One consistent snapshot of what an occurrence needs for one poll."""

    now: float
    members: tuple[OccurrenceRecord, ...]
    running: tuple[RolloutRecord, ...]
    current_wakeup: RolloutRecord | None
    latest_shutdown: RolloutRecord | None
    """The newest accepted shutdown rollout, running or finished."""
    open_tasks: tuple[SharedTask, ...]
    latest_wakeup: RolloutRecord | None = None
    """The newest wakeup, in force or not (``current_wakeup`` is it while in force)."""
    with_members: bool = True
    """False for a view read without the members (``members`` is then empty): only a
    driver about to step and a decider judge members, and reading every member at every
    poll of every occurrence costs the fleet N² rows."""

    def at(self, now: float, decision_window: float) -> FleetView:
        """The same rows judged at ``now``: what a read at ``now`` returns while nothing
        was committed (the decision window is the only part of a view time moves)."""
        current = wakeup_in_force(self.latest_wakeup, self.latest_shutdown, now, decision_window)
        return replace(self, now=now, current_wakeup=current)

    def open_task(self, kind: LifecycleKind) -> SharedTask | None:
        return next((t for t in self.open_tasks if t.kind is kind), None)

    def running_of(self, kind: LifecycleKind) -> RolloutRecord | None:
        return next((r for r in self.running if r.kind is kind), None)
