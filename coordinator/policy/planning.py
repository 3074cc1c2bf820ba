"""Pure decisions a decider makes before it asks the engine: when discovery is done,
and which plan the rollout will follow."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from coordinator.policy.groups import assign_canary_groups
from coordinator.policy.liveness import Liveness, liveness
from coordinator.policy.member_policy import ACTIVE_STATES
from schemas import (
    WAVE_ORDER,
    CanaryGroup,
    LifecycleKind,
    OccurrenceRecord,
    PlannedWave,
    RolloutPlan,
    Settings,
    kind_policy,
)


@dataclass(frozen=True)
class Judgement:
    """Who a decider may plan: the members it saw alive, and those it cannot judge yet."""

    alive: tuple[str, ...]
    unsure: tuple[str, ...]


def judge_members(
    members: Iterable[OccurrenceRecord],
    *,
    decider: str,
    now: float,
    member_ttl: float,
    view_began: float,
    trust_staleness: bool,
) -> Judgement:
    """Judge each member in the fleet for a plan (pure).

    Alive: the decider itself, and members whose heartbeat is fresh *and* landed after
    the decider's present view of the database began (``view_began``, store time): it saw
    them alive. A fresh heartbeat written before it looked proves nothing: a member
    killed just before a restart leaves one behind, and planned into a gated wave it
    fails the wave. Gone: members that left, and stale ones once the decider can trust
    staleness (it was not cut off itself within a TTL). Everyone else is unsure: the
    decider waits until each heartbeats again or goes stale, at most one TTL.
    """
    alive: list[str] = []
    unsure: list[str] = []
    for m in members:
        if m.state not in ACTIVE_STATES or m.stopped_at is not None:
            continue
        seen = liveness(m, now, member_ttl, trust_staleness=trust_staleness)
        if m.occurrence_id == decider:
            alive.append(m.occurrence_id)
        elif seen is Liveness.FRESH:
            (alive if m.last_heartbeat_at >= view_began else unsure).append(m.occurrence_id)
        elif seen is Liveness.UNKNOWN:
            unsure.append(m.occurrence_id)
    return Judgement(tuple(alive), tuple(unsure))


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
    """The waves of a rollout of ``kind``: explorer, early adopters, general (the last).
    When members leave (a shutdown), the early adopters are cut so that at least
    ``min_serving_fraction`` of the planned members serve until the last wave (see
    ``shutdown_early_adopter_count``); a wakeup takes the groups as they are."""
    member_ids = set(members) | {decider}
    capacity = settings.min_serving_fraction if kind_policy(kind).members_leave else None
    groups = assign_canary_groups(
        decider, member_ids, settings.early_adopter_fraction, min_serving_fraction=capacity
    )
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
