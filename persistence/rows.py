"""Map database rows to records."""

from __future__ import annotations

import json
from collections.abc import Callable, Hashable, Sequence
from typing import Any, Generic, TypeVar

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

R = TypeVar("R")

# These tables' columns are named like their records' fields: validate the row as it is.


def task_from_row(row: Row[Any]) -> SharedTask:
    values = dict(row._mapping)
    # An adopted agent database may keep ``outcome`` as TEXT (the spec's column): on
    # PostgreSQL the driver then hands back the JSON text, not the value.
    if isinstance(values.get("outcome"), str):
        values["outcome"] = json.loads(values["outcome"])
    return SharedTask.model_validate(values)


class _Decoded(Generic[R]):
    """Records decoded before, by their rows' names and values. Every poll reads the same
    rows again (every member, the rollouts in progress and their waves), and most have
    not changed since the last poll: the record of an identical row is the same (records
    are frozen), so it is built once. Bounded: cleared when full."""

    def __init__(self, limit: int = 20_000) -> None:
        self._records: dict[Hashable, R] = {}
        self._limit = limit

    def get(self, key: Hashable, build: Callable[[], R]) -> R:
        record = self._records.get(key)
        if record is None:
            if len(self._records) >= self._limit:
                self._records.clear()
            record = self._records[key] = build()
        return record


def _row_key(row: Row[Any]) -> Hashable:
    # JSON columns come back as lists: as tuples they key the row as well.
    return (row._fields, tuple(tuple(v) if isinstance(v, list) else v for v in row))


_OCCURRENCES: _Decoded[OccurrenceRecord] = _Decoded()
_WAVES: _Decoded[WaveRecord] = _Decoded()
_ROLLOUTS: _Decoded[RolloutRecord] = _Decoded()


def occurrence_from_row(row: Row[Any]) -> OccurrenceRecord:
    return _OCCURRENCES.get(
        (row._fields, tuple(row)), lambda: OccurrenceRecord.model_validate(dict(row._mapping))
    )


def wave_from_row(row: Row[Any]) -> WaveRecord:
    return _WAVES.get(_row_key(row), lambda: _wave_from_row(row))


def _wave_from_row(row: Row[Any]) -> WaveRecord:
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
    key = (_row_key(row), tuple(sorted(waves, key=lambda w: w.index)))
    return _ROLLOUTS.get(key, lambda: _rollout_from_row(row, key[1]))


def _rollout_from_row(row: Row[Any], waves: tuple[WaveRecord, ...]) -> RolloutRecord:
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
        waves=waves,
    )


def event_from_row(row: Row[Any]) -> EventRecord:
    return EventRecord.model_validate(dict(row._mapping))
