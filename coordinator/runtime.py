"""OccurrenceRuntime: one occurrence of the agent, embedded in the agent's process.

While it is open three loops run, each in its own module and each on the injected
clock: the heartbeat (``heartbeat_loop``), the poll that follows the fleet and takes the
member's actions (``poll_loop``, ``member_actions``), and the emergency check
(``emergency_loop``). Where the run is in its life is one state (``run_state``).
"""

from __future__ import annotations

import os
import socket
from collections.abc import Awaitable, Callable
from contextlib import AsyncExitStack, ExitStack
from types import TracebackType
from typing import Self

import anyio
from anyio.abc import TaskGroup, TaskStatus
from structlog.contextvars import bound_contextvars

from coordinator.clock import Clock, SystemClock
from coordinator.connectivity import Connectivity
from coordinator.decider import Decider
from coordinator.driver import RolloutDriver
from coordinator.emergency import make_verifier
from coordinator.emergency_loop import EmergencyLoop
from coordinator.engine import AcceptingEngine, DecisionEngine
from coordinator.engine_loader import identify
from coordinator.fleet_views import FleetViews
from coordinator.heartbeat_loop import heartbeat_loop
from coordinator.hooks import LifecycleHooks
from coordinator.logs import get_logger
from coordinator.member import Member, persist
from coordinator.member_actions import MemberActions
from coordinator.nap import Nap
from coordinator.outage import OutageWatch
from coordinator.poll_loop import PollLoop
from coordinator.run_state import LeaveReason, Run, RunStatus, close, crash, registered, stopped
from coordinator.run_tracker import RunTracker
from persistence import Store
from persistence.emergency import Verifier
from schemas import (
    CommandRecord,
    DatabaseUnavailable,
    EngineIdentity,
    OccurrenceState,
    Settings,
    SharedTask,
    Superseded,
)

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
        engine_identity: EngineIdentity | None = None,
        hooks: LifecycleHooks | None = None,
        clock: Clock | None = None,
        store: Store | None = None,
        agent_name: str = "agent",
    ) -> None:
        self.settings = settings
        self.engine = engine or AcceptingEngine()
        self.engine_identity = engine_identity or identify(self.engine)
        """Recorded with its membership: which engine decides when this one does."""
        self.hooks = hooks or LifecycleHooks()
        self.clock = clock or SystemClock()
        self.agent_name = agent_name
        self._tracker = RunTracker()
        """Where this run is in its life (see ``run_state``): the one state of it."""
        self._store = store
        self._owns_store = store is None
        self._member: Member | None = None
        self._connectivity: Connectivity
        self._stack = AsyncExitStack()
        self._tg: TaskGroup | None = None
        self._poll_nap = Nap(self.clock)
        self._log = get_logger("coordinator")
        """Its lines carry ``occurrence_id`` and ``incarnation_id`` from the context that
        ``run`` binds, as do the store's and every other line logged in its tasks."""

    # -- public surface -------------------------------------------------------------

    @property
    def occurrence_id(self) -> str:
        return self.settings.occurrence_id

    @property
    def incarnation_id(self) -> str | None:
        """This run's incarnation (None until registered)."""
        return self._member.me.incarnation_id if self._member is not None else None

    @property
    def state(self) -> OccurrenceState:
        return self._tracker.run.phase

    @property
    def run_state(self) -> Run:
        """Where this run is in its life, and once it ends, why (``reason``)."""
        return self._tracker.run

    @property
    def error(self) -> BaseException | None:
        """What crashed this run, if something did."""
        return self._tracker.run.error

    @property
    def left_because(self) -> str | None:
        """Why this occurrence left the fleet (e.g. "coordinated shutdown"); None while in it."""
        run = self._tracker.run
        return run.audit_reason if run.status in _LEFT_OR_STOPPED else None

    @property
    def emergency_command(self) -> CommandRecord | None:
        """The emergency command that stopped this occurrence, if one did."""
        return self._tracker.run.command

    @property
    def stopped(self) -> bool:
        """True once this occurrence left the fleet (or crashed, or was stopped)."""
        return self._tracker.winding_down

    @property
    def degraded(self) -> bool:
        """True while this occurrence cannot reach its database (it keeps serving in its
        state and retries; see ``database_degraded`` in its log)."""
        return self._store is not None and self._store.degraded is not None

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
            try:
                # Bad trusted keys fail the start, before this occurrence joins anything.
                verifier = make_verifier(self.settings)
                member = await self._register()
                ids.enter_context(bound_contextvars(incarnation_id=member.me.incarnation_id))
                await self._serve(member, verifier, task_status)
            finally:
                with anyio.CancelScope(shield=True):
                    await self._cleanup()

    def stop(self, reason: LeaveReason = LeaveReason.CLOSED) -> None:
        """Ask ``run`` to return (the occurrence leaves without a coordinated shutdown);
        ``reason`` is one of ``run_state.CLOSES``. A run already leaving keeps its reason."""
        self._tracker.become(close(self._tracker.run, reason))

    async def wait_stopped(self) -> OccurrenceState:
        """Wait until this occurrence left the fleet (coordinated shutdown, or an error)."""
        return (await self._tracker.wait_until(lambda run: run.winding_down)).phase

    async def wait_for(self, *states: OccurrenceState) -> OccurrenceState:
        """Wait until the state is one of ``states``, or the occurrence stopped."""
        run = await self._tracker.wait_until(lambda r: r.phase in states or r.winding_down)
        return run.phase

    async def request_shutdown(self, reason: str) -> SharedTask:
        """Ask the fleet for a coordinated shutdown (one occurrence will decide)."""
        task, _ = await self.store.request_shutdown(reason, requested_by=self.occurrence_id)
        self._poll_nap.poke()
        return task

    # -- one run ------------------------------------------------------------------------

    async def _register(self) -> Member:
        real_clock = isinstance(self.clock, SystemClock)
        if self._store is None:
            self._store = await Store.open(
                self.settings.database_url,
                clock=self.clock.now,
                # A scaled or fake clock is the test's or simulation's own time: keep it.
                server_time=real_clock,
            )
        store = self._store
        me = await persist(
            "registration",
            lambda: store.register(
                self.occurrence_id,
                host=socket.gethostname(),
                pid=os.getpid(),
                protocol_version=PROTOCOL_VERSION,
                engine=self.engine_identity,
            ),
            clock=self.clock,
            retry_after=self.settings.poll_interval,
            log=self._log,
        )
        self._connectivity = Connectivity(self.clock, self.settings.heartbeat_interval)
        driver = RolloutDriver(store, self.settings, self._log, self._connectivity)
        self._member = Member(
            me, store, self.settings, self.clock, self._tracker, driver, self._log
        )
        return self._member

    async def _serve(
        self, member: Member, verifier: Verifier, task_status: TaskStatus[None]
    ) -> None:
        self._log.info("occurrence_registered", pid=member.me.pid, host=member.me.host)
        self._tracker.become(registered(self._tracker.run))
        await member.set_state(OccurrenceState.WAKEUP)
        views = FleetViews(
            self._poll_nap.poke,
            member.store,
            decision_window=self.settings.decision_window,
            member_ttl=self.settings.member_ttl,
        )
        decider = Decider(
            member.store,
            self.settings,
            self.engine,
            self.clock,
            self._log,
            agent_name=self.agent_name,
            connectivity=self._connectivity,
            next_view=views.next,
        )
        outage = OutageWatch(member.store, self.occurrence_id)
        actions = MemberActions(member, decider, self.hooks, self._poll_nap.poke)
        poll = PollLoop(member, actions, outage, self._poll_nap, self._spawn, views)
        emergency = EmergencyLoop(member, self.hooks, verifier, self._poll_nap.poke)
        real_clock = isinstance(self.clock, SystemClock)
        async with anyio.create_task_group() as tg:
            self._tg = tg
            self._spawn(
                lambda: heartbeat_loop(member, self._connectivity, outage, real_clock=real_clock)
            )
            self._spawn(poll.run)
            self._spawn(emergency.run)
            feed = member.store.change_feed()
            tg.start_soon(feed.run, emergency.on_change, self.occurrence_id)
            task_status.started()
            await self._tracker.wait_until(lambda run: run.winding_down)
            tg.cancel_scope.cancel()

    async def _cleanup(self) -> None:
        self.stop()  # cancelled from outside: closed by the embedding program
        member = self._member
        if member is not None:
            try:
                await member.driver.release_all()
                if self._tracker.run.leave_unwritten:
                    await member.leave_fleet()
            except (DatabaseUnavailable, Superseded) as exc:
                self._log.warning("leave_failed", error=str(exc))
        if self._owns_store and self._store is not None:
            await self._store.close()
        self._tracker.become(stopped(self._tracker.run))

    def _spawn(self, task: Callable[[], Awaitable[None]]) -> None:
        """Run ``task`` beside the loops; a crash in it ends the run."""
        assert self._tg is not None
        self._tg.start_soon(self._guarded, task)

    async def _guarded(self, task: Callable[[], Awaitable[None]]) -> None:
        try:
            await task()
        except Superseded as exc:
            if not self._tracker.run.leave_begun:  # once leaving, a late heartbeat is expected
                self._crash(exc, "occurrence_superseded", superseded=True)
        except Exception as exc:
            self._crash(exc, "occurrence_crashed")

    def _crash(self, exc: BaseException, event: str, *, superseded: bool = False) -> None:
        self._log.error(event, error=repr(exc))
        self._tracker.become(crash(self._tracker.run, exc, superseded=superseded))
        if self._tg is not None:
            self._tg.cancel_scope.cancel()
