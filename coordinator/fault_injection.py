"""Where the faults of ``faults`` strike a simulated occurrence: its Store
(``persistence.simulated_store``), its clock and its decision engine, each wrapped for
one incarnation.

The occurrence's own code runs unchanged above these three seams, as it would in a
process of its own: a fault reaches it only as the database, the time or the engine
would present it for real (an error its driver raises, a statement that never returns,
a clock that reads ahead, a call that hangs).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import anyio

from coordinator.engine import DecisionEngine, DecisionRequest, EngineAnswer
from coordinator.virtual_time import VirtualClock
from persistence.simulated_store import DatabaseFaults


class SimulatedEngineFailure(RuntimeError):
    """The decision engine refused a call (an ``engine_refuse`` fault)."""


@dataclass
class OccurrenceFaults(DatabaseFaults):
    """What is wrong with one incarnation right now (set by the injector)."""

    skew: float = 0.0
    """Seconds its clock reads ahead of the fleet's."""
    engine_faults: list[str] = field(default_factory=list)
    """``refuse`` or ``hang`` for the engine's next calls."""

    @classmethod
    def on(cls, clock: VirtualClock) -> OccurrenceFaults:
        return cls(now=clock.now, sleep=clock.sleep)


class OccurrenceClock:
    """The clock one incarnation reads: the fleet's virtual time plus its skew, and every
    sleep outlasts a pause (a frozen process wakes only once thawed)."""

    def __init__(self, base: VirtualClock, faults: OccurrenceFaults) -> None:
        self._base = base
        self._faults = faults

    @property
    def origin(self) -> float:
        return self._base.origin

    def now(self) -> float:
        return self._base.now() + self._faults.skew

    async def sleep(self, seconds: float) -> None:
        await self._base.sleep(seconds)
        await self._faults.running()


class FaultyEngine:
    """The fleet's decision engine as one incarnation calls it, faults first."""

    def __init__(self, engine: DecisionEngine, faults: OccurrenceFaults) -> None:
        self._engine = engine
        self._faults = faults

    async def decide(self, request: DecisionRequest) -> EngineAnswer:
        await self._faults.running()
        if self._faults.engine_faults:
            fault = self._faults.engine_faults.pop(0)
            if fault == "hang":
                await anyio.sleep_forever()
            raise SimulatedEngineFailure("simulated: the decision engine refused the call")
        return await self._engine.decide(request)
