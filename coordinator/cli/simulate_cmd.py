"""``simulate``: watch a whole fleet coordinate, in compressed time or (``--seed``) on
virtual time, deterministically."""

from __future__ import annotations

import argparse
import json
import secrets
from collections.abc import Awaitable
from typing import Any

import anyio

from coordinator.cli.arguments import add_command, bounded_float, bounded_int, utf8_text
from coordinator.cli.explore_output import add_explore_arguments, explore_only, handle_explore
from coordinator.cli.options import EXIT_FAILED, EXIT_OK, database_error, refuse
from coordinator.logs import configure_logging
from coordinator.simulation import (
    DEFAULT_OCCURRENCES,
    DEFAULT_TIME_SCALE,
    MAX_OCCURRENCES,
    MAX_TIME_SCALE,
    MIN_TIME_SCALE,
    SCENARIOS,
    SimulationConfig,
    simulate,
)
from coordinator.trial_config import SCENARIOS as EXPLORE_SCENARIOS
from coordinator.virtual_time import Deadlock, run_seeded
from schemas import CanaryGroup, ConfigurationError
from schemas.settings import normalize_database_url


def add_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = add_command(
        commands,
        "simulate",
        help="run N occurrences in one process and print the rollout timeline",
        description="Run N occurrences of the real runtime in one process on a fresh "
        "temporary SQLite file and print the timeline in simulated time and a summary. By "
        "default on virtual time: soaks and timeouts cost no wall time, the order of events "
        "is drawn from a seed (printed; --seed N picks it) and the same seed prints the "
        "same timeline every time. --time-scale X (or --db) runs in real time instead, "
        "compressed X times, to watch it live. Scenarios: lifecycle "
        "(wakeup rollout, then an accepted shutdown), wakeup, shutdown, reject (the "
        "shutdown is rejected), emergency (once the shutdown's explorer has left, a signed "
        "emergency stop of the whole fleet, with a key made for the run and trusted by "
        "every occurrence: the rollout is aborted, and the summary lists who stopped, who "
        "refused, who did not answer, and each cancel-to-ack latency with p50/p95/max). "
        "--fail breaks one wave: in the wakeup rollout for lifecycle and "
        "wakeup, in the shutdown rollout for shutdown. --explore runs seeded trials with "
        "faults instead (see below). Exit 0 when it ran, 1 if it did not "
        "finish in time, 2 on bad arguments or a database it cannot open or use.",
        example_lines=(
            "python -m coordinator simulate",
            "python -m coordinator simulate --occurrences 5 --fail early_adopter",
            "python -m coordinator simulate --scenario emergency --time-scale 30 --json",
            "python -m coordinator simulate --occurrences 9 --seed 7",
            "python -m coordinator simulate --explore --seeds 200 --faults all",
            "python -m coordinator simulate --explore --seed 42 --faults crash,pause",
        ),
    )
    parser.add_argument(
        "--occurrences",
        type=bounded_int(1, MAX_OCCURRENCES),
        default=DEFAULT_OCCURRENCES,
        metavar="N",
        help=f"how many (1 to {MAX_OCCURRENCES}; default {DEFAULT_OCCURRENCES})",
    )
    parser.add_argument(
        "--scenario",
        choices=sorted({*SCENARIOS, *EXPLORE_SCENARIOS}),
        help="default lifecycle; with --explore, drawn from each seed among "
        f"{', '.join(EXPLORE_SCENARIOS)}",
    )
    parser.add_argument(
        "--fail",
        choices=[g.value for g in CanaryGroup],
        help="make this wave's members fail to reach the expected state",
    )
    parser.add_argument(
        "--time-scale",
        type=bounded_float(MIN_TIME_SCALE, MAX_TIME_SCALE, "a time scale"),
        metavar="X",
        help="run in real time, compressed: simulated seconds per real second "
        f"({MIN_TIME_SCALE:g} to {MAX_TIME_SCALE:g}; {DEFAULT_TIME_SCALE:g} with --db)",
    )
    parser.add_argument(
        "--seed",
        type=bounded_int(0, 2**63 - 1),
        metavar="N",
        help="the seed of the virtual-time run (default: drawn, and printed): the same N "
        "prints the same timeline every time (not with --time-scale or --db)",
    )
    parser.add_argument(
        "--db", metavar="URL", type=utf8_text, help="use this database instead of a temp file"
    )
    parser.add_argument("--json", action="store_true", help="print one JSON object at the end")
    add_explore_arguments(parser)
    parser.set_defaults(handler=handle)


