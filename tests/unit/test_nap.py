"""The loops' sleep runs on the injected clock: a fake clock alone ends it, and a poke
cuts it short (even one that came before the nap began)."""

from __future__ import annotations

import anyio

from coordinator.clock import FakeClock
from coordinator.nap import Nap


async def test_a_nap_lasts_until_the_fake_clock_has_moved_far_enough() -> None:
    clock = FakeClock()
    nap = Nap(clock)
    done = anyio.Event()

    async def sleeper() -> None:
        await nap.nap(5.0)
        done.set()

    async with anyio.create_task_group() as tg:
        tg.start_soon(sleeper)
        await anyio.sleep(0.05)
        clock.advance(4.0)
        await anyio.sleep(0.05)
        assert not done.is_set()  # real time passed, the clock's did not
        clock.advance(1.0)
        with anyio.fail_after(5):
            await done.wait()


async def test_a_poke_ends_a_nap_and_one_before_it_is_not_lost() -> None:
    nap = Nap(FakeClock())
    nap.poke()
    with anyio.fail_after(5):
        await nap.nap(60.0)  # the earlier poke: returns at once
        async with anyio.create_task_group() as tg:
            tg.start_soon(nap.nap, 60.0)
            await anyio.sleep(0.05)
            nap.poke()
