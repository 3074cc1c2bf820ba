"""A commit that changes the fleet wakes every listener at once: LISTEN/NOTIFY on
PostgreSQL, the wake files beside the database on SQLite. Heartbeats wake nobody, and
each wake-up says what changed: the fleet, emergency commands, or both.

No sleep decides anything here. Wake-ups arrive in commit order (one connection receives
every notification in order; the wake files are read together, so a later change is never
seen before an earlier one), so "nothing woke the listener between two commits" is proven
by the next commit's wake-up being the very next one, however late it arrives.
"""

from __future__ import annotations

import time

import anyio
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from coordinator.signing import new_command, sign
from persistence import Change, ChangeFeed, Store

WAKE_DEADLINE = 60.0  # seconds: generous, a busy machine delays every wake-up


async def wake_number(wakes: list[frozenset[Change]], index: int) -> frozenset[Change]:
    """The ``index``-th wake-up (from 0), once it has arrived."""
    with anyio.fail_after(WAKE_DEADLINE):
        while len(wakes) <= index:
            await anyio.sleep(0.005)
    return wakes[index]


async def test_a_commit_wakes_a_listener_with_what_it_changed(database_url: str) -> None:
    store = await Store.open(database_url)
    feed = ChangeFeed(database_url)
    wakes: list[frozenset[Change]] = []
    try:
        async with anyio.create_task_group() as tg:
            tg.start_soon(feed.run, wakes.append, "test")
            with anyio.fail_after(WAKE_DEADLINE):
                while not feed.listening:
                    await anyio.sleep(0.01)
            first = 0
            if feed.enabled:
                # PostgreSQL: the feed's own "you may have missed something" on connecting.
                assert await wake_number(wakes, 0) == frozenset(Change)
                first = 1

            await store.request_shutdown("wake the fleet", "test")
            assert await wake_number(wakes, first) == {Change.FLEET}

            me = await store.register("occ-1", host="h", pid=1, protocol_version=1)
            assert await wake_number(wakes, first + 1) == {Change.FLEET}

            # A heartbeat changes no lifecycle state: no notification for it. The command
            # after it stops nobody yet and concerns the emergency check alone: its wake-up
            # is the next one, and names nothing else.
            await store.heartbeat(me)
            signed = sign(
                new_command("drill", ["occ-1"], now=time.time(), audience="t"),
                Ed25519PrivateKey.generate(),
            )
            await store.submit_emergency(signed, issued_by="test")
            assert await wake_number(wakes, first + 2) == {Change.EMERGENCY}
            assert len(wakes) == first + 3, wakes
            tg.cancel_scope.cancel()
    finally:
        await store.close()
