"""The vocabulary of coordinator: pydantic models and enums, with no I/O."""

from schemas.enums import (
    OPEN_TASK_STATUSES,
    WAVE_ORDER,
    CanaryGroup,
    LifecycleKind,
    OccurrenceState,
    RolloutStatus,
    TaskStatus,
    Verdict,
    WaveStatus,
)
from schemas.errors import (
    ConfigurationError,
    CoordinatorError,
    DatabaseUnavailable,
    InvalidOccurrenceId,
    NotFound,
    StaleFencingToken,
    Superseded,
)
from schemas.events import EventKind
from schemas.ids import SHARED_OCCURRENCE_ID, validate_occurrence_id
from schemas.plan import PlannedWave, RolloutPlan
from schemas.records import (
    Claim,
    Decision,
    EventRecord,
    NewEvent,
    OccurrenceRecord,
    RolloutChange,
    RolloutRecord,
    SharedTask,
    WaveRecord,
)
from schemas.settings import Settings, load_settings

__all__ = [
    "OPEN_TASK_STATUSES",
    "SHARED_OCCURRENCE_ID",
    "WAVE_ORDER",
    "CanaryGroup",
    "Claim",
    "ConfigurationError",
    "CoordinatorError",
    "DatabaseUnavailable",
    "Decision",
    "EventKind",
    "EventRecord",
    "InvalidOccurrenceId",
    "LifecycleKind",
    "NewEvent",
    "NotFound",
    "OccurrenceRecord",
    "OccurrenceState",
    "PlannedWave",
    "RolloutChange",
    "RolloutPlan",
    "RolloutRecord",
    "RolloutStatus",
    "Settings",
    "SharedTask",
    "StaleFencingToken",
    "Superseded",
    "TaskStatus",
    "Verdict",
    "WaveRecord",
    "WaveStatus",
    "load_settings",
    "validate_occurrence_id",
]
