"""Canary group assignment: a pure function of the decider and the live members."""

from __future__ import annotations

import re
from collections.abc import Iterable

from schemas import CanaryGroup

_CHUNKS = re.compile(r"(\d+)")

DEFAULT_EARLY_ADOPTER_FRACTION = 0.3


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


def assign_canary_groups(
    decider: str,
    members: Iterable[str],
    fraction: float = DEFAULT_EARLY_ADOPTER_FRACTION,
) -> dict[CanaryGroup, tuple[str, ...]]:
    """Explorer = the decider; of the others in natural order, the first
    ``max(1, int(total * fraction))`` are early adopters, the rest general
    (9 occurrences -> 1 / 2 / 6)."""
    others = sorted(set(members) - {decider}, key=natural_key)
    early = early_adopter_count(len(others) + 1, fraction)
    return {
        CanaryGroup.EXPLORER: (decider,),
        CanaryGroup.EARLY_ADOPTER: tuple(others[:early]),
        CanaryGroup.GENERAL: tuple(others[early:]),
    }
