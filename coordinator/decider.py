"""Deciding a shared task: discovery, one engine call under a renewed lease, a fenced record."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable
from contextlib import asynccontextmanager, suppress
from typing import Any, Protocol

import anyio

from coordinator.clock import Clock
from coordinator.connectivity import Connectivity
from coordinator.engine import DecisionEngine, DecisionRequest, EngineAnswer, EngineTimeout
from coordinator.policy.planning import build_plan, discovery_done, judge_members
from coordinator.prompts import render_message
from persistence import Store
from schemas import (
    Claim,
    DatabaseUnavailable,
    Decision,
    EventKind,
    NewEvent,
    RolloutPlan,
    RolloutRecord,
    Settings,
    StaleFencingToken,
    Verdict,
)
from schemas.fleet import FleetView
from schemas.kinds import kind_policy


class NextView(Protocol):
    """The next fleet view read after the call (the poll loop's, see ``FleetViews.next``)."""

    def __call__(self, *, at_once: bool = False) -> Awaitable[FleetView]: ...


class Decider:
    def __init__(
        self,
        store: Store,
        settings: Settings,
        engine: DecisionEngine,
        clock: Clock,
        log: Any,
        *,
        connectivity: Connectivity,
        next_view: NextView,
        agent_name: str = "agent",
    ) -> None:
        self._store = store
        self._settings = settings
        self._engine = engine
        self._clock = clock
        self._log = log
        self._agent_name = agent_name
        self._me = settings.occurrence_id
        self._connectivity = connectivity
        self._next_view = next_view

    async def decide(self, claim: Claim) -> RolloutRecord | None:
        """Decide ``claim``'s task for every occurrence and start its rollout.

        Returns the rollout, or None if the decision failed (the task is given back) or
        this occurrence lost its claim meanwhile (someone else decides).
        """
        task = claim.task
        log = self._log.bind(task_id=task.task_id, kind=task.kind.value)
        log.info("task_claimed", fencing_token=claim.fencing_token)
        try:
            async with self._renewing(claim) as current:
                plan = await self._plan(claim)
                request = DecisionRequest(
                    kind=task.kind,
                    task_id=task.task_id,
                    occurrence_id=self._me,
                    message=self._message(plan, task.reason),
                    plan=plan,
                    reason=task.reason,
                )
                answer = await self._ask(request)
            decision = Decision(
                verdict=Verdict.ACCEPT if answer.accept else Verdict.REJECT,
                reason=answer.reason,
                decided_by=self._me,
                decided_at=self._clock.now(),
            )
            driver = self._me if answer.accept and self._drives(plan) else None
            rollout = await self._store.record_decision(
                current[0], decision, plan, driver=driver, lease_ttl=self._settings.lease_ttl
            )
        except StaleFencingToken:
            log.warning("decision_superseded", why="claim lost before the decision was recorded")
            return None
        except Exception as exc:  # the engine is user code: any failure gives the task back
            error = repr(_cause(exc))
            log.error("decision_error", error=error)
            # If this fails too, the lease simply expires and another occurrence decides.
            with suppress(StaleFencingToken, DatabaseUnavailable):
                await self._store.release_claim(claim, error=error)
            return None
        log.info(
            "decision_made",
            rollout_id=rollout.rollout_id,
            verdict=decision.verdict.value,
            reason=decision.reason,
            groups={w.group.value: list(w.members) for w in rollout.waves},
        )
        return rollout

    async def _ask(self, request: DecisionRequest) -> EngineAnswer:
        """The engine's answer, within ``decision_timeout`` of the injected clock: an engine
        that hangs must not hold the claim (renewed meanwhile) and the fleet's decision
        for good."""
        timeout = self._settings.decision_timeout
        answers: list[EngineAnswer] = []
        async with anyio.create_task_group() as tg:

            async def deadline() -> None:
                await self._clock.sleep(timeout)
                tg.cancel_scope.cancel()

            tg.start_soon(deadline)
            answers.append(await self._engine.decide(request))
            tg.cancel_scope.cancel()
        if not answers:
            raise EngineTimeout(f"the decision engine did not answer within {timeout:g} s")
        return answers[0]

    def _drives(self, plan: RolloutPlan) -> bool:
        # A decider drives the rollout it decided, unless it leaves with it: then only if
        # it leaves in the last wave (a shutdown's driver leaves after the others).
        if not kind_policy(plan.kind).driver_leaves_last:
            return True
        last = max((i for i, w in enumerate(plan.waves) if w.members), default=0)
        mine = next(i for i, w in enumerate(plan.waves) if self._me in w.members)
        return mine >= last

    def _message(self, plan: RolloutPlan, reason: str | None) -> str:
        return render_message(
            plan, agent_name=self._agent_name, occurrence_id=self._me, reason=reason or ""
        )

    async def _plan(self, claim: Claim) -> RolloutPlan:
        settings = self._settings
        kind = claim.task.kind
        waits_for_discovery = kind_policy(kind).waits_for_discovery
        # Discovery is timed from the task's creation, not from this claim: a takeover
        # (the previous decider died or was starved) must not restart the wait, or a loaded
        # fleet claims a wakeup again and again and never decides. Both times are the
        # store's clock (the server's, on PostgreSQL).
        started = claim.task.created_at
        waited_for: set[str] = set()
        first = True
        while True:
            # One snapshot per poll, the same the poll loop and the driver read; the
            # first at once, so a claim is planned without waiting a poll interval.
            view = await self._next_view(at_once=first)
            first = False
            now = view.now
            judged = judge_members(
                view.members,
                decider=self._me,
                now=now,
                member_ttl=settings.member_ttl,
                # The view began in this runtime's clock; heartbeats carry the store's.
                # Measured from the store's present, not the snapshot's (a little older):
                # a later start trusts fewer heartbeats, never more.
                view_began=self._store.now() - self._connectivity.view_age(),
                trust_staleness=self._connectivity.unbroken_for() >= settings.member_ttl,
            )
            live = list(judged.alive)
            if judged.unsure:
                # Never plan a member it cannot judge into a gated wave: wait until each
                # heartbeats again (alive) or goes stale (gone), at most one TTL.
                if set(judged.unsure) - waited_for:
                    waited_for |= set(judged.unsure)
                    self._log.warning("decision_waits_for_members", members=sorted(judged.unsure))
                continue
            # A shutdown concerns the occurrences serving now: no one to wait for.
            if not waits_for_discovery or discovery_done(
                len(live), settings.agent_occurrence_count, now - started, settings.discovery_grace
            ):
                break
        plan = build_plan(kind, self._me, live, settings, request_reason=claim.task.reason)
        expected = settings.agent_occurrence_count
        if waits_for_discovery and expected is not None and plan.total_members < expected:
            shortfall = NewEvent(
                kind=EventKind.DISCOVERY_SHORTFALL,
                occurrence_id=self._me,
                task_id=claim.task.task_id,
                details={"expected": expected, "discovered": plan.total_members},
            )
            await self._store.record_event(shortfall)
            self._log.warning(
                "discovery_shortfall", expected=expected, discovered=plan.total_members
            )
        return plan

    @asynccontextmanager
    async def _renewing(self, claim: Claim) -> AsyncIterator[list[Claim]]:
        """Keep the claim's lease alive while the body runs; cancel the body if it is lost."""
        current = [claim]
        interval = self._settings.lease_ttl / 3

        async def renew() -> None:
            while True:
                await self._clock.sleep(interval)
                current[0] = await self._store.renew_claim(current[0], self._settings.lease_ttl)

        lost: list[StaleFencingToken] = []
        async with anyio.create_task_group() as tg:

            async def guard() -> None:
                try:
                    await renew()
                except StaleFencingToken as exc:
                    lost.append(exc)
                    tg.cancel_scope.cancel()

            tg.start_soon(guard)
            try:
                yield current
            finally:
                tg.cancel_scope.cancel()
        if lost:
            raise lost[0]


def _cause(exc: BaseException) -> BaseException:
    """The one error inside the task groups' wrapping (the engine's own, or the timeout)."""
    while isinstance(exc, BaseExceptionGroup) and len(exc.exceptions) == 1:
        exc = exc.exceptions[0]
    return exc
