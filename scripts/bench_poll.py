#!/usr/bin/env python3
"""Measure what one poll costs: the fleet view every occurrence reads each POLL_INTERVAL.

Builds a fleet of N registered occurrences with a completed wakeup rollout and a running
shutdown rollout, then times R fleet views (wall and CPU per view) and R heartbeats.

    python scripts/bench_poll.py --occurrences 9 --repeat 2000
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time


async def build_fleet(url: str, occurrences: int):  # type: ignore[no-untyped-def]
    from coordinator.policy.planning import build_plan
    from persistence import Store
    from schemas import Decision, LifecycleKind, Verdict, load_settings

    store = await Store.open(url)
    ids = [f"occurrence-{i}" for i in range(1, occurrences + 1)]
    members = [await store.register(i, host="bench", pid=1, protocol_version=1) for i in ids]
    settings = load_settings(database_url=url)
    for kind, reason in ((LifecycleKind.WAKEUP, None), (LifecycleKind.SHUTDOWN, "bench")):
        if kind is LifecycleKind.WAKEUP:
            task = await store.open_wakeup_task(ids[0], 86400)
        else:
            task, _ = await store.request_shutdown("bench", "bench")
        assert task is not None
        claim = await store.claim_task(task.task_id, ids[0], 60)
        assert claim is not None
        plan = build_plan(kind, ids[0], ids, settings, request_reason=reason)
        decision = Decision(
            verdict=Verdict.ACCEPT, reason="bench", decided_by=ids[0], decided_at=time.time()
        )
        await store.record_decision(claim, decision, plan, driver=ids[-1], lease_ttl=60)
    return store, members


def summary(label: str, samples: list[float], cpu: float) -> str:
    ordered = sorted(samples)
    p99 = ordered[int(0.99 * (len(ordered) - 1))]
    return (
        f"{label:<11} p50 {statistics.median(samples) * 1000:6.2f} ms  "
        f"p99 {p99 * 1000:6.2f} ms  CPU {cpu / len(samples) * 1000:6.2f} ms/op"
    )


async def bench(occurrences: int, repeat: int) -> None:
    with tempfile.TemporaryDirectory(prefix="bench-poll-") as tmp:
        url = f"sqlite+aiosqlite:///{tmp}/fleet.db"
        store, members = await build_fleet(url, occurrences)
        try:
            for label, operation in (
                ("fleet view", lambda: store.fleet_view(86400)),
                ("heartbeat", lambda: store.heartbeat(members[0])),
            ):
                for _ in range(20):  # warm the pool and the statement cache
                    await operation()
                samples: list[float] = []
                cpu_start = time.process_time()
                for _ in range(repeat):
                    started = time.perf_counter()
                    await operation()
                    samples.append(time.perf_counter() - started)
                print(summary(label, samples, time.process_time() - cpu_start))
        finally:
            await store.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--occurrences", type=int, default=9)
    parser.add_argument("--repeat", type=int, default=2000)
    args = parser.parse_args()
    print(f"{args.occurrences} occurrences, {args.repeat} operations each (SQLite file)")
    asyncio.run(bench(args.occurrences, args.repeat))


if __name__ == "__main__":
    main()
