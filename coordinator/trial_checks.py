"""The invariants a simulated trial checks beyond the audit trail's own (``audit_check``),
from the trail, the commands and what the simulator knows of its faults.

Each function returns violations as readable sentences; none is good. Order is judged by
event id, never by an event's time: a skewed occurrence stamps its events with its own
clock.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence

from schemas import CommandKind, CommandRecord, CommandStatus, EventKind, EventRecord

_LEASE_TAKEN = (EventKind.TASK_CLAIMED, EventKind.DRIVER_ACQUIRED, EventKind.DECISION_MADE)
_LEAVING = ("shutting_down", "shutdown")


def claims_after_decision(events: Sequence[EventRecord]) -> list[str]:
    """A decided task is never claimed again, nor given back (its decision is final: a
    stale decider's failed write must not reopen it)."""
    decided: set[str] = set()
    found = []
    for e in events:
        if e.kind == EventKind.DECISION_MADE and e.task_id:
            decided.add(e.task_id)
        elif e.kind == EventKind.TASK_CLAIMED and e.task_id in decided:
            found.append(f"{e.occurrence_id} claimed {e.task_id} after it was decided")
        elif e.kind == EventKind.TASK_RELEASED and e.task_id in decided:
            found.append(f"{e.occurrence_id} gave {e.task_id} back after it was decided")
    return found


def healthy_holders_taken_over(events: Sequence[EventRecord], faulted: set[str]) -> list[str]:
    """A lease (a task's claim, a rollout's driver) is taken over only from a holder that
    some fault struck: on virtual time a healthy holder renews on schedule. ``faulted``
    holds the incarnation ids any fault struck (a crash included)."""
    incarnation_of: dict[str, str] = {}
    holder_incarnation: dict[tuple[str, str], str] = {}
    found = []
    for e in events:
        who = e.occurrence_id or ""
        if e.kind == EventKind.OCCURRENCE_REGISTERED:
            incarnation_of[who] = str(e.details.get("incarnation_id"))
            continue
        if e.kind not in _LEASE_TAKEN:
            continue
        lease = "task" if e.kind == EventKind.TASK_CLAIMED else "driver"
        subject = (e.task_id if lease == "task" else e.rollout_id) or ""
        previous = e.details.get("took_over_from")
        if e.kind != EventKind.DECISION_MADE and previous:
            held_by = holder_incarnation.get((lease, subject))
            if held_by is not None and held_by not in faulted:
                found.append(
                    f"{who} took the {lease} lease of {subject} from {previous}, "
                    "which no fault had struck"
                )
        if e.kind == EventKind.DECISION_MADE:
            lease, subject = "driver", e.rollout_id or ""  # the decider drives from the start
        holder_incarnation[(lease, subject)] = incarnation_of.get(who, "?")
    return found


def replays_accepted(commands: Iterable[CommandRecord]) -> list[str]:
    """Each nonce is accepted once: a replayed signed command is refused."""
    accepted = Counter(
        c.nonce
        for c in commands
        if c.kind is CommandKind.EMERGENCY_SHUTDOWN
        and c.status is CommandStatus.ACCEPTED
        and c.nonce
    )
    return [f"nonce {n[:12]}... accepted {k} times" for n, k in accepted.items() if k > 1]


def acted_after_stop(events: Sequence[EventRecord]) -> list[str]:
    """Once a fleet-wide stop is accepted, no wave is signalled, and no occurrence that
    acknowledged it changes to any state but leaving."""
    stopped_at: int | None = None
    acked: set[str] = set()
    found = []
    for e in events:
        fleet_stop = e.details.get("command") == CommandKind.EMERGENCY_SHUTDOWN.value
        if e.kind == EventKind.COMMAND_ACCEPTED and fleet_stop and not e.details.get("targets"):
            stopped_at = stopped_at or e.event_id
        elif stopped_at is None:
            continue
        elif e.kind == EventKind.WAVE_SIGNALLED:
            found.append(f"{e.rollout_id}: {e.wave} signalled after the emergency stop")
        elif e.kind == EventKind.EMERGENCY_ACKNOWLEDGED:
            acked.add(e.occurrence_id or "")
        elif (
            e.kind == EventKind.OCCURRENCE_STATE_CHANGED
            and e.occurrence_id in acked
            and e.details.get("to") not in (*_LEAVING, "failed")
        ):
            found.append(
                f"{e.occurrence_id} went to {e.details.get('to')} after acknowledging the stop"
            )
    return found


def left_without_shutdown(events: Sequence[EventRecord]) -> list[str]:
    """With no accepted shutdown (it was rejected), nobody leaves: a rejected shutdown
    changes nothing."""
    return [
        f"{e.occurrence_id} went to {e.details.get('to')} though the shutdown was rejected"
        for e in events
        if e.kind == EventKind.OCCURRENCE_STATE_CHANGED and e.details.get("to") in _LEAVING
    ]


def acted_unsignalled(events: Sequence[EventRecord]) -> list[str]:
    """A member acts for a wave only once a signal to the wave named it (a late joiner is
    named by the signal that follows its join, never skipped by one computed before)."""
    named: dict[tuple[str, str], set[str]] = {}
    found = []
    for e in events:
        key = (e.rollout_id or "", str(e.wave))
        if e.kind == EventKind.WAVE_SIGNALLED:
            named.setdefault(key, set()).update(e.details.get("members", ()))
        elif (
            e.kind == EventKind.OCCURRENCE_STATE_CHANGED
            and e.wave is not None
            and e.occurrence_id not in named.get(key, set())
        ):
            found.append(f"{e.occurrence_id} acted for {e.wave} of {e.rollout_id} unnamed")
    return found


def slow_decisions(
    events: Sequence[EventRecord],
    created: Mapping[str, float],
    *,
    grace: float,
    member_ttl: float,
    slack: float,
    faulted: set[str],
) -> list[str]:
    """A claimer no fault struck decides by the later of the end of discovery (``grace``
    from the task's creation, however often the task changed hands) and one member TTL
    from its claim (members it cannot judge yet), give or take ``slack``. ``faulted``:
    incarnation ids to leave out (a frozen decider is late by the freeze)."""
    incarnation_of: dict[str, str] = {}
    claims: dict[str, tuple[str, float]] = {}
    found = []
    for e in events:
        who, task = e.occurrence_id or "", e.task_id or ""
        if e.kind == EventKind.OCCURRENCE_REGISTERED:
            incarnation_of[who] = str(e.details.get("incarnation_id"))
        elif e.kind == EventKind.TASK_CLAIMED:
            claims[task] = (who, e.at)
        elif e.kind == EventKind.TASK_RELEASED:
            claims.pop(task, None)
        elif e.kind == EventKind.DECISION_MADE and task in claims and task in created:
            holder, claimed_at = claims.pop(task)
            if holder != who or incarnation_of.get(who) in faulted:
                continue
            due = max(created[task] + grace, claimed_at + member_ttl) + slack
            if e.at > due:
                found.append(
                    f"{who} decided {task} {e.at - due:.1f} s after discovery had to end "
                    f"(claimed {claimed_at - created[task]:.1f} s after the task opened)"
                )
    return found
