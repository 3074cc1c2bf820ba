"""What one poll of an occurrence reads: one consistent snapshot of the fleet."""

from __future__ import annotations

from dataclasses import dataclass

from schemas.enums import LifecycleKind
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

    def open_task(self, kind: LifecycleKind) -> SharedTask | None:
        return next((t for t in self.open_tasks if t.kind is kind), None)

    def running_of(self, kind: LifecycleKind) -> RolloutRecord | None:
        return next((r for r in self.running if r.kind is kind), None)
