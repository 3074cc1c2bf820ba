"""``simulate``: N occurrences as concurrent tasks in one process, on a real SQLite file,
with every duration compressed by a scaled clock.

The ``emergency`` scenario stops the fleet in the middle of a shutdown rollout with a real
signed command: an Ed25519 key made for the run (never written anywhere) is trusted by
every simulated occurrence, and the command is recorded through the Store exactly as
``emergency-shutdown`` records it."""

from __future__ import annotations

import random
import shutil
import tempfile
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import anyio
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from coordinator.clock import ScaledClock
from coordinator.emergency import make_verifier
from coordinator.emergency_report import AckReport, expected_targets
from coordinator.engine import ScriptedEngine
from coordinator.hooks import LifecycleHooks, WaveContext
from coordinator.report import (
    min_available_during_shutdown,
    rollout_summary,
    serving_during_shutdown,
    timeline,
)
from coordinator.runtime import OccurrenceRuntime
from coordinator.signing import new_command, public_key_text, sign
from coordinator.sim_reads import FOLLOW_INTERVAL, SimReads
from coordinator.virtual_time import VirtualClock
from persistence import Store
from persistence.backends.sqlite_inline import InlineSQLiteBackend
from schemas import (
    CanaryGroup,
    LifecycleKind,
    OccurrenceState,
    RolloutRecord,
    RolloutStatus,
    Settings,
    kind_policy,
    load_settings,
)
from schemas.ids import validate_occurrence_id

SCENARIOS = ("lifecycle", "wakeup", "shutdown", "reject", "emergency")
DEFAULT_OCCURRENCES = 9
DEFAULT_TIME_SCALE = 15.0
"""Simulated seconds per wall-clock second: the default lifecycle (about 200 simulated
seconds with the production timings) then takes about 13 s."""
MIN_TIME_SCALE = 0.1
MAX_TIME_SCALE = 1_000.0
"""Beyond this a simulated poll interval is shorter than a real database round trip: the
occurrences would spin instead of simulating the fleet."""
MAX_OCCURRENCES = 1000  # tasks of one process on one SQLite file
SETTLE_POLLS = 200  # at 0.5 simulated seconds each
SETTLED_AFTER_WAKEUP = (OccurrenceState.WORK, OccurrenceState.FAILED)


SimClock = ScaledClock | VirtualClock


class SimulatedFailure(RuntimeError):
    """Injected by ``simulate --fail``."""


@dataclass(frozen=True)
class SimulationConfig:
    occurrences: int = DEFAULT_OCCURRENCES
    scenario: str = "lifecycle"
    fail: CanaryGroup | None = None
    time_scale: float = DEFAULT_TIME_SCALE
    database_url: str | None = None
    reason: str = "simulated maintenance window"
    emergency_reason: str = "simulated emergency: stop the fleet now"
    overrides: Mapping[str, Any] = field(default_factory=dict)
    """Settings for every simulated occurrence (e.g. shorter soaks), on top of the env."""
    seed: int | None = None
    """Run on virtual time with this seed's schedule (``run_seeded``), deterministically;
    ``time_scale`` does not apply. None: real time, compressed by ``time_scale``."""

    def __post_init__(self) -> None:
        if not 1 <= self.occurrences <= MAX_OCCURRENCES:
            raise ValueError(
                f"--occurrences must be from 1 to {MAX_OCCURRENCES} (got {self.occurrences})"
            )
        if self.scenario not in SCENARIOS:
            raise ValueError(f"unknown scenario {self.scenario!r} (choose from {SCENARIOS})")
        if not MIN_TIME_SCALE <= self.time_scale <= MAX_TIME_SCALE:  # NaN fails too
            raise ValueError(
                f"--time-scale must be from {MIN_TIME_SCALE:g} to {MAX_TIME_SCALE:g} "
                f"(got {self.time_scale})"
            )
        if self.seed is not None and self.database_url is not None:
            raise ValueError("--seed runs on a SQLite file of its own: drop --db")
        if self.fail is not None and self.scenario in ("reject", "emergency"):
            raise ValueError(f"--fail does not apply to the {self.scenario} scenario")
        if self.scenario == "emergency" and self.occurrences < 2:
            raise ValueError(
                "the emergency scenario needs at least 2 occurrences: the explorer leaves "
                "in its wave, the emergency stop catches the rest"
            )

    @property
    def failing_kind(self) -> LifecycleKind | None:
        """Which rollout ``--fail`` breaks: the shutdown for ``shutdown``, else the wakeup."""
        if self.fail is None:
            return None
        return LifecycleKind.SHUTDOWN if self.scenario == "shutdown" else LifecycleKind.WAKEUP


