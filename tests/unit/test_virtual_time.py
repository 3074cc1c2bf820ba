"""The deterministic simulator's ground: virtual time, a seeded schedule, seeded ids."""

from __future__ import annotations

import secrets
import uuid

import anyio
import anyio.lowlevel
import pytest

from coordinator.virtual_time import (
    VIRTUAL_EPOCH,
    Deadlock,
    Livelock,
    VirtualClock,
    run_seeded,
)

SEEDS = range(20)


def test_an_hour_of_sleep_passes_in_virtual_time() -> None:
    async def main() -> tuple[float, float]:
        clock = VirtualClock()
        before = clock.now()
        await clock.sleep(3600)
        with anyio.fail_after(60):  # a timeout is virtual too: it fires after the sleep
            await anyio.sleep(59)
        return before, clock.now()

    before, after = run_seeded(main, seed=1)
    assert before == VIRTUAL_EPOCH
    assert after == pytest.approx(VIRTUAL_EPOCH + 3659)


def test_a_fleet_of_tasks_that_all_wait_forever_is_a_deadlock() -> None:
    async def main() -> None:
        never = anyio.Event()
        async with anyio.create_task_group() as tg:
            for _ in range(3):
                tg.start_soon(never.wait)

    with pytest.raises(Deadlock):
        run_seeded(main, seed=1)


def test_tasks_that_spin_without_time_moving_on_are_a_livelock_and_clean_up() -> None:
    cleaned: list[bool] = []

    async def main() -> None:
        await VirtualClock().sleep(5)
        try:
            while True:  # each turn yields, none waits for time: a hot loop at 5 s
                await anyio.lowlevel.checkpoint()
        finally:
            cleaned.append(True)

    with pytest.raises(Livelock, match=r"at 5\.000 s"):
        run_seeded(main, seed=1)
    assert cleaned == [True], "the run was cancelled, its clean-up ran"


def schedule(seed: int) -> list[int]:
    """The order in which eight tasks, ready at once, get to run twice each."""

    async def main() -> list[int]:
        order: list[int] = []

        async def worker(n: int) -> None:
            for _ in range(2):
                order.append(n)
                await anyio.lowlevel.checkpoint()

        async with anyio.create_task_group() as tg:
            for n in range(8):
                tg.start_soon(worker, n)
        return order

    return run_seeded(main, seed)


def test_one_seed_gives_one_schedule_and_the_seeds_reach_many() -> None:
    schedules = {seed: schedule(seed) for seed in SEEDS}
    assert all(schedule(seed) == schedules[seed] for seed in SEEDS)
    assert all(sorted(order) == sorted(list(range(8)) * 2) for order in schedules.values())
    distinct = {tuple(order) for order in schedules.values()}
    assert len(distinct) > len(SEEDS) // 2, "the seed barely changes the schedule"


def test_ids_are_drawn_from_the_seed_and_real_again_afterwards() -> None:
    async def main() -> tuple[str, str]:
        return str(uuid.uuid4()), secrets.token_hex(16)

    first, again, other = run_seeded(main, 5), run_seeded(main, 5), run_seeded(main, 6)
    assert first == again and first != other
    assert uuid.UUID(first[0]).version == 4 and len(first[1]) == 32
    assert uuid.uuid4() != uuid.uuid4()  # restored: real randomness outside
