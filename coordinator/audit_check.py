"""The invariants of DESIGN.md checked from the audit trail and the tables alone.

Whatever a harness or an operator believes happened, the database must prove it: one
decision per shared task, waves in order and each transition recorded once, members acting
only on their own wave's signal, and (for shutdowns) no one leaving before their wave.
Each function returns the violations it found, as readable sentences; none is good.

A rollout's trail is replayed event by event against the rules of the rollout state
machine and of the operators' commands (``persistence.rollout_control``), so the
histories operators create pass and only real violations are reported:

- ``rollout_paused`` holds a running rollout and ``rollout_resumed`` releases it; while
  paused, no wave is signalled or judged.
- ``rollout_aborted`` (by a failed gate, an operator, or a whole-fleet emergency stop)
  ends a running or paused rollout: after it, no wave is signalled or judged, except
  after a retry.
- ``rollout_retried`` re-opens an aborted rollout at the wave that failed: that wave is
  judged again (it is not signalled again: its members already were), and the waves after
  it are pending again, so each may be signalled once more.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from coordinator.policy.groups import DEFAULT_MIN_SERVING_FRACTION, serving_floor
from coordinator.policy.rollout_machine import last_wave_index
from persistence import Store
from schemas import (
    WAVE_ORDER,
    CanaryGroup,
    EventKind,
    EventRecord,
    LifecycleKind,
    RolloutRecord,
    RolloutStatus,
    Verdict,
    WaveStatus,
)

_SETTLED_BY = {
    EventKind.WAVE_HEALTHY: WaveStatus.HEALTHY,
    EventKind.WAVE_FAILED: WaveStatus.FAILED,
}


async def fleet_violations(store: Store, *, moving: bool = False) -> list[str]:
    """``moving``: the fleet runs on while this reads (the simulator checks as it goes):
    a decision committed between the two reads is in the trail, not yet in the rows."""
    # Rows first, then the trail: on a fleet still moving, the trail can only be ahead.
    rollouts = await store.rollouts(limit=None)
    events = await store.events()
    found: list[str] = []
    decided = Counter(e.task_id or "" for e in events if e.kind == EventKind.DECISION_MADE)
    found += [f"task {t} decided {n} times" for t, n in decided.items() if n != 1]
    rows = {r.task_id for r in rollouts}
    matched = rows <= set(decided) if moving else rows == set(decided)
    if not matched:
        found.append("decisions and rollouts do not match one to one")
    for rollout in rollouts:
        mine = [e for e in events if e.rollout_id == rollout.rollout_id]
        found += _rollout_violations(rollout, mine)
    return found


@dataclass
class _Replay:
    """A rollout as its trail says it went, one event at a time."""

    rollout: RolloutRecord
    status: RolloutStatus
    waves: dict[CanaryGroup, WaveStatus]
    visited: set[RolloutStatus] = field(default_factory=set)
    signalled: set[CanaryGroup] = field(default_factory=set)
    """Waves whose members were told to act (at any time: a retry does not tell again)."""
    found: list[str] = field(default_factory=list)

    def problem(self, text: str) -> None:
        self.found.append(f"{self.rollout.rollout_id}: {text}")

    def become(self, status: RolloutStatus) -> None:
        self.status = status
        self.visited.add(status)

    def apply(self, event: EventRecord) -> None:
        kind, wave = event.kind, event.wave
        if kind == EventKind.WAVE_SIGNALLED and wave is not None:
            self.signal(wave)
        elif kind in _SETTLED_BY and wave is not None:
            self.judge(wave, _SETTLED_BY[EventKind(kind)])
        elif kind == EventKind.WAVE_SKIPPED and wave is not None:
            if self.waves[wave] is not WaveStatus.PENDING:
                self.problem(f"{wave} skipped while {self.waves[wave]}")
            self.waves[wave] = WaveStatus.SKIPPED
        elif kind == EventKind.ROLLOUT_PAUSED:
            self.expect("paused", RolloutStatus.RUNNING)
            self.become(RolloutStatus.PAUSED)
        elif kind == EventKind.ROLLOUT_RESUMED:
            self.expect("resumed", RolloutStatus.PAUSED)
            self.become(RolloutStatus.RUNNING)
        elif kind == EventKind.ROLLOUT_ABORTED:
            self.expect("aborted", RolloutStatus.RUNNING, RolloutStatus.PAUSED)
            self.abort()
        elif kind == EventKind.ROLLOUT_RETRIED:
            self.retry(wave)
        elif kind == EventKind.ROLLOUT_COMPLETED:
            self.expect("completed", RolloutStatus.RUNNING)
            open_waves = [g for g, s in self.waves.items() if not s.is_settled]
            if open_waves:
                self.problem(f"completed with {', '.join(open_waves)} not settled")
            self.become(RolloutStatus.COMPLETED)

    def expect(self, what: str, *allowed: RolloutStatus) -> None:
        if self.status not in allowed:
            self.problem(f"{what} while {self.status}")

    def signal(self, wave: CanaryGroup) -> None:
        if self.rollout.decision.verdict is Verdict.REJECT:
            self.problem("a rejected decision signalled a wave")
        elif self.status is RolloutStatus.ABORTED:
            self.problem(f"a wave was signalled after the abort ({wave})")
        elif self.status is not RolloutStatus.RUNNING:
            self.problem(f"{wave} signalled while the rollout was {self.status}")
        if self.waves[wave] is not WaveStatus.PENDING:
            again = "again " if wave in self.signalled else ""
            self.problem(f"{wave} signalled {again}while {self.waves[wave]}")
        for earlier in WAVE_ORDER[: WAVE_ORDER.index(wave)]:
            gate = self.waves[earlier]
            if gate is WaveStatus.FAILED:
                self.problem(f"{wave} signalled after {earlier} failed")
            elif not gate.is_settled:
                self.problem(f"{wave} signalled before {earlier} settled")
        self.waves[wave] = WaveStatus.SIGNALLED
        self.signalled.add(wave)

    def judge(self, wave: CanaryGroup, verdict: WaveStatus) -> None:
        if self.status is not RolloutStatus.RUNNING:
            self.problem(f"{wave} judged {verdict} while the rollout was {self.status}")
        if self.waves[wave] is not WaveStatus.SIGNALLED:
            self.problem(f"{wave} judged {verdict} while {self.waves[wave]}")
        self.waves[wave] = verdict

    def abort(self) -> None:
        # The waves not yet settled are skipped with the abort (no event of their own).
        for group, status in self.waves.items():
            if not status.is_settled:
                self.waves[group] = WaveStatus.SKIPPED
        self.become(RolloutStatus.ABORTED)

    def retry(self, wave: CanaryGroup | None) -> None:
        self.expect("retried", RolloutStatus.ABORTED)
        if wave is None or self.waves[wave] is not WaveStatus.FAILED:
            self.problem(f"retried at {wave}, which had not failed")
        if wave is None:
            return
        self.waves[wave] = WaveStatus.SIGNALLED
        for later in WAVE_ORDER[WAVE_ORDER.index(wave) + 1 :]:
            self.waves[later] = WaveStatus.PENDING
        self.become(RolloutStatus.RUNNING)

    def member_acted(self, event: EventRecord) -> None:
        assert event.wave is not None
        if event.wave not in self.signalled:
            self.problem(f"{event.occurrence_id} acted before {event.wave} was signalled")
        wave = self.rollout.wave_of(event.occurrence_id or "")
        if wave is None or wave.group is not event.wave:
            self.problem(f"{event.occurrence_id} acted for a wave it is not in")


def _rollout_violations(rollout: RolloutRecord, mine: list[EventRecord]) -> list[str]:
    rejected = rollout.decision.verdict is Verdict.REJECT
    start = RolloutStatus.REJECTED if rejected else RolloutStatus.RUNNING
    replay = _Replay(rollout, start, {g: WaveStatus.PENDING for g in WAVE_ORDER}, visited={start})
    for event in mine:
        if event.kind == EventKind.OCCURRENCE_STATE_CHANGED and event.wave is not None:
            replay.member_acted(event)
        else:
            replay.apply(event)
    if rollout.status not in replay.visited:
        replay.problem(f"the rollout is {rollout.status} but its trail never says so")
    return replay.found


def planned_capacity_violations(rollout: RolloutRecord, min_serving_fraction: float) -> list[str]:
    """A shutdown's plan keeps ``serving_floor`` of its members serving until the last
    wave: the waves before it hold at most ``N - serving_floor(N)`` members, or the
    explorer alone when the fleet cannot spare even it (``shutdown_early_adopter_count``).
    Members who joined the last wave late only raise the floor's headroom."""
    last = last_wave_index(rollout)
    planned = sum(len(w.members) for w in rollout.waves)
    leaving_early = sum(len(w.members) for w in rollout.waves if w.index < last)
    allowed = max(1, planned - serving_floor(planned, min_serving_fraction))
    if leaving_early <= allowed:
        return []
    return [
        f"{rollout.rollout_id}: {leaving_early} of {planned} planned to leave before the last "
        f"wave, more than the {allowed} MIN_SERVING_FRACTION {min_serving_fraction:g} allows"
    ]


async def capacity_violations(
    store: Store, min_serving_fraction: float = DEFAULT_MIN_SERVING_FRACTION
) -> list[str]:
    """Before the last wave of a shutdown, only members of signalled waves went down, and
    the plan left at least ``min_serving_fraction`` of its members for the last wave
    (``planned_capacity_violations``). Give the fraction the fleet ran with."""
    events = await store.events()
    found: list[str] = []
    for rollout in await store.rollouts(kind=LifecycleKind.SHUTDOWN, limit=None):
        if rollout.decision.verdict is not Verdict.ACCEPT:
            continue
        found += planned_capacity_violations(rollout, min_serving_fraction)
        last = last_wave_index(rollout)
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
