"""Driving rollouts: a leased role any eligible occurrence may hold, one step per poll."""

from __future__ import annotations

from typing import Any

from coordinator.connectivity import Connectivity
from coordinator.logs import log_events
from coordinator.policy import observe
from coordinator.policy.member_policy import may_drive, may_hold_lease
from coordinator.policy.rollout_machine import Step, conclude_abandoned, step_rollout
from persistence import FleetView, Store
from schemas import (
    OccurrenceState,
    RolloutStatus,
    Settings,
    StaleFencingToken,
    StaleRolloutView,
)


class RolloutDriver:
    """Holds this occurrence's driver leases (rollout id -> fencing token)."""

    def __init__(
        self, store: Store, settings: Settings, log: Any, connectivity: Connectivity
    ) -> None:
        self._store = store
        self._connectivity = connectivity
        self._settings = settings
        self._me = settings.occurrence_id
        self._log = log
        self._held: dict[str, int] = {}
        self._fresh: set[str] = set()
        """Leases taken since the last ``drive``: no renewal due yet."""

    @property
    def holding(self) -> frozenset[str]:
        return frozenset(self._held)

    def adopt(self, rollout_id: str, token: int) -> None:
        """Take note of a lease obtained elsewhere (a decider drives its own wakeup)."""
        self._held[rollout_id] = token

    def needs_members(self, view: FleetView) -> bool:
        """Whether ``drive`` will step a rollout of ``view``: it holds the lease (see
        ``take_leases``). Only a step judges the members."""
        return any(
            rollout.status is RolloutStatus.RUNNING and rollout.rollout_id in self._held
            for rollout in view.running
        )

    async def take_leases(self, view: FleetView, state: OccurrenceState) -> None:
        """Keep the leases of ``view`` in step with it: note the ones lost or paused,
        release the ones this occurrence may no longer hold, take the free ones it may.
        None of it judges the members, so a light view does: a whole fleet racing for a
        free lease reads the members only in the one occurrence that won it."""
        lease_ttl = self._settings.lease_ttl
        for rollout in view.running:
            rid = rollout.rollout_id
            token = self._held.get(rid)
            if rollout.status is RolloutStatus.PAUSED:
                # The pause freed the lease; whoever holds the rollout when it resumes
                # takes it afresh.
                if self._held.pop(rid, None) is not None:
                    self._log.info("driver_paused", rollout_id=rid)
                continue
            if token is not None and (
                rollout.driver_id != self._me or rollout.driver_token != token
            ):
                self._lost(rid, "taken over")
                token = None
            active = may_hold_lease(rollout, self._me, state)
            if token is not None:
                if not active:
                    await self.release(rid)
                continue
            if not active:
                continue
            # Preferred drivers take a free lease at once; anyone else only after it
            # stayed free one more lease, so a rollout never waits for the dead.
            grace = 0.0 if may_drive(rollout, self._me, state) else lease_ttl
            free_since = rollout.driver_lease_expires_at
            if free_since is not None and free_since > view.now - grace:
                continue
            token = await self._store.acquire_driver(rid, self._me, lease_ttl, grace=grace)
            if token is None:
                continue
            self._held[rid] = token
            self._fresh.add(rid)
            self._log.info(
                "driver_acquired",
                rollout_id=rid,
                driver_token=token,
                took_over_from=rollout.driver_id,
            )

    async def drive(
        self, view: FleetView, state: OccurrenceState, *, leases_taken: bool = False
    ) -> None:
        """One step of every rollout of ``view`` this occurrence holds (or takes now,
        unless ``take_leases`` already ran on ``view``)."""
        if not leases_taken:
            await self.take_leases(view, state)
        # Held leases are not pruned from the view: it may predate a lease just adopted.
        lease_ttl = self._settings.lease_ttl
        fresh, self._fresh = self._fresh, set()
        for rollout in view.running:
            rid = rollout.rollout_id
            token = self._held.get(rid)
            if token is None or rollout.status is not RolloutStatus.RUNNING:
                continue
            if rid in fresh:
                renew = False  # just acquired: the lease is fresh
            else:
                expires = rollout.driver_lease_expires_at or view.now
                renew = expires - view.now < lease_ttl / 2
            assert view.with_members, "a step judges the members: see needs_members"
            member_ttl = self._settings.member_ttl
            # Members cut off together with this driver look dead until they heartbeat.
            trust = self._connectivity.unbroken_for() >= member_ttl
            observed = observe(view.members, view.now, member_ttl, trust_staleness=trust)
            # Everyone planned has left (a last wave cut off mid-leave): record the end.
            final = conclude_abandoned(rollout, view.members, view.now)
            step = (
                Step(final, None)
                if final
                else step_rollout(rollout, observed, view.now, driver=self._me)
            )
            try:
                if step.change is None:
                    if renew:
                        await self._store.renew_driver(rid, self._me, token, lease_ttl)
                    continue
                await self._store.apply_step(rid, self._me, token, step.change, lease_ttl=lease_ttl)
            except StaleFencingToken:
                self._lost(rid, "stale fencing token")
                continue
            except StaleRolloutView as exc:
                # Someone changed the rollout since this view was read (a previous holder's
                # last step, an operator, a late joiner): nothing was written; the next
                # poll reads it afresh and recomputes. The lease stays ours.
                self._log.info("driver_step_stale", rollout_id=rid, why=str(exc))
                continue
            log_events(self._log, step.change.events)
            if step.change.status.is_finished:
                self._held.pop(rid, None)

    async def release(self, rollout_id: str) -> None:
        token = self._held.pop(rollout_id, None)
        if token is not None:
            await self._store.release_driver(rollout_id, self._me, token)
            self._log.info("driver_released", rollout_id=rollout_id, driver_token=token)

    async def release_all(self) -> None:
        for rollout_id in list(self._held):
            await self.release(rollout_id)

    def _lost(self, rollout_id: str, why: str) -> None:
        self._held.pop(rollout_id, None)
        self._log.warning("driver_lease_lost", rollout_id=rollout_id, why=why)
