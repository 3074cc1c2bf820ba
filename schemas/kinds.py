"""What differs between a wakeup and a shutdown, written once: one record per kind.

Code that behaves differently by kind looks the difference up here (``kind_policy``)
instead of branching on ``LifecycleKind``, so a rule reads the same for both kinds and
the differences can be read side by side.
"""

from __future__ import annotations

from dataclasses import dataclass

from schemas.enums import LifecycleKind, OccurrenceState


@dataclass(frozen=True)
class KindPolicy:
    kind: LifecycleKind
    target_state: OccurrenceState
    """The state a wave member must reach for its wave to be healthy."""
    pending_states: frozenset[OccurrenceState]
    """States of a live member still on its way to ``target_state``: the gate waits for it."""
    target_needs_heartbeat: bool
    """Whether a member in ``target_state`` counts only while its heartbeat is fresh (a
    member serving must be alive; one that reached ``shutdown`` has stopped heartbeating)."""
    one_member_passes: bool
    """The gate passes a wave once one member reached the target (the FSD's wakeup
    default); otherwise every member must reach it."""
    members_leave: bool
    """A signalled member leaves the fleet: a member of the last wave leaves only once the
    rollout's result is recorded, and a rollout whose planned members are all gone is
    concluded by whoever sees it."""
    driver_leaves_last: bool
    """The driver is itself a member that leaves: it prefers to be one of the last wave
    (or outside the plan), is not judged by the gate, and leaves after the others."""
    waits_for_discovery: bool
    """The decider waits for the expected number of occurrences (or the discovery grace)
    before it plans, and records a shortfall; otherwise it plans whoever serves now."""
    joins_decision_in_force: bool
    """A decision of this kind made within the decision window (and not followed by an
    accepted shutdown) is joined by a new occurrence instead of decided again."""
    refuses_while_open: bool
    """A new request while one of this kind is requested or rolling out is refused as a
    conflict (and recorded); otherwise the open one is joined."""
    waits_for: LifecycleKind
    """A new request of this kind waits for, or is refused by, an in-progress rollout of
    this kind."""
    prompt: str
    """Which of the FSD's messages the decision engine is given (``coordinator.prompts``)."""


WAKEUP_POLICY = KindPolicy(
    kind=LifecycleKind.WAKEUP,
    target_state=OccurrenceState.WORK,
    pending_states=frozenset({OccurrenceState.STARTING, OccurrenceState.WAKEUP}),
    target_needs_heartbeat=True,
    one_member_passes=True,
    members_leave=False,
    driver_leaves_last=False,
    waits_for_discovery=True,
    joins_decision_in_force=True,
    refuses_while_open=False,
    waits_for=LifecycleKind.SHUTDOWN,
    prompt="wakeup",
)

SHUTDOWN_POLICY = KindPolicy(
    kind=LifecycleKind.SHUTDOWN,
    target_state=OccurrenceState.SHUTDOWN,
    pending_states=frozenset(
        {
            OccurrenceState.STARTING,
            OccurrenceState.WAKEUP,
            OccurrenceState.WORK,
            OccurrenceState.SHUTTING_DOWN,
        }
    ),
    target_needs_heartbeat=False,
    one_member_passes=False,
    members_leave=True,
    driver_leaves_last=True,
    waits_for_discovery=False,
    joins_decision_in_force=False,
    refuses_while_open=True,
    waits_for=LifecycleKind.SHUTDOWN,
    prompt="shutdown",
)

KIND_POLICIES: dict[LifecycleKind, KindPolicy] = {
    p.kind: p for p in (WAKEUP_POLICY, SHUTDOWN_POLICY)
}


def kind_policy(kind: LifecycleKind) -> KindPolicy:
    return KIND_POLICIES[kind]
