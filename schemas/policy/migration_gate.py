"""The rules of a schema migration's evidence: what blocks it (the compatibility gate),
and what, once it has run, says it must be rolled back (the rollback triggers).

Pure: ``persistence.migration_run`` reads the database's catalog and rows, calls these,
and writes (or rolls back) by what they say.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum


class IssueCode(StrEnum):
    """Stable codes: runbooks and alerts match on them."""

    UNKNOWN_REVISION = "unknown_revision"
    """The database is at a revision this coordinator does not have (a newer one)."""
    TABLE_NOT_OURS = "table_not_ours"
    """A table has one of the schema's names but another primary key."""
    COLUMN_TYPE_CONFLICT = "column_type_conflict"
    """A column the schema needs exists with a type coordinator cannot read or write."""
    REQUIRED_COLUMN_UNKNOWN = "required_column_unknown"
    """A column coordinator does not know is NOT NULL without a default: its inserts fail."""
    OPEN_LEGACY_SHARED_TASKS = "open_legacy_shared_tasks"
    """Shared tasks an older agent left open: finish them with it before adopting."""
    TRIAL_FAILED = "trial_failed"
    """The migration, run for trial in a transaction rolled back, failed."""


class TriggerCode(StrEnum):
    ROW_COUNT_CHANGED = "row_count_changed"
    CONTENT_HASH_CHANGED = "content_hash_changed"
    SCHEMA_DRIFT = "schema_drift"
    """After the migration the schema still differs from the one the code describes."""
    PROBE_FAILED = "probe_failed"
    """Coordinator could not write and read back a shared task on the migrated schema."""


WATCHED_TRIGGERS = tuple(TriggerCode)


@dataclass(frozen=True)
class Issue:
    code: str
    detail: str


@dataclass(frozen=True)
class ColumnSpec:
    name: str
    family: str
    """``text``, ``integer``, ``number``, ``time``, ``json`` or ``other:<type>``."""
    nullable: bool = True
    has_default: bool = False
    primary_key: bool = False


@dataclass(frozen=True)
class TableSnapshot:
    rows: int
    content_hash: str
    columns: tuple[str, ...]
    """The columns hashed (those the table had before the migration)."""


@dataclass(frozen=True)
class Gate:
    issues: tuple[Issue, ...]

    @property
    def ready(self) -> bool:
        return not self.issues

    @property
    def status(self) -> str:
        return "ready" if self.ready else "blocked"

    @property
    def blocking_issue_codes(self) -> list[str]:
        return sorted({str(i.code) for i in self.issues})


def compatibility_gate(issues: Iterable[Issue]) -> Gate:
    return Gate(tuple(issues))


# A column found with the family on the right can hold what coordinator writes as the
# family on the left: JSON is written as its text, and read back from text too
# (``persistence.rows``). SQLite stores times as text, so text serves them there; on
# PostgreSQL the driver refuses to bind a time to a text column.
_SERVES = {"number": {"integer"}, "json": {"text"}}
_SQLITE_SERVES = {"time": {"text"}}


def _serves(ours: str, found: str, backend: str) -> bool:
    if ours == found or found in _SERVES.get(ours, set()):
        return True
    return backend == "sqlite" and found in _SQLITE_SERVES.get(ours, set())


def table_issues(
    table: str,
    ours: Sequence[ColumnSpec],
    found: Sequence[ColumnSpec],
    backend: str,
) -> list[Issue]:
    """What keeps coordinator from using the existing ``table`` once its missing columns
    are added (the migration adds columns; it never changes one that is there)."""
    our_key = sorted(c.name for c in ours if c.primary_key)
    found_key = sorted(c.name for c in found if c.primary_key)
    if our_key != found_key:
        return [
            Issue(
                IssueCode.TABLE_NOT_OURS,
                f"{table} exists with primary key ({', '.join(found_key) or 'none'}), "
                f"coordinator's has ({', '.join(our_key)}): rename or move that table",
            )
        ]
    found_by_name = {c.name: c for c in found}
    known = {c.name for c in ours}
    issues = []
    for column in ours:
        there = found_by_name.get(column.name)
        if there is not None and not _serves(column.family, there.family, backend):
            issues.append(
                Issue(
                    IssueCode.COLUMN_TYPE_CONFLICT,
                    f"{table}.{column.name} is {there.family}, coordinator needs {column.family}",
                )
            )
    for column in found:
        required = not column.nullable and not column.has_default and not column.primary_key
        if column.name not in known and required:
            issues.append(
                Issue(
                    IssueCode.REQUIRED_COLUMN_UNKNOWN,
                    f"{table}.{column.name} is NOT NULL without a default: coordinator's "
                    "inserts would fail (give it a default, or make it nullable)",
                )
            )
    return issues


def rollback_triggers(
    before: Mapping[str, TableSnapshot], after: Mapping[str, TableSnapshot]
) -> list[Issue]:
    """Every row that was there must be there unchanged: the same count, and the same
    content over the columns it had."""
    fired = []
    for table, was in sorted(before.items()):
        now = after.get(table)
        if now is None or now.rows != was.rows:
            fired.append(
                Issue(
                    TriggerCode.ROW_COUNT_CHANGED,
                    f"{table}: {was.rows} rows before, {now.rows if now else 'no table'} after",
                )
            )
        elif now.content_hash != was.content_hash:
            fired.append(
                Issue(
                    TriggerCode.CONTENT_HASH_CHANGED,
                    f"{table}: content hash {was.content_hash} before, {now.content_hash} after",
                )
            )
    return fired
