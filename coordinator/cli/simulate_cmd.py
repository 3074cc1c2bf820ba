"""``simulate``: watch a whole fleet coordinate, in compressed time."""

from __future__ import annotations

import argparse
import json
from typing import Any

import anyio

from coordinator.cli.options import EXIT_FAILED, EXIT_OK, refuse
from coordinator.logs import configure_logging
from coordinator.simulation import (
    DEFAULT_OCCURRENCES,
    DEFAULT_TIME_SCALE,
    SCENARIOS,
    SimulationConfig,
    simulate,
)
from schemas import CanaryGroup, ConfigurationError
from schemas.settings import normalize_database_url


def add_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = commands.add_parser(
        "simulate",
        help="run N occurrences in one process and print the rollout timeline",
        description="Run N occurrences as concurrent tasks in one process on a fresh "
        "temporary SQLite file (or --db), with all durations compressed by --time-scale, "
        "and print the timeline in simulated time and a summary. Scenarios: lifecycle "
        "(wakeup rollout, then an accepted shutdown), wakeup, shutdown, reject (the "
        "shutdown is rejected), emergency (once the shutdown's explorer has left, a signed "
        "emergency stop of the whole fleet, with a key made for the run and trusted by "
        "every occurrence: the rollout is aborted, and the summary lists who stopped, who "
        "refused, who did not answer, and each cancel-to-ack latency with p50/p95/max, in "
        "wall-clock ms). --fail breaks one wave: in the wakeup rollout for lifecycle and "
        "wakeup, in the shutdown rollout for shutdown.",
    )
    parser.add_argument("--occurrences", type=int, default=DEFAULT_OCCURRENCES, metavar="N")
    parser.add_argument("--scenario", choices=SCENARIOS, default="lifecycle")
    parser.add_argument(
        "--fail",
        choices=[g.value for g in CanaryGroup],
        help="make this wave's members fail to reach the expected state",
    )
    parser.add_argument(
        "--time-scale",
        type=float,
        default=DEFAULT_TIME_SCALE,
        metavar="X",
        help=f"simulated seconds per real second (default {DEFAULT_TIME_SCALE:g})",
    )
    parser.add_argument("--db", metavar="URL", help="use this database instead of a temp file")
    parser.add_argument("--json", action="store_true", help="print one JSON object at the end")
    parser.set_defaults(handler=handle)


def handle(args: argparse.Namespace) -> int:
    try:
        config = SimulationConfig(
            occurrences=args.occurrences,
            scenario=args.scenario,
            fail=CanaryGroup(args.fail) if args.fail else None,
            time_scale=args.time_scale,
            database_url=normalize_database_url(args.db) if args.db else None,
        )
    except (ValueError, ConfigurationError) as exc:
        return refuse("simulate", exc)
    configure_logging("error")
    if not args.json:
        fail = f", --fail {config.fail.value}" if config.fail else ""
        print(
            f"Simulating {config.occurrences} occurrences, scenario {config.scenario}{fail}, "
            f"time x{config.time_scale:g} (times below are simulated)\n"
        )
    on_line = None if args.json else (lambda line: print(line, flush=True))
    try:
        report = anyio.run(lambda: simulate(config, on_line=on_line))
    except TimeoutError:
        return refuse("simulate", "the simulation did not finish in time", EXIT_FAILED)
    except ValueError as exc:
        return refuse("simulate", exc)
    if args.json:
        report.pop("timeline")
        report.pop("emergency_lines")
        print(json.dumps(report, indent=2))
    else:
        print("\n" + summary(report))
    return EXIT_OK


def summary(report: dict[str, Any]) -> str:
    lines = ["Summary"]
    for r in report["rollouts"]:
        lines.append(
            f"  {r['kind']:<8} {r['status']:<9} decided {r['decision']} by {r['decided_by']}"
            f" ({r['decision_invocations']} decision call"
            + ("" if r["decision_invocations"] == 1 else "s")
            + ")"
        )
        for w in r["waves"]:
            span = ""
            if w["started_at"] is not None:
                end = w["finished_at"]
                span = f" T+{w['started_at']:g}s -> " + (f"T+{end:g}s" if end is not None else "…")
            failed = f" failed: {', '.join(w['failed'])}" if w["failed"] else ""
            lines.append(
                f"      {w['group']:<14} {w['status']:<8} {len(w['members'])} member(s){span}"
                + failed
            )
        if r["abort_reason"]:
            lines.append(f"      aborted: {r['abort_reason']}")
    if report["emergency"] is not None:
        # The lines `emergency-shutdown --wait` prints: the verdict, then indented answers.
        verdict, *answers = report["emergency_lines"]
        lines.append("  emergency stop (cancel-to-ack in wall-clock ms):")
        lines += [f"    {verdict}", *(f"  {line}" for line in answers)]
    counts: dict[str, int] = {}
    for state in report["final_states"].values():
        counts[state] = counts.get(state, 0) + 1
    lines.append("  final states: " + ", ".join(f"{n} {s}" for s, n in sorted(counts.items())))
    available = report["min_available_during_shutdown"]
    if available is not None:
        lines.append(
            f"  min available during shutdown (before the last wave): "
            f"{available} of {report['occurrences']}"
        )
    lines.append(f"  simulated time: {report['simulated_seconds']:g} s")
    return "\n".join(lines)
