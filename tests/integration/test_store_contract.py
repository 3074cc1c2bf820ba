"""The Store's contract (``persistence.contract.StoreContract``) on every backend.

``test_store.py`` holds the contract's hard cases (racing claims, leases, fencing); this
suite calls every public method the other does not, and checks that the two together
call every method the contract names, and that the contract names every public method.
"""

from __future__ import annotations

import inspect
import re
import time
from pathlib import Path

import anyio
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import make_url
from support import fast_settings

from coordinator.clock import FakeClock
from coordinator.emergency import make_verifier
from coordinator.policy.planning import build_plan
from coordinator.signing import new_command, public_key_text, sign
from persistence import Change, Store
from persistence.contract import StoreContract
from schemas import (
    AckVerdict,
    CommandKind,
    CommandStatus,
    Decision,
    EventKind,
    LifecycleKind,
    NewEvent,
    NotFound,
    OccurrenceState,
    RolloutChange,
    RolloutStatus,
    StaleFencingToken,
    TaskStatus,
    Verdict,
)

LEASE = 10.0
HERE = Path(__file__).parent
CONTRACT_SUITE = (HERE / "test_store.py", Path(__file__))


def contract_members() -> set[str]:
    own = set(vars(StoreContract)) | set(StoreContract.__annotations__)
    return {name for name in own if not name.startswith("_")}


def store_members() -> set[str]:
    methods = {name for name, _ in inspect.getmembers(Store) if not name.startswith("_")}
    return methods | {"engine", "clock_offset", "degraded"}  # set in StoreBase.__init__


def test_the_contract_names_every_public_member_of_the_store() -> None:
    assert contract_members() == store_members()


def test_the_contract_suite_calls_every_method_of_the_contract() -> None:
    text = "".join(path.read_text() for path in CONTRACT_SUITE)
    attributes = set(StoreContract.__annotations__)
    uncalled = {
        name for name in contract_members() - attributes if not re.search(rf"\.{name}\b", text)
    }
    assert uncalled == set()


async def test_the_backend_and_its_clock(database_url: str, store: Store) -> None:
    assert store.backend == make_url(database_url).get_backend_name()
    offset = await store.align_clock_with_server()
    assert offset == store.clock_offset
    if store.backend == "sqlite":  # a database on this host: nothing to align
        assert offset == 0.0
    else:  # the fake clock is moved onto the server's, which is this host's
        assert store.now() == pytest.approx(time.time(), abs=60)


async def test_the_change_feed_hears_a_commit(store: Store) -> None:
    feed = store.change_feed()
    heard: list[frozenset[Change]] = []
    async with anyio.create_task_group() as tg:
        tg.start_soon(feed.run, heard.append, "contract")
        with anyio.fail_after(60):  # generous: a busy machine is slow, never wrong
            while not feed.listening:
                await anyio.sleep(0.05)
            heard.clear()
            await store.request_shutdown("feed", "test")
            while not any(Change.FLEET in changes for changes in heard):
                await anyio.sleep(0.05)
        tg.cancel_scope.cancel()


async def test_wake_files_are_touched_by_commits_where_the_server_cannot_notify(
    database_url: str, store: Store
) -> None:
    path = store.wake_file()
    emergency = store.wake_file(Change.EMERGENCY)
    if store.backend != "sqlite":
        assert path is None and emergency is None
        store.touch_wake_files(Change)  # nothing to touch: no error either
        return
    assert path == Path(make_url(database_url).database + "-wake")
    assert emergency is not None and emergency != path
    await store.request_shutdown("wake", "test")
    assert path.exists() and not emergency.exists()
    store.touch_wake_files([Change.EMERGENCY])
    assert emergency.exists()


async def test_recorded_events_and_the_newest_of_them(store: Store) -> None:
    for number in range(3):
        await store.record_event(NewEvent(kind=EventKind.TASK_CREATED, details={"n": number}))
    newest = await store.latest_events(2)
    assert [e.details["n"] for e in newest] == [1, 2]  # oldest first, as a log reads
    assert [e.details["n"] for e in await store.events()] == [0, 1, 2]


async def test_live_members_are_those_heard_within_the_ttl(store: Store, clock: FakeClock) -> None:
    one = await store.register("occ-1", host="h", pid=1, protocol_version=1)
    await store.register("occ-2", host="h", pid=2, protocol_version=1)
    assert await store.count_live(LEASE) == 2
    clock.advance(LEASE + 1)
    await store.heartbeat(one)
    assert await store.count_live(LEASE) == 1
    await store.deregister(one, reason="done")
    assert await store.count_live(LEASE) == 0


async def test_commands_are_listed_newest_first_and_found_by_id(store: Store) -> None:
    _, first = await store.submit_shutdown("first", "op")
    _, second = await store.submit_shutdown("second", "op")  # refused: one is requested
    assert second.status is CommandStatus.REFUSED
    listed = await store.commands(kind=CommandKind.SHUTDOWN)
    assert [c.command_id for c in listed] == [second.command_id, first.command_id]
    assert await store.command(first.command_id) == first
    with pytest.raises(NotFound):
        await store.command("no-such-command")


async def test_a_released_claim_can_be_claimed_again(store: Store) -> None:
    task, _ = await store.request_shutdown("try", "test")
    claim = await store.claim_task(task.task_id, "a", LEASE)
    assert claim is not None
    await store.release_claim(claim, error="the decision failed")
    assert (await store.task(task.task_id)).status is TaskStatus.PENDING  # type: ignore[union-attr]
    again = await store.claim_task(task.task_id, "b", LEASE)
    assert again is not None and again.fencing_token == claim.fencing_token + 1
    with pytest.raises(StaleFencingToken):
        await store.release_claim(claim, error="too late")


