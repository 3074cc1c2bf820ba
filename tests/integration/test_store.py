"""The Store's contract on a real SQLite file: atomic claims, leases, fencing, audit."""

from __future__ import annotations

import asyncio

import pytest
from support import fast_settings

from coordinator.clock import FakeClock
from coordinator.policy.planning import build_plan
from persistence import Store
from schemas import (
    CommandStatus,
    Decision,
    EventKind,
    LifecycleKind,
    OccurrenceState,
    RolloutAction,
    RolloutChange,
    RolloutStatus,
    StaleFencingToken,
    Superseded,
    TaskStatus,
    Verdict,
    WaveStatus,
)

LEASE = 10.0


def decision(by: str, clock: FakeClock, verdict: Verdict = Verdict.ACCEPT) -> Decision:
    return Decision(verdict=verdict, reason="test", decided_by=by, decided_at=clock.now())


def plan_for(kind: LifecycleKind, decider: str, members: list[str], reason: str | None = None):
    return build_plan(kind, decider, members, fast_settings(), request_reason=reason)


async def kinds(store: Store, kind: EventKind) -> list[str]:
    return [e.occurrence_id or "" for e in await store.events(kinds=(kind,))]


async def test_racing_claimers_have_exactly_one_winner(database_url: str, clock: FakeClock) -> None:
    claimers = [await Store.open(database_url, clock=clock.now) for _ in range(16)]
    try:
        for round_no in range(5):
            task, created = await claimers[0].request_shutdown(f"round {round_no}", "test")
            assert created
            claims = await asyncio.gather(
                *(s.claim_task(task.task_id, f"occ-{i}", LEASE) for i, s in enumerate(claimers))
            )
            winners = [c for c in claims if c is not None]
            assert len(winners) == 1
            won = winners[0]
            assert won.fencing_token == 1
            await claimers[0].record_decision(
                won,
                decision(won.holder, clock, Verdict.REJECT),
                plan_for(LifecycleKind.SHUTDOWN, won.holder, []),
                driver=None,
                lease_ttl=LEASE,
            )
        claimed = await claimers[0].events(kinds=(EventKind.TASK_CLAIMED,))
        assert len(claimed) == 5
        assert len({e.task_id for e in claimed}) == 5
    finally:
        for s in claimers:
            await s.close()


async def test_expired_claim_is_taken_over_and_the_old_holder_is_fenced(
    store: Store, clock: FakeClock
) -> None:
    task = await store.open_wakeup_task("a", window=86400)
    assert task is not None
    first = await store.claim_task(task.task_id, "a", LEASE)
    assert first is not None
    clock.advance(LEASE / 2)
    assert await store.claim_task(task.task_id, "b", LEASE) is None  # lease still valid
    clock.advance(LEASE)
    second = await store.claim_task(task.task_id, "b", LEASE)
    assert second is not None and second.fencing_token == first.fencing_token + 1

    with pytest.raises(StaleFencingToken):
        await store.record_decision(
            first,
            decision("a", clock),
            plan_for(LifecycleKind.WAKEUP, "a", ["b"]),
            driver="a",
            lease_ttl=LEASE,
        )
    assert await store.rollouts() == []  # the stale decider wrote nothing
    with pytest.raises(StaleFencingToken):
        await store.renew_claim(first, LEASE)

    rollout = await store.record_decision(
        second,
        decision("b", clock),
        plan_for(LifecycleKind.WAKEUP, "b", ["a"]),
        driver="b",
        lease_ttl=LEASE,
    )
    assert rollout.decision.decided_by == "b"
    assert (await store.task(task.task_id)).status is TaskStatus.COMPLETED  # type: ignore[union-attr]
    takeover = (await store.events(kinds=(EventKind.TASK_CLAIMED,)))[-1]
    assert takeover.details["took_over_from"] == "a"
    assert await kinds(store, EventKind.DECISION_MADE) == ["b"]


async def test_one_wakeup_task_until_an_accepted_shutdown_or_the_window_ends(
    store: Store, clock: FakeClock
) -> None:
    window = 3600.0
    opened = await asyncio.gather(*(store.open_wakeup_task(f"o{i}", window) for i in range(8)))
    assert len({t.task_id for t in opened if t is not None}) == 1
    wakeup = opened[0]
    assert wakeup is not None
    claim = await store.claim_task(wakeup.task_id, "o0", LEASE)
    assert claim is not None
    await store.record_decision(
        claim,
        decision("o0", clock),
        plan_for(LifecycleKind.WAKEUP, "o0", []),
        driver="o0",
        lease_ttl=LEASE,
    )
    assert await store.open_wakeup_task("late", window) is None  # decision in force: join it

    # A rejected shutdown leaves the wakeup in force.
    shutdown, _ = await store.request_shutdown("maintenance", "op")
    sclaim = await store.claim_task(shutdown.task_id, "o0", LEASE)
    assert sclaim is not None
    await store.record_decision(
        sclaim,
        decision("o0", clock, Verdict.REJECT),
        plan_for(LifecycleKind.SHUTDOWN, "o0", []),
        driver=None,
        lease_ttl=LEASE,
    )
    assert await store.open_wakeup_task("late", window) is None

    clock.advance(window + 1)
    renewed = await store.open_wakeup_task("late", window)
    assert renewed is not None and renewed.task_id != wakeup.task_id


