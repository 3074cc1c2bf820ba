"""``migrate`` on both backends: the migrated schema is the one the code describes; an
agent's populated database is adopted with every row kept as it was; what would lose or
break data blocks the gate and changes nothing; a migration that changed a row is rolled
back by its own evidence; the command, as an operator runs it."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from legacy_database import (
    LEGACY_COLUMNS,
    build_legacy_database,
    dump,
    legacy_rows,
    table_names,
)
from raw_sql import write_sql
from sqlalchemy import text
from sqlalchemy.engine import Connection
from support import fast_settings

import persistence.migration_run as migration_run
from coordinator.policy.planning import build_plan
from persistence import Store, create_engine
from persistence.migration import SchemaBehind, head_revision
from persistence.migration_run import MigrationReport, run_migration
from persistence.tables import metadata
from schemas import Decision, LifecycleKind, RolloutStatus, Verdict

ROOT = Path(__file__).resolve().parents[2]


async def migrate(database_url: str, *, apply: bool) -> MigrationReport:
    engine = create_engine(database_url)
    try:
        return await run_migration(engine, apply=apply)
    finally:
        await engine.dispose()


async def everything(database_url: str) -> dict[str, Any]:
    """The agent's data as the database returns it, and which tables exist."""
    return {
        "tables": await table_names(database_url),
        "tasks": await dump(database_url, "tasks", LEGACY_COLUMNS),
        "thoughts": await dump(database_url, "thoughts", ("thought_id", "task_id", "content")),
    }


async def decide_a_wakeup(database_url: str) -> None:
    """What the fleet does first on the adopted database: open, claim, decide, roll out."""
    store = await Store.open(database_url)
    try:
        await store.register("a", host="h", pid=1, protocol_version=1)
        task = await store.open_wakeup_task("a", 86400)
        assert task is not None
        claim = await store.claim_task(task.task_id, "a", 10.0)
        assert claim is not None
        decision = Decision(
            verdict=Verdict.ACCEPT, reason="adopted", decided_by="a", decided_at=time.time()
        )
        plan = build_plan(LifecycleKind.WAKEUP, "a", ["a"], fast_settings())
        rollout = await store.record_decision(claim, decision, plan, driver="a", lease_ttl=10.0)
        assert rollout is not None and rollout.status is RolloutStatus.RUNNING
    finally:
        await store.close()


def _diffs(conn: Connection) -> list[Any]:
    return list(compare_metadata(MigrationContext.configure(conn), metadata))


async def test_the_migrations_make_the_schema_the_code_describes(database_url: str) -> None:
    # A new database is made by the migrations: no drift between them and tables.py.
    await (await Store.open(database_url)).close()
    engine = create_engine(database_url, read_only=True)
    try:
        async with engine.connect() as conn:
            assert await conn.run_sync(_diffs) == []
    finally:
        await engine.dispose()


async def test_a_populated_agent_database_is_adopted_with_every_row_kept(
    database_url: str,
) -> None:
    await build_legacy_database(database_url)
    before = await everything(database_url)
    assert len(before["tasks"]) == len(legacy_rows(database_url.startswith("sqlite")))

    dry = await migrate(database_url, apply=False)
    assert dry.gate.status == "ready" and not dry.rollback_required and not dry.applied
    assert "add column tasks.kind" in dry.changes and "create table rollouts" in dry.changes
    assert dry.tables_before["tasks"].rows == len(before["tasks"])
    assert dry.tables_after is not None
    assert dry.tables_after["tasks"] == dry.tables_before["tasks"]
    assert await everything(database_url) == before  # a dry run changes nothing
    with pytest.raises(SchemaBehind, match="migrate"):
        await Store.open(database_url)  # and the fleet still refuses the database

    done = await migrate(database_url, apply=True)
    assert done.applied and done.gate.status == "ready" and not done.rollback_required
    assert done.changes == dry.changes
    assert done.tables_after is not None
    assert done.tables_after["tasks"].content_hash == done.tables_before["tasks"].content_hash
    after = await everything(database_url)
    assert after["tasks"] == before["tasks"] and after["thoughts"] == before["thoughts"]
    assert {"rollouts", "commands", "alembic_version"} <= after["tables"]

    again = await migrate(database_url, apply=True)  # at head: nothing to do, nothing done
    assert again.state.at_head and again.changes == [] and not again.applied

    await decide_a_wakeup(database_url)
    kept = await dump(database_url, "tasks", LEGACY_COLUMNS)
    assert [row for row in kept if row in before["tasks"]] == before["tasks"]
    assert len(kept) == len(before["tasks"]) + 1  # the wakeup's own shared task


async def test_a_database_from_before_migrations_gets_what_it_lacks(database_url: str) -> None:
    # As 0.1 left it: create_all, no alembic_version, no rollouts.version.
    store = await Store.open(database_url)
    await store.request_shutdown("kept", requested_by="test")
    await store.close()
    await write_sql(
        database_url, "DROP TABLE alembic_version", "ALTER TABLE rollouts DROP COLUMN version"
    )
    report = await migrate(database_url, apply=True)
    assert report.applied and report.changes == ["add column rollouts.version"]
    assert report.state.revision is None and report.revision_after == head_revision()
    assert report.tables_after is not None
    assert report.tables_after["tasks"] == report.tables_before["tasks"]
    store = await Store.open(database_url)
    await store.close()


