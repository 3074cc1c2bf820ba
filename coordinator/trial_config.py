"""What one seeded trial of the deterministic simulator is (``TrialConfig``): its fleet,
faults, timings and start times, all drawn from the seed; and what it came to
(``TrialOutcome``). The trial itself runs in ``exploration``."""

from __future__ import annotations

import random
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from coordinator.faults import ALL_FAULTS, Fault, FaultKind, FaultWindow
from schemas import Settings

SCENARIOS = ("lifecycle", "reject", "emergency")

EXPLORE_TIMINGS: Mapping[str, Any] = {
    "explorer_soak": 5.0,
    "early_adopter_soak": 5.0,
    "discovery_grace": 40.0,
    "health_timeout": 60.0,
    "health_poll": 2.0,
}
"""Shorter soaks and gates than production (more lifecycles per second of CPU); the poll,
heartbeat, member TTL and lease stay the defaults, so every race they bound is the real one.
Discovery's grace is longer than a member's TTL, so a discovery that wrongly starts again
on a takeover is told apart from a decider waiting for members it cannot judge yet; a
fleet that starts whole never waits for it."""


def liveness_bound(settings: Settings) -> float:
    """The most a rollout may take to finish once the faults are over: a dead holder's
    lease runs out and stays free one more lease before anyone else takes it, a dead
    member is known dead after its TTL, discovery waits its grace, and each of the three
    waves soaks and may wait its whole health timeout; ten polls for the steps between."""
    s = settings
    return (
        2 * s.lease_ttl
        + s.member_ttl
        + s.discovery_grace
        + s.explorer_soak
        + s.early_adopter_soak
        + 3 * s.health_timeout
        + 10 * s.poll_interval
    )


START_SPREAD = 3.0
"""Simulated seconds over which a fleet's processes come up in half of the trials (a
deployment is not one instant: the first to register waits for the others); in the other
half every process starts at the same instant (a host's boot), and all race."""
LATE_START = (20.0, 80.0)
LATE_SHARE = 1 / 3
"""The share of trials in which one occurrence comes up late: before the wakeup is
decided (the decider waits out discovery for it), or after (it joins late)."""


def start_times(
    seed: int,
    occurrences: int,
    late_share: float = LATE_SHARE,
    late_start: tuple[float, float] = LATE_START,
) -> dict[int, float]:
    """When each occurrence (by number) is started, drawn from the seed's own stream."""
    draw = random.Random(f"starts-{seed}")
    spread = START_SPREAD if draw.random() < 0.5 else 0.0
    starts = {n: round(draw.uniform(0.0, spread), 3) for n in range(1, occurrences + 1)}
    if draw.random() < late_share:
        late = draw.uniform(*late_start)
        # With a fleet started at one instant, on a whole second: it then polls at the
        # same instants as the others, and the seeded schedule orders their races.
        starts[draw.randint(1, occurrences)] = round(late, 3) if spread else float(round(late))
    return starts


@dataclass(frozen=True)
class TrialConfig:
    occurrences: int = 9
    faults: tuple[FaultKind, ...] = ALL_FAULTS
    window: FaultWindow = field(default_factory=FaultWindow)
    scenario: str | None = None
    """None: drawn from the seed among ``SCENARIOS``."""
    overrides: Mapping[str, Any] = field(default_factory=lambda: dict(EXPLORE_TIMINGS))
    late_share: float = LATE_SHARE
    late_start: tuple[float, float] = LATE_START
    """How often one occurrence comes up late, and when (simulated seconds)."""
    late_at_gate: bool = False
    """The late occurrence comes up instead the moment the wakeup's gate before its last
    wave falls due (that wave's soak ends): the driver then reads the fleet to judge it and
    signal the last wave, the step a join to the last wave races (see ``late_joiners``)."""
    write_latency: tuple[float, float] = (0.0, 0.0)
    """Each write transaction of every occurrence starts after a delay drawn from this
    range (simulated seconds; none by default): the gap between a read and the write
    computed from it, where other processes' commits land."""

    def __post_init__(self) -> None:
        if self.occurrences < 2:
            raise ValueError("a trial needs at least 2 occurrences")
        if self.scenario is not None and self.scenario not in SCENARIOS:
            raise ValueError(f"unknown scenario {self.scenario!r} (choose from {SCENARIOS})")

    def scenario_of(self, seed: int) -> str:
        return self.scenario or random.Random(f"scenario-{seed}").choice(SCENARIOS)

    def replay_command(self, seed: int) -> str:
        faults = ",".join(self.faults) if self.faults else "none"
        words = [
            "python -m coordinator simulate --explore",
            f"--seed {seed}",
            f"--occurrences {self.occurrences}",
            f"--faults {faults}",
        ]
        if self.scenario:
            words.append(f"--scenario {self.scenario}")
        return " ".join(words)


@dataclass(frozen=True)
class TrialOutcome:
    seed: int
    scenario: str
    faults: tuple[Fault, ...]
    struck: int
    violations: tuple[str, ...]
    rollouts: tuple[str, ...]
    """``kind:status`` of each rollout, oldest first."""
    restarts: int
    simulated_seconds: float
    trail: tuple[str, ...] = ()
    """The audit trail, one line per event (what ``same seed, same run`` compares)."""
    late: tuple[tuple[int, float], ...] = ()
    """Occurrences that came up late, with when."""

    @property
    def ok(self) -> bool:
        return not self.violations
