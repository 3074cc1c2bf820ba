"""A rollout plan: the waves a decision will be rolled out in, and their timings."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict

from schemas.enums import CanaryGroup, LifecycleKind


class PlannedWave(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    group: CanaryGroup
    members: tuple[str, ...]
    soak: float
    """Seconds between the wave's signal and its first health check."""


class RolloutPlan(BaseModel):
    """Everything a decider knows when it asks the engine, and what the rollout will follow."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    kind: LifecycleKind
    waves: tuple[PlannedWave, ...]
    health_timeout: float
    health_poll: float
    expected_occurrences: int | None
    discovered_occurrences: int
    request_reason: str | None = None

    def wave(self, group: CanaryGroup) -> PlannedWave:
        for wave in self.waves:
            if wave.group is group:
                return wave
        raise LookupError(group)

    @property
    def total_members(self) -> int:
        return sum(len(w.members) for w in self.waves)
