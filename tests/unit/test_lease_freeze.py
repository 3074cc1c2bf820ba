"""The ``zombie`` fault's freeze: whoever takes an armed lease first is frozen, once."""

from __future__ import annotations

from coordinator.fault_injection import OccurrenceFaults
from coordinator.virtual_time import VirtualClock, run_seeded
from persistence.simulated_store import LeaseFreeze


def test_the_first_to_take_the_armed_lease_is_frozen_and_the_others_are_not() -> None:
    async def main() -> tuple[float, float, float, list[str]]:
        clock = VirtualClock()
        zombie = LeaseFreeze(25.0, frozenset({"claim"}), until=clock.now() + 60)
        first, second = OccurrenceFaults.on(clock), OccurrenceFaults.on(clock)
        frozen: list[str] = []
        first.freezes, first.on_frozen = [zombie], lambda: frozen.append("first")
        second.freezes, second.on_frozen = [zombie], lambda: frozen.append("second")
        began = clock.now()
        await first.took_lease("driver")  # not the role it is armed for
        after_driver = clock.now() - began
        await first.took_lease("claim")
        after_claim = clock.now() - began
        await second.took_lease("claim")  # taken already: one freeze per fault
        return after_driver, after_claim, clock.now() - began, frozen

    assert run_seeded(main, seed=1) == (0.0, 25.0, 25.0, ["first"])


def test_an_armed_lease_lapses() -> None:
    async def main() -> float:
        clock = VirtualClock()
        faults = OccurrenceFaults.on(clock)
        faults.freezes = [LeaseFreeze(25.0, frozenset({"claim"}), until=clock.now() + 10)]
        await clock.sleep(11)
        began = clock.now()
        await faults.took_lease("claim")
        return clock.now() - began

    assert run_seeded(main, seed=1) == 0.0
