"""Reports read back from the database: rollout summaries, the timeline, availability.

Pure functions of persisted records, so ``simulate`` reports what the audit trail proves,
not what the harness believes happened.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from coordinator.policy.groups import serving_floor
from coordinator.policy.rollout_machine import last_wave_index
from coordinator.terminal_text import printable
from schemas import (
    CommandKind,
    EventKind,
    EventRecord,
    OccurrenceState,
    RolloutRecord,
    Verdict,
    kind_policy,
)

WAVE_NUMBER = {"explorer": 1, "early_adopter": 2, "general": 3}


def _rel(at: float | None, origin: float) -> float | None:
    return None if at is None else round(at - origin, 1)


def rollout_summary(
    rollout: RolloutRecord, *, origin: float, invocations: Mapping[str, int]
) -> dict[str, Any]:
    return {
        "rollout_id": rollout.rollout_id,
        "kind": rollout.kind.value,
        "decided_by": rollout.decision.decided_by,
        "decision": rollout.decision.verdict.value,
        "reason": rollout.decision.reason,
        "status": rollout.status.value,
        "abort_reason": rollout.abort_reason,
        "decision_invocations": invocations.get(rollout.task_id, 0),
        "waves": [
            {
                "group": w.group.value,
                "members": list(w.members),
                "status": w.status.value,
                "started_at": _rel(w.signalled_at, origin),
                "finished_at": _rel(w.finished_at, origin),
                "failed": list(w.failed),
            }
            for w in rollout.waves
        ],
    }


def _first_accepted_shutdown(rollouts: Iterable[RolloutRecord]) -> RolloutRecord | None:
    return next(
        (
            r
            for r in rollouts
            if kind_policy(r.kind).members_leave and r.decision.verdict is Verdict.ACCEPT
        ),
        None,
    )


def min_available_during_shutdown(
    rollouts: Iterable[RolloutRecord], events: Iterable[EventRecord]
) -> int | None:
    """Fewest occurrences in ``work`` between the shutdown decision and the signal of its
    last wave (the capacity the fleet kept while the canary waves went down)."""
    shutdown = _first_accepted_shutdown(rollouts)
    if shutdown is None:
        return None
    last = shutdown.waves[last_wave_index(shutdown)]
    end = last.signalled_at or shutdown.finished_at or float("inf")
    working: set[str] = set()
    lowest: int | None = None
    for event in sorted(events, key=lambda e: e.event_id):
        if event.at >= end:
            break
        if event.kind == EventKind.OCCURRENCE_STATE_CHANGED and event.occurrence_id:
            if event.details.get("to") == OccurrenceState.WORK.value:
                working.add(event.occurrence_id)
            else:
                working.discard(event.occurrence_id)
        if event.at >= shutdown.created_at:
            lowest = len(working) if lowest is None else min(lowest, len(working))
    return lowest


def serving_during_shutdown(
    rollouts: Sequence[RolloutRecord], events: Iterable[EventRecord], min_serving_fraction: float
) -> dict[str, Any] | None:
    """The capacity the first accepted shutdown kept before its last wave, against
    ``MIN_SERVING_FRACTION``: the fewest in ``work`` (``min_available_during_shutdown``)
    of its planned members, that fraction, the floor (``serving_floor`` of the planned
    members) and whether it held. None without an accepted shutdown."""
    shutdown = _first_accepted_shutdown(rollouts)
    serving = min_available_during_shutdown(rollouts, events)
    if shutdown is None or serving is None:
        return None
    planned = sum(len(w.members) for w in shutdown.waves)
    floor = serving_floor(planned, min_serving_fraction)
    return {
        "serving": serving,
        "planned": planned,
        "floor": floor,
        "fraction": round(serving / planned, 4) if planned else 0.0,
        "minimum": min_serving_fraction,
        "held": serving >= floor,
    }


def clock_label(seconds: float) -> str:
    whole = max(0, int(seconds))
    return f"T+{whole // 60}:{whole % 60:02d}"


def describe(
    event: EventRecord, signalled: Mapping[tuple[str | None, str], Sequence[str]] | None = None
) -> str | None:
    """One readable line for a timeline, or None for events the timeline leaves out.

    ``signalled`` holds the members of each wave signalled so far, by (rollout, wave): a
    healthy wave then says how many of its members reached the state, and who was not
    judged (a shutdown's driver leaves after recording the result). Stored text (reasons,
    requesters, errors) is shown as written: escape it (``printable``) to print it."""
    d = event.details
    who = event.occurrence_id or "?"
    wave = event.wave.value if event.wave else ""
    number = WAVE_NUMBER.get(wave, 0)
    kind = event.kind
    if kind == EventKind.SHUTDOWN_REQUESTED:
        return f"shutdown requested by {d.get('requested_by')}: {d.get('reason')}"
    if kind == EventKind.TASK_CLAIMED:
        task = (event.task_id or "").split("_")[0]
        taken = f", taking over from {d['took_over_from']}" if "took_over_from" in d else ""
        return f"{who} claims the shared {task} task{taken}"
    if kind == EventKind.DISCOVERY_SHORTFALL:
        return f"discovery: {d.get('discovered')} of {d.get('expected')} expected occurrences live"
    if kind == EventKind.DECISION_MADE:
        verdict = str(d.get("verdict", "")).upper()
        return f"{who} decides {verdict} for {d.get('kind')} on behalf of all: {d.get('reason')}"
    if kind in (EventKind.ROLLOUT_STARTED, EventKind.ROLLOUT_REJECTED):
        groups = d.get("groups", {})
        plan = ", ".join(f"{g} {len(m)}" for g, m in groups.items())
        if kind == EventKind.ROLLOUT_REJECTED:
            return f"rejected: no occurrence changes state (plan was {plan})"
        return f"rollout planned: {plan}"
    if kind == EventKind.DRIVER_ACQUIRED and "took_over_from" in d:
        return f"{who} takes over driving the rollout from {d['took_over_from']}"
    if kind == EventKind.WAVE_SIGNALLED:
        members = d.get("members", [])
        return f"Wave {number} ({wave}) signalled: {', '.join(members)}"
    if kind == EventKind.WAVE_HEALTHY:
        return f"Wave {number} ({wave}) healthy: " + _gate_result(
            d.get("reached") or [],
            d.get("failed") or [],
            (signalled or {}).get((event.rollout_id, wave)),
            event.occurrence_id,
        )
    if kind == EventKind.WAVE_FAILED:
        failed = d.get("failed", []) + d.get("pending", [])
        return f"Wave {number} ({wave}) FAILED its health gate: {', '.join(failed) or '-'}"
    if kind == EventKind.WAVE_SKIPPED:
        return f"Wave {number} ({wave}) skipped: {d.get('reason')}"
    if kind == EventKind.ROLLOUT_COMPLETED:
        failed = d.get("failed_members") or []
        return "rollout completed" + (f" (failed: {', '.join(failed)})" if failed else "")
    if kind == EventKind.ROLLOUT_ABORTED:
        return f"rollout ABORTED: {d.get('reason')}"
    if kind in (EventKind.COMMAND_ACCEPTED, EventKind.COMMAND_REFUSED) and (
        d.get("command") == CommandKind.EMERGENCY_SHUTDOWN.value
    ):
        scope = ", ".join(d.get("targets", [])) or "the whole fleet"
        verdict = "accepted" if kind == EventKind.COMMAND_ACCEPTED else "REFUSED"
        return f"EMERGENCY STOP of {scope} by {d.get('issued_by')} {verdict}: {d.get('reason')}"
    if kind == EventKind.EMERGENCY_ACKNOWLEDGED:
        return f"  {who} -> shutdown (emergency stop acknowledged)"
    if kind == EventKind.EMERGENCY_REFUSED:
        return f"  {who} refuses the emergency stop: {d.get('detail')}"
    if kind == EventKind.DATABASE_RECOVERED:
        return f"{who} reaches the database again after {d.get('down_for')}s ({d.get('error')})"
    if kind == EventKind.OCCURRENCE_JOINED:
        where = "the active pool" if d.get("direct") else f"the {wave} wave"
        return f"{who} joins {where} late"
    if kind == EventKind.OCCURRENCE_STATE_CHANGED and "emergency" in d:
        return None  # the acknowledgement said it
    if kind == EventKind.OCCURRENCE_STATE_CHANGED and d.get("to") in ("work", "shutdown", "failed"):
        suffix = f" ({wave})" if wave else ""
        error = f": {d['error']}" if "error" in d else ""
        return f"  {who} -> {d['to']}{suffix}{error}"
    return None


def _gate_result(
    reached: Sequence[str], failed: Sequence[str], members: Sequence[str] | None, driver: str | None
) -> str:
    """ "5 of 6 reached; occurrence-3 (driving) leaves after the result"."""
    if members is None:  # the wave's signal was not seen (a trail read from its middle)
        text = f"{len(reached)} reached"
    else:
        text = f"{len(reached)} of {len(members)} reached"
    if failed:
        text += f"; failed: {', '.join(failed)}"
    unjudged = [m for m in members or () if m not in reached and m not in failed]
    if unjudged == [driver]:
        text += f"; {driver} (driving) leaves after recording the result"
    elif unjudged:
        text += f"; not judged: {', '.join(unjudged)}"
    return text


class Timeline:
    """Describes events in order, remembering each wave's members from its signal."""

    def __init__(self) -> None:
        self._signalled: dict[tuple[str | None, str], list[str]] = {}

    def describe(self, event: EventRecord) -> str | None:
        """``describe`` with the waves seen so far, escaped for a terminal."""
        if event.kind == EventKind.WAVE_SIGNALLED and event.wave is not None:
            members = [str(m) for m in event.details.get("members", [])]
            self._signalled[(event.rollout_id, event.wave.value)] = members
        text = describe(event, self._signalled)
        return None if text is None else printable(text)

    def lines(self, events: Iterable[EventRecord], origin: float) -> list[str]:
        found = []
        for event in events:
            text = self.describe(event)
            if text is not None:
                found.append(f"{clock_label(event.at - origin)}  {text}")
        return found


def timeline(events: Iterable[EventRecord], origin: float) -> list[str]:
    """The readable lines of ``events``, in simulated time from ``origin``."""
    return Timeline().lines(events, origin)
