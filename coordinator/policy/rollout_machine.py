"""The rollout state machine: (persisted rollout, observations, now) -> change.

Pure: no I/O and no clock of its own. The driver reads the rollout and the members,
calls ``step_rollout``, and applies the change in one fenced transaction, so a step is
idempotent and any occurrence can resume a rollout from what is persisted.

Per wave: ``pending`` -> ``signalled`` (members act) -> soak -> health checks every
``health_poll`` until ``healthy`` or ``failed`` (or ``skipped`` if empty or aborted).
Abort rules (the FSD): a failed wave before the last aborts the rollout and signals no
further wave; the explorer failing also marks the shared task FAILED; the last wave
failing (partly or wholly) is logged and the rollout still completes.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from coordinator.policy.gate import GateOutcome, MemberStatus, evaluate_gate
from coordinator.policy.liveness import observe
from schemas import (
    CanaryGroup,
    EventKind,
    NewEvent,
    OccurrenceRecord,
    OccurrenceState,
    RolloutChange,
    RolloutRecord,
    RolloutStatus,
    WaveRecord,
    WaveStatus,
    kind_policy,
)

__all__ = ["Step", "conclude_abandoned", "last_wave_index", "observe", "step_rollout"]
"""``observe`` lives in ``coordinator.policy.liveness``; kept importable from here."""


@dataclass(frozen=True)
class Step:
    change: RolloutChange | None
    """None when nothing changed."""
    wake_at: float | None
    """When the rollout can next change by the passing of time alone."""


def last_wave_index(rollout: RolloutRecord) -> int:
    """Index of the last wave with members: the wave whose failure no longer aborts."""
    indices = [w.index for w in rollout.waves if w.members]
    return max(indices, default=len(rollout.waves) - 1)


def step_rollout(
    rollout: RolloutRecord,
    observed: Mapping[str, MemberStatus],
    now: float,
    *,
    driver: str | None = None,
) -> Step:
    if rollout.status is not RolloutStatus.RUNNING:
        return Step(None, None)
    waves = list(rollout.waves)
    changed: dict[int, WaveRecord] = {}
    events: list[NewEvent] = []
    last = last_wave_index(rollout)

    def put(wave: WaveRecord, **update: Any) -> WaveRecord:
        new = wave.model_copy(update=update)
        waves[wave.index] = changed[wave.index] = new
        return new

    def note(kind: EventKind, wave: CanaryGroup | None = None, **details: Any) -> None:
        events.append(
            NewEvent(
                kind=kind,
                occurrence_id=driver,
                rollout_id=rollout.rollout_id,
                task_id=rollout.task_id,
                wave=wave,
                details=details,
            )
        )

    def finish(status: RolloutStatus, **fields: Any) -> Step:
        change = RolloutChange(
            based_on=rollout.version,
            status=status,
            finished_at=now,
            waves=tuple(changed.values()),
            events=tuple(events),
            **fields,
        )
        return Step(change, None)

    for index in range(len(waves)):
        wave = waves[index]
        if wave.status.is_settled:
            continue
        if wave.status is WaveStatus.PENDING:
            if not wave.members:
                put(wave, status=WaveStatus.SKIPPED, finished_at=now)
                note(EventKind.WAVE_SKIPPED, wave.group, reason="no members")
                continue
            check_at = now + wave.soak
            put(
                wave,
                status=WaveStatus.SIGNALLED,
                signalled_at=now,
                next_check_at=check_at,
                deadline=check_at + rollout.health_timeout,
            )
            note(EventKind.WAVE_SIGNALLED, wave.group, members=list(wave.members), soak=wave.soak)
            return _unfinished(rollout, changed, events, wake_at=check_at)
        # Signalled: soaking, then checked every health_poll until it settles.
        assert wave.next_check_at is not None and wave.deadline is not None
        if now < wave.next_check_at:
            return _unfinished(rollout, changed, events, wake_at=wave.next_check_at)
        final = index >= last
        # A shutdown's driver leaves last, after recording the result: not judged here.
        exclude = (driver,) if driver and kind_policy(rollout.kind).driver_leaves_last else ()
        verdict = evaluate_gate(
            rollout.kind,
            wave.members,
            observed,
            final=final,
            timed_out=now >= wave.deadline,
            exclude=exclude,
        )
        if verdict.outcome is GateOutcome.WAIT:
            check_at = min(now + rollout.health_poll, wave.deadline)
            put(wave, next_check_at=check_at)
            return _unfinished(rollout, changed, events, wake_at=check_at)
        # Members still pending when the gate times out never made it: they failed too.
        failed = verdict.failed + (verdict.pending if now >= wave.deadline else ())
        settled = {"finished_at": now, "reached": verdict.reached, "failed": failed}
        if verdict.outcome is GateOutcome.PASS:
            put(wave, status=WaveStatus.HEALTHY, **settled)
            note(
                EventKind.WAVE_HEALTHY,
                wave.group,
                reached=list(verdict.reached),
                failed=list(failed),
            )
            continue
        put(wave, status=WaveStatus.FAILED, **settled)
        note(
            EventKind.WAVE_FAILED,
            wave.group,
            reached=list(verdict.reached),
            failed=list(failed),
            pending=list(verdict.pending),
            timed_out=now >= wave.deadline,
        )
        if final:
            continue  # The last wave failing is logged; the rollout still completes.
        reason = f"{wave.group.value} wave failed its health gate"
        for later in waves[index + 1 :]:
            put(later, status=WaveStatus.SKIPPED, finished_at=now)
            note(EventKind.WAVE_SKIPPED, later.group, reason="rollout aborted")
        fail_task = wave.group is CanaryGroup.EXPLORER
        note(EventKind.ROLLOUT_ABORTED, wave.group, reason=reason, task_failed=fail_task)
        return finish(RolloutStatus.ABORTED, abort_reason=reason, fail_task=fail_task)

    note(EventKind.ROLLOUT_COMPLETED, failed_members=sorted({m for w in waves for m in w.failed}))
    return finish(RolloutStatus.COMPLETED)


def _unfinished(
    rollout: RolloutRecord,
    changed: Mapping[int, WaveRecord],
    events: list[NewEvent],
    *,
    wake_at: float,
) -> Step:
    if not changed:
        return Step(None, wake_at)
    change = RolloutChange(
        based_on=rollout.version,
        status=rollout.status,
        waves=tuple(changed.values()),
        events=tuple(events),
    )
    return Step(change, wake_at)


def conclude_abandoned(
    rollout: RolloutRecord,
    members: Iterable[OccurrenceRecord],
    now: float,
    *,
    member_ttl: float | None = None,
) -> RolloutChange | None:
    """Record the end of a shutdown every planned member of which is gone: nobody is
    left to drive it, and its waves can change no more. Gone means left, or (given a
    ``member_ttl``: an observer that can trust staleness) silent for a whole TTL. None if
    anyone planned may still be in the fleet (or is unknown).

    Signalled waves are judged as they stand (members that reached ``shutdown`` passed,
    the others failed); waves never signalled are skipped. The usual abort rule applies:
    a failed wave before the last aborts the rollout.
    """
    if not kind_policy(rollout.kind).members_leave or rollout.status is not RolloutStatus.RUNNING:
        return None
    latest = {m.occurrence_id: m for m in members}
    planned = [m for w in rollout.waves for m in w.members]

    def gone(m: OccurrenceRecord | None) -> bool:
        if m is None:
            return False
        silent = member_ttl is not None and now - m.last_heartbeat_at >= member_ttl
        return m.stopped_at is not None or silent

    if not planned or not all(gone(latest.get(m)) for m in planned):
        return None
    last = last_wave_index(rollout)
    changed: list[WaveRecord] = []
    events: list[NewEvent] = []

    def note(kind: EventKind, wave: CanaryGroup | None = None, **details: Any) -> None:
        events.append(
            NewEvent(
                kind=kind,
                rollout_id=rollout.rollout_id,
                task_id=rollout.task_id,
                wave=wave,
                details={**details, "abandoned": True},
            )
        )

    abort: WaveRecord | None = None
    for wave in rollout.waves:
        if wave.status.is_settled:
            continue
        if abort is not None or wave.status is WaveStatus.PENDING:
            why = "rollout aborted" if abort is not None else "every member left before it"
            changed.append(
                wave.model_copy(update={"status": WaveStatus.SKIPPED, "finished_at": now})
            )
            note(EventKind.WAVE_SKIPPED, wave.group, reason=why)
            continue
        reached = tuple(m for m in wave.members if latest[m].state is OccurrenceState.SHUTDOWN)
        failed = tuple(m for m in wave.members if m not in reached)
        status = WaveStatus.FAILED if failed else WaveStatus.HEALTHY
        changed.append(
            wave.model_copy(
                update={"status": status, "finished_at": now, "reached": reached, "failed": failed}
            )
        )
        kind = EventKind.WAVE_FAILED if failed else EventKind.WAVE_HEALTHY
        note(kind, wave.group, reached=list(reached), failed=list(failed))
        if failed and wave.index < last:
            abort = wave
    if abort is not None:
        reason = f"{abort.group.value} wave failed its health gate"
        fail_task = abort.group is CanaryGroup.EXPLORER
        note(EventKind.ROLLOUT_ABORTED, abort.group, reason=reason, task_failed=fail_task)
        return RolloutChange(
            based_on=rollout.version,
            status=RolloutStatus.ABORTED,
            finished_at=now,
            abort_reason=reason,
            fail_task=fail_task,
            waves=tuple(changed),
            events=tuple(events),
        )
    failed_members = sorted({m for w in (*rollout.waves, *changed) for m in w.failed})
    note(EventKind.ROLLOUT_COMPLETED, failed_members=failed_members)
    return RolloutChange(
        based_on=rollout.version,
        status=RolloutStatus.COMPLETED,
        finished_at=now,
        waves=tuple(changed),
        events=tuple(events),
    )
