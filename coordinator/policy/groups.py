"""Canary group assignment: a pure function of the decider and the live members, and
the capacity rule that bounds the waves of a shutdown before its last."""

from __future__ import annotations

import math
import re
from collections.abc import Iterable

from schemas import CanaryGroup

_CHUNKS = re.compile(r"(\d+)")

DEFAULT_EARLY_ADOPTER_FRACTION = 0.3
DEFAULT_MIN_SERVING_FRACTION = 0.8
"""The FSD's capacity target: at least 80% of a shutdown's fleet serves until its last wave."""

_FLOAT_SLACK = 1e-9
"""Float error must not raise a floor by one: 0.7 * 10 is 7.000000000000001, and 7 must do."""


def natural_key(occurrence_id: str) -> tuple[tuple[tuple[int, int | str], ...], str]:
    """Sort key that orders ``occurrence-10`` after ``occurrence-9``.

    Digit runs compare as numbers, other runs as text; the raw id breaks ties
    (``a01`` vs ``a1``) so the order is total and deterministic.
    """
    parts: list[tuple[int, int | str]] = []
    for chunk in _CHUNKS.split(occurrence_id):
        if not chunk:
            continue
        parts.append((1, int(chunk)) if chunk.isdigit() else (0, chunk))
    return tuple(parts), occurrence_id


def early_adopter_count(total: int, fraction: float = DEFAULT_EARLY_ADOPTER_FRACTION) -> int:
    """``max(1, int(total * fraction))``, as in the FSD; total includes the explorer."""
    return max(1, int(total * fraction))


def serving_floor(total: int, min_serving_fraction: float) -> int:
    """How many of ``total`` planned members must still serve before a shutdown's last
    wave: ``ceil(total * min_serving_fraction)`` (9 at 0.8 -> 8; 10 -> 8; 100 -> 80)."""
    return max(0, math.ceil(total * min_serving_fraction - _FLOAT_SLACK))


def shutdown_early_adopter_count(
    total: int,
    fraction: float = DEFAULT_EARLY_ADOPTER_FRACTION,
    min_serving_fraction: float = DEFAULT_MIN_SERVING_FRACTION,
) -> int:
    """Early adopters of a shutdown of ``total`` occurrences (the explorer included).

    The rule: everyone who leaves before the last wave (the explorer and the early
    adopters) is at most ``total - serving_floor(total, min_serving_fraction)``, so at
    least the floor still serves until the last wave is signalled. The early adopters are
    the usual ``early_adopter_count`` cut to what that leaves after the explorer; those
    cut join the general wave. The explorer always leaves first, alone: a fleet that
    cannot spare even one member (the floor is ``total``: 1 to 4 occurrences at 0.8) gets
    the smallest canary there is, the explorer alone before everyone else. At 0 nothing
    is cut (9 -> 1 / 2 / 6); at 0.8, 9 -> 1 / 0 / 8, 10 -> 1 / 1 / 8, 100 -> 1 / 19 / 80.

    Splitting the general wave into batches would not help: whoever serves just before
    the last wave is signalled is that wave's members, so the cut must come earlier.
    """
    allowed_to_leave_early = total - serving_floor(total, min_serving_fraction)
    return max(0, min(early_adopter_count(total, fraction), allowed_to_leave_early - 1))


def assign_canary_groups(
    decider: str,
    members: Iterable[str],
    fraction: float = DEFAULT_EARLY_ADOPTER_FRACTION,
    *,
    min_serving_fraction: float | None = None,
) -> dict[CanaryGroup, tuple[str, ...]]:
    """Explorer = the decider; of the others in natural order, the first
    ``max(1, int(total * fraction))`` are early adopters, the rest general
    (9 occurrences -> 1 / 2 / 6). Given a ``min_serving_fraction`` (a shutdown), the
    early adopters are cut to ``shutdown_early_adopter_count``."""
    others = sorted(set(members) - {decider}, key=natural_key)
    total = len(others) + 1
    early = (
        early_adopter_count(total, fraction)
        if min_serving_fraction is None
        else shutdown_early_adopter_count(total, fraction, min_serving_fraction)
    )
    return {
        CanaryGroup.EXPLORER: (decider,),
        CanaryGroup.EARLY_ADOPTER: tuple(others[:early]),
        CanaryGroup.GENERAL: tuple(others[early:]),
    }
