"""Map database rows to records."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Row

from schemas import (
    CanaryGroup,
    Decision,
    EventRecord,
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


def task_from_row(row: Row[Any]) -> SharedTask:
    m = row._mapping
    return SharedTask(
        task_id=m["task_id"],
        agent_occurrence_id=m["agent_occurrence_id"],
        kind=LifecycleKind(m["kind"]),
        status=TaskStatus(m["status"]),
        reason=m["reason"],
        requested_by=m["requested_by"],
        outcome=m["outcome"],
        created_at=m["created_at"],
        updated_at=m["updated_at"],
        claimed_by=m["claimed_by"],
        lease_expires_at=m["lease_expires_at"],
        fencing_token=m["fencing_token"],
        schema_v=m["schema_v"],
    )


def occurrence_from_row(row: Row[Any]) -> OccurrenceRecord:
    m = row._mapping
    return OccurrenceRecord(
        incarnation_id=m["incarnation_id"],
        occurrence_id=m["occurrence_id"],
        generation=m["generation"],
        state=OccurrenceState(m["state"]),
        protocol_version=m["protocol_version"],
        host=m["host"],
        pid=m["pid"],
        started_at=m["started_at"],
        last_heartbeat_at=m["last_heartbeat_at"],
        stopped_at=m["stopped_at"],
    )


def wave_from_row(row: Row[Any]) -> WaveRecord:
    m = row._mapping
    return WaveRecord(
        rollout_id=m["rollout_id"],
        index=m["wave_index"],
        group=CanaryGroup(m["wave_group"]),
        members=tuple(m["members"]),
        status=WaveStatus(m["status"]),
        soak=m["soak"],
        signalled_at=m["signalled_at"],
        next_check_at=m["next_check_at"],
        deadline=m["deadline"],
        finished_at=m["finished_at"],
        reached=tuple(m["reached"]),
        failed=tuple(m["failed"]),
    )


def wave_values(wave: WaveRecord) -> dict[str, Any]:
    return {
        "rollout_id": wave.rollout_id,
        "wave_index": wave.index,
        "wave_group": wave.group.value,
        "members": list(wave.members),
        "status": wave.status.value,
        "soak": wave.soak,
        "signalled_at": wave.signalled_at,
        "next_check_at": wave.next_check_at,
        "deadline": wave.deadline,
        "finished_at": wave.finished_at,
        "reached": list(wave.reached),
        "failed": list(wave.failed),
    }


def rollout_from_row(row: Row[Any], waves: Sequence[WaveRecord]) -> RolloutRecord:
    m = row._mapping
    return RolloutRecord(
        rollout_id=m["rollout_id"],
        task_id=m["task_id"],
        kind=LifecycleKind(m["kind"]),
        status=RolloutStatus(m["status"]),
        decision=Decision(
            verdict=Verdict(m["verdict"]),
            reason=m["decision_reason"],
            decided_by=m["decided_by"],
            decided_at=m["decided_at"],
        ),
        request_reason=m["request_reason"],
        created_at=m["created_at"],
        finished_at=m["finished_at"],
        abort_reason=m["abort_reason"],
        health_timeout=m["health_timeout"],
        health_poll=m["health_poll"],
        expected_occurrences=m["expected_occurrences"],
        discovered_occurrences=m["discovered_occurrences"],
        driver_id=m["driver_id"],
        driver_token=m["driver_token"],
        driver_lease_expires_at=m["driver_lease_expires_at"],
        waves=tuple(sorted(waves, key=lambda w: w.index)),
    )


def event_from_row(row: Row[Any]) -> EventRecord:
    m = row._mapping
    return EventRecord(
        event_id=m["event_id"],
        at=m["at"],
        kind=m["kind"],
        occurrence_id=m["occurrence_id"],
        rollout_id=m["rollout_id"],
        task_id=m["task_id"],
        wave=CanaryGroup(m["wave"]) if m["wave"] else None,
        details=m["details"],
    )
