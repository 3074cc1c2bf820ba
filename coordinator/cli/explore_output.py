"""``simulate --explore``: seeded trials with faults, a table of their outcomes, and the
command that replays each violation."""

from __future__ import annotations

import argparse
import json
import sys

from coordinator.cli.arguments import bounded_int
from coordinator.cli.options import EXIT_FAILED, EXIT_OK, refuse
from coordinator.exploration_runs import Tally, default_jobs, explore, one_trial
from coordinator.faults import ALL_FAULTS, parse_kinds
from coordinator.logs import configure_logging
from coordinator.trial_config import SCENARIOS, TrialConfig, TrialOutcome, liveness_bound
from schemas import load_settings

DEFAULT_SEEDS = 100
MAX_SEEDS = 10**9


def add_explore_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group(
        "exploring (--explore)",
        "Run seeded trials of the fleet on virtual time, each a lifecycle (or a rejected "
        "shutdown, or an emergency stop with a replayed command) struck by the faults its "
        "seed draws, with the invariants checked during and after every trial and each "
        "rollout bound to finish once the faults are over. Prints a table of outcomes and, "
        "for every violation, the one command that replays it. Exit 0 when every trial "
        "held, 1 when one broke an invariant.",
    )
    group.add_argument("--explore", action="store_true", help="run seeded trials with faults")
    group.add_argument(
        "--seeds",
        type=bounded_int(1, MAX_SEEDS),
        metavar="K",
        help=f"how many seeds, from --seed (default 1) on (default {DEFAULT_SEEDS}, or 1 "
        "with --seed: a replay)",
    )
    group.add_argument(
        "--faults",
        default="all",
        metavar="LIST",
        help="the fault kinds drawn, comma-separated: all (default), none, or any of "
        + ", ".join(ALL_FAULTS),
    )
    group.add_argument(
        "--jobs",
        type=bounded_int(1, 64),
        metavar="J",
        help=f"worker processes (default {default_jobs()}, 1 for a single seed)",
    )
    group.add_argument(
        "--trail", action="store_true", help="print each failing trial's audit trail too"
    )


def explore_only(args: argparse.Namespace) -> str | None:
    """Why the exploring flags do not apply without --explore (None: they are unset)."""
    used = [
        flag
        for flag, value in (("--seeds", args.seeds), ("--jobs", args.jobs), ("--trail", args.trail))
        if value
    ]
    if args.faults != "all":
        used.append("--faults")
    if used:
        return f"{', '.join(used)} apply only with --explore"
    if args.scenario not in (None, "lifecycle", "wakeup", "shutdown", "reject", "emergency"):
        return f"--scenario {args.scenario} applies only with --explore"
    return None


def handle_explore(args: argparse.Namespace) -> int:
    if args.db or args.fail:
        return refuse(
            "simulate", "--explore runs on a SQLite file of its own, without --db or --fail"
        )
    if args.scenario is not None and args.scenario not in SCENARIOS:
        return refuse(
            "simulate", f"--explore plays {', '.join(SCENARIOS)}, not --scenario {args.scenario}"
        )
    try:
        kinds = parse_kinds(args.faults)
        config = TrialConfig(occurrences=args.occurrences, faults=kinds, scenario=args.scenario)
    except ValueError as exc:
        return refuse("simulate", exc)
    first = args.seed if args.seed is not None else 1
    count = args.seeds or (1 if args.seed is not None else DEFAULT_SEEDS)
    seeds = range(first, first + count)
    jobs = 1 if count == 1 else (args.jobs or default_jobs())
    configure_logging("critical")
    if count == 1:
        return _replay(config, first, args)
    bound = liveness_bound(load_settings(**config.overrides))
    if not args.json:
        print(
            f"Exploring seeds {first} to {first + count - 1}: {args.occurrences} occurrences, "
            f"faults {args.faults}, {jobs} {'process' if jobs == 1 else 'processes'}; "
            f"liveness bound {bound:.0f} simulated s after the faults end\n",
            flush=True,
        )

    def progress(tally: Tally) -> None:
        print(f"  {tally.progress(jobs)}", file=sys.stderr, flush=True)

    tally = explore(seeds, config, jobs=jobs, on_progress=None if args.json else progress)
    if args.json:
        print(json.dumps(_tally_json(tally, jobs), indent=2))
    else:
        print("\n".join(tally.table(jobs)))
        if args.trail:
            for outcome in tally.failures:
                _print_trail(outcome)
    return EXIT_FAILED if tally.failures else EXIT_OK


def _replay(config: TrialConfig, seed: int, args: argparse.Namespace) -> int:
    outcome = one_trial(seed, config)
    if args.json:
        print(json.dumps(_outcome_json(outcome, config), indent=2))
        return EXIT_OK if outcome.ok else EXIT_FAILED
    print(f"Seed {seed}: scenario {outcome.scenario}, {args.occurrences} occurrences")
    for number, at in outcome.late:
        print(f"  occurrence-{number} comes up late, at {at:.1f} s")
    for fault in outcome.faults:
        print(f"  fault: {fault.describe()}")
    print(f"  rollouts: {', '.join(outcome.rollouts) or 'none'}")
    print(
        f"  {outcome.struck} faults struck, {outcome.restarts} restarts, "
        f"{outcome.simulated_seconds:g} simulated s"
    )
    if outcome.ok:
        print("  every invariant held")
    for violation in outcome.violations:
        print(f"  VIOLATION {violation}")
    if args.trail or not outcome.ok:
        _print_trail(outcome)
    return EXIT_OK if outcome.ok else EXIT_FAILED


def _print_trail(outcome: TrialOutcome) -> None:
    print(
        f"\naudit trail of seed {outcome.seed} (event id, simulated s, kind, who, wave, details):"
    )
    for line in outcome.trail:
        print(f"  {line}")


def _outcome_json(outcome: TrialOutcome, config: TrialConfig) -> dict[str, object]:
    return {
        "seed": outcome.seed,
        "scenario": outcome.scenario,
        "faults": [f.describe() for f in outcome.faults],
        "struck": outcome.struck,
        "rollouts": list(outcome.rollouts),
        "restarts": outcome.restarts,
        "simulated_seconds": outcome.simulated_seconds,
        "violations": list(outcome.violations),
        "replay": config.replay_command(outcome.seed),
    }


def _tally_json(tally: Tally, jobs: int) -> dict[str, object]:
    return {
        "trials": tally.trials,
        "scenarios": dict(tally.by_scenario),
        "failed": dict(tally.failed_by_scenario),
        "rollouts": dict(tally.rollouts),
        "faults": dict(tally.faults),
        "struck": tally.struck,
        "restarts": tally.restarts,
        "wall_seconds": round(tally.wall, 2),
        "trials_per_minute_per_core": round(tally.rate(jobs), 1),
        "cpu_seconds": round(tally.cpu, 2),
        "trials_per_cpu_minute": round(tally.cpu_rate(), 1),
        "failures": [_outcome_json(o, tally.config) for o in tally.failures],
    }
