#!/usr/bin/env python3
"""Signal-to-act latency: how long after its wave is signalled a member acts.

Starts M real `run` processes with the default POLL_INTERVAL (1 s) and short soaks, runs
a wakeup and a coordinated shutdown, and reads the latencies from the audit trail: for
every member, the time from its wave's `wave_signalled` event to its own state change.
SQLite wakes members by polling; PostgreSQL also by LISTEN/NOTIFY.

    python scripts/bench_signal.py --occurrences 9
    python scripts/bench_signal.py --occurrences 9 --db postgresql+asyncpg://postgres@127.0.0.1/test
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from scratch_db import scratch_database

from persistence import Store
from schemas import EventKind, LifecycleKind

TIMINGS = {
    "COORDINATOR_EXPLORER_SOAK": "2",
    "COORDINATOR_EARLY_ADOPTER_SOAK": "2",
    "COORDINATOR_HEALTH_POLL": "0.5",
    "COORDINATOR_DISCOVERY_GRACE": "30",
}


async def finished(store: Store, kind: LifecycleKind, deadline: float = 180.0) -> None:
    loop = asyncio.get_running_loop()
    end = loop.time() + deadline
    while loop.time() < end:
        found = await store.rollouts(kind=kind, limit=1)
        if found and found[0].status.is_finished:
            return
        await asyncio.sleep(0.2)
    raise TimeoutError(f"the {kind.value} rollout did not finish in {deadline:g} s")


async def bench(url: str, occurrences: int, workdir: Path) -> list[float]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("COORDINATOR_")}
    env.update(TIMINGS, COORDINATOR_DATABASE_URL=url, AGENT_OCCURRENCE_COUNT=str(occurrences))
    store = await Store.open(url)
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "coordinator", "run", "--occurrence-id", f"occurrence-{i}"],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for i in range(1, occurrences + 1)
    ]
    try:
        await finished(store, LifecycleKind.WAKEUP)
        await store.request_shutdown("bench", "bench")
        await finished(store, LifecycleKind.SHUTDOWN)
        for p in procs:
            p.wait(timeout=60)
        events = await store.events()
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
        await store.close()
    signalled = {(e.rollout_id, e.wave): e.at for e in events if e.kind == EventKind.WAVE_SIGNALLED}
    return [
        e.at - signalled[(e.rollout_id, e.wave)]
        for e in events
        if e.kind == EventKind.OCCURRENCE_STATE_CHANGED
        and e.wave is not None
        and e.details.get("to") in ("work", "shutting_down")
        and (e.rollout_id, e.wave) in signalled
    ]


async def main_async(args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory(prefix="bench-signal-") as tmp:
        async with scratch_database(args.db, Path(tmp)) as url:
            latencies = sorted(await bench(url, args.occurrences, Path(tmp)))
    postgres = bool(args.db and args.db.startswith("postgres"))
    backend = "postgresql (LISTEN/NOTIFY + polling)" if postgres else "sqlite (polling)"
    ms = [x * 1000 for x in latencies]
    print(f"{args.occurrences} occurrences, {backend}, POLL_INTERVAL 1 s: {len(ms)} members acted")
    print(
        f"signal-to-act ms: p50 {statistics.median(ms):.0f}  "
        f"p95 {ms[int(0.95 * (len(ms) - 1))]:.0f}  max {ms[-1]:.0f}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--occurrences", type=int, default=9)
    parser.add_argument("--db", help="a PostgreSQL server URL (default: a temporary SQLite file)")
    asyncio.run(main_async(parser.parse_args()))


if __name__ == "__main__":
    main()
