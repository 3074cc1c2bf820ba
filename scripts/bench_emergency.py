#!/usr/bin/env python3
"""Emergency stop latency: cancel-to-ack, from a signed command's recording to each
targeted occurrence's acknowledgement, with real `run` processes.

Each round starts M processes on a fresh database with the default POLL_INTERVAL (1 s)
and waits until the fleet serves. Then it stops a few occurrences one at a time (a single
target: how fast one occurrence hears), and the rest with one whole-fleet command (the
fan-out: every occurrence verifies and acknowledges at once). SQLite occurrences hear of a
command through the wake file every commit touches; PostgreSQL ones through NOTIFY.

By default the command is verified when it is recorded, as `emergency-shutdown` does where
COORDINATOR_TRUSTED_KEYS is set and as the control API always does. `--settled-by
occurrences` records it unverified, as `emergency-shutdown` does without trusted keys:
the first occurrence to see it then records the verdict, and every target reads it.

    python scripts/bench_emergency.py --occurrences 9 --rounds 3
    python scripts/bench_emergency.py --occurrences 50 --db postgresql+asyncpg://postgres@127.0.0.1/test

Latencies are the database's own timestamps (``emergency_acks.latency``), so the figures
do not depend on this script's polling.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from scratch_db import scratch_database
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from coordinator.cli.options import EXIT_EMERGENCY
from coordinator.emergency import make_verifier
from coordinator.signing import generate_key_pair, load_private_key, new_command, sign
from persistence import Store
from persistence.emergency import Verifier
from schemas import (
    DEFAULT_FLEET_ID,
    AckVerdict,
    LifecycleKind,
    OccurrenceState,
    RolloutStatus,
    load_settings,
)

TIMINGS = {
    "COORDINATOR_EXPLORER_SOAK": "1",
    "COORDINATOR_EARLY_ADOPTER_SOAK": "1",
    "COORDINATOR_HEALTH_POLL": "0.5",
    "COORDINATOR_DISCOVERY_GRACE": "120",
}
ACK_POLL = 0.02  # seconds between reads of the acknowledgements
ACK_PATIENCE = 30.0  # seconds an acknowledgement may take before it counts as missing


@dataclass
class Results:
    single: list[float] = field(default_factory=list)
    fleet: list[float] = field(default_factory=list)
    missing: int = 0
    refused: int = 0
    bad_exits: list[int] = field(default_factory=list)


async def wait_serving(store: Store, count: int, deadline: float) -> None:
    end = time.monotonic() + deadline
    while time.monotonic() < end:
        rollouts = await store.rollouts(kind=LifecycleKind.WAKEUP, limit=1)
        members = await store.members()
        serving = sum(m.state is OccurrenceState.WORK for m in members)
        if rollouts and rollouts[0].status is RolloutStatus.COMPLETED and serving == count:
            return
        await asyncio.sleep(0.2)
    raise TimeoutError(f"the fleet of {count} was not serving after {deadline:g} s")


async def stop(
    store: Store,
    key_path: Path,
    targets: list[str],
    expected: list[str],
    results: Results,
    verify: Verifier | None,
) -> list[float]:
    """Sign and record a stop for ``targets`` (none: the whole fleet), then wait for the
    ``expected`` occurrences' acknowledgements."""
    order = new_command("bench", targets, now=time.time(), audience=DEFAULT_FLEET_ID)
    signed = sign(order, load_private_key(key_path))
    record = await store.submit_emergency(signed, issued_by="bench", verify=verify)
    end = time.monotonic() + ACK_PATIENCE
    acks = []
    while time.monotonic() < end:
        acks = await store.emergency_acks(record.command_id)
        if len(acks) >= len(expected):
            break
        await asyncio.sleep(ACK_POLL)
    results.missing += len(expected) - len(acks)
    results.refused += sum(a.verdict is AckVerdict.REFUSED for a in acks)
    return [a.latency for a in acks if a.verdict is AckVerdict.STOPPED]


async def one_round(
    url: str, occurrences: int, singles: int, workdir: Path, settled_by: str
) -> Results:
    pem, public = generate_key_pair()
    key_path = workdir / "bench.key"
    key_path.write_bytes(pem)
    env = {k: v for k, v in os.environ.items() if not k.startswith("COORDINATOR_")}
    env.update(
        TIMINGS,
        COORDINATOR_DATABASE_URL=url,
        COORDINATOR_TRUSTED_KEYS=public,
        AGENT_OCCURRENCE_COUNT=str(occurrences),
    )
    ids = [f"occurrence-{i}" for i in range(1, occurrences + 1)]
    trusting = load_settings(occurrence_id="bench", trusted_keys=public)
    verify = make_verifier(trusting) if settled_by == "issuer" else None
    store = await Store.open(url, server_time=True)
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "coordinator", "run", "--occurrence-id", oid],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for oid in ids
    ]
    results = Results()
    try:
        await wait_serving(store, occurrences, deadline=60 + 3 * occurrences)
        for oid in ids[:singles]:
            results.single += await stop(store, key_path, [oid], [oid], results, verify)
        results.fleet += await stop(store, key_path, [], ids[singles:], results, verify)
        for p in procs:
            code = p.wait(timeout=60)
            if code != EXIT_EMERGENCY:
                results.bad_exits.append(code)
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
        await store.close()
    return results