BLOCKERS = {
    "open_legacy_shared_tasks": (
        "INSERT INTO tasks (task_id, agent_occurrence_id, status, description, priority, "
        "created_at, updated_at) SELECT 'wakeup_20261130', '__shared__', 'PENDING', '', 0, "
        "created_at, updated_at FROM tasks WHERE task_id = 'wakeup_20261101'",
    ),
    "required_column_unknown": (
        "ALTER TABLE tasks ADD COLUMN tenant TEXT NOT NULL DEFAULT 'x'",
        "CREATE TABLE events (event_id INTEGER PRIMARY KEY, kind TEXT, audience TEXT NOT NULL)",
    ),
    "table_not_ours": ("CREATE TABLE rollouts (id INTEGER PRIMARY KEY, name TEXT)",),
    "column_type_conflict": (
        "CREATE TABLE commands (command_id TEXT PRIMARY KEY, created_at INTEGER NOT NULL)",
    ),
}


@pytest.mark.parametrize("code", sorted(BLOCKERS))
async def test_what_would_lose_or_break_data_blocks_the_gate_and_changes_nothing(
    database_url: str, code: str
) -> None:
    await build_legacy_database(database_url, extra=BLOCKERS[code])
    before = await everything(database_url)
    for apply in (False, True):
        report = await migrate(database_url, apply=apply)
        assert report.gate.status == "blocked" and not report.applied
        assert code in report.gate.blocking_issue_codes
        assert report.tables_after is None  # the migration did not even run for trial
        assert await everything(database_url) == before


@pytest.mark.parametrize(
    ("planted", "trigger"),
    [
        ("UPDATE tasks SET description = 'changed' WHERE task_id = 'wakeup_20261102'", "content"),
        ("DELETE FROM tasks WHERE task_id = 'task-20261101-0'", "count"),
    ],
)
async def test_a_migration_that_changes_a_row_is_rolled_back_by_its_evidence(
    database_url: str, monkeypatch: pytest.MonkeyPatch, planted: str, trigger: str
) -> None:
    # A faulty revision, planted: the upgrade also changes the agent's data.
    await build_legacy_database(database_url)
    before = await everything(database_url)
    upgrade = migration_run.upgrade_to_head

    def faulty_upgrade(conn: Connection) -> None:
        upgrade(conn)
        conn.execute(text(planted))

    monkeypatch.setattr(migration_run, "upgrade_to_head", faulty_upgrade)
    report = await migrate(database_url, apply=True)
    assert report.gate.status == "ready" and report.rollback_required and not report.applied
    expected = {"content": "content_hash_changed", "count": "row_count_changed"}[trigger]
    assert report.evidence("db")["rollback"]["trigger_codes"] == [expected]
    assert await everything(database_url) == before


async def test_a_schema_coordinator_cannot_use_after_the_migration_is_rolled_back(
    database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The probe: the migrated schema must take and give back a shared task.
    await build_legacy_database(database_url)
    before = await everything(database_url)

    def unreadable(row: Any) -> Any:
        raise ValueError("outcome is not JSON")

    monkeypatch.setattr(migration_run, "task_from_row", unreadable)
    report = await migrate(database_url, apply=True)
    assert not report.applied
    assert report.evidence("db")["rollback"]["trigger_codes"] == ["probe_failed"]
    assert await everything(database_url) == before


def coordinator(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "coordinator", *args],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=120,
        check=False,
    )


async def test_the_command_as_an_operator_runs_it(database_url: str, tmp_path: Path) -> None:
    await build_legacy_database(database_url)
    before = await everything(database_url)
    db = ("--db", database_url)

    behind = coordinator("migrate", "--check", *db)
    assert behind.returncode == 1 and "behind" in behind.stdout, behind.stderr
    refused = coordinator("status", *db)
    assert refused.returncode != 0 and "migrate" in refused.stderr + refused.stdout

    exported = tmp_path / "dry.json"
    dry = coordinator("migrate", "--dry-run", "--export-json", str(exported), *db)
    assert dry.returncode == 0, dry.stderr
    evidence = json.loads(exported.read_text())
    assert evidence["compatibility_gate"] == {
        "status": "ready",
        "blocking_issue_codes": [],
        "issues": [],
    }
    assert evidence["rollback"]["required"] is False and not evidence["applied"]
    assert evidence["tables_before"]["tasks"]["rows"] == len(before["tasks"])
    assert await everything(database_url) == before

    applied_file = tmp_path / "applied.json"
    applied = coordinator("migrate", "--apply", "--export-json", str(applied_file), *db)
    assert applied.returncode == 0, applied.stderr
    after = json.loads(applied_file.read_text())
    assert after["applied"] is True and after["schema"]["revision_after"] == head_revision()
    assert after["tables_after"]["tasks"] == evidence["tables_before"]["tasks"]

    at_head = coordinator("migrate", "--check", *db)
    assert at_head.returncode == 0 and "at head" in at_head.stdout
    assert coordinator("status", *db).returncode == 0


def test_bad_input_is_refused_with_nothing_written(tmp_path: Path) -> None:
    missing = coordinator("migrate", "--db", f"sqlite:///{tmp_path / 'absent.db'}")
    assert missing.returncode == 2 and "absent.db" in missing.stderr
    assert not (tmp_path / "absent.db").exists()
    both = coordinator("migrate", "--check", "--export-json", str(tmp_path / "e.json"))
    assert both.returncode == 2 and "--export-json" in both.stderr
    (tmp_path / "x.db").touch()
    nowhere = coordinator(
        "migrate", "--db", f"sqlite:///{tmp_path}/x.db", "--export-json", "/no/such/dir/e.json"
    )
    assert nowhere.returncode == 2 and "/no/such/dir" in nowhere.stderr
