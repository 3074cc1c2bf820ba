"""The tables, defined once with SQLAlchemy Core for every backend.

Times are Unix seconds in Python and real timestamps in the database: ``UnixTime`` converts
at the boundary, so queries never branch on the dialect to compare times.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Column,
    DateTime,
    Dialect,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    TypeDecorator,
    UniqueConstraint,
    text,
)

from persistence.backends import backend_named, partial_index_where
from schemas import SHARED_OCCURRENCE_ID

SCHEMA_VERSION = 1
"""``schema_v`` written on every shared task; bumped on incompatible changes."""

DATABASE_SCHEMA_VERSION = 2
"""Recorded in ``coordinator_schema`` (see ``persistence.schema_version``) for the
coordinators from before migrations, which read only this: 2 (the first migrated schema)
makes them refuse a migrated database instead of using it. The schema's own history is
``persistence/migrations``; bump this with every revision such a coordinator could not
read correctly."""


class UnixTime(TypeDecorator[float]):
    """Unix seconds (float) in Python; TIMESTAMP WITH TIME ZONE (naive UTC on SQLite) in SQL."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: float | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        # Each backend stores the moment its own way (naive UTC text on SQLite).
        return backend_named(dialect.name).bind_time(datetime.fromtimestamp(value, UTC))

    def process_result_value(self, value: Any, dialect: Dialect) -> float | None:
        if value is None:
            return None
        if value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        return float(value.timestamp())


metadata = MetaData()

_open_shared = text(
    f"status IN ('PENDING', 'ACTIVE') AND agent_occurrence_id = '{SHARED_OCCURRENCE_ID}'"
)

tasks = Table(
    "tasks",
    metadata,
    Column("task_id", String(80), primary_key=True),
    Column("agent_occurrence_id", String(64), nullable=False),
    # Defaults for rows coordinator does not write: an adopted agent database keeps its
    # own tasks in this table (see persistence/migrations/versions/r0001_adopt.py).
    Column("kind", String(16), nullable=False, server_default="legacy"),
    Column("status", String(16), nullable=False),
    Column("reason", Text),
    Column("requested_by", String(128)),
    Column("outcome", JSON),
    Column("created_at", UnixTime, nullable=False),
    Column("updated_at", UnixTime, nullable=False),
    Column("claimed_by", String(64)),
    Column("lease_expires_at", UnixTime),
    Column("fencing_token", Integer, nullable=False, server_default="0"),
    Column("schema_v", Integer, nullable=False, server_default="0"),
    # At most one open shared task per kind: racing creators converge on one row.
    Index(
        "uq_tasks_one_open_shared_kind",
        "kind",
        unique=True,
        **partial_index_where(_open_shared),
    ),
    Index("ix_tasks_kind_created", "kind", "created_at"),
)

occurrences = Table(
    "occurrences",
    metadata,
    Column("incarnation_id", String(36), primary_key=True),
    Column("occurrence_id", String(64), nullable=False),
    # 1, 2, 3... per occurrence id: which incarnation is newest, even within one tick.
    Column("generation", Integer, nullable=False),
    Column("state", String(16), nullable=False),
    Column("protocol_version", Integer, nullable=False),
    Column("host", String(255), nullable=False),
    Column("pid", Integer, nullable=False),
    Column("started_at", UnixTime, nullable=False),
    Column("last_heartbeat_at", UnixTime, nullable=False),
    Column("stopped_at", UnixTime),
    # Which decision engine the incarnation loaded (schemas.EngineIdentity); 'unknown'
    # on rows registered before it was recorded (revision r0002).
    Column("engine_kind", String(16), nullable=False, server_default="unknown"),
    Column("engine_name", String(255)),
    Column("engine_error", Text),
    UniqueConstraint("occurrence_id", "generation", name="uq_occurrences_generation"),
)

