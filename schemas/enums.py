"""The vocabulary: every state and status, with the exact values stored and shown in JSON."""

from __future__ import annotations

from enum import StrEnum


class OccurrenceState(StrEnum):
    """Where one occurrence is in its lifecycle."""

    STARTING = "starting"
    WAKEUP = "wakeup"
    WORK = "work"
    SHUTTING_DOWN = "shutting_down"
    SHUTDOWN = "shutdown"
    FAILED = "failed"

    @property
    def is_terminal(self) -> bool:
        return self in (OccurrenceState.SHUTDOWN, OccurrenceState.FAILED)


class CanaryGroup(StrEnum):
    """The canary waves, in the order they are rolled out."""

    EXPLORER = "explorer"
    EARLY_ADOPTER = "early_adopter"
    GENERAL = "general"


WAVE_ORDER: tuple[CanaryGroup, ...] = (
    CanaryGroup.EXPLORER,
    CanaryGroup.EARLY_ADOPTER,
    CanaryGroup.GENERAL,
)


class TaskStatus(StrEnum):
    """Status of a shared task, as in the FSD's ``tasks`` table."""

    PENDING = "PENDING"
    ACTIVE = "ACTIVE"
    COMPLETED = "COMPLETED"
    FAILED = "FAILED"


OPEN_TASK_STATUSES: tuple[TaskStatus, ...] = (TaskStatus.PENDING, TaskStatus.ACTIVE)


class LifecycleKind(StrEnum):
    """Which lifecycle decision a shared task or rollout is about."""

    WAKEUP = "wakeup"
    SHUTDOWN = "shutdown"
    # What differs by kind (its target state among it) is schemas/kinds.py's table.


class Verdict(StrEnum):
    ACCEPT = "accept"
    REJECT = "reject"


class RolloutStatus(StrEnum):
    RUNNING = "running"
    PAUSED = "paused"
    """Held by an operator: no wave is signalled or judged until resumed."""
    COMPLETED = "completed"
    ABORTED = "aborted"
    REJECTED = "rejected"

    @property
    def is_finished(self) -> bool:
        return self not in (RolloutStatus.RUNNING, RolloutStatus.PAUSED)


class WaveStatus(StrEnum):
    PENDING = "pending"
    SIGNALLED = "signalled"
    HEALTHY = "healthy"
    FAILED = "failed"
    SKIPPED = "skipped"

    @property
    def is_settled(self) -> bool:
        return self in (WaveStatus.HEALTHY, WaveStatus.FAILED, WaveStatus.SKIPPED)