def _hooks(config: SimulationConfig) -> LifecycleHooks:
    def fails(ctx: WaveContext, reaching: OccurrenceState) -> bool:
        """``--fail``: the group's members fail on their way to the failing kind's target."""
        kind = config.failing_kind
        aimed = kind is not None and kind_policy(kind).target_state is reaching
        return aimed and ctx.group is config.fail

    async def on_work(ctx: WaveContext) -> None:
        if fails(ctx, OccurrenceState.WORK):
            raise SimulatedFailure(f"{ctx.occurrence_id} cannot start serving (--fail)")

    async def on_shutdown(ctx: WaveContext) -> None:
        if fails(ctx, OccurrenceState.SHUTDOWN):
            raise SimulatedFailure(f"{ctx.occurrence_id} cannot stop cleanly (--fail)")

    return LifecycleHooks(on_work=on_work, on_shutdown=on_shutdown)


async def simulate(
    config: SimulationConfig,
    *,
    on_line: Callable[[str], None] | None = None,
    on_start: Callable[[], None] | None = None,
) -> dict[str, Any]:
    """Run the scenario and return the report; ``on_line`` receives the live timeline,
    ``on_start`` is called once the database is open and the fleet about to start."""
    workdir = None
    url = config.database_url
    if url is None:
        workdir = Path(tempfile.mkdtemp(prefix="coordinator-sim-"))
        url = f"sqlite+aiosqlite:///{workdir / 'fleet.db'}"
    clock: SimClock
    if config.seed is None:
        clock, backend = ScaledClock(config.time_scale), None
    else:  # every statement on the loop's thread, so the seed alone orders events
        clock, backend = VirtualClock(), InlineSQLiteBackend()
    store = await Store.open(
        load_settings(database_url=url).database_url, clock=clock.now, backend=backend
    )
    if config.database_url is not None and (await store.members() or await store.rollouts()):
        await store.close()
        raise ValueError(
            f"--db {config.database_url} already holds a fleet; simulate needs an empty database"
        )
    if on_start is not None:
        on_start()
    engine = ScriptedEngine(accept_shutdown=config.scenario != "reject")
    # The operator's key for the emergency scenario: made for this run, kept in memory.
    key = _operator_key(config.seed) if config.scenario == "emergency" else None
    base = _fleet_settings(config, url, key)
    try:
        acks = await _run(config, base, clock, store, engine, key, on_line)
        rollouts = list(reversed(await store.rollouts(limit=None)))
        events = await store.events()
        members = await store.members()
    finally:
        await store.close()
        if workdir is not None:
            shutil.rmtree(workdir, ignore_errors=True)
    invocations = Counter(r.task_id for r in engine.requests)
    origin = clock.origin
    return {
        "occurrences": config.occurrences,
        "scenario": config.scenario,
        "fail": config.fail.value if config.fail else None,
        "time_scale": config.time_scale if config.seed is None else None,
        "seed": config.seed,
        "rollouts": [rollout_summary(r, origin=origin, invocations=invocations) for r in rollouts],
        "final_states": {m.occurrence_id: m.state.value for m in members},
        "min_available_during_shutdown": min_available_during_shutdown(rollouts, events),
        "serving_during_shutdown": serving_during_shutdown(
            rollouts, events, base.min_serving_fraction
        ),
        "emergency": acks.to_json() if acks else None,
        "emergency_lines": acks.lines() if acks else [],
        "simulated_seconds": round(clock.now() - origin, 1),
        "timeline": timeline(events, origin),
    }


def _operator_key(seed: int | None) -> Ed25519PrivateKey:
    if seed is None:
        return Ed25519PrivateKey.generate()
    return Ed25519PrivateKey.from_private_bytes(random.Random(seed).randbytes(32))


def _fleet_settings(config: SimulationConfig, url: str, key: Ed25519PrivateKey | None) -> Settings:
    """The settings of every simulated occurrence but its id, read from the environment
    once, with the run's overrides on top."""
    trusted = {"trusted_keys": public_key_text(key.public_key())} if key else {}
    return load_settings(
        **{
            "agent_occurrence_count": config.occurrences,
            **config.overrides,
            **trusted,
            "database_url": url,
            "occurrence_id": "occurrence-1",
        }
    )


