"""The engine each occurrence loaded, on its membership row (every backend): recorded at
registration, in the registered event, by the runtime from what it was given; on rows from
before revision r0002 (and inserts of an r0001 coordinator) ``unknown``; the rollback from
a broken ``COORDINATOR_ENGINE`` by unsetting it."""

from __future__ import annotations

from typing import Any

import anyio
from alembic import command
from raw_sql import read_sql, write_sql
from sqlalchemy.engine import Connection
from support import fast_settings

from coordinator import OccurrenceRuntime, ScriptedEngine
from coordinator.engine_loader import load_engine
from persistence import Store, create_engine
from persistence.migration import alembic_config
from persistence.migration_run import run_migration
from schemas import (
    BUILTIN_ENGINE_NAME,
    EngineIdentity,
    EngineKind,
    EventKind,
    OccurrenceRecord,
    OccurrenceState,
    Settings,
)

EXTERNAL = EngineIdentity(kind=EngineKind.EXTERNAL, name="my_agent.engine:Engine")
FALLBACK = EngineIdentity.builtin("module_missing: cannot import 'my_agent'")
NEW_COLUMNS = ("engine_error", "engine_kind", "engine_name")


async def by_id(store: Store) -> dict[str, OccurrenceRecord]:
    return {m.occurrence_id: m for m in await store.members()}


async def test_registration_records_the_engine_on_the_row_and_in_the_event(
    store: Store,
) -> None:
    for occurrence_id, engine in [
        ("a", EngineIdentity.builtin()),
        ("b", EXTERNAL),
        ("c", FALLBACK),
    ]:
        registered = await store.register(
            occurrence_id, host="h", pid=1, protocol_version=1, engine=engine
        )
        assert registered.engine == engine
    await store.register("d", host="h", pid=1, protocol_version=1)  # says nothing

    members = await by_id(store)

    assert members["a"].engine == EngineIdentity.builtin()
    assert members["b"].engine == EXTERNAL
    assert members["c"].engine == FALLBACK
    assert (members["d"].engine_kind, members["d"].engine) == (EngineKind.UNKNOWN, None)
    registered_events = {
        e.occurrence_id: e.details
        for e in await store.events(kinds=(EventKind.OCCURRENCE_REGISTERED,))
    }
    assert registered_events["b"]["engine_name"] == EXTERNAL.name
    assert registered_events["c"]["engine_error"] == FALLBACK.error
    assert "engine_kind" not in registered_events["d"]


def one_occurrence(database_url: str, **overrides: Any) -> Settings:
    # A fleet of one on the system clock: its wakeup is decided, planned and rolled out.
    return fast_settings(
        database_url=database_url,
        occurrence_id="a",
        agent_occurrence_count=1,
        explorer_soak=0.2,
        health_poll=0.1,
        **overrides,
    )


async def start_occurrence(database_url: str, spec: str | None) -> OccurrenceRecord:
    """One occurrence as ``run`` starts it with ``COORDINATOR_ENGINE=spec``: its row, once
    it is at work (its engine decided its wakeup)."""
    loaded = load_engine(spec)
    settings = one_occurrence(database_url, engine=spec)
    runtime = OccurrenceRuntime(settings, engine=loaded.engine, engine_identity=loaded.identity)
    with anyio.fail_after(60):
        async with runtime:
            assert await runtime.wait_for(OccurrenceState.WORK) is OccurrenceState.WORK
            members = await runtime.store.members()
    return next(m for m in members if m.occurrence_id == "a")


POLLS_WATCHED = 20
"""Poll intervals a fallback occurrence is watched not claiming the open wakeup."""


async def watch_fallback(database_url: str, spec: str) -> OccurrenceRecord:
    """One occurrence whose ``spec`` does not load: its row, once it has opened the
    wakeup task and left it unclaimed for ``POLLS_WATCHED`` poll intervals."""
    loaded = load_engine(spec)
    settings = one_occurrence(database_url, engine=spec)
    runtime = OccurrenceRuntime(settings, engine=loaded.engine, engine_identity=loaded.identity)
    with anyio.fail_after(60):
        async with runtime:
            while not await read_sql(database_url, "SELECT status FROM tasks"):
                await anyio.sleep(settings.poll_interval)
            await anyio.sleep(POLLS_WATCHED * settings.poll_interval)
            members = await runtime.store.members()
            assert runtime.state is OccurrenceState.WAKEUP
    return next(m for m in members if m.occurrence_id == "a")


