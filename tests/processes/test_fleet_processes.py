"""Nine real ``python -m coordinator run`` processes on one SQLite file."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from fleet import Fleet, coordinator, coordinator_env, wait_members, wait_rollout
from invariants import check_fleet_invariants, check_shutdown_capacity

from persistence import Store
from schemas import EventKind, LifecycleKind, OccurrenceState, RolloutStatus

pytestmark = pytest.mark.processes

N = 9


@pytest.fixture
def fleet(tmp_path: Path, database_url: str) -> Iterator[Fleet]:
    running = Fleet(tmp_path, coordinator_env(database_url, AGENT_OCCURRENCE_COUNT=str(N)))
    try:
        yield running
    finally:
        running.stop_all()


async def test_nine_processes_wake_in_waves_and_leave_in_waves(
    fleet: Fleet, database_url: str
) -> None:
    ids = [f"occurrence-{i}" for i in range(1, N + 1)]
    for occurrence_id in ids:
        fleet.start(occurrence_id)
    store = await Store.open(database_url)
    try:
        await wait_members(
            store,
            lambda ms: len(ms) == N and all(m.state is OccurrenceState.WORK for m in ms),
            deadline=120,
            what="all nine in work",
        )
        wakeup = await wait_rollout(store, LifecycleKind.WAKEUP, deadline=60)
        assert wakeup.status is RolloutStatus.COMPLETED
        assert len(await store.rollouts(kind=LifecycleKind.WAKEUP)) == 1
        assert [len(w.members) for w in wakeup.waves] == [1, 2, 6]
        assert len(await store.events(kinds=(EventKind.DECISION_MADE,))) == 1
        assert len(await store.events(kinds=(EventKind.TASK_CLAIMED,))) == 1
        await check_fleet_invariants(store)

        status = coordinator("status", "--json", env=fleet.env)
        assert status.returncode == 0, status.stderr
        shown = json.loads(status.stdout)
        assert sorted(o["occurrence_id"] for o in shown["occurrences"]) == sorted(ids)
        assert {(o["state"], o["alive"]) for o in shown["occurrences"]} == {("work", True)}
        assert shown["rollouts"][0]["rollout_id"] == wakeup.rollout_id

        shutdown = coordinator(
            "shutdown", "--reason", "end of test", "--wait", "--timeout", "120", env=fleet.env
        )
        assert shutdown.returncode == 0, shutdown.stdout + shutdown.stderr
        assert "shutdown rollout completed" in shutdown.stdout

        codes = await fleet.wait_exits(deadline=60)
        assert codes == {occurrence_id: 0 for occurrence_id in ids}, {
            k: fleet.log_of(k)[-2000:] for k, c in codes.items() if c != 0
        }
        (rollout,) = await store.rollouts(kind=LifecycleKind.SHUTDOWN)
        assert rollout.status is RolloutStatus.COMPLETED
        # MIN_SERVING_FRACTION 0.8: 8 of 9 serve until the last wave, so no early adopter.
        assert [len(w.members) for w in rollout.waves] == [1, 0, 8]
        assert [w.status.value for w in rollout.waves] == ["healthy", "skipped", "healthy"]
        members = await store.members()
        assert {m.state for m in members} == {OccurrenceState.SHUTDOWN}
        assert all(m.stopped_at is not None for m in members)
        await check_fleet_invariants(store)
        await check_shutdown_capacity(store)

        # Explorer first: it was down before the general wave was signalled.
        events = await store.events(rollout_id=rollout.rollout_id)
        explorer = rollout.waves[0].members[0]
        explorer_down = next(
            e.event_id
            for e in events
            if e.occurrence_id == explorer and e.details.get("to") == "shutdown"
        )
        general_signal = next(
            e.event_id
            for e in events
            if e.kind == EventKind.WAVE_SIGNALLED
            and e.wave is not None
            and e.wave.value == "general"
        )
        assert explorer_down < general_signal
    finally:
        await store.close()