async def _run(
    config: SimulationConfig,
    base: Settings,
    clock: SimClock,
    store: Store,
    engine: ScriptedEngine,
    key: Ed25519PrivateKey | None,
    on_line: Callable[[str], None] | None,
) -> AckReport | None:
    hooks = _hooks(config)
    # Only the id differs between occurrences (each one valid, checked here).
    runtimes = [
        OccurrenceRuntime(
            base.model_copy(update={"occurrence_id": validate_occurrence_id(f"occurrence-{i}")}),
            engine=engine,
            hooks=hooks,
            clock=clock,
            store=store,
        )
        for i in range(1, config.occurrences + 1)
    ]
    settings = runtimes[0].settings
    # Generous: every gate may run to its timeout; a hang fails loudly instead of forever.
    per_rollout = (
        settings.discovery_grace
        + settings.explorer_soak
        + settings.early_adopter_soak
        + 3 * settings.health_timeout
        + 60
    )
    scale = config.time_scale if config.seed is None else 1.0  # virtual: anyio's time is it
    wall_limit = 2 * per_rollout / scale + 30
    with anyio.fail_after(wall_limit):
        async with anyio.create_task_group() as tg:
            if on_line is not None:
                tg.start_soon(SimReads(store).follow, clock.origin, on_line)
            for runtime in runtimes:
                await tg.start(runtime.run)
            acks = await _play(config, store, clock, runtimes, key)
            # Let the followers print the last events, then end every task.
            await anyio.sleep(2 * FOLLOW_INTERVAL)
            for runtime in runtimes:
                runtime.stop()
            tg.cancel_scope.cancel()
    return acks


async def _play(
    config: SimulationConfig,
    store: Store,
    clock: SimClock,
    runtimes: list[OccurrenceRuntime],
    key: Ed25519PrivateKey | None,
) -> AckReport | None:
    reads = SimReads(store)
    wakeup = await reads.finished_rollout(LifecycleKind.WAKEUP, clock)
    if wakeup.status is RolloutStatus.COMPLETED:
        await _settle(clock, lambda: all(r.state in SETTLED_AFTER_WAKEUP for r in runtimes))
    if config.scenario == "wakeup":
        return None
    await store.request_shutdown(config.reason, requested_by="simulate")
    if key is not None:
        return await _emergency_stop(config, store, reads, clock, runtimes, key)
    shutdown = await reads.finished_rollout(LifecycleKind.SHUTDOWN, clock)
    if shutdown.status is RolloutStatus.COMPLETED:
        # The driver leaves last, after recording the result: wait for it too.
        await _settle(
            clock, lambda: all(r.stopped or r.state is OccurrenceState.FAILED for r in runtimes)
        )
    else:
        await _settle(
            clock, lambda: all(r.state is not OccurrenceState.SHUTTING_DOWN for r in runtimes)
        )
    return None


async def _emergency_stop(
    config: SimulationConfig,
    store: Store,
    reads: SimReads,
    clock: SimClock,
    runtimes: list[OccurrenceRuntime],
    key: Ed25519PrivateKey,
) -> AckReport:
    """Once the shutdown's explorer has left in its wave (the rollout soaks before the
    early adopters), stop the whole fleet with a signed command, recorded and verified
    the way ``emergency-shutdown`` does it, and collect every answer."""
    by_id = {r.occurrence_id: r for r in runtimes}

    def explorer_left(rollout: RolloutRecord) -> bool:
        wave = rollout.waves[0]
        return wave.signalled_at is not None and all(by_id[m].stopped for m in wave.members)

    while True:
        found = await reads.latest_rollout(LifecycleKind.SHUTDOWN)
        if found and (found.status.is_finished or explorer_left(found)):
            break
        await clock.sleep(0.5)
    settings = runtimes[0].settings
    expected = expected_targets(await store.members(), (), store.now(), settings.member_ttl)
    order = new_command(config.emergency_reason, (), now=clock.now(), audience=settings.fleet_id)
    record = await store.submit_emergency(
        sign(order, key), issued_by="simulate", verify=make_verifier(settings)
    )
    await _settle(clock, lambda: all(r.stopped for r in runtimes))
    acks = await store.emergency_acks(record.command_id)
    return AckReport(
        await store.command(record.command_id),
        tuple(acks),
        tuple(expected),
        time_scale=config.time_scale,
    )


async def _settle(clock: SimClock, done: Callable[[], bool]) -> None:
    """Wait (bounded) until every occurrence finished acting on the last signal."""
    for _ in range(SETTLE_POLLS):
        if done():
            return
        await clock.sleep(0.5)