async def test_a_broken_engine_is_recorded_and_unsetting_it_records_builtin(
    database_url: str,
) -> None:
    broken = await watch_fallback(database_url, "no_such_agent.engine:Engine")
    assert broken.engine_kind is EngineKind.BUILTIN and broken.engine_name == BUILTIN_ENGINE_NAME
    assert broken.engine_error is not None
    assert broken.engine_error.startswith("module_missing: cannot import 'no_such_agent.engine'")
    # On the fallback it decides nothing: the wakeup it opened waits, unclaimed.
    assert await read_sql(database_url, "SELECT status, claimed_by FROM tasks") == [
        ("PENDING", None)
    ]
    assert await read_sql(database_url, "SELECT rollout_id FROM rollouts") == []

    rolled_back = await start_occurrence(database_url, None)  # the setting unset

    assert rolled_back.generation == broken.generation + 1
    assert rolled_back.engine == EngineIdentity.builtin()
    wakeups = await read_sql(database_url, "SELECT decision_reason FROM rollouts")
    assert wakeups == [("wakeup accepted by the built-in engine",)]  # decided once rolled back


async def test_an_engine_handed_to_the_runtime_is_recorded_by_its_class(
    database_url: str,
) -> None:
    with anyio.fail_after(60):
        async with OccurrenceRuntime(
            one_occurrence(database_url), engine=ScriptedEngine()
        ) as runtime:
            members = await runtime.store.members()
    assert members[0].engine == EngineIdentity(
        kind=EngineKind.EXTERNAL, name="coordinator.engine:ScriptedEngine"
    )


async def test_rows_from_before_r0002_are_kept_and_say_unknown(database_url: str) -> None:
    store = await Store.open(database_url)
    await store.register("old", host="h", pid=7, protocol_version=1, engine=EXTERNAL)
    await store.close()
    # Back to r0001 as it left a database (its own downgrade is tested below).
    await write_sql(
        database_url,
        *(f"ALTER TABLE occurrences DROP COLUMN {c}" for c in NEW_COLUMNS),
        "UPDATE alembic_version SET version_num = 'r0001'",
    )

    engine = create_engine(database_url)
    try:
        report = await run_migration(engine, apply=True)
    finally:
        await engine.dispose()

    assert report.applied and not report.rollback_required
    assert report.changes == [f"add column occurrences.{c}" for c in NEW_COLUMNS]
    assert report.tables_after is not None
    assert report.tables_after["occurrences"] == report.tables_before["occurrences"]
    # A coordinator still at r0001 inserts without naming the new columns.
    await write_sql(
        database_url,
        "INSERT INTO occurrences (incarnation_id, occurrence_id, generation, state, "
        "protocol_version, host, pid, started_at, last_heartbeat_at) SELECT 'r0001-row', "
        "'older', 1, 'work', 1, 'h', 8, started_at, last_heartbeat_at FROM occurrences",
    )
    store = await Store.open(database_url)
    try:
        members = await by_id(store)
    finally:
        await store.close()
    for occurrence_id in ("old", "older"):
        assert members[occurrence_id].engine_kind is EngineKind.UNKNOWN
        assert members[occurrence_id].engine is None
    assert members["old"].pid == 7


def _downgrade_to_r0001(conn: Connection) -> None:
    config = alembic_config()
    config.attributes["connection"] = conn
    command.downgrade(config, "r0001")


async def test_r0002_downgrades_to_the_columns_of_r0001(database_url: str) -> None:
    store = await Store.open(database_url)
    await store.register("a", host="h", pid=1, protocol_version=1, engine=EXTERNAL)
    await store.close()

    engine = create_engine(database_url)
    try:
        async with engine.begin() as conn:
            await conn.run_sync(_downgrade_to_r0001)
    finally:
        await engine.dispose()

    assert await read_sql(database_url, "SELECT version_num FROM alembic_version") == [("r0001",)]
    rows = await read_sql(database_url, "SELECT * FROM occurrences")
    assert len(rows) == 1 and len(rows[0]) == 10  # r0001's columns, the row kept
