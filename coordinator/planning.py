"""Pure decisions a decider makes before it asks the engine: when discovery is done,
and which plan the rollout will follow."""

from __future__ import annotations

from collections.abc import Iterable

from coordinator.groups import assign_canary_groups
from schemas import WAVE_ORDER, CanaryGroup, LifecycleKind, PlannedWave, RolloutPlan, Settings


def discovery_done(live: int, expected: int | None, waited: float, grace: float) -> bool:
    """The decider snapshots the groups once the expected number of occurrences is live,
    or after the grace period (at once if the expected count is met)."""
    if expected is not None and live >= expected:
        return True
    return waited >= grace


def build_plan(
    kind: LifecycleKind,
    decider: str,
    members: Iterable[str],
    settings: Settings,
    *,
    request_reason: str | None = None,
) -> RolloutPlan:
    member_ids = set(members) | {decider}
    groups = assign_canary_groups(decider, member_ids, settings.early_adopter_fraction)
    soaks = {
        CanaryGroup.EXPLORER: settings.explorer_soak,
        CanaryGroup.EARLY_ADOPTER: settings.early_adopter_soak,
        CanaryGroup.GENERAL: 0.0,
    }
    return RolloutPlan(
        kind=kind,
        waves=tuple(PlannedWave(group=g, members=groups[g], soak=soaks[g]) for g in WAVE_ORDER),
        health_timeout=settings.health_timeout,
        health_poll=settings.health_poll,
        expected_occurrences=settings.agent_occurrence_count,
        discovered_occurrences=len(member_ids),
        request_reason=request_reason,
    )