rollouts = Table(
    "rollouts",
    metadata,
    Column("rollout_id", String(80), primary_key=True),
    Column("task_id", String(80), ForeignKey("tasks.task_id"), nullable=False, unique=True),
    Column("kind", String(16), nullable=False),
    Column("status", String(16), nullable=False),
    Column("verdict", String(16), nullable=False),
    Column("decision_reason", Text, nullable=False),
    Column("decided_by", String(64), nullable=False),
    Column("decided_at", UnixTime, nullable=False),
    Column("request_reason", Text),
    Column("created_at", UnixTime, nullable=False),
    Column("finished_at", UnixTime),
    Column("abort_reason", Text),
    Column("health_timeout", Float, nullable=False),
    Column("health_poll", Float, nullable=False),
    Column("expected_occurrences", Integer),
    Column("discovered_occurrences", Integer, nullable=False),
    # The driver lease: whoever holds it advances the rollout; its token fences its writes.
    Column("driver_id", String(64)),
    Column("driver_token", Integer, nullable=False, server_default="0"),
    Column("driver_lease_expires_at", UnixTime),
    # Bumped by every write to the rollout or its waves; a step must name the version it
    # was computed from (fencing the state, not only the holder).
    Column("version", Integer, nullable=False, server_default="0"),
    Index("ix_rollouts_kind_created", "kind", "created_at"),
    Index("ix_rollouts_status", "status"),
)

waves = Table(
    "waves",
    metadata,
    Column("rollout_id", String(80), ForeignKey("rollouts.rollout_id"), primary_key=True),
    Column("wave_index", Integer, primary_key=True),
    Column("wave_group", String(16), nullable=False),
    Column("members", JSON, nullable=False),
    Column("status", String(16), nullable=False),
    Column("soak", Float, nullable=False),
    Column("signalled_at", UnixTime),
    Column("next_check_at", UnixTime),
    Column("deadline", UnixTime),
    Column("finished_at", UnixTime),
    Column("reached", JSON, nullable=False),
    Column("failed", JSON, nullable=False),
)

events = Table(
    "events",
    metadata,
    Column("event_id", Integer, primary_key=True, autoincrement=True),
    Column("at", UnixTime, nullable=False),
    Column("kind", String(40), nullable=False),
    Column("occurrence_id", String(64)),
    Column("rollout_id", String(80)),
    Column("task_id", String(80)),
    Column("wave", String(16)),
    Column("details", JSON, nullable=False),
    Index("ix_events_rollout", "rollout_id"),
)

commands = Table(
    "commands",
    metadata,
    Column("command_id", String(36), primary_key=True),
    Column("kind", String(24), nullable=False),
    Column("status", String(16), nullable=False),
    Column("issued_by", String(128), nullable=False),
    Column("reason", Text),
    Column("rollout_id", String(80)),
    Column("targets", JSON, nullable=False),
    Column("refusal", String(24)),
    Column("detail", Text, nullable=False),
    Column("created_at", UnixTime, nullable=False),
    Column("settled_at", UnixTime),
    # Emergency commands: exactly what was received, so any verifier reaches the same
    # verdict, and the nonce that makes a second use of the same command a replay.
    Column("nonce", String(64)),
    Column("key_id", String(64)),
    Column("payload", Text),
    Column("signature", Text),
    Index("ix_commands_kind_created", "kind", "created_at"),
    Index("ix_commands_nonce", "nonce"),
)

emergency_acks = Table(
    "emergency_acks",
    metadata,
    Column("command_id", String(36), ForeignKey("commands.command_id"), primary_key=True),
    Column("incarnation_id", String(36), primary_key=True),
    Column("occurrence_id", String(64), nullable=False),
    Column("verdict", String(16), nullable=False),
    Column("detail", Text, nullable=False),
    Column("acked_at", UnixTime, nullable=False),
    Column("latency", Float, nullable=False),
)

schema_version = Table(
    "coordinator_schema",
    metadata,
    Column("id", Integer, primary_key=True),  # always 1: the table holds one row
    Column("version", Integer, nullable=False),
)
"""Which version of the schema the newest coordinator that wrote the database had."""
