"""An agent's own database from before coordinator, as the spec describes it: a ``tasks``
table with the spec's columns (and a few of the agent's own), holding per-occurrence
tasks and old ``__shared__`` rows with per-day ids, and a table of the agent's that is
none of coordinator's business."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import text

from persistence import create_engine

SPEC_TASKS = """
CREATE TABLE tasks (
    task_id TEXT PRIMARY KEY,
    agent_occurrence_id TEXT NOT NULL,
    status TEXT NOT NULL,
    outcome TEXT,
    description TEXT NOT NULL DEFAULT '',
    priority INTEGER DEFAULT 0,
    created_at {time} NOT NULL,
    updated_at {time} NOT NULL
)
"""
AGENT_TABLE = "CREATE TABLE thoughts (thought_id TEXT PRIMARY KEY, task_id TEXT, content TEXT)"
OCCURRENCES = ("occurrence-a", "occurrence-b", "occurrence-c")
DAYS = 4


def _when(sqlite: bool, moment: datetime) -> Any:
    # The agent wrote ISO text on SQLite, timestamps on PostgreSQL.
    return moment.isoformat() if sqlite else moment


def legacy_rows(sqlite: bool) -> list[dict[str, Any]]:
    start = datetime(2026, 11, 1, 6, tzinfo=UTC)
    rows = []
    for day in range(DAYS):
        moment = start + timedelta(days=day)
        stamp = moment.strftime("%Y%m%d")
        for kind in ("wakeup", "shutdown"):
            rows.append(
                {
                    "task_id": f"{kind}_{stamp}",  # the old per-day shared ids
                    "agent_occurrence_id": "__shared__",
                    "status": "COMPLETED" if day % 3 else "FAILED",
                    "outcome": json.dumps({"affirmed": kind == "wakeup", "day": day}),
                    "description": f"{kind} ritual",
                    "priority": 5,
                    "created_at": _when(sqlite, moment),
                    "updated_at": _when(sqlite, moment + timedelta(minutes=3)),
                }
            )
        for n, occurrence in enumerate(OCCURRENCES):
            rows.append(
                {
                    "task_id": f"task-{stamp}-{n}",
                    "agent_occurrence_id": occurrence,
                    "status": ("PENDING", "ACTIVE", "COMPLETED")[(day + n) % 3],
                    "outcome": None if n == 1 else json.dumps({"answer": f"é{n}", "n": n}),
                    "description": f"reply to channel {n}",
                    "priority": n,
                    "created_at": _when(sqlite, moment + timedelta(seconds=n)),
                    "updated_at": _when(sqlite, moment + timedelta(seconds=n + 1)),
                }
            )
    return rows


async def build_legacy_database(database_url: str, *, extra: tuple[str, ...] = ()) -> None:
    """The agent's database at ``database_url``; ``extra`` statements run after."""
    sqlite = database_url.startswith("sqlite")
    engine = create_engine(database_url)
    try:
        async with engine.begin() as conn:
            time_type = "TEXT" if sqlite else "TIMESTAMP WITH TIME ZONE"
            await conn.execute(text(SPEC_TASKS.format(time=time_type)))
            await conn.execute(text(AGENT_TABLE))
            columns = ", ".join(legacy_rows(sqlite)[0])
            marks = ", ".join(f":{name}" for name in legacy_rows(sqlite)[0])
            await conn.execute(
                text(f"INSERT INTO tasks ({columns}) VALUES ({marks})"), legacy_rows(sqlite)
            )
            await conn.execute(
                text("INSERT INTO thoughts VALUES ('th-1', 'task-20261101-0', 'hello')")
            )
            for statement in extra:
                await conn.execute(text(statement))
    finally:
        await engine.dispose()


async def dump(database_url: str, table: str, columns: tuple[str, ...]) -> list[tuple[Any, ...]]:
    """Every row of ``table`` over ``columns``, as the database returns them, in key order."""
    engine = create_engine(database_url, read_only=True)
    try:
        async with engine.connect() as conn:
            query = f"SELECT {', '.join(columns)} FROM {table} ORDER BY {columns[0]}"
            return [tuple(row) for row in await conn.execute(text(query))]
    finally:
        await engine.dispose()


async def table_names(database_url: str) -> set[str]:
    engine = create_engine(database_url, read_only=True)
    try:
        async with engine.connect() as conn:
            from sqlalchemy import inspect

            return set(await conn.run_sync(lambda sync: inspect(sync).get_table_names()))
    finally:
        await engine.dispose()


LEGACY_COLUMNS = (
    "task_id",
    "agent_occurrence_id",
    "status",
    "outcome",
    "description",
    "priority",
    "created_at",
    "updated_at",
)
