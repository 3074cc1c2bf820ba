"""The invariants of DESIGN.md checked from the audit trail and the tables alone.

Whatever a harness or an operator believes happened, the database must prove it: one
decision per shared task, waves in order and each transition recorded once, members acting
only on their own wave's signal, and (for shutdowns) no one leaving before their wave.
Each function returns the violations it found, as readable sentences; none is good.
"""

from __future__ import annotations

from collections import Counter

from persistence import Store
from schemas import (
    WAVE_ORDER,
    EventKind,
    EventRecord,
    LifecycleKind,
    RolloutRecord,
    RolloutStatus,
    Verdict,
)

_WAVE_EVENTS = (
    EventKind.WAVE_SIGNALLED,
    EventKind.WAVE_HEALTHY,
    EventKind.WAVE_FAILED,
    EventKind.WAVE_SKIPPED,
)
_SETTLED = (EventKind.WAVE_HEALTHY, EventKind.WAVE_FAILED, EventKind.WAVE_SKIPPED)


async def fleet_violations(store: Store) -> list[str]:
    events = await store.events()
    rollouts = await store.rollouts(limit=None)
    found: list[str] = []
    decided = Counter(e.task_id or "" for e in events if e.kind == EventKind.DECISION_MADE)
    found += [f"task {t} decided {n} times" for t, n in decided.items() if n != 1]
    if sorted(decided) != sorted(r.task_id for r in rollouts):
        found.append("decisions and rollouts do not match one to one")
    for rollout in rollouts:
        mine = [e for e in events if e.rollout_id == rollout.rollout_id]
        found += _rollout_violations(rollout, mine)
    return found


def _rollout_violations(rollout: RolloutRecord, mine: list[EventRecord]) -> list[str]:
    found: list[str] = []
    rid = rollout.rollout_id
    repeated = Counter((e.kind, e.wave) for e in mine if e.kind in _WAVE_EVENTS)
    found += [f"{rid}: {k} of {w} recorded {n} times" for (k, w), n in repeated.items() if n > 1]
    signals = [e for e in mine if e.kind == EventKind.WAVE_SIGNALLED]
    settled = {e.wave: e for e in mine if e.kind in _SETTLED}
    order = [e.wave for e in signals]
    if order != [g for g in WAVE_ORDER if g in order]:
        found.append(f"{rid}: waves signalled out of order: {order}")
    for signal in signals:
        assert signal.wave is not None
        for earlier in WAVE_ORDER[: WAVE_ORDER.index(signal.wave)]:
            gate = settled.get(earlier)
            if gate is None or gate.event_id > signal.event_id:
                found.append(f"{rid}: {signal.wave} signalled before {earlier} settled")
            elif gate.kind == EventKind.WAVE_FAILED:
                found.append(f"{rid}: {signal.wave} signalled after {earlier} failed")
    if rollout.status is RolloutStatus.ABORTED:
        aborted = [e.event_id for e in mine if e.kind == EventKind.ROLLOUT_ABORTED]
        if len(aborted) != 1 or any(s.event_id > aborted[0] for s in signals):
            found.append(f"{rid}: a wave was signalled after the abort")
    if rollout.decision.verdict is Verdict.REJECT and signals:
        found.append(f"{rid}: a rejected decision signalled a wave")
    signal_of = {e.wave: e for e in signals}
    for change in mine:
        if change.kind != EventKind.OCCURRENCE_STATE_CHANGED or change.wave is None:
            continue
        told = signal_of.get(change.wave)
        if told is None or told.event_id > change.event_id:
            found.append(f"{rid}: {change.occurrence_id} acted before {change.wave} was signalled")
        wave = rollout.wave_of(change.occurrence_id or "")
        if wave is None or wave.group is not change.wave:
            found.append(f"{rid}: {change.occurrence_id} acted for a wave it is not in")
    return found


async def capacity_violations(store: Store) -> list[str]:
    """Before the last wave of a shutdown, only members of signalled waves went down."""
    events = await store.events()
    found: list[str] = []
    for rollout in await store.rollouts(kind=LifecycleKind.SHUTDOWN, limit=None):
        if rollout.decision.verdict is not Verdict.ACCEPT:
            continue
        last = max((w.index for w in rollout.waves if w.members), default=0)
        allowed: set[str] = set()
        for e in events:
            if e.rollout_id != rollout.rollout_id:
                continue
            if e.kind == EventKind.WAVE_SIGNALLED:
                if e.wave is rollout.waves[last].group:
                    break
                allowed.update(e.details["members"])
            leaving = e.kind == EventKind.OCCURRENCE_STATE_CHANGED and e.details.get("to") in (
                "shutting_down",
                "shutdown",
            )
            if leaving and e.occurrence_id not in allowed:
                found.append(f"{rollout.rollout_id}: {e.occurrence_id} left before its wave")
    return found
