"""One seeded trial of the deterministic simulator: a fleet's life with faults, checked.

A trial runs N occurrences of the real runtime (``sim_fleet``) on virtual time, strikes
them with the faults its seed draws (``faults``), plays one scenario as an operator
would, and checks the invariants of DESIGN.md while it runs (every ``CHECK_EVERY``
simulated seconds) and at its end, plus liveness: once the faults are over, each rollout
must finish within ``liveness_bound`` of the settings. The same seed gives the same trial,
byte for byte; a failing one names the command that replays it.

Scenarios: ``lifecycle`` (wakeup, then a coordinated shutdown), ``reject`` (the shutdown
is rejected: nothing may change), ``emergency`` (a signed fleet-wide stop once the
shutdown's first wave is signalled, then the same signed bytes replayed).
"""

from __future__ import annotations

import random
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import anyio
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from coordinator.audit_check import capacity_violations, fleet_violations
from coordinator.emergency import make_verifier
from coordinator.engine import ScriptedEngine
from coordinator.faults import FaultKind, draw_faults, faults_end
from coordinator.hooks import LifecycleHooks
from coordinator.late_joiners import until_gate_due
from coordinator.signing import new_command, public_key_text, sign
from coordinator.sim_fleet import SimulatedFleet
from coordinator.trial_checks import (
    acted_after_stop,
    acted_unsignalled,
    claims_after_decision,
    healthy_holders_taken_over,
    left_without_shutdown,
    replays_accepted,
    slow_decisions,
)
from coordinator.trial_config import (
    START_SPREAD,
    TrialConfig,
    TrialOutcome,
    liveness_bound,
    start_times,
)
from coordinator.virtual_time import VirtualClock
from persistence import Store
from persistence.backends.sqlite_inline import InlineSQLiteBackend
from schemas import (
    CommandStatus,
    LifecycleKind,
    OccurrenceState,
    RolloutRecord,
    RolloutStatus,
    Superseded,
    load_settings,
)

CHECK_EVERY = 10.0  # simulated seconds between invariant checks during a trial
STEP = 1.0  # simulated seconds between the operator's looks at the fleet
LATE_AT_GATE_WAIT = 60.0
"""How long past its drawn time a late occurrence waits for a gate (``late_at_gate``)."""


async def run_trial(seed: int, config: TrialConfig) -> TrialOutcome:
    """Run the trial of ``seed``; call it inside ``virtual_time.run_seeded(..., seed)``."""
    workdir = Path(tempfile.mkdtemp(prefix="coordinator-explore-"))
    try:
        return await _Trial(seed, config, workdir).run()
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


