"""A commit that changes the fleet wakes every listener at once: LISTEN/NOTIFY on
PostgreSQL, the wake files beside the database on SQLite. Heartbeats wake nobody, and
each wake-up says what changed: the fleet, emergency commands, or both."""

from __future__ import annotations

import time

import anyio
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from coordinator.signing import new_command, sign
from persistence import Change, ChangeFeed, Store


async def wait_for_more(wakes: list[frozenset[Change]], than: int) -> None:
    with anyio.fail_after(10):
        while len(wakes) == than:
            await anyio.sleep(0.005)
    await anyio.sleep(0.2)  # a second wake-up, if one were coming


async def test_a_commit_wakes_a_listener_with_what_it_changed(database_url: str) -> None:
    store = await Store.open(database_url)
    feed = ChangeFeed(database_url)
    wakes: list[frozenset[Change]] = []
    try:
        async with anyio.create_task_group() as tg:
            tg.start_soon(feed.run, wakes.append, "test")
            with anyio.fail_after(10):
                while not feed.listening:
                    await anyio.sleep(0.01)
            await anyio.sleep(0.1)  # PostgreSQL: the feed's own "you may have missed" wake
            before = len(wakes)
            await store.request_shutdown("wake the fleet", "test")
            await wait_for_more(wakes, before)
            assert set().union(*wakes[before:]) == {Change.FLEET}

            # A heartbeat changes no lifecycle state: no notification for it.
            before = len(wakes)
            me = await store.register("occ-1", host="h", pid=1, protocol_version=1)
            await wait_for_more(wakes, before)  # the registration's own notification
            settled = len(wakes)
            await store.heartbeat(me)
            await anyio.sleep(0.5)
            assert len(wakes) == settled

            # A command that stops nobody yet concerns the emergency check alone.
            signed = sign(
                new_command("drill", ["occ-1"], now=time.time(), audience="t"),
                Ed25519PrivateKey.generate(),
            )
            await store.submit_emergency(signed, issued_by="test")
            await wait_for_more(wakes, settled)
            assert set().union(*wakes[settled:]) == {Change.EMERGENCY}
            tg.cancel_scope.cancel()
    finally:
        await store.close()
