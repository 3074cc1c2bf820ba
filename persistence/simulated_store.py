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
from schemas import Claim, Superseded

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
class LeaseFreeze:
    """A ``zombie`` fault armed: the first process (of those it is armed on) to take one
    of ``leases`` before ``until`` is frozen ``seconds`` the moment it took it."""

    seconds: float
    leases: frozenset[str]
    """``claim`` (a task's claim), ``driver`` (a rollout's driver lease)."""
    until: float
    taken: bool = False


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
    """Freeze for this long once the next read returns (0: no such pause pending)."""
    stalls_until: float = 0.0
    """Until then some reads are followed by a short freeze (a busy host, a long GC)."""
    stall_draw: random.Random | None = None
    """The stalls' own seeded stream (whether a read stalls, and for how long)."""
    write_latency: tuple[float, float] = (0.0, 0.0)
    """Each write transaction starts after a delay drawn from this range (a round trip
    to the database, a connection taken from a pool): the gap between what a process
    read and its write, in which other processes' commits land in a real fleet."""
    latency_draw: random.Random | None = None
    """The write latency's own seeded stream."""
    freezes: list[LeaseFreeze] = field(default_factory=list)
    """Zombie faults armed on this process (shared with others when aimed at a role)."""
    on_frozen: Callable[[], None] | None = None
    """Told when a zombie fault freezes this process (the simulator counts it struck)."""

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

    def write_delay(self) -> float:
        """How long the write about to start waits first (0: none)."""
        low, high = self.write_latency
        if self.latency_draw is None or high <= 0.0:
            return 0.0
        return self.latency_draw.uniform(low, high)

    async def took_lease(self, lease: str) -> None:
        """The process just took a lease: a zombie fault armed for it freezes it now."""
        for freeze in self.freezes:
            if not freeze.taken and lease in freeze.leases and self.now() < freeze.until:
                freeze.taken = True
                if self.on_frozen is not None:
                    self.on_frozen()
                await self.pause_for(freeze.seconds)
                return

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

    async def claim_task(self, task_id: str, holder: str, lease_ttl: float) -> Claim | None:
        claim = await super().claim_task(task_id, holder, lease_ttl)
        if claim is not None:
            await self.faults.took_lease("claim")
        return claim

    async def acquire_driver(
        self, rollout_id: str, holder: str, lease_ttl: float, *, grace: float = 0.0
    ) -> int | None:
        token = await super().acquire_driver(rollout_id, holder, lease_ttl, grace=grace)
        if token is not None:
            await self.faults.took_lease("driver")
        return token

    async def _attempt(
        self,
        work: Callable[[AsyncConnection], Awaitable[T]],
        write: bool,
        deadline: float,
        *rest: Any,
    ) -> T:
        faults = self.faults
        if write and (delay := faults.write_delay()):
            await faults.sleep(delay)
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
