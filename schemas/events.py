"""Names of the audit-trail events. Stable snake_case: operators grep and alert on them."""

from __future__ import annotations

from enum import StrEnum


class EventKind(StrEnum):
    OCCURRENCE_REGISTERED = "occurrence_registered"
    OCCURRENCE_SUPERSEDED = "occurrence_superseded"
    OCCURRENCE_STATE_CHANGED = "occurrence_state_changed"
    OCCURRENCE_STOPPED = "occurrence_stopped"
    OCCURRENCE_JOINED = "occurrence_joined"
    SHUTDOWN_REQUESTED = "shutdown_requested"
    TASK_CREATED = "task_created"
    TASK_CLAIMED = "task_claimed"
    TASK_RELEASED = "task_released"
    TASK_CANCELLED = "task_cancelled"
    """A fleet-wide emergency stop failed an open shared task: its decision, if one was
    in flight, is refused (``details``: ``command_id``, ``reason``, ``was``)."""
    DISCOVERY_SHORTFALL = "discovery_shortfall"
    DECISION_MADE = "decision_made"
    ROLLOUT_STARTED = "rollout_started"
    ROLLOUT_REJECTED = "rollout_rejected"
    DRIVER_ACQUIRED = "driver_acquired"
    WAVE_SIGNALLED = "wave_signalled"
    WAVE_HEALTHY = "wave_healthy"
    WAVE_FAILED = "wave_failed"
    WAVE_SKIPPED = "wave_skipped"
    ROLLOUT_COMPLETED = "rollout_completed"
    ROLLOUT_ABORTED = "rollout_aborted"
    ROLLOUT_PAUSED = "rollout_paused"
    ROLLOUT_RESUMED = "rollout_resumed"
    ROLLOUT_RETRIED = "rollout_retried"
    COMMAND_RECEIVED = "command_received"
    COMMAND_ACCEPTED = "command_accepted"
    COMMAND_REFUSED = "command_refused"
    EMERGENCY_ACKNOWLEDGED = "emergency_acknowledged"
    EMERGENCY_REFUSED = "emergency_refused"
    DATABASE_RECOVERED = "database_recovered"
    """An occurrence could not reach the database for a while and now can again:
    ``details`` has ``down_for`` (seconds) and the last ``error``."""
    RUN_STATE = "run_state"
    """Seed 001's run-state vocabulary, in ``details["state"]``: see ``RunState``."""


class RunState(StrEnum):
    """The run-state of an occurrence's run, as operators follow it: a run starts, an
    emergency stop requests its cancellation, it is cancelled (acknowledged), or it
    completes (a coordinated shutdown) or ends in error."""

    START = "start"
    CANCEL_REQUESTED = "cancel_requested"
    CANCELLED = "cancelled"
    COMPLETE = "complete"
    ERROR = "error"