class _Trial:
    def __init__(self, seed: int, config: TrialConfig, workdir: Path) -> None:
        self.seed = seed
        self.config = config
        self.url = f"sqlite+aiosqlite:///{workdir / 'fleet.db'}"
        self.scenario = config.scenario_of(seed)
        self.clock = VirtualClock()
        self.faults = draw_faults(seed, config.occurrences, config.faults, config.window)
        self.starts = start_times(seed, config.occurrences, config.late_share, config.late_start)
        self.key = Ed25519PrivateKey.from_private_bytes(random.Random(seed).randbytes(32))
        self.raw_settings = {
            "agent_occurrence_count": config.occurrences,
            **config.overrides,
            "trusted_keys": public_key_text(self.key.public_key()),
            "database_url": self.url,
        }
        self.settings = load_settings(**self.raw_settings)
        self.bound = liveness_bound(self.settings)
        self.violations: list[str] = []
        self.struck = 0

    def now(self) -> float:
        return self.clock.now() - self.clock.origin

    def problem(self, text: str) -> None:
        if text not in self.violations:
            self.violations.append(text)

    async def run(self) -> TrialOutcome:
        backend = InlineSQLiteBackend()
        store = await Store.open(self.url, clock=self.clock.now, backend=backend)
        engine = ScriptedEngine(accept_shutdown=self.scenario != "reject")
        try:
            async with anyio.create_task_group() as tg:
                fleet = SimulatedFleet(
                    tg,
                    store,
                    backend,
                    self.clock,
                    engine,
                    LifecycleHooks(),
                    self.raw_settings,
                    seed=self.seed,
                    write_latency=self.config.write_latency,
                )
                for number, at in self.starts.items():
                    tg.start_soon(self._start_at, fleet, store, number, at)
                tg.start_soon(self._strike, fleet)
                tg.start_soon(self._watch, store)
                await getattr(self, f"_{self.scenario}")(store, fleet)
                fleet.stop_all()
                await self._until(lambda: not fleet.live, self.now() + self.bound, None)
                tg.cancel_scope.cancel()
            await self._final_checks(store, fleet)
            events = await store.events()
            rollouts = list(reversed(await store.rollouts(limit=None)))
        finally:
            await store.close()
        origin = self.clock.origin
        return TrialOutcome(
            seed=self.seed,
            scenario=self.scenario,
            faults=self.faults,
            struck=self.struck,
            violations=tuple(self.violations),
            rollouts=tuple(f"{r.kind}:{r.status}" for r in rollouts),
            restarts=len(fleet.everyone) - self.config.occurrences,
            simulated_seconds=round(self.now(), 1),
            late=tuple((n, at) for n, at in self.starts.items() if at > START_SPREAD),
            trail=tuple(
                f"{e.event_id} {e.at - origin:.3f} {e.kind} {e.occurrence_id} {e.wave} "
                f"{sorted(e.details.items())}"
                for e in events
            ),
        )

    # -- the operator ---------------------------------------------------------------

    async def _lifecycle(self, store: Store, fleet: SimulatedFleet) -> None:
        if await self._woken(store, fleet) is None:
            return
        since = self.now()
        await store.request_shutdown("simulated maintenance window", requested_by="explore")
        shutdown = await self._finished(store, LifecycleKind.SHUTDOWN, since)
        if shutdown is None:
            return
        fleet.closing = True  # the fleet is gone: a supervisor starts nothing again
        if shutdown.status is RolloutStatus.COMPLETED:
            # Everyone serving when it was decided leaves, the ones its plan left out too.
            await self._until(
                lambda: not fleet.serving_since(shutdown.created_at),
                self.now() + self.bound,
                "leaving of every occurrence that served when the shutdown was decided",
            )

    async def _reject(self, store: Store, fleet: SimulatedFleet) -> None:
        if await self._woken(store, fleet) is None:
            return
        since = self.now()
        await store.request_shutdown("simulated maintenance window", requested_by="explore")
        if await self._finished(store, LifecycleKind.SHUTDOWN, since) is not None:
            # Long enough to act, if it would, faults over or not.
            settle = max(faults_end(self.faults) - self.now(), 0.0) + self.settings.lease_ttl
            await self.clock.sleep(settle)
            self.violations += left_without_shutdown(await store.events())

    async def _emergency(self, store: Store, fleet: SimulatedFleet) -> None:
        if await self._woken(store, fleet) is None:
            return
        await store.request_shutdown("simulated maintenance window", requested_by="explore")

        async def first_wave() -> bool:
            found = await store.rollouts(kind=LifecycleKind.SHUTDOWN, limit=1)
            return bool(found) and (
                found[0].status.is_finished or found[0].waves[0].signalled_at is not None
            )

        await self._until_async(first_wave, self.now() + self.bound, "the shutdown's first wave")
        order = new_command(
            "simulated emergency", (), now=self.clock.now(), audience=self.settings.fleet_id
        )
        signed = sign(order, self.key)
        verify = make_verifier(self.settings)
        await store.submit_emergency(signed, issued_by="explore", verify=verify)
        fleet.closing = True
        replay = await store.submit_emergency(signed, issued_by="replay", verify=verify)
        if replay.status is CommandStatus.ACCEPTED:
            self.problem("a replayed emergency command was accepted")
        await self._until(
            lambda: not fleet.live,
            self.now() + 3 * self.settings.member_ttl,
            "every occurrence acknowledging the emergency stop",
        )

    async def _woken(self, store: Store, fleet: SimulatedFleet) -> RolloutRecord | None:
        wakeup = await self._finished(store, LifecycleKind.WAKEUP, 0.0)
        # An aborted wakeup leaves the fleet waiting for an operator: a shutdown is one way.
        if wakeup is not None and wakeup.status is RolloutStatus.COMPLETED:
            serving = (OccurrenceState.WORK, OccurrenceState.FAILED)
            await self._until(
                lambda: all(r.state in serving for r in fleet.live),
                max(self.now(), faults_end(self.faults)) + self.bound,
                "every occurrence serving after the wakeup",
            )
        return wakeup

    async def _finished(
        self, store: Store, kind: LifecycleKind, since: float
    ) -> RolloutRecord | None:
        """The rollout of ``kind``, once finished; None (a liveness violation) if it did
        not finish within the bound of the faults' end or ``since``."""
        deadline = max(since, faults_end(self.faults)) + self.bound
        found: list[RolloutRecord] = []

        async def finished() -> bool:
            found[:] = await store.rollouts(kind=kind, limit=1)
            return bool(found) and found[0].status.is_finished

        if await self._until_async(finished, deadline, f"the {kind} rollout finishing"):
            return found[0]
        return None

    async def _until(self, done: Callable[[], bool], deadline: float, what: str | None) -> bool:
        async def check() -> bool:
            return done()

        return await self._until_async(check, deadline, what)

    async def _until_async(
        self, done: Callable[[], Any], deadline: float, what: str | None
    ) -> bool:
        while not await done():
            if self.now() > deadline:
                if what is not None:
                    self.problem(
                        f"liveness: no {what} by {deadline:.0f} s (faults over at "
                        f"{faults_end(self.faults):.0f} s, bound {self.bound:.0f} s)"
                    )
                return False
            await self.clock.sleep(STEP)
        return True

    # -- faults and checks ----------------------------------------------------------------

    async def _start_at(self, fleet: SimulatedFleet, store: Store, number: int, at: float) -> None:
        if self.config.late_at_gate and at > START_SPREAD:
            latest = self.clock.origin + at + LATE_AT_GATE_WAIT
            await until_gate_due(store, self.clock, latest)
            self.starts[number] = round(self.now(), 3)  # when it came up, for the outcome
        else:
            await self.clock.sleep(at)
        if not fleet.closing:
            fleet.start(number)

    async def _strike(self, fleet: SimulatedFleet) -> None:
        for fault in self.faults:
            await self.clock.sleep(fault.at - self.now())
            if await fleet.strike(fault):
                self.struck += 1

    async def _watch(self, store: Store) -> None:
        while True:
            await self.clock.sleep(CHECK_EVERY)
            for text in await fleet_violations(store, moving=True):
                self.problem(f"at {self.now():.0f} s: {text}")

    async def _final_checks(self, store: Store, fleet: SimulatedFleet) -> None:
        events = await store.events()
        found = await fleet_violations(store)
        found += await capacity_violations(store, self.settings.min_serving_fraction)
        found += claims_after_decision(events)
        faulted = {
            i.runtime.incarnation_id or ""
            for i in fleet.everyone
            if i.faults.killed or id(i) in fleet.faulted
        }
        found += healthy_holders_taken_over(events, faulted)
        found += acted_unsignalled(events)
        if not any(f.kind is FaultKind.SKEW for f in self.faults):  # times from one clock
            created = {}
            for task_id in {e.task_id for e in events if e.task_id}:
                task = await store.task(task_id)
                if task is not None:
                    created[task_id] = task.created_at
            found += slow_decisions(
                events,
                created,
                grace=self.settings.discovery_grace,
                member_ttl=self.settings.member_ttl,
                slack=3 * self.settings.poll_interval,
                faulted=faulted,
            )
        found += replays_accepted(await store.commands(limit=None))
        found += acted_after_stop(events)
        for exit in fleet.exits:
            if exit.error is None:
                continue
            if isinstance(exit.error, Superseded) and exit.faulted:
                continue  # declared dead while paused or cut off: it must stop, and did
            found.append(f"{exit.occurrence} crashed at {exit.at:.0f} s: {exit.error!r}")
        for text in found:
            self.problem(text)
