"""Invariants checked from the audit trail and the tables alone (DESIGN.md, 1-3 and 6-7).

Used by every tier that runs a fleet, in one process or many: what the database
records must prove the run was correct, whatever the harness saw.
"""

from __future__ import annotations

from collections import Counter, defaultdict

from persistence import Store
from schemas import WAVE_ORDER, EventKind, EventRecord, LifecycleKind, RolloutStatus, Verdict


async def check_fleet_invariants(store: Store) -> None:
    events = await store.events()
    rollouts = await store.rollouts(limit=None)
    by_kind: dict[str, list[EventRecord]] = defaultdict(list)
    for e in events:
        by_kind[e.kind].append(e)

    # 1. One decision per shared task, and one rollout per decision.
    decided = Counter(e.task_id for e in by_kind[EventKind.DECISION_MADE])
    assert all(n == 1 for n in decided.values()), f"tasks decided twice: {decided}"
    assert sorted(decided) == sorted(r.task_id for r in rollouts)

    for rollout in rollouts:
        mine = [e for e in events if e.rollout_id == rollout.rollout_id]
        signals = [e for e in mine if e.kind == EventKind.WAVE_SIGNALLED]
        settled = {
            e.wave: e
            for e in mine
            if e.kind in (EventKind.WAVE_HEALTHY, EventKind.WAVE_FAILED, EventKind.WAVE_SKIPPED)
        }
        # Every wave transition recorded once.
        transitions = Counter(
            (e.kind, e.wave)
            for e in mine
            if e.wave is not None
            and e.kind
            in (
                EventKind.WAVE_SIGNALLED,
                EventKind.WAVE_HEALTHY,
                EventKind.WAVE_FAILED,
                EventKind.WAVE_SKIPPED,
            )
        )
        assert all(n == 1 for n in transitions.values()), f"repeated: {transitions}"

        # 2. Waves in order; wave k+1 only after wave k passed (or was empty).
        order = [e.wave for e in signals]
        assert order == [g for g in WAVE_ORDER if g in order], f"out of order: {order}"
        for signal in signals:
            index = WAVE_ORDER.index(signal.wave)  # type: ignore[arg-type]
            for earlier in WAVE_ORDER[:index]:
                gate = settled.get(earlier)
                assert gate is not None and gate.event_id < signal.event_id, (
                    f"{signal.wave} signalled before {earlier} settled in {rollout.rollout_id}"
                )
                assert gate.kind != EventKind.WAVE_FAILED, (
                    f"{signal.wave} signalled after {earlier} failed in {rollout.rollout_id}"
                )
        if rollout.status is RolloutStatus.ABORTED:
            aborted = next(e for e in mine if e.kind == EventKind.ROLLOUT_ABORTED)
            assert all(s.event_id < aborted.event_id for s in signals)
        if rollout.status is RolloutStatus.REJECTED or rollout.decision.verdict is Verdict.REJECT:
            assert signals == [], "a rejected decision signalled a wave"

        # Members act only once their own wave was signalled.
        signal_of = {e.wave: e for e in signals}
        for change in mine:
            if change.kind != EventKind.OCCURRENCE_STATE_CHANGED or change.wave is None:
                continue
            told = signal_of.get(change.wave)
            assert told is not None and told.event_id < change.event_id, (
                f"{change.occurrence_id} acted in {change.wave} before it was signalled"
            )
            wave = rollout.wave_of(change.occurrence_id or "")
            assert wave is not None and wave.group is change.wave


async def check_shutdown_capacity(store: Store) -> None:
    """7. Before the last wave of a shutdown, no more than the waves signalled so far are down."""
    events = await store.events()
    for rollout in await store.rollouts(kind=LifecycleKind.SHUTDOWN, limit=None):
        if rollout.decision.verdict is not Verdict.ACCEPT:
            continue
        planned_down: set[str] = set()
        down: set[str] = set()
        last = max((w.index for w in rollout.waves if w.members), default=0)
        for e in events:
            if e.rollout_id != rollout.rollout_id:
                continue
            if e.kind == EventKind.WAVE_SIGNALLED:
                if e.wave is rollout.waves[last].group:
                    break
                planned_down.update(e.details["members"])
            if e.kind == EventKind.OCCURRENCE_STATE_CHANGED and e.details["to"] in (
                "shutting_down",
                "shutdown",
            ):
                down.add(e.occurrence_id or "")
                assert down <= planned_down, f"{down - planned_down} left before their wave"
