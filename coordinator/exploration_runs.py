"""Many seeded trials (``simulate --explore``): each seed one trial, run in this process or
spread over worker processes, and the table of what came out."""

from __future__ import annotations

import os
import resource
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field, replace

from coordinator.exploration import run_trial
from coordinator.faults import draw_faults
from coordinator.trial_config import TrialConfig, TrialOutcome
from coordinator.virtual_time import Livelock, run_seeded


def one_trial(seed: int, config: TrialConfig) -> TrialOutcome:
    """The trial of ``seed``, on its own virtual-time loop; a livelock is a violation (of
    liveness: the trial's own checks wait for a time that never comes)."""
    try:
        return run_seeded(lambda: run_trial(seed, config), seed)
    except Livelock as exc:
        return TrialOutcome(
            seed=seed,
            scenario=config.scenario_of(seed),
            faults=draw_faults(seed, config.occurrences, config.faults, config.window),
            struck=0,
            violations=(f"liveness: livelock, {exc}",),
            rollouts=(),
            restarts=0,
            simulated_seconds=round(exc.at, 1),
        )


def _quiet_trial(seed: int, config: TrialConfig) -> TrialOutcome:
    # A worker process: the trail is kept in the parent only for failures.
    outcome = one_trial(seed, config)
    return outcome if not outcome.ok else _without_trail(outcome)


def _without_trail(outcome: TrialOutcome) -> TrialOutcome:
    return replace(outcome, trail=())


def trials(seeds: Iterable[int], config: TrialConfig, jobs: int = 1) -> Iterator[TrialOutcome]:
    """The outcome of each seed, in seed order (``jobs`` worker processes, or this one)."""
    if jobs <= 1:
        for seed in seeds:
            yield one_trial(seed, config)
        return
    with ProcessPoolExecutor(max_workers=jobs) as pool:
        seeds = list(seeds)
        chunk = max(1, min(16, len(seeds) // (jobs * 4)))
        yield from pool.map(_quiet_trial, seeds, [config] * len(seeds), chunksize=chunk)


@dataclass
class Tally:
    """What a run of trials found so far."""

    config: TrialConfig
    started: float = field(default_factory=time.perf_counter)
    cpu_started: float = field(default_factory=lambda: _cpu_seconds())
    trials: int = 0
    by_scenario: Counter[str] = field(default_factory=Counter)
    failed_by_scenario: Counter[str] = field(default_factory=Counter)
    rollouts: Counter[str] = field(default_factory=Counter)
    faults: Counter[str] = field(default_factory=Counter)
    struck: int = 0
    restarts: int = 0
    simulated: float = 0.0
    failures: list[TrialOutcome] = field(default_factory=list)

    def add(self, outcome: TrialOutcome) -> None:
        self.trials += 1
        self.by_scenario[outcome.scenario] += 1
        self.rollouts.update(outcome.rollouts)
        self.faults.update(str(f.kind) for f in outcome.faults)
        self.struck += outcome.struck
        self.restarts += outcome.restarts
        self.simulated += outcome.simulated_seconds
        if not outcome.ok:
            self.failed_by_scenario[outcome.scenario] += 1
            self.failures.append(outcome)

    @property
    def wall(self) -> float:
        return time.perf_counter() - self.started

    @property
    def cpu(self) -> float:
        """CPU seconds of this process and of the finished worker processes."""
        return _cpu_seconds() - self.cpu_started

    def cpu_rate(self) -> float:
        """Trials per CPU minute: what a core does, whatever else runs on the machine."""
        return self.trials / max(self.cpu, 1e-9) * 60

    def rate(self, jobs: int) -> float:
        """Trials per minute per core (each trial is one lifecycle with its faults)."""
        return self.trials / max(self.wall, 1e-9) * 60 / max(jobs, 1)

    def progress(self, jobs: int) -> str:
        failed = sum(self.failed_by_scenario.values())
        return (
            f"{self.trials} trials, {failed} failed, {self.wall:.0f} s, "
            f"{self.rate(jobs):.0f} trials/min/core"
        )

    def table(self, jobs: int) -> list[str]:
        lines = [f"{'scenario':<12}{'trials':>8}{'passed':>8}{'failed':>8}"]
        for scenario, count in sorted(self.by_scenario.items()):
            failed = self.failed_by_scenario[scenario]
            lines.append(f"{scenario:<12}{count:>8}{count - failed:>8}{failed:>8}")
        lines.append("")
        lines.append("rollouts: " + _counts(self.rollouts))
        lines.append(
            f"faults drawn: {_counts(self.faults) or 'none'}; struck {self.struck} "
            f"(the rest fell on no one running, or after the fleet was done); "
            f"{self.restarts} restarts"
        )
        lines.append(
            f"simulated {self.simulated:.0f} s in {self.wall:.1f} s of wall time with "
            f"{jobs} {'process' if jobs == 1 else 'processes'}: "
            f"{self.rate(jobs):.0f} trials/min/core by the wall clock, "
            f"{self.cpu_rate():.0f} per CPU minute ({self.cpu:.1f} CPU s)"
        )
        for outcome in self.failures:
            lines.append("")
            lines.append(f"seed {outcome.seed} ({outcome.scenario}) broke an invariant:")
            lines += [f"  {v}" for v in outcome.violations]
            lines += [f"  fault: {f.describe()}" for f in outcome.faults]
            lines.append(f"  replay: {self.config.replay_command(outcome.seed)}")
        return lines


def _cpu_seconds() -> float:
    """User and system CPU of this process and its reaped children (the workers, once a
    pool has ended: a running pool's are counted when it is done)."""
    mine = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return mine.ru_utime + mine.ru_stime + children.ru_utime + children.ru_stime


def _counts(counter: Counter[str]) -> str:
    return ", ".join(f"{n} {k}" for k, n in sorted(counter.items()))


def default_jobs() -> int:
    return min(2, os.cpu_count() or 1)


def explore(
    seeds: range,
    config: TrialConfig,
    *,
    jobs: int = 1,
    on_progress: Callable[[Tally], None] | None = None,
    every: int = 100,
) -> Tally:
    tally = Tally(config)
    for outcome in trials(seeds, config, jobs):
        tally.add(outcome)
        if on_progress is not None and tally.trials % every == 0:
            on_progress(tally)
    return tally