def handle(args: argparse.Namespace) -> int:
    if args.explore:
        return handle_explore(args)
    refused = explore_only(args)
    if refused is not None:
        return refuse("simulate", refused)
    real_time = args.time_scale is not None or args.db is not None
    if real_time and args.seed is not None:
        return refuse("simulate", "--seed runs on virtual time: drop --time-scale and --db")
    seed = None if real_time else (args.seed if args.seed is not None else drawn_seed())
    try:
        config = SimulationConfig(
            occurrences=args.occurrences,
            scenario=args.scenario or "lifecycle",
            fail=CanaryGroup(args.fail) if args.fail else None,
            time_scale=args.time_scale or DEFAULT_TIME_SCALE,
            database_url=normalize_database_url(args.db) if args.db else None,
            seed=seed,
        )
    except (ValueError, ConfigurationError) as exc:
        return refuse("simulate", exc)
    configure_logging("error")

    def header() -> None:
        fail = f", --fail {config.fail.value}" if config.fail else ""
        pace = (
            f"time x{config.time_scale:g}"
            if config.seed is None
            else f"virtual time, seed {config.seed}: --seed {config.seed} prints this again"
        )
        print(
            f"Simulating {plural(config.occurrences, 'occurrence')}, scenario "
            f"{config.scenario}{fail}, {pace} (times below are simulated)\n"
        )

    on_line = None if args.json else (lambda line: print(line, flush=True))
    on_start = None if args.json else header
    try:

        def run() -> Awaitable[dict[str, Any]]:
            return simulate(config, on_line=on_line, on_start=on_start)

        report = anyio.run(run) if config.seed is None else run_seeded(run, config.seed)
    except TimeoutError:
        return refuse("simulate", "the simulation did not finish in time", EXIT_FAILED)
    except Deadlock as exc:
        return refuse("simulate", f"the simulation stopped: {exc}", EXIT_FAILED)
    except ValueError as exc:
        return refuse("simulate", exc)
    except Exception as exc:
        unavailable = database_error(exc)
        if unavailable is None:
            raise
        return refuse("simulate", unavailable)
    if args.json:
        report.pop("timeline")
        report.pop("emergency_lines")
        print(json.dumps(report, indent=2))
    else:
        print("\n" + summary(report))
    return EXIT_OK


def drawn_seed() -> int:
    """A seed for a run the user gave none (printed, so it can be run again)."""
    return secrets.randbelow(10**6)


def plural(count: int, noun: str) -> str:
    """ "1 occurrence", "9 occurrences"."""
    return f"{count} {noun}" if count == 1 else f"{count} {noun}s"


def capacity_text(capacity: dict[str, Any]) -> str:
    """ "8 of 9 (89%, minimum 80%)", or "... below the minimum 80%" when it did not hold
    (a fault, or a fleet too small to spare even its explorer, which still leaves first)."""
    minimum = f"minimum {capacity['minimum']:.0%}"
    planned = capacity["planned"]
    if capacity["held"]:
        verdict = minimum
    elif capacity["floor"] >= planned:
        verdict = f"below the {minimum}: {planned} cannot spare even the explorer"
    else:
        verdict = f"below the {minimum}"
    return f"{capacity['serving']} of {planned} ({capacity['fraction']:.0%}, {verdict})"


def summary(report: dict[str, Any]) -> str:
    lines = ["Summary"]
    for r in report["rollouts"]:
        lines.append(
            f"  {r['kind']:<8} {r['status']:<9} decided {r['decision']} by {r['decided_by']}"
            f" ({plural(r['decision_invocations'], 'decision call')})"
        )
        for w in r["waves"]:
            span = ""
            if w["started_at"] is not None:
                end = w["finished_at"]
                span = f" T+{w['started_at']:g}s -> " + (f"T+{end:g}s" if end is not None else "…")
            failed = f" failed: {', '.join(w['failed'])}" if w["failed"] else ""
            lines.append(
                f"      {w['group']:<14} {w['status']:<8} "
                f"{plural(len(w['members']), 'member'):<10}{span}{failed}"
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
    capacity = report["serving_during_shutdown"]
    if capacity is not None:
        lines.append(
            f"  min serving during shutdown (before the last wave): {capacity_text(capacity)}"
        )
    lines.append(f"  simulated time: {report['simulated_seconds']:g} s")
    return "\n".join(lines)
