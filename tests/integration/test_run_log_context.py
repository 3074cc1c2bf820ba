"""Every line an occurrence logs while it runs carries its ``occurrence_id`` and
``incarnation_id`` (bound once, through ``structlog.contextvars``), the store's retry
lines included; and the binding stays inside the runtime's task."""

from __future__ import annotations

import logging
import sqlite3
import threading
from collections.abc import Iterator
from pathlib import Path

import anyio
import pytest

from coordinator import OccurrenceRuntime, load_settings
from coordinator.logs import get_logger
from persistence.log import EVENT_FIELDS, EVENT_NAME
from schemas import OccurrenceState

LOCK_HELD = 6.0  # seconds: longer than SQLite's busy timeout, so writes fail and retry


class _Keep(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@pytest.fixture
def kept() -> Iterator[_Keep]:
    library = logging.getLogger("coordinator")
    handler, level = _Keep(), library.level
    library.addHandler(handler)
    library.setLevel(logging.DEBUG)
    try:
        yield handler
    finally:
        library.removeHandler(handler)
        library.setLevel(level)


def _hold_write_lock(path: Path, held: threading.Event, release: threading.Event) -> None:
    """Another writer holds SQLite's write lock (its file, not the Store's write gate)."""
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        conn.execute("BEGIN IMMEDIATE")
        held.set()
        release.wait()
        conn.execute("ROLLBACK")
    finally:
        conn.close()


async def test_every_line_of_a_run_carries_its_ids_and_none_leaks(
    tmp_path: Path, kept: _Keep
) -> None:
    database = tmp_path / "fleet.db"
    settings = load_settings(
        database_url=f"sqlite+aiosqlite:///{database}",
        occurrence_id="occ-1",
        agent_occurrence_count=1,
        poll_interval=0.1,
        heartbeat_interval=0.5,
        member_ttl=30,
        lease_ttl=10,
        explorer_soak=0.2,
        health_poll=0.1,
    )
    with anyio.fail_after(90):
        async with OccurrenceRuntime(settings) as runtime:
            await runtime.wait_for(OccurrenceState.WORK)
            held, release = threading.Event(), threading.Event()
            holder = threading.Thread(target=_hold_write_lock, args=(database, held, release))
            holder.start()
            try:
                await anyio.to_thread.run_sync(held.wait)
                while not any(getattr(r, EVENT_NAME, "") == "database_retry" for r in kept.records):
                    await anyio.sleep(0.1)
            finally:
                release.set()
                await anyio.to_thread.run_sync(holder.join)
            incarnation_id = runtime.incarnation_id
        get_logger("coordinator.test").info("after_the_run")

    *during, after = kept.records
    names = {getattr(r, EVENT_NAME) for r in during}
    # The run's own lines, the store's retries and its leave are all there.
    assert {"occurrence_registered", "database_retry", "occurrence_left"} <= names
    for record in during:
        fields = getattr(record, EVENT_FIELDS)
        assert fields.get("occurrence_id") == "occ-1", record.getMessage()
        assert fields.get("incarnation_id") == incarnation_id, record.getMessage()
    # Bound in the runtime's own task: the embedding program's lines carry neither id.
    assert getattr(after, EVENT_NAME) == "after_the_run"
    assert "occurrence_id" not in getattr(after, EVENT_FIELDS)
    assert "incarnation_id" not in getattr(after, EVENT_FIELDS)
