"""The emergency loop: look for emergency commands when one was written (NOTIFY on
PostgreSQL, a wake file on SQLite) and at least every poll interval of the injected
clock (where the Store is the sole writer, only when it commits a command: its commits
wake the loop at once, see ``Commits.on_emergency``), and answer each once. Separate
from the poll loop so a slow poll or a busy action never delays a stop."""

from __future__ import annotations

import math
from collections.abc import Callable

from coordinator.clock import seconds_per_wall_second
from coordinator.emergency import judge
from coordinator.hooks import LifecycleHooks, WaveContext
from coordinator.member import Member
from coordinator.nap import Nap
from coordinator.run_state import LeaveReason, depart, left, may_depart
from persistence import Change
from persistence.emergency import Verifier
from schemas import AckVerdict, CommandRecord, CommandStatus, DatabaseUnavailable, OccurrenceState


class EmergencyLoop:
    def __init__(
        self,
        member: Member,
        hooks: LifecycleHooks,
        verifier: Verifier,
        fleet_changed: Callable[[], None],
    ) -> None:
        self._member = member
        self._hooks = hooks
        self._verifier = verifier
        self._fleet_changed = fleet_changed
        self._wake = Nap(member.clock)
        self._changes: frozenset[Change] = frozenset()
        """What the change feed reported and this loop has not dispatched yet."""
        self._waits_for_commit = False
        """Napping until the Store commits a command (a sole writer's, see ``run``)."""

    def on_change(self, changes: frozenset[Change]) -> None:
        """A process committed ``changes`` (NOTIFY, or SQLite's wake files).

        This loop dispatches them: the emergency check first, if a command changed, then
        a poll if the fleet did. So a stop is never queued behind a poll, and an
        occurrence busy stopping polls nothing: during a fleet-wide stop each
        acknowledgement is a fleet change, and were every occurrence to read the fleet
        view on each of them, that CPU would delay the stops themselves.
        """
        self._changes |= changes
        self._wake.poke()

    async def run(self) -> None:
        commits = self._member.store.commits
        commits.on_emergency.append(self._emergency_committed)
        try:
            await self._check_until_done()
        finally:
            commits.on_emergency.remove(self._emergency_committed)

    def _emergency_committed(self) -> None:
        if self._waits_for_commit:
            self.on_change(frozenset({Change.EMERGENCY}))

    async def _check_until_done(self) -> None:
        member = self._member
        clock = member.clock
        # The periodic check is the safety net under the change feed, which hears a new
        # command at once: it runs every poll interval of wall time, also when time is
        # compressed. Every compressed interval, nine simulated occurrences' checks starve
        # the one event loop they share (renewals come late, claims and drives change
        # hands over and over, and a simulation never ends).
        poll_interval = member.settings.poll_interval * seconds_per_wall_second(clock)
        answered: set[str] = set()
        check_at = clock.now()
        store = member.store
        checked: int | None = None
        """``store.commits.emergency`` before the last check that answered."""
        while not member.winding_down:
            changes, self._changes = self._changes, frozenset()
            if Change.EMERGENCY in changes or clock.now() >= check_at:
                check_at = clock.now() + poll_interval
                # The sole writer knows whether a command was written since: if none
                # was, the check would read what it read last time.
                unchanged = store.sole_writer and checked == store.commits.emergency
                try:
                    if Change.EMERGENCY in changes or not unchanged:
                        checked = store.commits.emergency  # before: none is missed
                        found = await store.emergency_commands_since(member.me.started_at)
                        for record, replayed in found:
                            if record.command_id not in answered:
                                await self._answer(record, replayed)
                                answered.add(record.command_id)
                                if member.winding_down:
                                    return
                except DatabaseUnavailable as exc:
                    checked = None
                    member.log.warning("emergency_check_failed", error=str(exc))
            if Change.FLEET in changes:
                self._fleet_changed()
            if store.sole_writer and checked == store.commits.emergency:
                # Nothing to check until a command is committed, and the sole writer's
                # commits say so at once (``Commits.on_emergency``): no periodic wake.
                self._waits_for_commit = True
                try:
                    await self._wake.nap(math.inf)
                finally:
                    self._waits_for_commit = False
            else:
                await self._wake.nap(check_at - clock.now())

    async def _answer(self, record: CommandRecord, replayed: bool) -> None:
        member, verifier, log = self._member, self._verifier, self._member.log
        store, me, tracker = member.store, member.me, member.tracker
        if record.status is CommandStatus.PENDING:  # the first to see it records the verdict
            record = await store.settle_emergency(record.command_id, verifier)
        judgement = judge(record, member.occurrence_id, verifier, replayed=replayed)
        if not judgement.answer:
            return
        if not judgement.stop:
            log.warning("emergency_refused", command_id=record.command_id, detail=judgement.detail)
            await store.acknowledge_emergency(record, me, AckVerdict.REFUSED, judgement.detail)
            return
        log.warning("emergency_stop", command_id=record.command_id, reason=judgement.reason)
        context = WaveContext(member.occurrence_id, None, None, judgement.reason)
        try:
            await self._hooks.on_emergency_stop(context)
        except Exception as exc:  # the stop goes on: the operator's brake beats the hook
            log.error("on_emergency_stop_failed", error=repr(exc))
        # The acknowledgement, the state shutdown and the leave are one write (no leave if
        # the run is already closing: its own leave is written on the way out).
        departing = may_depart(tracker.run, LeaveReason.EMERGENCY_STOP)
        if departing:
            tracker.become(depart(tracker.run, LeaveReason.EMERGENCY_STOP, command=record))
        leave = LeaveReason.EMERGENCY_STOP.value if departing else None
        ack = await member.persist(
            "emergency acknowledgement",
            lambda: store.acknowledge_emergency(
                record, me, AckVerdict.STOPPED, judgement.detail, leave=leave
            ),
        )
        log.warning(
            "emergency_acknowledged",
            command_id=record.command_id,
            latency_ms=round(ack.latency * 1000, 1),
        )
        if departing:
            log.info("occurrence_left", reason=LeaveReason.EMERGENCY_STOP.value)
            member.note_state(OccurrenceState.SHUTDOWN)
            await member.persist("release", member.driver.release_all)
            tracker.become(left(tracker.run))
