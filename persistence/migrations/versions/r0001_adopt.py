"""The schema of coordinator 0.5, made or adopted.

On an empty database it creates every table. On a database that already has some of them
(one made by ``create_all`` before migrations existed, one of 0.1 without
``rollouts.version``, or an agent's own database whose ``tasks`` table has the spec's
columns and rows) it creates the tables that are missing and adds the columns and indexes
that are missing, and changes nothing that is there: no row, no column, no type.

A column added to a table that has rows gets a server default, so the rows already there
(and an agent that still inserts its own tasks without naming the new columns) stay
valid: ``kind = 'legacy'`` and ``schema_v = 0`` say a row was not written by coordinator.

Revision ID: r0001
Revises:
Create Date: 2026-12-03
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from alembic import op

revision = "r0001"
down_revision = None
branch_labels = None
depends_on = None

SHARED = "__shared__"
_time = sa.DateTime(timezone=True)
_EPOCH = sa.text("'1970-01-01 00:00:00'")
_open_shared = sa.text(f"status IN ('PENDING', 'ACTIVE') AND agent_occurrence_id = '{SHARED}'")


def _partial(clause: Any) -> dict[str, Any]:
    return {"sqlite_where": clause, "postgresql_where": clause}


def _tables() -> list[sa.Table]:
    """The tables as this revision made them (frozen: later revisions change them)."""
    m = sa.MetaData()
    c = sa.Column
    return [
        sa.Table(
            "tasks",
            m,
            c("task_id", sa.String(80), primary_key=True),
            c("agent_occurrence_id", sa.String(64), nullable=False),
            c("kind", sa.String(16), nullable=False, server_default="legacy"),
            c("status", sa.String(16), nullable=False),
            c("reason", sa.Text),
            c("requested_by", sa.String(128)),
            c("outcome", sa.JSON),
            c("created_at", _time, nullable=False, server_default=_EPOCH),
            c("updated_at", _time, nullable=False, server_default=_EPOCH),
            c("claimed_by", sa.String(64)),
            c("lease_expires_at", _time),
            c("fencing_token", sa.Integer, nullable=False, server_default="0"),
            c("schema_v", sa.Integer, nullable=False, server_default="0"),
            sa.Index(
                "uq_tasks_one_open_shared_kind", "kind", unique=True, **_partial(_open_shared)
            ),
            sa.Index("ix_tasks_kind_created", "kind", "created_at"),
        ),
        sa.Table(
            "occurrences",
            m,
            c("incarnation_id", sa.String(36), primary_key=True),
            c("occurrence_id", sa.String(64), nullable=False),
            c("generation", sa.Integer, nullable=False),
            c("state", sa.String(16), nullable=False),
            c("protocol_version", sa.Integer, nullable=False),
            c("host", sa.String(255), nullable=False),
            c("pid", sa.Integer, nullable=False),
            c("started_at", _time, nullable=False),
            c("last_heartbeat_at", _time, nullable=False),
            c("stopped_at", _time),
            sa.UniqueConstraint("occurrence_id", "generation", name="uq_occurrences_generation"),
        ),
        sa.Table(
            "rollouts",
            m,
            c("rollout_id", sa.String(80), primary_key=True),
            c(
                "task_id",
                sa.String(80),
                sa.ForeignKey("tasks.task_id"),
                nullable=False,
                unique=True,
            ),
            c("kind", sa.String(16), nullable=False),
            c("status", sa.String(16), nullable=False),
            c("verdict", sa.String(16), nullable=False),
            c("decision_reason", sa.Text, nullable=False),
            c("decided_by", sa.String(64), nullable=False),
            c("decided_at", _time, nullable=False),
            c("request_reason", sa.Text),
            c("created_at", _time, nullable=False),
            c("finished_at", _time),
            c("abort_reason", sa.Text),
            c("health_timeout", sa.Float, nullable=False),
            c("health_poll", sa.Float, nullable=False),
            c("expected_occurrences", sa.Integer),
            c("discovered_occurrences", sa.Integer, nullable=False),
            c("driver_id", sa.String(64)),
            c("driver_token", sa.Integer, nullable=False, server_default="0"),
            c("driver_lease_expires_at", _time),
            c("version", sa.Integer, nullable=False, server_default="0"),
            sa.Index("ix_rollouts_kind_created", "kind", "created_at"),
            sa.Index("ix_rollouts_status", "status"),
        ),
        sa.Table(
            "waves",
            m,
            c("rollout_id", sa.String(80), sa.ForeignKey("rollouts.rollout_id"), primary_key=True),
            c("wave_index", sa.Integer, primary_key=True),
            c("wave_group", sa.String(16), nullable=False),
            c("members", sa.JSON, nullable=False),
            c("status", sa.String(16), nullable=False),
            c("soak", sa.Float, nullable=False),
            c("signalled_at", _time),
            c("next_check_at", _time),
            c("deadline", _time),
            c("finished_at", _time),
            c("reached", sa.JSON, nullable=False),
            c("failed", sa.JSON, nullable=False),
        ),
        sa.Table(
            "events",
            m,
            c("event_id", sa.Integer, primary_key=True, autoincrement=True),
            c("at", _time, nullable=False),
            c("kind", sa.String(40), nullable=False),
            c("occurrence_id", sa.String(64)),
            c("rollout_id", sa.String(80)),
            c("task_id", sa.String(80)),
            c("wave", sa.String(16)),
            c("details", sa.JSON, nullable=False),
            sa.Index("ix_events_rollout", "rollout_id"),
        ),
        sa.Table(
            "commands",
            m,
            c("command_id", sa.String(36), primary_key=True),
            c("kind", sa.String(24), nullable=False),
            c("status", sa.String(16), nullable=False),
            c("issued_by", sa.String(128), nullable=False),
            c("reason", sa.Text),
            c("rollout_id", sa.String(80)),
            c("targets", sa.JSON, nullable=False),
            c("refusal", sa.String(24)),
            c("detail", sa.Text, nullable=False),
            c("created_at", _time, nullable=False),
            c("settled_at", _time),
            c("nonce", sa.String(64)),
            c("key_id", sa.String(64)),
            c("payload", sa.Text),
            c("signature", sa.Text),
            sa.Index("ix_commands_kind_created", "kind", "created_at"),
            sa.Index("ix_commands_nonce", "nonce"),
        ),
        sa.Table(
            "emergency_acks",
            m,
            c("command_id", sa.String(36), sa.ForeignKey("commands.command_id"), primary_key=True),
            c("incarnation_id", sa.String(36), primary_key=True),
            c("occurrence_id", sa.String(64), nullable=False),
            c("verdict", sa.String(16), nullable=False),
            c("detail", sa.Text, nullable=False),
            c("acked_at", _time, nullable=False),
            c("latency", sa.Float, nullable=False),
        ),
        sa.Table(
            "coordinator_schema",
            m,
            c("id", sa.Integer, primary_key=True),
            c("version", sa.Integer, nullable=False),
        ),
    ]


def upgrade() -> None:
    bind = op.get_bind()
    for table in _tables():
        inspector = sa.inspect(bind)  # fresh each time: the last table changed the catalog
        if not inspector.has_table(table.name):
            table.create(bind)
            continue
        present = {col["name"] for col in inspector.get_columns(table.name)}
        for column in table.columns:
            if column.name not in present:
                op.add_column(
                    table.name,
                    sa.Column(
                        column.name,
                        column.type,
                        nullable=column.nullable,
                        server_default=getattr(column.server_default, "arg", None),
                    ),
                )
        indexes = {ix["name"] for ix in inspector.get_indexes(table.name)}
        for index in table.indexes:
            if index.name not in indexes:
                index.create(bind)


def downgrade() -> None:
    raise NotImplementedError(
        "the first revision adopts what it finds and cannot tell it apart from what it "
        "added: restore the backup taken before `migrate --apply`"
    )
