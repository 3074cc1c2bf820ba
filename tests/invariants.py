"""Assert the invariants of DESIGN.md from the audit trail (see coordinator.audit_check)."""

from __future__ import annotations

from coordinator.audit_check import capacity_violations, fleet_violations
from persistence import Store


async def check_fleet_invariants(store: Store) -> None:
    assert await fleet_violations(store) == []


async def check_shutdown_capacity(store: Store) -> None:
    assert await capacity_violations(store) == []