def percentiles(seconds: list[float]) -> str:
    if not seconds:
        return "none"
    ms = sorted(s * 1000 for s in seconds)
    if len(ms) == 1:
        return f"n 1  {ms[0]:.0f} ms"
    cuts = statistics.quantiles(ms, n=100, method="inclusive")
    return (
        f"n {len(ms):<4} p50 {cuts[49]:6.1f}  p95 {cuts[94]:6.1f}  "
        f"p99 {cuts[98]:6.1f}  max {ms[-1]:6.1f} ms"
    )


CONNECTIONS_PER_OCCURRENCE = 3  # a NOTIFY listener and about two pooled connections


async def connection_budget(url: str, occurrences: int) -> str | None:
    """Why the PostgreSQL server cannot hold this many occurrences, if it cannot."""
    engine = create_async_engine(url)
    try:
        async with engine.connect() as conn:
            allowed = int(await conn.scalar(text("SHOW max_connections")))
    finally:
        await engine.dispose()
    needed = occurrences * CONNECTIONS_PER_OCCURRENCE + 5
    if needed <= allowed:
        return None
    return (
        f"{occurrences} occurrences need about {needed} connections and the server allows "
        f"max_connections = {allowed}: raise it (ALTER SYSTEM SET max_connections = ...; "
        "restart) or put PgBouncer in front, or run fewer occurrences"
    )


async def main_async(args: argparse.Namespace) -> int:
    if args.db and args.db.startswith("postgres"):
        problem = await connection_budget(args.db, args.occurrences)
        if problem:
            print(f"bench_emergency: {problem}", file=sys.stderr)
            return 2
    total = Results()
    for n in range(1, args.rounds + 1):
        with tempfile.TemporaryDirectory(prefix="bench-emergency-") as tmp:
            async with scratch_database(args.db, Path(tmp)) as url:
                started = time.monotonic()
                got = await one_round(
                    url, args.occurrences, args.single, Path(tmp), args.settled_by
                )
        total.single += got.single
        total.fleet += got.fleet
        total.missing += got.missing
        total.refused += got.refused
        total.bad_exits += got.bad_exits
        print(
            f"round {n}/{args.rounds}: {len(got.single) + len(got.fleet)} acknowledged, "
            f"{got.missing} missing, {time.monotonic() - started:.0f} s",
            flush=True,
        )
    postgres = bool(args.db and args.db.startswith("postgres"))
    wake = "NOTIFY" if postgres else "the wake file"
    poll = load_settings(occurrence_id="bench").poll_interval
    print(
        f"\n{args.occurrences} occurrences, {'postgresql' if postgres else 'sqlite'} "
        f"(woken by {wake}), POLL_INTERVAL {poll:g} s, verdict recorded by the "
        f"{args.settled_by}, {args.rounds} round(s), {os.cpu_count()} CPU(s)"
    )
    print(f"cancel-to-ack, one target      : {percentiles(total.single)}")
    print(f"cancel-to-ack, whole fleet     : {percentiles(total.fleet)}")
    print(f"cancel-to-ack, all             : {percentiles(total.single + total.fleet)}")
    print(
        f"missing acks {total.missing}, refused {total.refused}, "
        f"exits other than {EXIT_EMERGENCY}: {len(total.bad_exits)}"
    )
    return 1 if total.missing or total.refused or total.bad_exits else 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--occurrences", type=int, default=9, help="processes per round")
    parser.add_argument("--rounds", type=int, default=1, help="fresh fleets to stop")
    parser.add_argument(
        "--single",
        type=int,
        default=3,
        help="occurrences stopped one at a time before the whole-fleet stop (default 3)",
    )
    parser.add_argument(
        "--settled-by",
        choices=["issuer", "occurrences"],
        default="issuer",
        help="who records the verdict: the issuer at once (default; emergency-shutdown with "
        "COORDINATOR_TRUSTED_KEYS set, and the control API) or the first occurrence to see "
        "the command (emergency-shutdown without trusted keys)",
    )
    parser.add_argument("--db", help="a PostgreSQL server URL (default: a temporary SQLite file)")
    args = parser.parse_args()
    if args.occurrences < 1 or args.rounds < 1 or not 0 <= args.single < args.occurrences:
        parser.error("need --occurrences >= 1, --rounds >= 1, 0 <= --single < --occurrences")
    sys.exit(asyncio.run(main_async(args)))


if __name__ == "__main__":
    main()
