"""The health gate between waves: a pure verdict from what the members reported."""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass
from enum import StrEnum

from schemas import LifecycleKind, OccurrenceState, kind_policy


@dataclass(frozen=True)
class MemberStatus:
    """What the driver sees of one wave member: its last reported state and liveness."""

    state: OccurrenceState
    alive: bool


class GateOutcome(StrEnum):
    PASS = "pass"
    FAIL = "fail"
    WAIT = "wait"


@dataclass(frozen=True)
class GateVerdict:
    outcome: GateOutcome
    reached: tuple[str, ...]
    failed: tuple[str, ...]
    pending: tuple[str, ...]


def classify(kind: LifecycleKind, status: MemberStatus | None) -> str:
    """'reached', 'failed' or 'pending' for one member."""
    if status is None:
        return "failed"
    policy = kind_policy(kind)
    if status.state is policy.target_state and (status.alive or not policy.target_needs_heartbeat):
        return "reached"
    if status.alive and status.state in policy.pending_states:
        return "pending"
    return "failed"


def evaluate_gate(
    kind: LifecycleKind,
    members: Collection[str],
    observed: Mapping[str, MemberStatus],
    *,
    final: bool,
    timed_out: bool,
    exclude: Collection[str] = (),
) -> GateVerdict:
    """Judge one wave.

    Wakeup (the FSD's default): the wave passes once at least one member is in ``work``
    with a fresh heartbeat; the final wave waits for every member to settle first so
    partial failures are known and logged. Shutdown: every member must reach
    ``shutdown`` cleanly. A wave fails as soon as every member settled without meeting
    its rule, or when the health timeout runs out. ``exclude`` leaves members out of the
    judgement (the driver of a shutdown leaves last, after recording the result).
    """
    buckets: dict[str, list[str]] = {"reached": [], "failed": [], "pending": []}
    for member in members:
        if member not in exclude:
            buckets[classify(kind, observed.get(member))].append(member)
    reached, failed, pending = (tuple(buckets[k]) for k in ("reached", "failed", "pending"))

    def verdict(outcome: GateOutcome) -> GateVerdict:
        return GateVerdict(outcome, reached, failed, pending)

    judged = len(reached) + len(failed) + len(pending)
    if judged == 0:
        return verdict(GateOutcome.PASS)
    if kind_policy(kind).one_member_passes:
        if reached and (not final or not pending):
            return verdict(GateOutcome.PASS)
        if not pending:
            return verdict(GateOutcome.FAIL)
        if timed_out:
            return verdict(GateOutcome.PASS if reached else GateOutcome.FAIL)
        return verdict(GateOutcome.WAIT)
    if len(reached) == judged:
        return verdict(GateOutcome.PASS)
    if not pending or timed_out:
        return verdict(GateOutcome.FAIL)
    return verdict(GateOutcome.WAIT)
