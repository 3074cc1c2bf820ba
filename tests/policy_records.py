"""Plain records built by hand for the pure rules' unit tests (no database)."""

from __future__ import annotations

from collections.abc import Sequence

from schemas import (
    SHARED_OCCURRENCE_ID,
    WAVE_ORDER,
    CommandKind,
    CommandRecord,
    CommandStatus,
    Decision,
    LifecycleKind,
    OccurrenceRecord,
    OccurrenceState,
    RolloutRecord,
    RolloutStatus,
    SharedTask,
    TaskStatus,
    Verdict,
    WaveRecord,
    WaveStatus,
)


def wave(
    index: int,
    status: WaveStatus = WaveStatus.PENDING,
    *,
    members: Sequence[str] = ("occ",),
    rollout_id: str = "r-1",
    **progress: object,
) -> WaveRecord:
    return WaveRecord.model_validate(
        {
            "rollout_id": rollout_id,
            "index": index,
            "group": WAVE_ORDER[index],
            "members": tuple(members),
            "status": status,
            "soak": 0.0,
            **progress,
        }
    )


def rollout(
    kind: LifecycleKind = LifecycleKind.WAKEUP,
    status: RolloutStatus = RolloutStatus.RUNNING,
    *,
    rollout_id: str = "r-1",
    waves: Sequence[WaveRecord] | None = None,
    created_at: float = 0.0,
    version: int = 3,
    accepted: bool = True,
    health_timeout: float = 300.0,
) -> RolloutRecord:
    if waves is None:
        waves = [wave(i, rollout_id=rollout_id, members=(f"occ-{i}",)) for i in range(3)]
    verdict = Verdict.ACCEPT if accepted else Verdict.REJECT
    return RolloutRecord(
        rollout_id=rollout_id,
        task_id=rollout_id,
        kind=kind,
        status=status,
        decision=Decision(verdict=verdict, reason="ok", decided_by="occ-0", decided_at=0.0),
        request_reason=None,
        created_at=created_at,
        finished_at=None if not status.is_finished else created_at + 1,
        abort_reason="gate" if status is RolloutStatus.ABORTED else None,
        health_timeout=health_timeout,
        health_poll=5.0,
        expected_occurrences=None,
        discovered_occurrences=3,
        driver_id=None,
        driver_token=0,
        driver_lease_expires_at=None,
        version=version,
        waves=tuple(waves),
    )


def task(
    kind: LifecycleKind,
    *,
    task_id: str | None = None,
    status: TaskStatus = TaskStatus.PENDING,
    requested_by: str | None = "op",
    reason: str | None = "maintenance",
) -> SharedTask:
    return SharedTask(
        task_id=task_id or f"{kind.value}-task",
        agent_occurrence_id=SHARED_OCCURRENCE_ID,
        kind=kind,
        status=status,
        reason=reason,
        requested_by=requested_by,
        outcome=None,
        created_at=0.0,
        updated_at=0.0,
        claimed_by=None,
        lease_expires_at=None,
        fencing_token=0,
        schema_v=1,
    )


def command(
    *,
    status: CommandStatus = CommandStatus.ACCEPTED,
    targets: Sequence[str] = (),
    reason: str = "fire",
) -> CommandRecord:
    return CommandRecord(
        command_id="cmd-1",
        kind=CommandKind.EMERGENCY_SHUTDOWN,
        status=status,
        issued_by="op",
        reason=reason,
        targets=tuple(targets),
        created_at=0.0,
    )


def member(
    oid: str = "occ",
    *,
    heartbeat: float = 0.0,
    stopped_at: float | None = None,
    state: OccurrenceState = OccurrenceState.WORK,
    started_at: float = 0.0,
) -> OccurrenceRecord:
    return OccurrenceRecord(
        incarnation_id=f"{oid}-inc",
        occurrence_id=oid,
        generation=1,
        state=state,
        protocol_version=1,
        host="h",
        pid=1,
        started_at=started_at,
        last_heartbeat_at=heartbeat,
        stopped_at=stopped_at,
    )