async def decided_wakeup(store: Store, clock: FakeClock, driver: str | None):  # type: ignore[no-untyped-def]
    task = await store.open_wakeup_task("a", 86400)
    assert task is not None
    claim = await store.claim_task(task.task_id, "a", LEASE)
    assert claim is not None
    decision = Decision(verdict=Verdict.ACCEPT, reason="t", decided_by="a", decided_at=clock.now())
    plan = build_plan(LifecycleKind.WAKEUP, "a", ["a", "b"], fast_settings())
    return await store.record_decision(claim, decision, plan, driver=driver, lease_ttl=LEASE)


async def test_a_fleet_stop_refuses_the_decision_in_flight_and_a_new_wakeup_opens(
    store: Store, clock: FakeClock
) -> None:
    # The decider has claimed the wakeup and asks the engine when the stop lands.
    await store.register("a", host="h", pid=1, protocol_version=1)
    task = await store.open_wakeup_task("a", 86400)
    assert task is not None
    claim = await store.claim_task(task.task_id, "a", LEASE)
    assert claim is not None
    key = Ed25519PrivateKey.generate()
    settings = fast_settings(trusted_keys=public_key_text(key.public_key()))
    stop = sign(new_command("fire", [], now=clock.now(), audience=settings.fleet_id), key)
    pending = await store.submit_emergency(stop, issued_by="op")
    settled = await store.settle_emergency(pending.command_id, make_verifier(settings))
    assert settled.status is CommandStatus.ACCEPTED

    assert (await store.task(task.task_id)).status is TaskStatus.FAILED  # type: ignore[union-attr]
    cancelled = [e for e in await store.events() if e.kind == EventKind.TASK_CANCELLED]
    assert [(e.task_id, e.details["command_id"]) for e in cancelled] == [
        (task.task_id, settled.command_id)
    ]
    decision = Decision(verdict=Verdict.ACCEPT, reason="t", decided_by="a", decided_at=clock.now())
    plan = build_plan(LifecycleKind.WAKEUP, "a", ["a"], fast_settings())
    with pytest.raises(StaleFencingToken):
        await store.record_decision(claim, decision, plan, driver="a", lease_ttl=LEASE)
    assert await store.rollouts() == []  # no rollout the stop could not end
    fresh = await store.open_wakeup_task("a", 86400)  # the next start decides afresh
    assert fresh is not None and fresh.task_id != task.task_id


async def test_a_renewed_driver_lease_outlives_the_first(store: Store, clock: FakeClock) -> None:
    rollout = await decided_wakeup(store, clock, driver="a")
    clock.advance(LEASE / 2)
    await store.renew_driver(rollout.rollout_id, "a", rollout.driver_token, LEASE)
    clock.advance(LEASE / 2 + 1)  # past the first lease, within the renewed one
    assert await store.acquire_driver(rollout.rollout_id, "b", LEASE) is None
    renewed = await store.rollout(rollout.rollout_id)
    assert renewed.version == rollout.version  # a renewal changes no state
    with pytest.raises(StaleFencingToken):
        await store.renew_driver(rollout.rollout_id, "a", rollout.driver_token + 1, LEASE)


async def test_a_rollout_nobody_drives_is_concluded_once(store: Store, clock: FakeClock) -> None:
    rollout = await decided_wakeup(store, clock, driver=None)
    end = RolloutChange(
        based_on=rollout.version,
        status=RolloutStatus.ABORTED,
        finished_at=clock.now(),
        abort_reason="nobody left",
    )
    assert await store.conclude_rollout(rollout.rollout_id, end)
    assert (await store.rollout(rollout.rollout_id)).status is RolloutStatus.ABORTED
    assert not await store.conclude_rollout(rollout.rollout_id, end)  # moved already


async def test_an_emergency_command_is_settled_answered_and_listed(
    store: Store, clock: FakeClock
) -> None:
    me = await store.register("occ-1", host="h", pid=1, protocol_version=1)
    await store.set_state(me, OccurrenceState.WORK)
    key = Ed25519PrivateKey.generate()
    settings = fast_settings(trusted_keys=public_key_text(key.public_key()))
    order = sign(new_command("drill", ["occ-1"], now=clock.now(), audience=settings.fleet_id), key)

    pending = await store.submit_emergency(order, issued_by="op")  # no keys: pending
    assert pending.status is CommandStatus.PENDING
    settled = await store.settle_emergency(pending.command_id, make_verifier(settings))
    assert settled.status is CommandStatus.ACCEPTED
    again = await store.settle_emergency(pending.command_id, make_verifier(settings))
    assert again == settled  # settled once

    found = await store.emergency_commands_since(me.started_at)
    assert [(c.command_id, replay) for c, replay in found] == [(settled.command_id, False)]
    ack = await store.acknowledge_emergency(
        settled, me, AckVerdict.STOPPED, "stopped", leave="emergency stop"
    )
    repeat = await store.acknowledge_emergency(settled, me, AckVerdict.REFUSED, "late")
    assert repeat == ack  # the first answer stands
    assert await store.emergency_acks(settled.command_id) == [ack]
    assert (await store.members())[0].state is OccurrenceState.SHUTDOWN
