#!/usr/bin/env python3
"""Race N real processes for one shared task, R rounds, and print winners and latency.

Each round the bench opens a shutdown task and releases every process at once (a "go"
file); each process claims it with the Store's single conditional UPDATE and reports
whether it won and how long the claim took. The winner closes the round by recording a
rejection. Exactly-once means one winner per round, every round.

    python scripts/bench_claims.py --processes 16 --rounds 20
    python scripts/bench_claims.py --db postgresql+asyncpg://postgres@127.0.0.1/test
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from scratch_db import scratch_database

RACER = r"""
import asyncio, json, sys, time
from pathlib import Path
from persistence import Store
from schemas import Decision, LifecycleKind, PlannedWave, RolloutPlan, CanaryGroup, Verdict

async def main(url, me, workdir, rounds):
    from coordinator.logs import configure_logging
    configure_logging("warning")  # to stderr: stdout carries the results
    store = await Store.open(url)
    work = Path(workdir)
    for r in range(int(rounds)):
        go = work / f"go-{r}"
        while not go.exists():
            await asyncio.sleep(0.002)
        task_id = go.read_text()
        started = time.perf_counter()
        claim = await store.claim_task(task_id, me, 30.0)
        took = time.perf_counter() - started
        if claim is not None:
            plan = RolloutPlan(kind=LifecycleKind.SHUTDOWN, health_timeout=1, health_poll=1,
                expected_occurrences=None, discovered_occurrences=1,
                waves=tuple(PlannedWave(group=g, members=(me,) if g is CanaryGroup.EXPLORER
                            else (), soak=0) for g in CanaryGroup))
            decision = Decision(verdict=Verdict.REJECT, reason="bench", decided_by=me,
                                decided_at=time.time())
            await store.record_decision(claim, decision, plan, driver=None, lease_ttl=1)
        print(json.dumps({"round": r, "won": claim is not None, "seconds": took}), flush=True)
    await store.close()

asyncio.run(main(*sys.argv[1:]))
"""


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def bench(url: str, processes: int, rounds: int, workdir: Path) -> int:
    from persistence import Store

    store = await Store.open(url)
    racers = [
        subprocess.Popen(
            [sys.executable, "-c", RACER, url, f"p{i}", str(workdir), str(rounds)],
            stdout=subprocess.PIPE,
            text=True,
        )
        for i in range(processes)
    ]
    print(f"{processes} processes, {rounds} rounds, {store.backend}", flush=True)
    await asyncio.sleep(2.0)  # let every racer connect before the first round
    for r in range(rounds):
        task, created = await store.request_shutdown(f"bench round {r}", "bench")
        assert created, "the previous round was not closed"
        (workdir / f"go-{r}").write_text(task.task_id)
        while (await store.task(task.task_id)).status.value != "COMPLETED":  # type: ignore[union-attr]
            await asyncio.sleep(0.01)
    await store.close()
    lines = [line for p in racers for line in p.communicate()[0].splitlines()]
    results = [json.loads(line) for line in lines if line.startswith("{")]
    for line in lines:
        if not line.startswith("{"):
            print("racer:", line)
    winners = [sum(1 for x in results if x["round"] == r and x["won"]) for r in range(rounds)]
    latencies = [x["seconds"] * 1000 for x in results]
    bad = [r for r, n in enumerate(winners) if n != 1]
    print(f"rounds with exactly one winner: {rounds - len(bad)}/{rounds}")
    if bad:
        print(f"VIOLATION: rounds {bad} had {[winners[r] for r in bad]} winners")
    print(
        f"claim latency ms: p50 {statistics.median(latencies):.2f}  "
        f"p95 {percentile(latencies, 0.95):.2f}  p99 {percentile(latencies, 0.99):.2f}  "
        f"max {max(latencies):.2f}"
    )
    return 1 if bad else 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--processes", type=int, default=16)
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument(
        "--db", help="a PostgreSQL server URL (a scratch database is made on it); default SQLite"
    )
    args = parser.parse_args()

    async def run(folder: Path) -> int:
        async with scratch_database(args.db, folder) as url:
            return await bench(url, args.processes, args.rounds, folder)

    with tempfile.TemporaryDirectory(prefix="bench-claims-") as tmp:
        started = time.perf_counter()
        code = asyncio.run(run(Path(tmp)))
        print(f"wall time: {time.perf_counter() - started:.1f} s")
    return code


if __name__ == "__main__":
    raise SystemExit(main())
