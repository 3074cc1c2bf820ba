"""How many seeds the deterministic simulator needs to find each planted defect.

For every defect of ``tests/planted_defects.py`` (each patched in alone, then undone), the
trials run seed after seed from each of several starting seeds until one breaks an
invariant; the table gives the seeds it took (min/median/max over the starts) and the
first violation found. The unpatched runtime is run over the same seeds first: a
violation there is a bug of ours, not a defect found.

    python scripts/seeds_to_find.py                       # 5 occurrences, starts 1, 1001, 2001
    python scripts/seeds_to_find.py --starts 1 --limit 50 --occurrences 9
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from planted_defects import CONFIG_OF, PLANTED

from coordinator.exploration_runs import one_trial
from coordinator.faults import FaultWindow, parse_kinds
from coordinator.logs import configure_logging
from coordinator.trial_config import TrialConfig, TrialOutcome


def seeds_until_found(config: TrialConfig, start: int, limit: int) -> TrialOutcome | None:
    for seed in range(start, start + limit):
        outcome = one_trial(seed, config)
        if not outcome.ok:
            return outcome
    return None


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--occurrences", type=int, default=5)
    parser.add_argument("--starts", type=int, nargs="+", default=[1, 1001, 2001])
    parser.add_argument("--limit", type=int, default=200, help="seeds per start at most")
    parser.add_argument("--defects", nargs="*", default=list(PLANTED), choices=list(PLANTED))
    parser.add_argument("--faults", default="all", help="the fault kinds drawn (default all)")
    parser.add_argument("--window-end", type=float, default=FaultWindow().end)
    parser.add_argument("--downtime", type=float, nargs=2, default=FaultWindow().downtime)
    parser.add_argument(
        "--same-config",
        action="store_true",
        help="every defect with the trials above (default: a defect the test finds with "
        "trials of its own, the stale view's late joiner, is measured with those)",
    )
    args = parser.parse_args()
    configure_logging("critical")
    window = FaultWindow(end=args.window_end, downtime=tuple(args.downtime))
    config = TrialConfig(
        occurrences=args.occurrences, faults=parse_kinds(args.faults), window=window
    )
    print(
        f"{args.occurrences} occurrences, faults {args.faults} until {window.end:g} s, "
        f"starts {args.starts}, "
        f"at most {args.limit} seeds each\n"
    )
    own = {} if args.same_config else CONFIG_OF
    clean_failures = 0
    for checked in [config, *{id(c): c for c in own.values()}.values()]:
        for start in args.starts:
            found = seeds_until_found(checked, start, args.limit)
            if found is not None:
                clean_failures += 1
                print(f"UNPATCHED seed {found.seed} fails: {found.violations[0]}")
    print(f"{'defect':<46}{'min':>5}{'median':>8}{'max':>6}  first violation")
    for name in args.defects:
        taken: list[int] = []
        first = ""
        began = time.perf_counter()
        for start in args.starts:
            patch = pytest.MonkeyPatch()
            PLANTED[name](patch)
            try:
                found = seeds_until_found(own.get(name, config), start, args.limit)
            finally:
                patch.undo()
            if found is None:
                taken.append(args.limit + 1)
                continue
            taken.append(found.seed - start + 1)
            first = first or f"seed {found.seed}: {found.violations[0]}"
        shown = [str(n) if n <= args.limit else f">{args.limit}" for n in taken]
        median = statistics.median(taken)
        name = name + (" (own trials)" if name in own else "")
        print(
            f"{name:<46}{min(taken):>5}{median:>8g}{shown[taken.index(max(taken))]:>6}  "
            f"{first[:110] or 'not found'} ({time.perf_counter() - began:.0f} s)",
            flush=True,
        )
    return 1 if clean_failures else 0


if __name__ == "__main__":
    raise SystemExit(main())
