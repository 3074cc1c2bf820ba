"""Map database rows to records."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from sqlalchemy import Row

from schemas import (
    CanaryGroup,
    Decision,
    EventRecord,
    LifecycleKind,
    OccurrenceRecord,
    RolloutRecord,
    RolloutStatus,
    SharedTask,
    Verdict,
    WaveRecord,
    WaveStatus,
)

# These tables' columns are named like their records' fields: validate the row as it is.


def task_from_row(row: Row[Any]) -> SharedTask:
    values = dict(row._mapping)
    # An adopted agent database may keep ``outcome`` as TEXT (the spec's column): on
    # PostgreSQL the driver then hands back the JSON text, not the value.
    if isinstance(values.get("outcome"), str):
        values["outcome"] = json.loads(values["outcome"])
    return SharedTask.model_validate(values)


_DECODED: dict[tuple[tuple[str, ...], tuple[Any, ...]], OccurrenceRecord] = {}
"""Member rows decoded before, by their names and values. Every poll reads every member,
and most rows have not changed since the last poll: the record of an identical row is
the same (records are frozen), so it is validated once. Bounded: cleared when full."""
_DECODED_LIMIT = 20_000


def occurrence_from_row(row: Row[Any]) -> OccurrenceRecord:
    key = (row._fields, tuple(row))
    record = _DECODED.get(key)
    if record is None:
        if len(_DECODED) >= _DECODED_LIMIT:
            _DECODED.clear()
        record = _DECODED[key] = OccurrenceRecord.model_validate(dict(row._mapping))
    return record


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


def wave_progress(wave: WaveRecord) -> dict[str, Any]:
    """The columns of a wave a step or an operator's action rewrites."""
    # Members are left out on purpose: late joiners append to them concurrently.
    return {
        "status": wave.status.value,
        "signalled_at": wave.signalled_at,
        "next_check_at": wave.next_check_at,
        "deadline": wave.deadline,
        "finished_at": wave.finished_at,
        "reached": list(wave.reached),
        "failed": list(wave.failed),
    }


def wave_values(wave: WaveRecord) -> dict[str, Any]:
    return {
        "rollout_id": wave.rollout_id,
        "wave_index": wave.index,
        "wave_group": wave.group.value,
        "members": list(wave.members),
        "soak": wave.soak,
        **wave_progress(wave),
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
        version=m["version"],
        waves=tuple(sorted(waves, key=lambda w: w.index)),
    )


def event_from_row(row: Row[Any]) -> EventRecord:
    return EventRecord.model_validate(dict(row._mapping))
