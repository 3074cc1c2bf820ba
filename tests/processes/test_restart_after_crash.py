"""Invariant 8 with real processes: a fleet restarted after a crash never plans the dead.

The failure class CIRIS fleets hit in production: a stale shared task from a previous run
breaking the fresh boot. One occurrence claims the wakeup and is killed (-9) inside its
engine call; two fresh occurrences start, either at once (its heartbeat still looks
fresh: only a heartbeat seen after the new decider looked proves a member alive) or once
its heartbeat went stale. The one that takes the claim over must plan only the living,
and the wakeup must complete.
"""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator
from pathlib import Path

import pytest
from fleet import Fleet, wait_members, wait_rollout
from invariants import check_fleet_invariants
from test_takeover_processes import takeover_env, wait_for_mark

from persistence import Store
from schemas import EventKind, LifecycleKind, OccurrenceState, RolloutStatus

pytestmark = pytest.mark.processes

MEMBER_TTL = 15.0  # wide: a restart "at once" finds the dead heartbeat fresh


@pytest.fixture
def fleets() -> Iterator[list[Fleet]]:
    started: list[Fleet] = []
    yield started
    for fleet in started:
        fleet.stop_all()


@pytest.mark.parametrize("restart", ["at once", "once stale"])
async def test_a_fleet_restarted_after_a_crash_plans_only_the_living(
    tmp_path: Path, database_url: str, fleets: list[Fleet], restart: str
) -> None:
    marks = tmp_path / "marks"
    marks.mkdir()
    env = takeover_env(
        database_url,
        marks,
        AGENT_OCCURRENCE_COUNT="1",
        COORDINATOR_MEMBER_TTL=str(MEMBER_TTL),
        COORDINATOR_ENGINE="engines:FirstDeciderStalls",
    )
    crashed = Fleet(tmp_path / "before", env)
    crashed.workdir.mkdir()
    fleets.append(crashed)
    crashed.start("occurrence-1")
    first = await wait_for_mark(marks, deadline=90)
    task_id, pid = first.name.rsplit(".", 1)
    os.kill(int(pid), signal.SIGKILL)
    crashed.processes["occurrence-1"].wait(timeout=30)

    store = await Store.open(database_url)
    try:
        if restart == "once stale":
            await wait_members(
                store,
                lambda ms: all(store.now() - m.last_heartbeat_at > 1.5 * MEMBER_TTL for m in ms),
                deadline=60,
                what="the crashed occurrence's heartbeat to go stale",
            )
        restarted = Fleet(tmp_path, {**env, "AGENT_OCCURRENCE_COUNT": "2"})
        fleets.append(restarted)
        for name in ("occurrence-2", "occurrence-3"):
            restarted.start(name)

        wakeup = await wait_rollout(store, LifecycleKind.WAKEUP, deadline=120)
        planned = {m for w in wakeup.waves for m in w.members}
        assert wakeup.task_id == task_id, "the restarted fleet decides the crashed run's task"
        assert "occurrence-1" not in planned, f"the dead member was planned: {wakeup.waves}"
        assert wakeup.status is RolloutStatus.COMPLETED, wakeup.abort_reason
        await wait_members(
            store,
            lambda ms: (
                {m.occurrence_id for m in ms if m.state is OccurrenceState.WORK}
                == {"occurrence-2", "occurrence-3"}
            ),
            deadline=60,
            what="both restarted occurrences to serve",
        )
        assert len(await store.events(kinds=(EventKind.DECISION_MADE,))) == 1
        await check_fleet_invariants(store)
    finally:
        await store.close()
