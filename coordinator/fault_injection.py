"""Where the faults of ``faults`` strike a simulated occurrence: its Store, its clock and
its decision engine, each wrapped for one incarnation.

The occurrence's own code runs unchanged above these three seams, as it would in a
process of its own: a fault reaches it only as the database, the time or the engine
would present it for real (an error its driver raises, a statement that never returns,
a clock that reads ahead, a call that hangs).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

import anyio
from sqlalchemy.exc import OperationalError
from sqlalchemy.ext.asyncio import AsyncConnection

from coordinator.engine import DecisionEngine, DecisionRequest, EngineAnswer
from coordinator.virtual_time import VirtualClock
from persistence import Store
from schemas import DatabaseUnavailable

T = TypeVar("T")


class SimulatedEngineFailure(RuntimeError):
    """The decision engine refused a call (an ``engine_refuse`` fault)."""


def transient_error(name: str) -> BaseException:
    """One transient error class, raised as the SQLite driver or the network raises it."""
    if name == "socket_reset":
        return ConnectionResetError("simulated: connection reset by peer")
    words = {
        "locked": "database is locked",
        "disk_full": "database or disk is full",
        "io_error": "disk I/O error",
        "connection_dropped": "simulated: the connection was closed",
    }[name]
    dropped = name == "connection_dropped"
    return OperationalError(
        "simulated", {}, sqlite3.OperationalError(words), connection_invalidated=dropped
    )


@dataclass
class OccurrenceFaults:
    """What is wrong with one incarnation right now (set by the injector)."""

    clock: VirtualClock
    killed: bool = False
    resumed: anyio.Event | None = None
    """Set while paused (SIGSTOP); its event fires at SIGCONT."""
    partitioned_until: float = 0.0
    skew: float = 0.0
    errors: list[str] = field(default_factory=list)
    """Transient errors the next statements fail with, one each."""
    slow_commits: list[float] = field(default_factory=list)
    engine_faults: list[str] = field(default_factory=list)
    """``refuse`` or ``hang`` for the engine's next calls."""
    pause_after_read: float = 0.0
    """Freeze for this long once the next read returns (0: no such pause pending)."""

    async def running(self) -> None:
        """Return once the process runs (at once unless paused). A killed one is being
        cancelled already: what little of it runs on (shielded cleanup) finds its Store
        dead instead."""
        while self.resumed is not None and not self.killed:
            await self.resumed.wait()

    def kill(self) -> None:
        self.killed = True
        self.resume()  # a frozen process can be killed too: nothing of it waits any more

    def pause(self) -> None:
        if self.resumed is None:
            self.resumed = anyio.Event()

    async def pause_for(self, seconds: float) -> None:
        """Freeze now, and thaw after ``seconds`` (of the fleet's time)."""
        self.pause()
        resumed = self.resumed
        await self.clock.sleep(seconds)
        if self.resumed is resumed:
            self.resume()

    def resume(self) -> None:
        resumed, self.resumed = self.resumed, None
        if resumed is not None:
            resumed.set()

    @property
    def partitioned(self) -> bool:
        return self.clock.now() < self.partitioned_until


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


class SimulatedStore(Store):
    """The Store of one simulated incarnation: the fleet's one engine (inline SQLite),
    this incarnation's clock, and its faults before and after every transaction."""

    faults: OccurrenceFaults

    async def _attempt(
        self,
        work: Callable[[AsyncConnection], Awaitable[T]],
        write: bool,
        deadline: float,
        *rest: Any,
    ) -> T:
        faults = self.faults
        await faults.running()
        if faults.killed:  # a process killed mid-call (its cleanup, say) writes nothing more
            raise DatabaseUnavailable("simulated: the process was killed")
        if faults.partitioned:
            raise TimeoutError("simulated: no answer from the database (partition)")
        if faults.errors:
            raise transient_error(faults.errors.pop(0))
        if faults.slow_commits:
            delay = faults.slow_commits.pop(0)
            inner = work

            async def work(conn: AsyncConnection) -> T:
                result = await inner(conn)
                await anyio.sleep(delay)  # holds the connection: every other writer waits
                return result

        result = await super()._attempt(work, write, deadline, *rest)
        if not write and faults.pause_after_read:
            seconds, faults.pause_after_read = faults.pause_after_read, 0.0
            await faults.pause_for(seconds)  # frozen as the answer came: it acts on it later
        await faults.running()
        return result


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
