"""A fleet written straight into the database (no processes), and snapshots of everything
a request could change, to prove that a refused one changed nothing."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

from sqlalchemy import make_url, text
from sqlalchemy.ext.asyncio import create_async_engine
from support import POSTGRES_ENV, fast_settings

from coordinator.policy.planning import build_plan
from coordinator.runtime import PROTOCOL_VERSION
from persistence import Store
from schemas import (
    CommandRecord,
    CommandStatus,
    Decision,
    EventKind,
    EventRecord,
    LifecycleKind,
    OccurrenceState,
    Verdict,
)

MEMBERS = ("occurrence-1", "occurrence-2", "occurrence-3")
LEASE = 3600.0  # seconds: nobody drives the seeded rollout, so nothing moves under a test
WINDOW = 86400.0


@dataclass(frozen=True)
class Seeded:
    wakeup_id: str
    """A running wakeup rollout, decided by occurrence-1; no driver holds it."""


async def seed_fleet(store: Store) -> Seeded:
    """Three members in ``work`` and a running wakeup rollout that nothing advances."""
    for occurrence_id in MEMBERS:
        me = await store.register(
            occurrence_id, host="seeded", pid=0, protocol_version=PROTOCOL_VERSION
        )
        await store.set_state(me, OccurrenceState.WORK)
    decider = MEMBERS[0]
    task = await store.open_wakeup_task(decider, window=WINDOW)
    assert task is not None
    claim = await store.claim_task(task.task_id, decider, LEASE)
    assert claim is not None
    decision = Decision(
        verdict=Verdict.ACCEPT, reason="seeded", decided_by=decider, decided_at=store.now()
    )
    plan = build_plan(LifecycleKind.WAKEUP, decider, MEMBERS, fast_settings())
    rollout = await store.record_decision(claim, decision, plan, driver=None, lease_ttl=LEASE)
    return Seeded(wakeup_id=rollout.rollout_id)


async def drop_database(url: str) -> None:
    """Drop a test's PostgreSQL database under the server that serves it (its
    connections are cut): a database gone for good."""
    admin = create_async_engine(os.environ[POSTGRES_ENV], isolation_level="AUTOCOMMIT")
    try:
        async with admin.connect() as conn:
            name = make_url(url).database
            await conn.execute(text(f'DROP DATABASE "{name}" WITH (FORCE)'))
    finally:
        await admin.dispose()


async def decide_shutdown(store: Store, task_id: str) -> str:
    """Accept an open shutdown task as occurrence-1 would: its rollout starts running."""
    claim = await store.claim_task(task_id, MEMBERS[0], LEASE)
    assert claim is not None
    decision = Decision(
        verdict=Verdict.ACCEPT, reason="seeded", decided_by=MEMBERS[0], decided_at=store.now()
    )
    plan = build_plan(LifecycleKind.SHUTDOWN, MEMBERS[0], MEMBERS, fast_settings())
    rollout = await store.record_decision(claim, decision, plan, driver=None, lease_ttl=LEASE)
    return rollout.rollout_id


@dataclass(frozen=True)
class Snapshot:
    members: list[dict[str, Any]]
    rollouts: list[dict[str, Any]]
    tasks: list[dict[str, Any]]
    commands: list[CommandRecord]
    events: list[EventRecord]


async def snapshot(store: Store) -> Snapshot:
    rollouts = await store.rollouts(limit=None)
    view = await store.fleet_view(WINDOW)
    task_ids = sorted({r.task_id for r in rollouts} | {t.task_id for t in view.open_tasks})
    tasks = [await store.task(task_id) for task_id in task_ids]
    return Snapshot(
        members=[m.model_dump() for m in await store.members()],
        rollouts=[r.model_dump() for r in rollouts],
        tasks=[t.model_dump() for t in tasks if t is not None],
        commands=await store.commands(limit=None),
        events=await store.events(),
    )


def assert_nothing_changed(before: Snapshot, after: Snapshot, what: str) -> None:
    assert after == before, f"{what} changed the database"


def assert_only_refusal_recorded(
    before: Snapshot, after: Snapshot, refusal: str, what: str
) -> CommandRecord:
    """The fleet is as it was; the one change is a refused command with ``refusal`` and
    its ``command_refused`` event. Returns that command."""
    assert after.members == before.members, f"{what} changed the members"
    assert after.rollouts == before.rollouts, f"{what} changed a rollout"
    assert after.tasks == before.tasks, f"{what} changed a shared task"
    known = {c.command_id for c in before.commands}
    added = [c for c in after.commands if c.command_id not in known]
    assert [c for c in after.commands if c.command_id in known] == before.commands, what
    assert len(added) == 1, f"{what} recorded {len(added)} commands"
    assert (added[0].status, added[0].refusal) == (CommandStatus.REFUSED, refusal), what
    assert after.events[: len(before.events)] == before.events, what
    new_events = after.events[len(before.events) :]
    assert [e.kind for e in new_events] == [EventKind.COMMAND_REFUSED], what
    assert new_events[0].details["command_id"] == added[0].command_id
    return added[0]
