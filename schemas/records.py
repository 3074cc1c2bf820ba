"""Records read from and written to the database. Times are Unix seconds (floats)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from schemas.engine_identity import EngineIdentity, EngineKind
from schemas.enums import (
    CanaryGroup,
    LifecycleKind,
    OccurrenceState,
    RolloutStatus,
    TaskStatus,
    Verdict,
    WaveStatus,
)


class Record(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Decision(Record):
    """What the deciding occurrence answered, on behalf of every occurrence."""

    verdict: Verdict
    reason: str
    decided_by: str
    decided_at: float

    @property
    def accepted(self) -> bool:
        return self.verdict is Verdict.ACCEPT


class SharedTask(Record):
    """A row of ``tasks`` with ``agent_occurrence_id = '__shared__'``."""

    task_id: str
    agent_occurrence_id: str
    kind: LifecycleKind
    status: TaskStatus
    reason: str | None
    requested_by: str | None
    outcome: dict[str, Any] | None
    created_at: float
    updated_at: float
    claimed_by: str | None
    lease_expires_at: float | None
    fencing_token: int
    schema_v: int


class Claim(Record):
    """Proof that this occurrence holds a shared task's lease; its token fences its writes."""

    task: SharedTask
    holder: str
    fencing_token: int
    lease_expires_at: float


class OccurrenceRecord(Record):
    """One incarnation (one process start) of an occurrence."""

    incarnation_id: str
    occurrence_id: str
    generation: int
    """1 for the first start of this occurrence id, then 2, 3..."""
    state: OccurrenceState
    protocol_version: int
    host: str
    pid: int
    started_at: float
    last_heartbeat_at: float
    stopped_at: float | None
    engine_kind: EngineKind = EngineKind.UNKNOWN
    engine_name: str | None = None
    engine_error: str | None = None
    """Which decision engine this incarnation loaded (see ``EngineIdentity``)."""

    @property
    def engine(self) -> EngineIdentity | None:
        """The engine recorded when it registered; None for a row that recorded none."""
        if self.engine_kind is EngineKind.UNKNOWN or self.engine_name is None:
            return None
        return EngineIdentity(kind=self.engine_kind, name=self.engine_name, error=self.engine_error)

    def is_alive(self, now: float, member_ttl: float) -> bool:
        return self.stopped_at is None and now - self.last_heartbeat_at < member_ttl


class WaveRecord(Record):
    rollout_id: str
    index: int
    group: CanaryGroup
    members: tuple[str, ...]
    status: WaveStatus
    soak: float = Field(description="seconds between the wave's signal and its first health check")
    signalled_at: float | None = None
    next_check_at: float | None = None
    deadline: float | None = None
    finished_at: float | None = None
    reached: tuple[str, ...] = ()
    failed: tuple[str, ...] = ()


_WAVE_INDEX = "_wave_of_member"


class RolloutRecord(Record):
    """A decided lifecycle change and its progress through the waves."""

    rollout_id: str
    task_id: str
    kind: LifecycleKind
    status: RolloutStatus
    decision: Decision
    request_reason: str | None
    created_at: float
    finished_at: float | None
    abort_reason: str | None
    health_timeout: float
    health_poll: float
    expected_occurrences: int | None
    discovered_occurrences: int
    driver_id: str | None
    driver_token: int
    driver_lease_expires_at: float | None
    version: int = 0
    """Bumped by every write to the rollout's state or its waves (a step, an operator's
    action, a late joiner): a step names the version it was computed from, so a step
    from a stale view writes nothing."""
    waves: tuple[WaveRecord, ...]

    def wave_of(self, occurrence_id: str) -> WaveRecord | None:
        # Every occurrence asks at every poll: a scan of the members would cost the
        # fleet's size each time, so the record keeps an index of its waves (beside its
        # fields: equality and dumps ignore it), rebuilt for a copy with other waves.
        indexed = self.__dict__.get(_WAVE_INDEX)
        if indexed is None or indexed[0] is not self.waves:
            index: dict[str, WaveRecord] = {}
            for wave in reversed(self.waves):  # a member planned twice: its first wave
                index.update(dict.fromkeys(wave.members, wave))
            indexed = self.__dict__[_WAVE_INDEX] = (self.waves, index)
        return indexed[1].get(occurrence_id)


class EventRecord(Record):
    event_id: int
    at: float
    kind: str
    occurrence_id: str | None
    rollout_id: str | None
    task_id: str | None
    wave: CanaryGroup | None
    details: dict[str, Any]


class NewEvent(Record):
    """An event about to be appended to the audit trail (the store stamps id and time)."""

    kind: str
    occurrence_id: str | None = None
    rollout_id: str | None = None
    task_id: str | None = None
    wave: CanaryGroup | None = None
    details: dict[str, Any] = Field(default_factory=dict)


class RolloutChange(Record):
    """What one step of the rollout state machine changes; applied atomically, fenced by
    the driver's token and by the rollout version it was computed from."""

    based_on: int
    """``RolloutRecord.version`` of the state this change was computed from."""
    status: RolloutStatus
    finished_at: float | None = None
    abort_reason: str | None = None
    waves: tuple[WaveRecord, ...] = ()
    events: tuple[NewEvent, ...] = ()
    fail_task: bool = False
