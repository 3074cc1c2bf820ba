#!/usr/bin/env python3
"""Chaos trials: real `run` processes, kill -9 and SIGSTOP at random moments, invariants
checked from the audit trail after every trial.

Each trial starts M occurrences on a fresh database, lets them wake up, requests a
coordinated shutdown, and meanwhile strikes F times: a random occurrence, or on purpose
the current decider or rollout driver, is killed (kill -9) or paused (SIGSTOP, resumed
after its lease ran out). Afterwards the audit trail must show one decision per shared
task, waves in order, nothing repeated or skipped and nobody leaving before their wave.

    python scripts/chaos.py --trials 5 --occurrences 9
    python scripts/chaos.py --trials 3 --occurrences 30 --db postgresql+asyncpg://postgres@127.0.0.1/test

With a PostgreSQL URL every trial creates (and drops) its own database on that server.
Outcomes per rollout: completed, aborted (a wave failed its gate: the FSD's rules),
orphaned (every occurrence was struck down before it finished: any occurrence started
later takes it over) or stalled (live occurrences but no progress: a liveness bug).
Exit status 1 if any trial violated an invariant or stalled.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from scratch_db import scratch_database

from coordinator.audit_check import capacity_violations, fleet_violations
from persistence import Store
from schemas import EventKind, LifecycleKind, RolloutRecord

TIMINGS = {
    "COORDINATOR_POLL_INTERVAL": "0.2",
    "COORDINATOR_HEARTBEAT_INTERVAL": "0.5",
    "COORDINATOR_MEMBER_TTL": "4",
    "COORDINATOR_LEASE_TTL": "2",
    "COORDINATOR_EXPLORER_SOAK": "2",
    "COORDINATOR_EARLY_ADOPTER_SOAK": "2",
    "COORDINATOR_HEALTH_POLL": "0.25",
    "COORDINATOR_HEALTH_TIMEOUT": "8",
    "COORDINATOR_DISCOVERY_GRACE": "15",
}
LEASE_TTL = float(TIMINGS["COORDINATOR_LEASE_TTL"])
POLL_INTERVAL = float(TIMINGS["COORDINATOR_POLL_INTERVAL"])
PHASE_DEADLINE = 120.0  # seconds a rollout may take before the trial reports it stalled


@dataclass
class Fault:
    at: float  # wall time
    kind: str  # "kill" or "pause"
    target: str
    role: str  # "decider", "driver" or "member"


@dataclass
class Trial:
    number: int
    faults: list[Fault] = field(default_factory=list)
    decider_takeovers: int = 0
    driver_takeovers: int = 0
    takeover_seconds: list[float] = field(default_factory=list)
    outcomes: dict[str, str] = field(default_factory=dict)
    violations: list[str] = field(default_factory=list)


class Processes:
    def __init__(self, workdir: Path, env: dict[str, str]) -> None:
        self.workdir, self.env = workdir, env
        self.running: dict[str, subprocess.Popen[bytes]] = {}
        self.paused: set[str] = set()
        self._logs: list[IO[bytes]] = []

    def start(self, occurrence_id: str) -> None:
        log = (self.workdir / f"{occurrence_id}.log").open("wb")
        self._logs.append(log)
        self.running[occurrence_id] = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "coordinator",
                "run",
                "--occurrence-id",
                occurrence_id,
                "--log-json",
            ],
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )

    def alive(self) -> list[str]:
        return [k for k, p in self.running.items() if p.poll() is None and k not in self.paused]

    def stop_all(self) -> None:
        for name, process in self.running.items():
            if name in self.paused:
                process.send_signal(signal.SIGCONT)
            if process.poll() is None:
                process.kill()
            process.wait(timeout=30)
        for log in self._logs:
            log.close()


async def current_roles(store: Store) -> dict[str, str]:
    """Who decides or drives right now (occurrence id -> role)."""
    view = await store.fleet_view(86400)
    roles = {t.claimed_by: "decider" for t in view.open_tasks if t.claimed_by}
    roles.update({r.driver_id: "driver" for r in view.running if r.driver_id})
    return roles


async def strike(procs: Processes, store: Store, rng: random.Random, trial: Trial) -> None:
    alive = procs.alive()
    if len(alive) <= 1:
        return  # keep one occurrence, or no rollout could ever finish
    roles = {k: v for k, v in (await current_roles(store)).items() if k in alive}
    # Half the strikes go for whoever decides or drives now: the dangerous moments.
    target = rng.choice(sorted(roles)) if roles and rng.random() < 0.5 else rng.choice(alive)
    kind = "pause" if rng.random() < 0.4 else "kill"
    fault = Fault(time.time(), kind, target, roles.get(target, "member"))
    trial.faults.append(fault)
    process = procs.running[target]
    if kind == "kill":
        process.kill()
        return
    process.send_signal(signal.SIGSTOP)
    procs.paused.add(target)
    await asyncio.sleep(LEASE_TTL + rng.uniform(0.5, 2.0))  # long enough to lose leases
    process.send_signal(signal.SIGCONT)
    procs.paused.discard(target)


async def phase(
    kind: LifecycleKind,
    procs: Processes,
    store: Store,
    rng: random.Random,
    trial: Trial,
    strikes: int,
) -> RolloutRecord | None:
    """Wait for the newest `kind` rollout to finish, striking at random moments meanwhile."""
    moments = sorted(rng.uniform(0.2, 8.0) for _ in range(strikes))
    started = time.monotonic()
    while time.monotonic() - started < PHASE_DEADLINE:
        while moments and time.monotonic() - started >= moments[0]:
            moments.pop(0)
            await strike(procs, store, rng, trial)
        found = await store.rollouts(kind=kind, limit=1)
        if found and found[0].status.is_finished and not moments:
            return found[0]
        if not procs.alive() and not procs.paused:
            return found[0] if found else None
        await asyncio.sleep(0.1)
    return None


def outcome(rollout: RolloutRecord | None, procs: Processes) -> str:
    """The rollout's status; "orphaned" if it could not finish because every occurrence
    was struck down, "stalled" if live occurrences made no progress (a liveness bug)."""
    if rollout is not None and rollout.status.is_finished:
        return rollout.status.value
    return "orphaned" if not procs.alive() else "stalled"


async def run_trial(number: int, args: argparse.Namespace, rng: random.Random) -> Trial:
    trial = Trial(number)
    workdir = Path(tempfile.mkdtemp(prefix=f"chaos-{number}-"))
    async with scratch_database(args.db, workdir) as url:
        await play_trial(trial, url, workdir, args, rng)
    unfinished = any(o in ("stalled", "orphaned") for o in trial.outcomes.values())
    if (trial.violations or unfinished) and not args.keep:
        print(f"  logs of trial {number} kept in {workdir}")
    elif not args.keep:
        shutil.rmtree(workdir, ignore_errors=True)
    return trial


async def play_trial(
    trial: Trial, url: str, workdir: Path, args: argparse.Namespace, rng: random.Random
) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("COORDINATOR_")}
    env.update(TIMINGS, COORDINATOR_DATABASE_URL=url, AGENT_OCCURRENCE_COUNT=str(args.occurrences))
    procs = Processes(workdir, env)
    store = await Store.open(url)
    try:
        for i in range(1, args.occurrences + 1):
            procs.start(f"occurrence-{i}")
        strikes = args.faults // 2
        wakeup = await phase(LifecycleKind.WAKEUP, procs, store, rng, trial, strikes)
        trial.outcomes["wakeup"] = outcome(wakeup, procs)
        await store.request_shutdown("chaos trial", "chaos")
        shutdown = await phase(
            LifecycleKind.SHUTDOWN, procs, store, rng, trial, args.faults - strikes
        )
        trial.outcomes["shutdown"] = outcome(shutdown, procs)
        await asyncio.sleep(1.0)  # let the last occurrences record their leaving
    finally:
        procs.stop_all()
    try:
        trial.violations = await fleet_violations(store) + await capacity_violations(store)
        events = await store.events()
        for e in events:
            if "took_over_from" not in e.details:
                continue
            if e.kind == EventKind.TASK_CLAIMED:
                trial.decider_takeovers += 1
            elif e.kind == EventKind.DRIVER_ACQUIRED:
                trial.driver_takeovers += 1
                struck = [f.at for f in trial.faults if f.target == e.details["took_over_from"]]
                if struck and e.at >= struck[-1]:
                    trial.takeover_seconds.append(e.at - struck[-1])
    finally:
        await store.close()


def row(trial: Trial) -> str:
    kills = sum(f.kind == "kill" for f in trial.faults)
    pauses = len(trial.faults) - kills
    roles = ",".join(sorted({f.role for f in trial.faults})) or "-"
    return (
        f"{trial.number:>5}  {kills:>5}  {pauses:>6}  {roles:<22} {trial.decider_takeovers:>7}"
        f"  {trial.driver_takeovers:>6}  {trial.outcomes.get('wakeup', '-'):<9}"
        f" {trial.outcomes.get('shutdown', '-'):<9} {len(trial.violations):>10}"
    )


async def main_async(args: argparse.Namespace) -> int:
    rng = random.Random(args.seed)
    backend = "postgresql" if args.db and args.db.startswith("postgres") else "sqlite"
    print(
        f"{args.trials} trials x {args.occurrences} occurrences on {backend}, "
        f"{args.faults} faults each, seed {args.seed}, LEASE_TTL {LEASE_TTL:g} s"
    )
    print(
        " trial  kills  pauses  struck roles           deciders  drivers  wakeup    "
        "shutdown  violations"
    )
    trials = []
    for number in range(1, args.trials + 1):
        trial = await run_trial(number, args, rng)
        trials.append(trial)
        print(row(trial), flush=True)
        for violation in trial.violations:
            print(f"        VIOLATION: {violation}")
    faults = [f for t in trials for f in t.faults]
    takeovers = [s for t in trials for s in t.takeover_seconds]
    violations = sum(len(t.violations) for t in trials)
    print(
        f"\ntrials {len(trials)}, kills {sum(f.kind == 'kill' for f in faults)}, "
        f"pauses {sum(f.kind == 'pause' for f in faults)}, "
        f"decider takeovers {sum(t.decider_takeovers for t in trials)}, "
        f"driver takeovers {sum(t.driver_takeovers for t in trials)}, violations {violations}"
    )
    if takeovers:
        print(
            f"driver takeover after a strike: median {statistics.median(takeovers):.2f} s, "
            f"max {max(takeovers):.2f} s (LEASE_TTL + POLL_INTERVAL = "
            f"{LEASE_TTL + POLL_INTERVAL:g} s)"
        )
    stalled = sum("stalled" in t.outcomes.values() for t in trials)
    if stalled:
        print(f"STALLED trials: {stalled}")
    return 1 if violations or stalled else 0


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__.splitlines()[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--trials", type=int, default=5)
    parser.add_argument("--occurrences", type=int, default=9)
    parser.add_argument("--faults", type=int, default=4, help="strikes per trial (default 4)")
    parser.add_argument("--seed", type=int, default=1, help="random seed (default 1)")
    parser.add_argument("--db", help="SQLite (default, a temp file per trial) or PostgreSQL URL")
    parser.add_argument("--keep", action="store_true", help="keep every trial's logs")
    return asyncio.run(main_async(parser.parse_args()))


if __name__ == "__main__":
    raise SystemExit(main())
