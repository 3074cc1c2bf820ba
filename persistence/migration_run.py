"""``migrate``: inspect a database, try the migration in a transaction, and commit it only
when its evidence says so.

Everything happens in one write transaction holding the lifecycle lock (no occurrence
writes meanwhile). The facts the gate judges are read first, with a snapshot (row count
and content hash) of every table of the schema the database already has. The pending
revisions then run inside a savepoint, a shared task is written and read back on the
result (the probe), and the snapshot is taken again over the same columns. A dry run
always rolls back, so what it reports is what an apply would do, failures included; an
apply commits only when the gate is ready and no rollback trigger fired.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy.engine import Connection
from sqlalchemy.exc import DBAPIError, SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from persistence.backends import WRITE_OPTION
from persistence.engine import serialize_lifecycle
from persistence.migration import SchemaState, schema_state, upgrade_to_head
from persistence.rows import task_from_row
from persistence.schema_version import record_version
from persistence.tables import SCHEMA_VERSION, metadata, tasks
from persistence.transactions import describe_error
from schemas import OPEN_TASK_STATUSES, SHARED_OCCURRENCE_ID, DatabaseUnavailable
from schemas.policy.migration_gate import (
    WATCHED_TRIGGERS,
    ColumnSpec,
    Gate,
    Issue,
    IssueCode,
    TableSnapshot,
    TriggerCode,
    compatibility_gate,
    rollback_triggers,
    table_issues,
)

PROBE_TASK_ID = "migrate_probe"
NOT_HASHED = "coordinator_schema"
"""Its one row is the version marker the migration itself updates: not data."""


def family(column_type: sa.types.TypeEngine[Any]) -> str:
    """The kind of value a column holds, as far as reading and writing it goes."""
    if isinstance(column_type, sa.types.TypeDecorator):
        column_type = column_type.impl_instance
    for kind, types in _FAMILIES:
        if isinstance(column_type, types):
            return kind
    return f"other:{column_type.__class__.__name__.lower()}"


_FAMILIES: tuple[tuple[str, tuple[type, ...]], ...] = (
    ("json", (sa.JSON,)),
    ("time", (sa.DateTime, sa.Date)),
    ("integer", (sa.Integer,)),
    ("number", (sa.Float, sa.Numeric)),
    ("text", (sa.String, sa.Text)),
)


def _ours(table: sa.Table) -> list[ColumnSpec]:
    return [
        ColumnSpec(
            c.name, family(c.type), bool(c.nullable), c.server_default is not None, c.primary_key
        )
        for c in table.columns
        if c.name
    ]


def _found(conn: Connection, name: str) -> list[ColumnSpec]:
    inspector = sa.inspect(conn)
    key = set(inspector.get_pk_constraint(name).get("constrained_columns") or ())
    specs = []
    for c in inspector.get_columns(name):
        auto = c.get("autoincrement") is True
        default = c.get("default") is not None or auto
        specs.append(
            ColumnSpec(c["name"], family(c["type"]), c["nullable"], default, c["name"] in key)
        )
    return specs


def _structure(conn: Connection) -> dict[str, tuple[set[str], set[str]]]:
    """Each table of the schema present: its columns and index names."""
    inspector = sa.inspect(conn)
    present = set(inspector.get_table_names())
    return {
        t.name: (
            {c["name"] for c in inspector.get_columns(t.name)},
            {str(i["name"]) for i in inspector.get_indexes(t.name)},
        )
        for t in metadata.sorted_tables
        if t.name in present
    }


def _changes(
    before: Mapping[str, tuple[set[str], set[str]]], after: Mapping[str, Any]
) -> list[str]:
    found = []
    for table, (columns, indexes) in after.items():
        if table not in before:
            found.append(f"create table {table}")
            continue
        old_columns, old_indexes = before[table]
        found += [f"add column {table}.{c}" for c in sorted(columns - old_columns)]
        found += [f"create index {i} on {table}" for i in sorted(indexes - old_indexes)]
    return found


def _snapshot(
    conn: Connection, columns_of: Mapping[str, tuple[str, ...]]
) -> dict[str, TableSnapshot]:
    """Row count and content hash of each table, over the columns named."""
    shots = {}
    for name, columns in columns_of.items():
        table = sa.Table(name, sa.MetaData(), autoload_with=conn)
        key = [c for c in table.primary_key.columns] or [table.c[n] for n in columns]
        digest = hashlib.sha256()
        rows = 0
        query = sa.select(*(table.c[n] for n in columns)).order_by(*key)
        for row in conn.execute(query):
            digest.update(json.dumps(list(row), default=str, sort_keys=True).encode())
            digest.update(b"\n")
            rows += 1
        shots[name] = TableSnapshot(rows, f"sha256:{digest.hexdigest()}", columns)
    return shots


def _facts(conn: Connection, backend: str) -> list[Issue]:
    """What blocks adopting the tables that are there, read before anything changes."""
    present = set(sa.inspect(conn).get_table_names())
    issues: list[Issue] = []
    for table in metadata.sorted_tables:
        if table.name in present:
            issues += table_issues(table.name, _ours(table), _found(conn, table.name), backend)
    if "tasks" in present and not any(i.code == IssueCode.TABLE_NOT_OURS for i in issues):
        columns = {c["name"] for c in sa.inspect(conn).get_columns("tasks")}
        if "kind" not in columns and {"agent_occurrence_id", "status"} <= columns:
            legacy = sa.table("tasks", sa.column("agent_occurrence_id"), sa.column("status"))
            count = conn.scalar(
                sa.select(sa.func.count())
                .select_from(legacy)
                .where(legacy.c.agent_occurrence_id == SHARED_OCCURRENCE_ID)
                .where(legacy.c.status.in_([s.value for s in OPEN_TASK_STATUSES]))
            )
            if count:
                issues.append(
                    Issue(
                        IssueCode.OPEN_LEGACY_SHARED_TASKS,
                        f"{count} shared task(s) ({SHARED_OCCURRENCE_ID}) written before "
                        "coordinator are still PENDING or ACTIVE: let the agent finish them, "
                        "or mark them FAILED, then migrate",
                    )
                )
    return issues


def _drift(conn: Connection) -> list[str]:
    """What the schema the code describes has and the migrated database still lacks. An
    adopted table keeps its own extra columns and types (the gate judged those), so
    only what is missing counts."""
    context = MigrationContext.configure(conn)
    diffs = compare_metadata(context, metadata)
    return [repr(d) for d in diffs if isinstance(d, tuple) and str(d[0]).startswith("add_")]


async def _probe(conn: AsyncConnection) -> None:
    """Write a shared task as coordinator does, read it back, and remove it."""
    now = time.time()
    await conn.execute(
        sa.insert(tasks).values(
            task_id=PROBE_TASK_ID,
            agent_occurrence_id=SHARED_OCCURRENCE_ID,
            kind="wakeup",
            status="COMPLETED",
            outcome={"probe": True},
            created_at=now,
            updated_at=now,
            fencing_token=1,
            schema_v=SCHEMA_VERSION,
        )
    )
    row = (await conn.execute(sa.select(tasks).where(tasks.c.task_id == PROBE_TASK_ID))).one()
    task_from_row(row)
    await conn.execute(sa.delete(tasks).where(tasks.c.task_id == PROBE_TASK_ID))


def _described(exc: SQLAlchemyError) -> str:
    return describe_error(exc) if isinstance(exc, DBAPIError) else repr(exc)


@dataclass
class MigrationReport:
    mode: str
    backend: str
    state: SchemaState
    gate: Gate
    revision_after: str | None
    tables_before: dict[str, TableSnapshot]
    tables_after: dict[str, TableSnapshot] | None
    """None where the migration did not run (blocked, or nothing to do)."""
    changes: list[str]
    triggered: list[Issue]
    applied: bool
    drift: list[str] = field(default_factory=list)

    @property
    def rollback_required(self) -> bool:
        return bool(self.triggered)

    def evidence(self, database: str) -> dict[str, Any]:
        """The JSON the operator keeps (``--export-json``)."""
        return {
            "mode": self.mode,
            "database": database,
            "backend": self.backend,
            "schema": {
                "revision_before": self.state.revision,
                "revision_after": self.revision_after,
                "head": self.state.head,
                "pending": list(self.state.pending),
                "tables_present": list(self.state.ours_present),
            },
            "changes": self.changes,
            "compatibility_gate": {
                "status": self.gate.status,
                "blocking_issue_codes": self.gate.blocking_issue_codes,
                "issues": [_issue_json(i) for i in self.gate.issues],
            },
            "rollback": {
                "required": self.rollback_required,
                "trigger_codes": sorted({str(i.code) for i in self.triggered}),
                "triggers": [_issue_json(i) for i in self.triggered],
                "watched": [str(code) for code in WATCHED_TRIGGERS],
            },
            "applied": self.applied,
            "tables_before": _tables_json(self.tables_before),
            "tables_after": None if self.tables_after is None else _tables_json(self.tables_after),
        }


def _issue_json(issue: Issue) -> dict[str, str]:
    return {"code": str(issue.code), "detail": issue.detail}


def _tables_json(shots: Mapping[str, TableSnapshot]) -> dict[str, Any]:
    return {
        name: {"rows": s.rows, "content_hash": s.content_hash, "columns": list(s.columns)}
        for name, s in sorted(shots.items())
    }


async def run_migration(engine: AsyncEngine, *, apply: bool) -> MigrationReport:
    """Inspect, try, and (``apply``, gate ready, nothing triggered) commit the migration."""
    try:
        return await _run_migration(engine, apply=apply)
    except (DBAPIError, OSError) as exc:
        raise _unreadable(exc) from exc


def _unreadable(exc: BaseException) -> DatabaseUnavailable:
    problem = describe_error(exc) if isinstance(exc, DBAPIError) else repr(exc)
    return DatabaseUnavailable(f"cannot read the database: {problem}")


async def _run_migration(engine: AsyncEngine, *, apply: bool) -> MigrationReport:
    backend = engine.dialect.name
    async with engine.connect() as conn:
        conn = await conn.execution_options(**{WRITE_OPTION: True})
        async with conn.begin() as outer:
            await serialize_lifecycle(conn)
            state = await conn.run_sync(schema_state)
            issues = await conn.run_sync(_facts, backend)
            if not state.known:
                issues.insert(
                    0,
                    Issue(
                        IssueCode.UNKNOWN_REVISION,
                        f"revision {state.revision} is not in this coordinator's history "
                        f"(head {state.head}): a newer coordinator migrated it",
                    ),
                )
            structure = await conn.run_sync(_structure)
            columns_of = {
                name: tuple(sorted(cols))
                for name, (cols, _) in structure.items()
                if name != NOT_HASHED
            }
            before = await conn.run_sync(_snapshot, columns_of)
            after: dict[str, TableSnapshot] | None = None
            changes: list[str] = []
            triggered: list[Issue] = []
            drift: list[str] = []
            revision_after = state.revision
            trial = None
            if state.known and not state.at_head and not issues:
                trial = await conn.begin_nested()
                try:
                    await conn.run_sync(upgrade_to_head)
                    await conn.run_sync(record_version)
                    changes = _changes(structure, await conn.run_sync(_structure))
                    after = await conn.run_sync(_snapshot, columns_of)
                    triggered = rollback_triggers(before, after)
                    drift = await conn.run_sync(_drift)
                    if drift:
                        triggered.append(Issue(TriggerCode.SCHEMA_DRIFT, "; ".join(drift)))
                    try:
                        await _probe(conn)
                    except (SQLAlchemyError, ValueError) as exc:
                        detail = f"a shared task could not be written and read back: {exc!r}"
                        triggered.append(Issue(TriggerCode.PROBE_FAILED, detail))
                    revision_after = state.head
                except SQLAlchemyError as exc:
                    await trial.rollback()
                    trial = None
                    issues.append(Issue(IssueCode.TRIAL_FAILED, _described(exc)))
            gate = compatibility_gate(issues)
            applied = apply and trial is not None and gate.ready and not triggered
            if not applied:
                await outer.rollback()
                revision_after = state.revision if apply or trial is None else revision_after
            elif trial is not None:
                await trial.commit()
    return MigrationReport(
        mode="apply" if apply else "dry_run",
        backend=backend,
        state=state,
        gate=gate,
        revision_after=revision_after,
        tables_before=before,
        tables_after=after,
        changes=changes,
        triggered=triggered,
        applied=applied,
        drift=drift,
    )


async def read_schema_state(engine: AsyncEngine) -> SchemaState:
    """Where the database stands, read only (``migrate --check``)."""
    try:
        async with engine.connect() as conn:
            return await conn.run_sync(schema_state)
    except (DBAPIError, OSError) as exc:
        raise _unreadable(exc) from exc
