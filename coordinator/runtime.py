"""OccurrenceRuntime: one occurrence of the agent, embedded in the agent's process.

Two loops run while it is open: a heartbeat every ``HEARTBEAT_INTERVAL``, and a poll every
``POLL_INTERVAL`` that reads one snapshot of the fleet, advances any rollout this
occurrence drives, then takes the member's next action. Hooks and engine calls (user
code, maybe slow) run beside the poll loop, never inside it, so driving goes on.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Awaitable, Callable
from contextlib import AsyncExitStack, ExitStack
from types import TracebackType
from typing import Any, Self, TypeVar

import anyio
from anyio.abc import TaskGroup, TaskStatus
from structlog.contextvars import bound_contextvars

from coordinator.clock import Clock, SystemClock
from coordinator.connectivity import Connectivity
from coordinator.decider import Decider
from coordinator.driver import RolloutDriver
from coordinator.emergency import judge, make_verifier
from coordinator.engine import AcceptingEngine, DecisionEngine
from coordinator.hooks import LifecycleHooks, WaveContext
from coordinator.logs import get_logger
from coordinator.member_policy import Act, MemberAction, leaves_last, next_action
from coordinator.run_state import (
    AUDIT_RUN_STATE,
    LeaveReason,
    Run,
    RunStatus,
    close,
    crash,
    depart,
    enter_phase,
    left,
    may_depart,
    registered,
    stopped,
)
from persistence import Change, ChangeFeed, Degraded, FleetView, Store
from persistence.emergency import Verifier
from schemas import (
    AckVerdict,
    Claim,
    CommandRecord,
    CommandStatus,
    DatabaseUnavailable,
    EventKind,
    NewEvent,
    OccurrenceRecord,
    OccurrenceState,
    RolloutRecord,
    RolloutStatus,
    Settings,
    SharedTask,
    Superseded,
    WaveRecord,
)

T = TypeVar("T")

CLOCK_REALIGN_INTERVAL = 60.0  # seconds between measurements of the server clock offset
PROTOCOL_VERSION = 1
"""Bumped when occurrences of different versions could no longer coordinate."""
_LEFT_OR_STOPPED = (RunStatus.LEFT, RunStatus.STOPPED)


class OccurrenceRuntime:
    """One occurrence. Either ``async with OccurrenceRuntime(settings, ...) as rt:`` or
    ``await task_group.start(rt.run)``; one runtime runs once."""

    def __init__(
        self,
        settings: Settings,
        *,
        engine: DecisionEngine | None = None,
        hooks: LifecycleHooks | None = None,
        clock: Clock | None = None,
        store: Store | None = None,
        agent_name: str = "agent",
    ) -> None:
        self.settings = settings
        self.engine = engine or AcceptingEngine()
        self.hooks = hooks or LifecycleHooks()
        self.clock = clock or SystemClock()
        self.agent_name = agent_name
        self._run = Run()
        """Where this run is in its life (see ``run_state``): the one state of it."""
        self._store = store
        self._owns_store = store is None
        self._me: OccurrenceRecord | None = None
        self._stack = AsyncExitStack()
        self._tg: TaskGroup | None = None
        self._decider: Decider
        self._connectivity: Connectivity
        self._driver: RolloutDriver
        self._changed = anyio.Event()
        """Set (and replaced) at each change of ``_run``."""
        self._busy = False
        self._poked = False
        self._nap_scope: anyio.CancelScope | None = None
        self._command_check = anyio.Event()
        self._changes: frozenset[Change] = frozenset()
        """What the change feed reported and the emergency loop has not dispatched yet."""
        self._verifier: Verifier | None = None
        self._last_note = ""
        self._outage: Degraded | None = None
        """The database outage this occurrence is serving through, if any."""
        self._log: Any = get_logger("coordinator")
        """Its lines carry ``occurrence_id`` and ``incarnation_id`` from the context that
        ``run`` binds, as do the store's and every other line logged in its tasks."""

    # -- public surface -------------------------------------------------------------

    @property
    def occurrence_id(self) -> str:
        return self.settings.occurrence_id

    @property
    def incarnation_id(self) -> str | None:
        """This run's incarnation (None until registered)."""
        return self._me.incarnation_id if self._me is not None else None

    @property
    def state(self) -> OccurrenceState:
        return self._run.phase

    @property
    def run_state(self) -> Run:
        """Where this run is in its life, and once it ends, why (``reason``)."""
        return self._run

    @property
    def error(self) -> BaseException | None:
        """What crashed this run, if something did."""
        return self._run.error

    @property
    def left_because(self) -> str | None:
        """Why this occurrence left the fleet (e.g. "coordinated shutdown"); None while in it."""
        return self._run.audit_reason if self._run.status in _LEFT_OR_STOPPED else None

    @property
    def emergency_command(self) -> CommandRecord | None:
        """The emergency command that stopped this occurrence, if one did."""
        return self._run.command

    @property
    def _real_clock(self) -> bool:
        return isinstance(self.clock, SystemClock)

    @property
    def stopped(self) -> bool:
        """True once this occurrence left the fleet (or crashed, or was stopped)."""
        return self._run.winding_down

    @property
    def store(self) -> Store:
        if self._store is None:
            raise RuntimeError("the runtime is not started")
        return self._store

    async def __aenter__(self) -> Self:
        group = await self._stack.enter_async_context(anyio.create_task_group())
        await group.start(self.run)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
        await self._stack.aclose()

    async def run(self, *, task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        """Register, follow the fleet until this occurrence leaves it, then clean up.

        ``task_status.started()`` is signalled once registered; cancelling ``run`` or
        calling ``stop()`` leaves the fleet uncoordinated (for instance on SIGTERM).
        """
        # The ids are bound in this task's context, which its loops copy: every line logged
        # while it runs carries them, and none logged by the embedding program does.
        with ExitStack() as ids:
            ids.enter_context(bound_contextvars(occurrence_id=self.occurrence_id))
            await self._live(ids, task_status)

    async def _live(self, ids: ExitStack, task_status: TaskStatus[None]) -> None:
        try:
            # Bad trusted keys fail the start, before this occurrence joins anything.
            self._verifier = make_verifier(self.settings)
            await self._register(ids)
            async with anyio.create_task_group() as tg:
                self._tg = tg
                tg.start_soon(self._guarded, self._heartbeat_loop)
                tg.start_soon(self._guarded, self._poll_loop)
                tg.start_soon(self._guarded, self._emergency_loop)
                feed = ChangeFeed(self.settings.database_url)
                tg.start_soon(feed.run, self._on_change, self.occurrence_id)
                task_status.started()
                while not self._run.winding_down:
                    await self._changed.wait()
                tg.cancel_scope.cancel()
        finally:
            with anyio.CancelScope(shield=True):
                await self._cleanup()

    def stop(self, reason: LeaveReason = LeaveReason.CLOSED) -> None:
        """Ask ``run`` to return (the occurrence leaves without a coordinated shutdown);
        ``reason`` is one of ``run_state.CLOSES``. A run already leaving keeps its reason."""
        self._become(close(self._run, reason))

    async def wait_stopped(self) -> OccurrenceState:
        """Wait until this occurrence left the fleet (coordinated shutdown, or an error)."""
        while not self._run.winding_down:
            await self._changed.wait()
        return self._run.phase

    async def wait_for(self, *states: OccurrenceState) -> OccurrenceState:
        """Wait until the state is one of ``states``, or the occurrence stopped."""
        while self._run.phase not in states and not self._run.winding_down:
            await self._changed.wait()
        return self._run.phase

    async def request_shutdown(self, reason: str) -> SharedTask:
        """Ask the fleet for a coordinated shutdown (one occurrence will decide)."""
        task, _ = await self.store.request_shutdown(reason, requested_by=self.occurrence_id)
        self._poke()
        return task

    async def _register(self, ids: ExitStack) -> None:
        if self._store is None:
            self._store = await Store.open(
                self.settings.database_url,
                clock=self.clock.now,
                # A scaled or fake clock is the test's or simulation's own time: keep it.
                server_time=self._real_clock,
            )
        store = self._store
        self._me = await self._persist(
            "registration",
            lambda: store.register(
                self.occurrence_id,
                host=socket.gethostname(),
                pid=os.getpid(),
                protocol_version=PROTOCOL_VERSION,
            ),
        )
        ids.enter_context(bound_contextvars(incarnation_id=self._me.incarnation_id))
        self._connectivity = Connectivity(self.clock, self.settings.heartbeat_interval)
        self._decider = Decider(
            self._store,
            self.settings,
            self.engine,
            self.clock,
            self._log,
            agent_name=self.agent_name,
            connectivity=self._connectivity,
        )
        self._driver = RolloutDriver(self._store, self.settings, self._log, self._connectivity)
        self._log.info("occurrence_registered", pid=self._me.pid, host=self._me.host)
        self._become(registered(self._run))
        await self._set_state(OccurrenceState.WAKEUP)

    async def _cleanup(self) -> None:
        self.stop()  # cancelled from outside: closed by the embedding program
        if self._store is not None and self._me is not None:
            try:
                await self._driver.release_all()
                if self._run.leave_unwritten:
                    await self._leave_fleet()
            except (DatabaseUnavailable, Superseded) as exc:
                self._log.warning("leave_failed", error=str(exc))
        if self._owns_store and self._store is not None:
            await self._store.close()
        self._become(stopped(self._run))

    # -- loops ------------------------------------------------------------------------

    async def _guarded(self, loop: Callable[[], Awaitable[None]]) -> None:
        try:
            await loop()
        except Superseded as exc:
            if not self._run.leave_begun:  # once leaving, a late heartbeat is expected
                self._crash(exc, "occurrence_superseded", superseded=True)
        except Exception as exc:
            self._crash(exc, "occurrence_crashed")

    def _crash(self, exc: BaseException, event: str, *, superseded: bool = False) -> None:
        self._log.error(event, error=repr(exc))
        self._become(crash(self._run, exc, superseded=superseded))
        if self._tg is not None:
            self._tg.cancel_scope.cancel()

    async def _heartbeat_loop(self) -> None:
        assert self._me is not None
        aligned_at = self.clock.now()
        while not self._run.winding_down:
            await self.clock.sleep(self.settings.heartbeat_interval)
            if self._run.winding_down:
                return
            try:
                await self.store.heartbeat(self._me)
                self._connectivity.heartbeat_landed()
                await self._outage_over()
                if self._real_clock and self.clock.now() - aligned_at > CLOCK_REALIGN_INTERVAL:
                    offset = await self.store.align_clock_with_server()
                    aligned_at = self.clock.now()
                    self._log.debug("clock_aligned", offset=round(offset, 4))
            except DatabaseUnavailable as exc:
                self._outage = self._outage or self.store.degraded
                self._log.warning("heartbeat_failed", error=str(exc))

    async def _poll_loop(self) -> None:
        while not self._run.winding_down:
            try:
                view = await self.store.fleet_view(self.settings.decision_window)
                await self._outage_over()
                await self._tick(view)
            except DatabaseUnavailable as exc:
                # Keep serving in the current state; decide nothing until it answers.
                self._outage = self._outage or self.store.degraded
                self._log.warning("database_unavailable", error=str(exc))
            await self._nap(self.settings.poll_interval)

    async def _outage_over(self) -> None:
        """Once the store is no longer degraded, put the outage this occurrence served
        through in the audit trail (one event per outage, from the loop that saw it)."""
        outage = self._outage
        if outage is None or self.store.degraded is not None:
            return
        self._outage = None
        event = NewEvent(
            kind=EventKind.DATABASE_RECOVERED,
            occurrence_id=self.occurrence_id,
            details={"down_for": round(self.store.now() - outage.since, 1), "error": outage.error},
        )
        try:
            await self.store.record_event(event)
        except DatabaseUnavailable:
            self._outage = outage  # not over after all: recorded at the next success

    @property
    def degraded(self) -> bool:
        """True while this occurrence cannot reach its database (it keeps serving in its
        state and retries; see ``database_degraded`` in its log)."""
        return self._store is not None and self._store.degraded is not None

    async def _nap(self, seconds: float) -> None:
        if self._poked:
            self._poked = False
            return
        with anyio.CancelScope() as scope:
            self._nap_scope = scope
            await self.clock.sleep(seconds)
        self._nap_scope = None
        self._poked = False

    def _poke(self) -> None:
        """Poll again at once (something this occurrence did may have changed the fleet)."""
        self._poked = True
        if self._nap_scope is not None:
            self._nap_scope.cancel()

    def _on_change(self, changes: frozenset[Change]) -> None:
        """A process committed ``changes`` (NOTIFY, or SQLite's wake files).

        The emergency loop dispatches them: the emergency check first, if a command
        changed, then a poll if the fleet did. So a stop is never queued behind a poll,
        and an occurrence busy stopping polls nothing: during a fleet-wide stop each
        acknowledgement is a fleet change, and were every occurrence to read the fleet
        view on each of them, that CPU would delay the stops themselves.
        """
        self._changes |= changes
        self._command_check.set()

    # -- emergency commands ---------------------------------------------------------------

    async def _emergency_loop(self) -> None:
        """Look for emergency commands when one was written (NOTIFY on PostgreSQL, a wake
        file on SQLite) and at least every poll interval; pass fleet changes on to the poll
        loop. Separate from the poll loop so a slow poll or a busy action never delays a
        stop."""
        assert self._me is not None
        answered: set[str] = set()
        check_at = anyio.current_time()
        while not self._run.winding_down:
            self._command_check = anyio.Event()
            changes, self._changes = self._changes, frozenset()
            if Change.EMERGENCY in changes or anyio.current_time() >= check_at:
                check_at = anyio.current_time() + self.settings.poll_interval
                try:
                    found = await self.store.emergency_commands_since(self._me.started_at)
                    for record, replayed in found:
                        if record.command_id not in answered:
                            await self._answer_emergency(record, replayed)
                            answered.add(record.command_id)
                            if self._run.winding_down:
                                return
                except DatabaseUnavailable as exc:
                    self._log.warning("emergency_check_failed", error=str(exc))
            if Change.FLEET in changes:
                self._poke()
            with anyio.move_on_after(check_at - anyio.current_time()):
                await self._command_check.wait()

    async def _answer_emergency(self, record: CommandRecord, replayed: bool) -> None:
        me, verifier = self._me, self._verifier
        assert me is not None and verifier is not None
        if record.status is CommandStatus.PENDING:  # the first to see it records the verdict
            record = await self.store.settle_emergency(record.command_id, verifier)
        judgement = judge(record, self.occurrence_id, verifier, replayed=replayed)
        if not judgement.answer:
            return
        if not judgement.stop:
            self._log.warning(
                "emergency_refused", command_id=record.command_id, detail=judgement.detail
            )
            await self.store.acknowledge_emergency(record, me, AckVerdict.REFUSED, judgement.detail)
            return
        self._log.warning("emergency_stop", command_id=record.command_id, reason=judgement.reason)
        context = WaveContext(self.occurrence_id, None, None, judgement.reason)
        try:
            await self.hooks.on_emergency_stop(context)
        except Exception as exc:  # the stop goes on: the operator's brake beats the hook
            self._log.error("on_emergency_stop_failed", error=repr(exc))
        # The acknowledgement, the state shutdown and the leave are one write (no leave if
        # the run is already closing: its own leave is written on the way out).
        departing = may_depart(self._run, LeaveReason.EMERGENCY_STOP)
        if departing:
            self._become(depart(self._run, LeaveReason.EMERGENCY_STOP, command=record))
        leave = LeaveReason.EMERGENCY_STOP.value if departing else None
        ack = await self._persist(
            "emergency acknowledgement",
            lambda: self.store.acknowledge_emergency(
                record, me, AckVerdict.STOPPED, judgement.detail, leave=leave
            ),
        )
        self._log.warning(
            "emergency_acknowledged",
            command_id=record.command_id,
            latency_ms=round(ack.latency * 1000, 1),
        )
        if departing:
            self._log.info("occurrence_left", reason=LeaveReason.EMERGENCY_STOP.value)
            self._note_state(OccurrenceState.SHUTDOWN)
            await self._persist("release", self._driver.release_all)
            self._become(left(self._run))

    # -- one poll -----------------------------------------------------------------------

    async def _tick(self, view: FleetView) -> None:
        assert self._me is not None
        await self._driver.drive(view, self._run.phase)
        if self._busy or self._run.winding_down:
            return
        action = next_action(view, self._me, self._run.phase, driving=self._driver.holding)
        if action.act is Act.WAIT:
            if action.why != self._last_note:
                self._last_note = action.why
                self._log.info("waiting", why=action.why, state=self._run.phase.value)
        elif action.act is Act.OPEN_WAKEUP:
            if await self.store.open_wakeup_task(self.occurrence_id, self.settings.decision_window):
                self._poke()
        elif action.act is Act.CLAIM:
            assert action.task is not None
            claim = await self.store.claim_task(
                action.task.task_id, self.occurrence_id, self.settings.lease_ttl
            )
            if claim is not None:
                self._spawn(self._decide, claim)
        elif action.act is Act.JOIN_LAST_WAVE:
            assert action.rollout is not None
            wave = await self.store.join_last_wave(action.rollout.rollout_id, self.occurrence_id)
            if wave is not None:
                self._log.info(
                    "occurrence_joined",
                    rollout_id=wave.rollout_id,
                    wave=wave.group.value,
                    late=True,
                )
            self._poke()
        elif action.act is Act.ENTER_WORK:
            assert action.rollout is not None
            self._spawn(self._enter_work, action.rollout, action.wave)
        elif action.act is Act.LEAVE:
            assert action.rollout is not None and action.wave is not None
            self._spawn(self._leave, action.rollout, action.wave)
        elif action.act is Act.STOP_REJECTED:
            await self._stop_after_rejected_wakeup(action)

    def _spawn(self, work: Callable[..., Awaitable[None]], *args: Any) -> None:
        assert self._tg is not None
        self._busy = True

        async def run() -> None:
            try:
                await work(*args)
            finally:
                self._busy = False
                self._poke()

        self._tg.start_soon(self._guarded, run)

    # -- actions ------------------------------------------------------------------------

    async def _decide(self, claim: Claim) -> None:
        rollout = await self._decider.decide(claim)
        if rollout is not None and rollout.driver_id == self.occurrence_id:
            self._driver.adopt(rollout.rollout_id, rollout.driver_token)

    async def _enter_work(self, rollout: RolloutRecord, wave: WaveRecord | None) -> None:
        group = wave.group if wave else None
        if wave is None:
            joined = NewEvent(
                kind=EventKind.OCCURRENCE_JOINED,
                occurrence_id=self.occurrence_id,
                rollout_id=rollout.rollout_id,
                task_id=rollout.task_id,
                details={"late": True, "direct": True},
            )
            await self._persist("join", lambda: self.store.record_event(joined))
            self._log.info("occurrence_joined", rollout_id=rollout.rollout_id, direct=True)
        context = WaveContext(self.occurrence_id, rollout.rollout_id, group)
        try:
            await self.hooks.on_work(context)
        except Exception as exc:
            self._log.error("on_work_failed", rollout_id=rollout.rollout_id, error=repr(exc))
            await self._set_state(
                OccurrenceState.FAILED, rollout=rollout, wave=wave, error=repr(exc)
            )
            return
        await self._set_state(OccurrenceState.WORK, rollout=rollout, wave=wave)

    async def _leave(self, rollout: RolloutRecord, wave: WaveRecord) -> None:
        await self._set_state(OccurrenceState.SHUTTING_DOWN, rollout=rollout, wave=wave)
        context = WaveContext(
            self.occurrence_id, rollout.rollout_id, wave.group, rollout.request_reason
        )
        try:
            await self.hooks.on_shutdown(context)
        except Exception as exc:
            self._log.error("on_shutdown_failed", rollout_id=rollout.rollout_id, error=repr(exc))
            await self._set_state(
                OccurrenceState.FAILED, rollout=rollout, wave=wave, error=repr(exc)
            )
            return
        await self._set_state(OccurrenceState.SHUTDOWN, rollout=rollout, wave=wave)
        if leaves_last(rollout, self.occurrence_id):
            await self._wait_for_result(rollout.rollout_id)
        await self._depart(LeaveReason.COORDINATED_SHUTDOWN)

    async def _wait_for_result(self, rollout_id: str) -> None:
        """Stay until the shutdown's result is recorded (driving it meanwhile if its lease
        is free, see ``may_hold_lease``): the last wave's members are the last who can
        record it, and a rollout nobody finishes would show ``running`` forever. Even a
        lease held by another is no reason to go: that holder may be dying."""
        while not self._run.winding_down:
            view = await self._persist(
                "result check", lambda: self.store.fleet_view(self.settings.decision_window)
            )
            current = next((r for r in view.running if r.rollout_id == rollout_id), None)
            if current is None or current.status is not RolloutStatus.RUNNING:
                return  # recorded, or held by an operator: theirs to finish
            self._poke()  # the poll loop drives it
            await self.clock.sleep(self.settings.poll_interval)

    async def _stop_after_rejected_wakeup(self, action: MemberAction) -> None:
        self._log.error("wakeup_rejected", reason=action.why)
        await self._set_state(
            OccurrenceState.SHUTDOWN, rollout=action.rollout, wakeup_rejected=action.why
        )
        if may_depart(self._run, LeaveReason.WAKEUP_REJECTED):
            self._become(depart(self._run, LeaveReason.WAKEUP_REJECTED))
            await self._leave_fleet()
            self._become(left(self._run))

    # -- state --------------------------------------------------------------------------

    async def _set_state(
        self,
        state: OccurrenceState,
        *,
        rollout: RolloutRecord | None = None,
        wave: WaveRecord | None = None,
        **details: Any,
    ) -> None:
        """Report a state; an unreachable database delays the report, never loses it."""
        me = self._me
        assert me is not None
        await self._persist(
            f"state {state.value}",
            lambda: self.store.set_state(
                me,
                state,
                rollout_id=rollout.rollout_id if rollout else None,
                wave=wave.group if wave else None,
                details=details or None,
            ),
        )
        self._note_state(state, rollout=rollout, wave=wave)

    def _note_state(
        self,
        state: OccurrenceState,
        *,
        rollout: RolloutRecord | None = None,
        wave: WaveRecord | None = None,
    ) -> None:
        """Take on ``state``, which the database already holds."""
        previous = self._run.phase
        self._become(enter_phase(self._run, state))
        self._log.info(
            "occurrence_state_changed",
            **{"from": previous.value, "to": state.value},
            rollout_id=rollout.rollout_id if rollout else None,
            wave=wave.group.value if wave else None,
        )

    async def _persist(self, what: str, write: Callable[[], Awaitable[T]]) -> T:
        """Retry ``write`` until the database takes it: an outage delays, never loses."""
        while True:
            try:
                return await write()
            except DatabaseUnavailable as exc:
                self._log.warning("write_delayed", what=what, error=str(exc))
                await self.clock.sleep(self.settings.poll_interval)

    async def _depart(self, reason: LeaveReason) -> None:
        """Give up every lease and leave the fleet, however long the database takes (unless
        the run is closed meanwhile, or an emergency stop departs it first)."""
        if not may_depart(self._run, reason):
            return
        self._become(depart(self._run, reason))
        await self._persist("release", self._driver.release_all)
        await self._persist("leave", self._leave_fleet)
        self._become(left(self._run))

    async def _leave_fleet(self) -> None:
        """Write this run's leave, with the reason it is leaving for."""
        run, me = self._run, self._me
        assert run.reason is not None and run.audit_reason is not None and me is not None
        await self.store.deregister(
            me, reason=run.audit_reason, run_state=AUDIT_RUN_STATE[run.reason]
        )
        self._log.info("occurrence_left", reason=run.audit_reason)

    def _become(self, run: Run) -> None:
        """Move this run to ``run`` (a transition of ``run_state``) and wake its waiters."""
        previous, self._run = self._run, run
        if run == previous:
            return
        self._changed.set()
        self._changed = anyio.Event()
