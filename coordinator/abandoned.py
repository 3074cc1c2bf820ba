"""Shutdowns that nobody is left to finish: whoever reads the fleet records their end.

A shutdown's last wave records the result before it leaves (see the runtime), but a
member can still be lost mid-leave (killed, or cut off until its lease ran out while
the rest left). The rollout would then show ``running`` forever. ``status``, the control
API and every driver conclude such a rollout when they see it: a fenced write that
applies only while nobody holds its lease and nothing moved it since it was read.
"""

from __future__ import annotations

from typing import Any

from coordinator.logs import get_logger
from coordinator.policy.rollout_machine import conclude_abandoned
from persistence import Store, database_failure
from schemas import LifecycleKind

log: Any = get_logger("coordinator")


async def conclude_abandoned_shutdowns(store: Store, member_ttl: float) -> list[str]:
    """Conclude every running shutdown whose planned members are all gone (left, or
    silent for ``member_ttl``: this observer reads the database afresh, so it can trust
    staleness); returns the ids concluded. A database that cannot be written (read-only,
    unavailable) is skipped: this is bookkeeping on the side of a read."""
    try:
        running = [
            r
            for r in await store.rollouts(kind=LifecycleKind.SHUTDOWN, limit=5)
            if not r.status.is_finished
        ]
        if not running:
            return []
        members = await store.members()
        concluded = []
        for rollout in running:
            change = conclude_abandoned(rollout, members, store.now(), member_ttl=member_ttl)
            if change is not None and await store.conclude_rollout(rollout.rollout_id, change):
                concluded.append(rollout.rollout_id)
                log.warning(
                    "abandoned_rollout_concluded",
                    rollout_id=rollout.rollout_id,
                    status=change.status.value,
                )
        return concluded
    except Exception as exc:
        failure = database_failure(exc)
        if failure is None:
            raise
        log.info("abandoned_rollouts_not_checked", error=failure)
        return []
