"""What a member does beside the poll loop (user code, maybe slow): decide a claimed
task, enter work, leave in its wave. Each reports its states through the ``Member``."""

from __future__ import annotations

from collections.abc import Callable

from coordinator.decider import Decider
from coordinator.hooks import LifecycleHooks, WaveContext
from coordinator.member import Member
from coordinator.policy.member_policy import MemberAction, leaves_last
from coordinator.run_state import LeaveReason
from schemas import (
    Claim,
    EventKind,
    NewEvent,
    OccurrenceState,
    RolloutRecord,
    RolloutStatus,
    WaveRecord,
)


class MemberActions:
    def __init__(
        self,
        member: Member,
        decider: Decider,
        hooks: LifecycleHooks,
        poll_now: Callable[[], None],
    ) -> None:
        self._member = member
        self._decider = decider
        self._hooks = hooks
        self._poll_now = poll_now

    async def decide(self, claim: Claim) -> None:
        rollout = await self._decider.decide(claim)
        if rollout is not None and rollout.driver_id == self._member.occurrence_id:
            self._member.driver.adopt(rollout.rollout_id, rollout.driver_token)

    async def enter_work(self, rollout: RolloutRecord, wave: WaveRecord | None) -> None:
        member = self._member
        group = wave.group if wave else None
        if wave is None:
            joined = NewEvent(
                kind=EventKind.OCCURRENCE_JOINED,
                occurrence_id=member.occurrence_id,
                rollout_id=rollout.rollout_id,
                task_id=rollout.task_id,
                details={"late": True, "direct": True},
            )
            await member.persist("join", lambda: member.store.record_event(joined))
            member.log.info("occurrence_joined", rollout_id=rollout.rollout_id, direct=True)
        context = WaveContext(member.occurrence_id, rollout.rollout_id, group)
        try:
            await self._hooks.on_work(context)
        except Exception as exc:
            member.log.error("on_work_failed", rollout_id=rollout.rollout_id, error=repr(exc))
            await member.set_state(
                OccurrenceState.FAILED, rollout=rollout, wave=wave, error=repr(exc)
            )
            return
        await member.set_state(OccurrenceState.WORK, rollout=rollout, wave=wave)

    async def leave(self, rollout: RolloutRecord, wave: WaveRecord | None) -> None:
        """Leave in ``wave`` of the shutdown, or (None) directly: a straggler its plan
        left out (see ``member_policy``)."""
        member = self._member
        await member.set_state(OccurrenceState.SHUTTING_DOWN, rollout=rollout, wave=wave)
        group = wave.group if wave is not None else None
        context = WaveContext(
            member.occurrence_id, rollout.rollout_id, group, rollout.request_reason
        )
        try:
            await self._hooks.on_shutdown(context)
        except Exception as exc:
            member.log.error("on_shutdown_failed", rollout_id=rollout.rollout_id, error=repr(exc))
            await member.set_state(
                OccurrenceState.FAILED, rollout=rollout, wave=wave, error=repr(exc)
            )
            return
        await member.set_state(OccurrenceState.SHUTDOWN, rollout=rollout, wave=wave)
        if leaves_last(rollout, member.occurrence_id):
            await self._wait_for_result(rollout.rollout_id)
        await member.depart(LeaveReason.COORDINATED_SHUTDOWN)

    async def _wait_for_result(self, rollout_id: str) -> None:
        """Stay until the shutdown's result is recorded (driving it meanwhile if its lease
        is free, see ``may_hold_lease``): the last wave's members are the last who can
        record it, and a rollout nobody finishes would show ``running`` forever. Even a
        lease held by another is no reason to go: that holder may be dying."""
        member = self._member
        store = member.store
        checked: int | None = None  # ``store.commits.rollouts`` before the last read
        while not member.winding_down:
            # The rollout alone, not the fleet: a whole last wave waits here at once. Where
            # the Store is the sole writer, read again only once a rollout was committed
            # (not at each member's leaving: that would cost the wave's size squared).
            if not (store.sole_writer and checked == store.commits.rollouts):
                before = store.commits.rollouts
                current = await member.persist("result check", lambda: store.rollout(rollout_id))
                checked = before
                if current.status is not RolloutStatus.RUNNING:
                    return  # recorded, or held by an operator: theirs to finish
            self._poll_now()  # the poll loop drives it
            await member.clock.sleep(member.settings.poll_interval)

    async def stop_after_rejected_wakeup(self, action: MemberAction) -> None:
        member = self._member
        member.log.error("wakeup_rejected", reason=action.why)
        await member.set_state(
            OccurrenceState.SHUTDOWN, rollout=action.rollout, wakeup_rejected=action.why
        )
        await member.depart(LeaveReason.WAKEUP_REJECTED, retried=False)
