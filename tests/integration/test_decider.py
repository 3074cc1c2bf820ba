"""The decider's discovery and planning, with the real Decider on a store and a fake clock."""

from __future__ import annotations

import anyio
import structlog
from support import fast_settings

from coordinator.clock import FakeClock
from coordinator.connectivity import Connectivity
from coordinator.decider import Decider
from coordinator.engine import AcceptingEngine, DecisionEngine, DecisionRequest, EngineAnswer
from persistence import Store
from schemas import EventKind, OccurrenceState, Settings, TaskStatus

WINDOW = 86400.0
NO_PROGRESS = 60.0
"""Wall-clock backstop for a decision the fake clock must not be needed for."""


def decider_for(
    store: Store, clock: FakeClock, settings: Settings, engine: DecisionEngine | None = None
) -> Decider:
    log = structlog.get_logger("test").bind(occurrence_id=settings.occurrence_id)
    connectivity = Connectivity(clock, settings.heartbeat_interval)
    return Decider(
        store,
        settings,
        engine or AcceptingEngine(),
        clock,
        log,
        connectivity=connectivity,
        next_view=lambda at_once=False: store.fleet_view(WINDOW),
    )


async def test_a_takeover_does_not_restart_the_discovery_wait(
    store: Store, clock: FakeClock
) -> None:
    settings = fast_settings(occurrence_id="b", agent_occurrence_count=3)
    for name in ("a", "b"):
        me = await store.register(name, host="h", pid=1, protocol_version=1)
        await store.set_state(me, OccurrenceState.WAKEUP)
    task = await store.open_wakeup_task("a", WINDOW)
    assert task is not None
    first = await store.claim_task(task.task_id, "a", settings.lease_ttl)
    assert first is not None
    # "a" is starved inside its decision: its lease runs out, and so does the grace,
    # counted from the task's creation. Only b's heartbeats keep landing.
    clock.advance(settings.discovery_grace + settings.lease_ttl)
    (b,) = [m for m in await store.members() if m.occurrence_id == "b"]
    await store.heartbeat(b)
    takeover = await store.claim_task(task.task_id, "b", settings.lease_ttl)
    assert takeover is not None

    # The grace is over: b plans with whoever is live now, without waiting a new one.
    with anyio.fail_after(NO_PROGRESS):
        rollout = await decider_for(store, clock, settings).decide(takeover)
    assert rollout is not None
    assert rollout.decision.decided_at == clock.now(), "the decider waited on the fake clock"
    assert [m for w in rollout.waves for m in w.members] == ["b"]
    shortfall = await store.events(kinds=(EventKind.DISCOVERY_SHORTFALL,))
    assert [e.details for e in shortfall] == [{"expected": 3, "discovered": 1}]


class HangingEngine:
    """An engine that never answers (the simulator found a fleet that then never decides:
    the claim was renewed for as long as the call hung)."""

    def __init__(self) -> None:
        self.asked = anyio.Event()

    async def decide(self, request: DecisionRequest) -> EngineAnswer:
        self.asked.set()
        await anyio.sleep_forever()
        raise AssertionError("unreachable")


async def test_an_engine_that_hangs_gives_the_claim_back_after_the_decision_timeout(
    store: Store, clock: FakeClock
) -> None:
    settings = fast_settings(occurrence_id="a", agent_occurrence_count=1)
    me = await store.register("a", host="h", pid=1, protocol_version=1)
    await store.set_state(me, OccurrenceState.WAKEUP)
    task = await store.open_wakeup_task("a", WINDOW)
    assert task is not None
    claim = await store.claim_task(task.task_id, "a", settings.lease_ttl)
    assert claim is not None
    engine = HangingEngine()
    outcome: list[object] = []

    async def decide() -> None:
        outcome.append(await decider_for(store, clock, settings, engine).decide(claim))

    with anyio.fail_after(NO_PROGRESS):
        async with anyio.create_task_group() as tg:
            tg.start_soon(decide)
            await engine.asked.wait()
            # The lease is renewed while the call hangs; the timeout alone ends it.
            while not outcome:
                clock.advance(settings.lease_ttl / 3)
                await anyio.sleep(0.01)

    assert outcome == [None], "no decision without an answer"
    after = await store.task(task.task_id)
    assert after is not None and after.status is TaskStatus.PENDING, "the task is given back"
    (released,) = await store.events(kinds=(EventKind.TASK_RELEASED,))
    timeout = settings.decision_timeout
    assert released.details["error"] == (
        f"EngineTimeout('the decision engine did not answer within {timeout:g} s')"
    )
