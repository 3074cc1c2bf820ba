"""The poll loop: every ``poll_interval`` of the injected clock (or at once when poked),
read one snapshot of the fleet (shared with the decider; not read again while nothing
could have changed it, see ``fleet_views``), advance any rollout this
occurrence drives, then take the member's next action. Actions (user code, maybe slow)
run beside the loop, one at a time, never inside it, so driving goes on."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from coordinator.fleet_views import FleetViews
from coordinator.member import Member
from coordinator.member_actions import MemberActions
from coordinator.nap import Nap
from coordinator.outage import OutageWatch
from coordinator.policy.member_policy import Act, next_action
from persistence import FleetView
from schemas import DatabaseUnavailable

Spawn = Callable[[Callable[[], Awaitable[None]]], None]
"""Start a task beside the loops, guarded as they are (a crash ends the run)."""


class PollLoop:
    def __init__(
        self,
        member: Member,
        actions: MemberActions,
        outage: OutageWatch,
        nap: Nap,
        spawn: Spawn,
        views: FleetViews,
    ) -> None:
        self._member = member
        self._actions = actions
        self._outage = outage
        self._nap = nap
        self._spawn = spawn
        self._views = views
        self._acting = False
        """An action runs beside the loop: the next is taken once it is done."""
        self._last_note = ""

    async def run(self) -> None:
        member = self._member
        while not member.winding_down:
            try:
                # Nothing new to read (see ``fleet_views``): no read, the same decisions.
                view = None if self._outage.ongoing else self._views.reusable(member.store.now())
                if view is None:
                    view = await self._views.read(members=False)
                    await self._outage.answered()
                # Leases first, from whatever view: only a holder reads the members.
                await member.driver.take_leases(view, member.phase)
                if not view.with_members and member.driver.needs_members(view):
                    view = await self._views.read(members=True)
                    await member.driver.take_leases(view, member.phase)  # lost meanwhile?
                self._views.publish(view)
                await self._tick(view)
            except DatabaseUnavailable as exc:
                # Keep serving in the current state; decide nothing until it answers.
                self._views.forget()
                self._outage.failed()
                member.log.warning("database_unavailable", error=str(exc))
            await self._nap.nap(member.settings.poll_interval)

    async def _tick(self, view: FleetView) -> None:
        member, actions = self._member, self._actions
        store, settings, me = member.store, member.settings, member.occurrence_id
        await member.driver.drive(view, member.phase, leases_taken=True)
        if self._acting or member.winding_down:
            return
        action = next_action(view, member.me, member.phase, driving=member.driver.holding)
        if action.act is Act.WAIT:
            if action.why != self._last_note:
                self._last_note = action.why
                member.log.info("waiting", why=action.why, state=member.phase.value)
        elif action.act is Act.OPEN_WAKEUP:
            if await store.open_wakeup_task(me, settings.decision_window):
                self._nap.poke()
        elif action.act is Act.CLAIM:
            assert action.task is not None
            claim = await store.claim_task(action.task.task_id, me, settings.lease_ttl)
            if claim is not None:
                self._act(actions.decide, claim)
        elif action.act is Act.JOIN_LAST_WAVE:
            assert action.rollout is not None
            wave = await store.join_last_wave(action.rollout.rollout_id, me)
            if wave is not None:
                member.log.info(
                    "occurrence_joined",
                    rollout_id=wave.rollout_id,
                    wave=wave.group.value,
                    late=True,
                )
            self._nap.poke()
        elif action.act is Act.ENTER_WORK:
            assert action.rollout is not None
            self._act(actions.enter_work, action.rollout, action.wave)
        elif action.act is Act.LEAVE:
            assert action.rollout is not None
            self._act(actions.leave, action.rollout, action.wave)
        elif action.act is Act.STOP_REJECTED:
            await actions.stop_after_rejected_wakeup(action)

    def _act(self, work: Callable[..., Awaitable[None]], *args: Any) -> None:
        self._acting = True

        async def run() -> None:
            try:
                await work(*args)
            finally:
                self._acting = False
                self._nap.poke()

        self._spawn(run)
