"""The simulated fleet: N occurrences of the real runtime in one process, each incarnation
with its own Store, clock and engine seams (``fault_injection``), started, killed and
started again as a supervisor would.

An incarnation ends in one of three ways, and the fleet keeps each: it left the fleet (a
coordinated shutdown, an emergency stop), it was killed by a fault, or it crashed on its
own. A supervisor starts a killed or crashed occurrence again, as a new incarnation,
unless the fleet is done (``closing``).
"""

from __future__ import annotations

import math
import random
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import anyio
from anyio.abc import TaskGroup

from coordinator.engine import DecisionEngine
from coordinator.fault_injection import FaultyEngine, OccurrenceClock, OccurrenceFaults
from coordinator.faults import ZOMBIE_ARMED, Fault, FaultKind
from coordinator.hooks import LifecycleHooks
from coordinator.runtime import OccurrenceRuntime
from coordinator.virtual_time import VirtualClock
from persistence import Store
from persistence.backends import Backend
from persistence.simulated_store import LeaseFreeze, SimulatedStore
from schemas import TaskStatus, load_settings

RESTART_AFTER_CRASH = 1.0  # seconds a supervisor waits before starting a crashed process
OCCURRENCE_PREFIX = "occurrence-"
DECISION_WINDOW = 86_400.0  # the default: what the fleet's own views judge by
LEASES_OF_ROLE = {"claimer": frozenset({"claim"}), "driver": frozenset({"driver"})}
ANY_LEASE = frozenset({"claim", "driver"})


@dataclass
class Incarnation:
    number: int
    runtime: OccurrenceRuntime
    faults: OccurrenceFaults
    started_at: float
    """When it was started (the fleet's clock, Unix seconds)."""
    scope: anyio.CancelScope = field(default_factory=anyio.CancelScope)
    ended: bool = False


@dataclass(frozen=True)
class Exit:
    """How an incarnation ended (``error`` None: it left the fleet or was killed)."""

    occurrence: str
    incarnation: str | None
    at: float
    killed: bool
    error: BaseException | None
    faulted: bool
    """Some fault other than a crash struck this incarnation (a pause, a partition...)."""


