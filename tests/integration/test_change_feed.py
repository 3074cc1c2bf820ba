"""A commit that changes the fleet wakes every listener at once: LISTEN/NOTIFY on
PostgreSQL, the wake file beside the database on SQLite. Heartbeats wake nobody."""

from __future__ import annotations

import anyio

from persistence import ChangeFeed, Store


async def test_a_commit_wakes_a_listener(database_url: str) -> None:
    store = await Store.open(database_url)
    feed = ChangeFeed(database_url)
    wakes: list[float] = []
    try:
        async with anyio.create_task_group() as tg:
            tg.start_soon(feed.run, lambda: wakes.append(anyio.current_time()), "test")
            with anyio.fail_after(10):
                while not feed.listening:
                    await anyio.sleep(0.01)
            before = len(wakes)
            await store.request_shutdown("wake the fleet", "test")
            with anyio.fail_after(10):
                while len(wakes) == before:
                    await anyio.sleep(0.005)
            # A heartbeat changes no lifecycle state: no notification for it.
            before = len(wakes)
            me = await store.register("occ-1", host="h", pid=1, protocol_version=1)
            with anyio.fail_after(10):
                while len(wakes) == before:  # the registration's own notification
                    await anyio.sleep(0.005)
            settled = len(wakes)
            await store.heartbeat(me)
            await anyio.sleep(0.5)
            assert len(wakes) == settled
            tg.cancel_scope.cancel()
    finally:
        await store.close()