async def test_a_second_shutdown_request_returns_the_open_one(store: Store) -> None:
    first, created = await store.request_shutdown("one", "op")
    again, created_again = await store.request_shutdown("two", "op")
    assert created and not created_again
    assert again.task_id == first.task_id and again.reason == "one"
    assert len(await store.events(kinds=(EventKind.SHUTDOWN_REQUESTED,))) == 1


async def test_a_shutdown_request_while_one_rolls_out_is_refused_and_recorded(
    store: Store, clock: FakeClock
) -> None:
    first, _ = await store.request_shutdown("one", "op")
    claim = await store.claim_task(first.task_id, "a", LEASE)
    assert claim is not None
    plan = plan_for(LifecycleKind.SHUTDOWN, "a", ["b", "c"])
    rollout = await store.record_decision(
        claim, decision("a", clock), plan, driver=None, lease_ttl=LEASE
    )

    for status in ("running", "paused"):
        if status == "paused":
            await store.control_rollout(
                rollout.rollout_id, RolloutAction.PAUSE, issued_by="op", reason="look"
            )
        task, command = await store.submit_shutdown("two", "op")
        assert task.task_id == first.task_id  # the shutdown under way, not a new one
        assert (command.status, command.refusal) == (CommandStatus.REFUSED, "conflict")
        assert command.detail == (
            f"a shutdown is already rolling out: rollout {rollout.rollout_id} is {status}"
        )
    assert (await store.fleet_view(86400)).open_tasks == ()  # no second task was opened
    assert len(await store.events(kinds=(EventKind.SHUTDOWN_REQUESTED,))) == 1
    refused = await store.events(kinds=(EventKind.COMMAND_REFUSED,))
    assert [e.details["command"] for e in refused] == ["shutdown", "shutdown"]

    await store.control_rollout(
        rollout.rollout_id, RolloutAction.ABORT, issued_by="op", reason="stop it"
    )
    _, after_abort = await store.submit_shutdown("three", "op")
    assert after_abort.accepted  # a finished shutdown stands in no one's way


async def test_driver_lease_fences_a_stale_driver(store: Store, clock: FakeClock) -> None:
    task = await store.open_wakeup_task("a", 86400)
    assert task is not None
    claim = await store.claim_task(task.task_id, "a", LEASE)
    assert claim is not None
    rollout = await store.record_decision(
        claim,
        decision("a", clock),
        plan_for(LifecycleKind.WAKEUP, "a", ["b", "c"]),
        driver="a",
        lease_ttl=LEASE,
    )
    assert (rollout.driver_id, rollout.driver_token) == ("a", 1)
    assert await store.acquire_driver(rollout.rollout_id, "b", LEASE) is None
    clock.advance(LEASE + 1)
    token = await store.acquire_driver(rollout.rollout_id, "b", LEASE)
    assert token == 2

    explorer = rollout.waves[0]
    signal = RolloutChange(
        based_on=rollout.version,
        status=RolloutStatus.RUNNING,
        waves=(
            explorer.model_copy(
                update={"status": WaveStatus.SIGNALLED, "signalled_at": clock.now()}
            ),
        ),
    )
    before = len(await store.events())
    with pytest.raises(StaleFencingToken):
        await store.apply_step(rollout.rollout_id, "a", 1, signal, lease_ttl=LEASE)
    unchanged = await store.rollout(rollout.rollout_id)
    assert unchanged.waves[0].status is WaveStatus.PENDING
    assert len(await store.events()) == before

    await store.apply_step(rollout.rollout_id, "b", 2, signal, lease_ttl=LEASE)
    assert (await store.rollout(rollout.rollout_id)).waves[0].status is WaveStatus.SIGNALLED


async def test_a_new_incarnation_supersedes_the_old(store: Store) -> None:
    old = await store.register("occ-1", host="h", pid=1, protocol_version=1)
    new = await store.register("occ-1", host="h", pid=2, protocol_version=1)
    with pytest.raises(Superseded):
        await store.heartbeat(old)
    await store.heartbeat(new)
    members = await store.members()
    assert [(m.occurrence_id, m.pid) for m in members] == [("occ-1", 2)]
    assert len(await store.events(kinds=(EventKind.OCCURRENCE_SUPERSEDED,))) == 1


