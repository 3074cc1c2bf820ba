"""This occurrence as a member of the fleet, once registered: its record, its run, and
the writes that move them, each retried until the database takes it."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from coordinator.clock import Clock
from coordinator.driver import RolloutDriver
from coordinator.run_state import (
    AUDIT_RUN_STATE,
    LeaveReason,
    depart,
    enter_phase,
    left,
    may_depart,
)
from coordinator.run_tracker import RunTracker
from persistence import Store
from schemas import (
    DatabaseUnavailable,
    OccurrenceRecord,
    OccurrenceState,
    RolloutRecord,
    Settings,
    WaveRecord,
)

T = TypeVar("T")


async def persist(
    what: str, write: Callable[[], Awaitable[T]], *, clock: Clock, retry_after: float, log: Any
) -> T:
    """Retry ``write`` until the database takes it: an outage delays, never loses."""
    while True:
        try:
            return await write()
        except DatabaseUnavailable as exc:
            log.warning("write_delayed", what=what, error=str(exc))
            await clock.sleep(retry_after)


class Member:
    def __init__(
        self,
        me: OccurrenceRecord,
        store: Store,
        settings: Settings,
        clock: Clock,
        tracker: RunTracker,
        driver: RolloutDriver,
        log: Any,
    ) -> None:
        self.me = me
        self.store = store
        self.settings = settings
        self.clock = clock
        self.tracker = tracker
        self.driver = driver
        self.log = log

    @property
    def occurrence_id(self) -> str:
        return self.me.occurrence_id

    @property
    def phase(self) -> OccurrenceState:
        return self.tracker.run.phase

    @property
    def winding_down(self) -> bool:
        return self.tracker.winding_down

    async def persist(self, what: str, write: Callable[[], Awaitable[T]]) -> T:
        return await persist(
            what, write, clock=self.clock, retry_after=self.settings.poll_interval, log=self.log
        )

    async def set_state(
        self,
        state: OccurrenceState,
        *,
        rollout: RolloutRecord | None = None,
        wave: WaveRecord | None = None,
        **details: Any,
    ) -> None:
        """Report a state; an unreachable database delays the report, never loses it."""
        await self.persist(
            f"state {state.value}",
            lambda: self.store.set_state(
                self.me,
                state,
                rollout_id=rollout.rollout_id if rollout else None,
                wave=wave.group if wave else None,
                details=details or None,
            ),
        )
        self.note_state(state, rollout=rollout, wave=wave)

    def note_state(
        self,
        state: OccurrenceState,
        *,
        rollout: RolloutRecord | None = None,
        wave: WaveRecord | None = None,
    ) -> None:
        """Take on ``state``, which the database already holds."""
        previous = self.tracker.run.phase
        self.tracker.become(enter_phase(self.tracker.run, state))
        self.log.info(
            "occurrence_state_changed",
            **{"from": previous.value, "to": state.value},
            rollout_id=rollout.rollout_id if rollout else None,
            wave=wave.group.value if wave else None,
        )

    async def depart(self, reason: LeaveReason, *, retried: bool = True) -> None:
        """Give up every lease and leave the fleet for ``reason``, however long the
        database takes (with ``retried``; unless the run is closed meanwhile, or an
        emergency stop departs it first)."""
        if not may_depart(self.tracker.run, reason):
            return
        self.tracker.become(depart(self.tracker.run, reason))
        if retried:
            await self.persist("release", self.driver.release_all)
            await self.persist("leave", self.leave_fleet)
        else:
            await self.leave_fleet()
        self.tracker.become(left(self.tracker.run))

    async def leave_fleet(self) -> None:
        """Write this run's leave, with the reason it is leaving for."""
        run = self.tracker.run
        assert run.reason is not None and run.audit_reason is not None
        await self.store.deregister(
            self.me, reason=run.audit_reason, run_state=AUDIT_RUN_STATE[run.reason]
        )
        self.log.info("occurrence_left", reason=run.audit_reason)
