"""Assert the invariants of DESIGN.md from the audit trail (see coordinator.audit_check).

The top-level conftest registers this module for pytest's assertion rewriting, so a
failed check shows every violation it found, not a bare ``AssertionError``."""

from __future__ import annotations

from coordinator.audit_check import capacity_violations, fleet_violations
from coordinator.policy.groups import DEFAULT_MIN_SERVING_FRACTION
from persistence import Store


async def check_fleet_invariants(store: Store) -> None:
    violations = await fleet_violations(store)
    assert violations == [], "the audit trail breaks an invariant:\n" + "\n".join(violations)


async def check_shutdown_capacity(
    store: Store, min_serving_fraction: float = DEFAULT_MIN_SERVING_FRACTION
) -> None:
    """Give the ``MIN_SERVING_FRACTION`` the fleet ran with."""
    violations = await capacity_violations(store, min_serving_fraction)
    assert violations == [], "a shutdown left too few serving:\n" + "\n".join(violations)