async def test_state_changes_are_audited_once(store: Store) -> None:
    me = await store.register("occ-1", host="h", pid=1, protocol_version=1)
    await store.set_state(me, OccurrenceState.WAKEUP)
    await store.set_state(me, OccurrenceState.WAKEUP)  # no change, no event
    await store.set_state(me, OccurrenceState.WORK)
    changes = await store.events(kinds=(EventKind.OCCURRENCE_STATE_CHANGED,))
    assert [(e.details["from"], e.details["to"]) for e in changes] == [
        ("starting", "wakeup"),
        ("wakeup", "work"),
    ]
    await store.deregister(me, reason="test")
    with pytest.raises(Superseded):
        await store.set_state(me, OccurrenceState.SHUTDOWN)


async def test_late_joiners_join_the_last_wave_only_while_it_is_pending(
    store: Store, clock: FakeClock
) -> None:
    task = await store.open_wakeup_task("a", 86400)
    assert task is not None
    claim = await store.claim_task(task.task_id, "a", LEASE)
    assert claim is not None
    rollout = await store.record_decision(
        claim,
        decision("a", clock),
        plan_for(LifecycleKind.WAKEUP, "a", ["b", "c", "d"]),
        driver="a",
        lease_ttl=LEASE,
    )
    joined = await store.join_last_wave(rollout.rollout_id, "late-1")
    assert joined is not None and joined.members[-1] == "late-1"
    again = await store.join_last_wave(rollout.rollout_id, "late-1")
    assert again is not None and again.members.count("late-1") == 1
    assert len(await store.events(kinds=(EventKind.OCCURRENCE_JOINED,))) == 1

    current = await store.rollout(rollout.rollout_id)
    last = current.waves[-1]
    signal = RolloutChange(
        based_on=current.version,
        status=RolloutStatus.RUNNING,
        waves=(
            last.model_copy(update={"status": WaveStatus.SIGNALLED, "signalled_at": clock.now()}),
        ),
    )
    await store.apply_step(rollout.rollout_id, "a", 1, signal, lease_ttl=LEASE)
    assert await store.join_last_wave(rollout.rollout_id, "late-2") is None
    final = await store.rollout(rollout.rollout_id)
    assert "late-1" in final.waves[-1].members  # the signal did not overwrite the join


async def test_times_round_trip_through_the_database(store: Store, clock: FakeClock) -> None:
    clock.advance(0.123456)
    me = await store.register("occ-1", host="h", pid=1, protocol_version=1)
    (stored,) = await store.members()
    assert stored.started_at == pytest.approx(me.started_at, abs=1e-6)
    assert stored.started_at == pytest.approx(clock.now(), abs=1e-6)


async def test_a_free_driver_lease_makes_fallback_drivers_wait_a_grace(
    store: Store, clock: FakeClock
) -> None:
    await store.open_wakeup_task("a", 86400)  # a shutdown needs no wakeup, but be realistic
    task, _ = await store.request_shutdown("maintenance", "op")
    claim = await store.claim_task(task.task_id, "a", LEASE)
    assert claim is not None
    rollout = await store.record_decision(
        claim,
        decision("a", clock),
        plan_for(LifecycleKind.SHUTDOWN, "a", ["b", "c"]),
        driver=None,
        lease_ttl=LEASE,
    )
    assert rollout.driver_id is None
    # A preferred driver takes a free lease at once; a fallback one waits one more lease.
    assert await store.acquire_driver(rollout.rollout_id, "fallback", LEASE, grace=LEASE) is None
    assert await store.acquire_driver(rollout.rollout_id, "c", LEASE) == 1
    await store.release_driver(rollout.rollout_id, "c", 1)
    clock.advance(LEASE / 2)
    assert await store.acquire_driver(rollout.rollout_id, "fallback", LEASE, grace=LEASE) is None
    clock.advance(LEASE)
    assert await store.acquire_driver(rollout.rollout_id, "fallback", LEASE, grace=LEASE) == 2


async def test_leases_are_judged_by_the_server_clock_on_postgresql(postgres_url: str) -> None:
    import time

    drifted = await Store.open(postgres_url, clock=lambda: time.time() + 1000, server_time=True)
    honest = await Store.open(postgres_url, server_time=True)
    try:
        assert abs(drifted.now() - honest.now()) < 0.5  # 1000 s of drift, corrected
        assert drifted.clock_offset == pytest.approx(-1000, abs=0.5)
        # A lease taken by the drifted host expires when the other host says so.
        task, _ = await drifted.request_shutdown("drift", "op")
        claim = await drifted.claim_task(task.task_id, "drifted", LEASE)
        assert claim is not None
        assert abs(claim.lease_expires_at - (honest.now() + LEASE)) < 0.5
    finally:
        await drifted.close()
        await honest.close()


async def test_sqlite_keeps_the_local_clock(sqlite_url: str, clock: FakeClock) -> None:
    store = await Store.open(sqlite_url, clock=clock.now, server_time=True)
    try:
        assert store.now() == clock.now() and store.clock_offset == 0.0
    finally:
        await store.close()
