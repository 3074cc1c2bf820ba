"""The Store of a simulated process, with the faults its database and its process can
have: what the deterministic simulator (``coordinator.exploration``) strikes.

A fault reaches the Store's caller only as a real database would present it: an error its
driver raises (each transient class), a statement that does not answer (a partition), a
commit that holds its connection (slow), a process that stops between two statements
(frozen, as SIGSTOP) or never runs again (killed, as kill -9).
"""

from __future__ import annotations

import random
import sqlite3
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

import anyio
from sqlalchemy.exc import OperationalError
from sqlalchemy.ext.asyncio import AsyncConnection

from persistence.store import Store
from schemas import Superseded

T = TypeVar("T")

STALL_CHANCE = 0.25
STALL_SECONDS = (0.2, 3.0)
"""While stalling, a quarter of the reads are followed by a freeze of this long."""


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
class DatabaseFaults:
    """What is wrong with one simulated process's database right now, and with the
    process itself (killed, frozen), as its Store meets it. Set by the simulator's
    injector; ``now`` and ``sleep`` are the fleet's virtual time."""

    now: Callable[[], float]
    sleep: Callable[[float], Awaitable[None]]
    killed: bool = False
    resumed: anyio.Event | None = None
    """Set while paused (SIGSTOP); its event fires at SIGCONT."""
    partitioned_until: float = 0.0
    errors: list[str] = field(default_factory=list)
    """Transient errors the next statements fail with, one each."""
    slow_commits: list[float] = field(default_factory=list)
    pause_after_read: float = 0.0
    stalls_until: float = 0.0
    """Until then some reads are followed by a short freeze (a busy host, a long GC)."""
    stall_draw: random.Random | None = None
    """The stalls' own seeded stream (whether a read stalls, and for how long)."""
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
        await self.sleep(seconds)
        if self.resumed is resumed:
            self.resume()

    def resume(self) -> None:
        resumed, self.resumed = self.resumed, None
        if resumed is not None:
            resumed.set()

    def stall(self) -> float:
        """How long the read just answered stalls its caller (0: not at all)."""
        draw = self.stall_draw
        if draw is None or self.now() >= self.stalls_until or draw.random() >= STALL_CHANCE:
            return 0.0
        return draw.uniform(*STALL_SECONDS)

    @property
    def partitioned(self) -> bool:
        return self.now() < self.partitioned_until


class SimulatedStore(Store):
    """The Store of one simulated process: the fleet's one engine (inline SQLite), the
    process's clock, and its faults before and after every transaction. Nothing below
    ``_attempt`` changes: retries, deadlines and fencing are the real Store's."""

    faults: DatabaseFaults

    @property
    def sole_writer(self) -> bool:
        """The inline backend's, but not while a fault is due: a read must then be made
        and fail (or answer) as it would for real, not be skipped as unchanged; a frozen
        process (paused) must stop at its next read, not poll on from a view it has."""
        faults = getattr(self, "faults", None)
        due = faults is not None and (
            faults.partitioned or bool(faults.errors) or faults.resumed is not None
        )
        return self._sole_writer and not due

    @sole_writer.setter
    def sole_writer(self, value: bool) -> None:
        self._sole_writer = value

    async def _attempt(
        self,
        work: Callable[[AsyncConnection], Awaitable[T]],
        write: bool,
        deadline: float,
        *rest: Any,
    ) -> T:
        faults = self.faults
        await faults.running()
        if faults.killed:  # a killed process (its shielded cleanup, say) writes nothing more
            raise Superseded("simulated: the process was killed")  # retried by no one
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
        elif not write and (stall := faults.stall()):
            await faults.pause_for(stall)
        await faults.running()
        return result