class SimulatedFleet:
    def __init__(
        self,
        tg: TaskGroup,
        observer: Store,
        backend: Backend,
        clock: VirtualClock,
        engine: DecisionEngine,
        hooks: LifecycleHooks,
        settings: Mapping[str, Any],
        *,
        seed: int = 0,
        write_latency: tuple[float, float] = (0.0, 0.0),
    ) -> None:
        self._tg = tg
        self._seed = seed
        self._write_latency = write_latency
        self._observer = observer
        self._backend = backend
        self._clock = clock
        self._engine = engine
        self._hooks = hooks
        self._settings = settings
        self.current: dict[int, Incarnation] = {}
        self.everyone: list[Incarnation] = []
        self.exits: list[Exit] = []
        self.closing = False
        """Set once the fleet's run is over: nothing is started again after it."""
        self.faulted: set[int] = set()
        """``id()`` of every incarnation a fault other than a crash struck."""
        self._zombies_for_anyone: list[LeaseFreeze] = []
        """Zombie faults aimed at a role, armed on every incarnation started meanwhile."""

    def start(self, number: int) -> None:
        running = self.current.get(number)
        if running is not None and not running.ended:
            return  # one process per occurrence: a supervisor never starts a second
        faults = OccurrenceFaults.on(self._clock)
        faults.write_latency = self._write_latency
        # Each incarnation its own stream: a restart does not shift the others' draws.
        faults.latency_draw = random.Random(f"latency-{self._seed}-{len(self.everyone)}")
        clock = OccurrenceClock(self._clock, faults)
        store = SimulatedStore(self._observer.engine, clock.now, self._backend)
        store.faults = faults
        store.commits = self._observer.commits  # one count per database, as the engine is
        settings = load_settings(
            **{**self._settings, "occurrence_id": f"{OCCURRENCE_PREFIX}{number}"}
        )
        runtime = OccurrenceRuntime(
            settings,
            engine=FaultyEngine(self._engine, faults),
            hooks=self._hooks,
            clock=clock,
            store=store,
        )
        incarnation = Incarnation(number, runtime, faults, self._clock.now())
        faults.freezes = [z for z in self._zombies_for_anyone if not z.taken]
        faults.on_frozen = lambda: self.faulted.add(id(incarnation))
        self.current[number] = incarnation
        self.everyone.append(incarnation)
        self._tg.start_soon(self._run, incarnation)

    async def _run(self, incarnation: Incarnation) -> None:
        with incarnation.scope:
            await incarnation.runtime.run()
        incarnation.ended = True
        runtime, faults = incarnation.runtime, incarnation.faults
        error = None if faults.killed else runtime.error
        self.exits.append(
            Exit(
                runtime.occurrence_id,
                runtime.incarnation_id,
                self._clock.now() - self._clock.origin,
                faults.killed,
                error,
                id(incarnation) in self.faulted,
            )
        )
        if error is not None and self.current.get(incarnation.number) is incarnation:
            await self._clock.sleep(RESTART_AFTER_CRASH)
            self._restart(incarnation.number)

    def _restart(self, number: int) -> None:
        if not self.closing:
            self.start(number)

    @property
    def live(self) -> list[OccurrenceRuntime]:
        """The runtimes of the incarnations running now."""
        return [i.runtime for i in self.current.values() if not i.ended]

    def serving_since(self, moment: float) -> list[OccurrenceRuntime]:
        """The runtimes running now that were started before ``moment``, still in it."""
        return [
            i.runtime
            for i in self.current.values()
            if not i.ended and i.started_at < moment and not i.runtime.stopped
        ]

    def stop_all(self) -> None:
        """The end of the run: thaw whoever is frozen (the thaw is not coming: its timer
        ends with the run), and stop every runtime."""
        self.closing = True
        for incarnation in self.current.values():
            incarnation.faults.pause_after_read = 0.0
            incarnation.faults.freezes.clear()
            incarnation.faults.resume()
            incarnation.runtime.stop()

    async def strike(self, fault: Fault) -> bool:
        """Apply ``fault`` to the occurrence's current incarnation (or to the holder of
        its role's lease now); False if none runs."""
        if fault.kind is FaultKind.ZOMBIE:
            return self._arm_zombie(fault)
        number = await self._holder(fault.role) if fault.role else None
        incarnation = self.current.get(number or fault.occurrence)
        if incarnation is None or incarnation.ended or self.closing:
            return False
        faults = incarnation.faults
        kind = fault.kind
        if kind is not FaultKind.CRASH:
            self.faulted.add(id(incarnation))
        if kind is FaultKind.CRASH:
            faults.kill()
            incarnation.ended = True  # dead now, whatever of it still unwinds
            incarnation.scope.cancel()
            self._tg.start_soon(self._restart_after, incarnation.number, fault.duration)
        elif kind is FaultKind.PAUSE and fault.after_read:
            faults.pause_after_read = fault.duration
        elif kind is FaultKind.PAUSE:
            self._tg.start_soon(faults.pause_for, fault.duration)
        elif kind is FaultKind.PARTITION:
            faults.partitioned_until = self._clock.now() + fault.duration
        elif kind is FaultKind.SKEW:
            faults.skew += fault.duration
        elif kind is FaultKind.SLOW_COMMIT:
            faults.slow_commits.append(fault.duration)
        elif kind is FaultKind.TRANSIENT:
            faults.errors.append(fault.error)
        elif kind is FaultKind.ENGINE_REFUSE:
            faults.engine_faults.append("refuse")
        elif kind is FaultKind.ENGINE_HANG:
            faults.engine_faults.append("hang")
        elif kind is FaultKind.STALLS:
            faults.stalls_until = self._clock.now() + fault.duration
            faults.stall_draw = random.Random(f"stalls-{fault.at}-{fault.occurrence}")
        return True

    def _arm_zombie(self, fault: Fault) -> bool:
        """Arm a zombie fault: on the occurrence's incarnation, or (aimed at a role) on
        every incarnation, running or started before it lapses, whoever takes that
        role's lease first."""
        if self.closing:
            return False
        until = self._clock.now() + ZOMBIE_ARMED
        if not fault.role:
            incarnation = self.current.get(fault.occurrence)
            if incarnation is None or incarnation.ended:
                return False
            incarnation.faults.freezes.append(LeaseFreeze(fault.duration, ANY_LEASE, until))
            return True
        zombie = LeaseFreeze(fault.duration, LEASES_OF_ROLE[fault.role], until)
        self._zombies_for_anyone.append(zombie)
        for incarnation in self.current.values():
            if not incarnation.ended:
                incarnation.faults.freezes.append(zombie)
        return True

    async def _restart_after(self, number: int, downtime: float) -> None:
        # On the next whole second: a fleet started at one instant polls on whole seconds,
        # and the restarted process then races the others at the same instants, where the
        # seeded schedule orders them (a real fleet's races come from its processes' gaps
        # between a read and a write; virtual time has none).
        await self._clock.sleep(downtime)
        elapsed = self._clock.now() - self._clock.origin
        await self._clock.sleep(math.ceil(elapsed) - elapsed)
        self._restart(number)

    async def _holder(self, role: str) -> int | None:
        """The number of the occurrence holding a task's claim (``claimer``) or a running
        rollout's driver lease (``driver``) now, if any does."""
        view = await self._observer.fleet_view(DECISION_WINDOW)
        if role == "claimer":
            holders = [t.claimed_by for t in view.open_tasks if t.status is TaskStatus.ACTIVE]
        else:
            holders = [r.driver_id for r in view.running if r.driver_id]
        for holder in holders:
            if holder and holder.startswith(OCCURRENCE_PREFIX):
                return int(holder.removeprefix(OCCURRENCE_PREFIX))
        return None
