"""The invariant checker on the histories operators create: a paused and resumed rollout,
a retried one, an operator's abort, a whole-fleet emergency stop. Each history is made by
the real Store and the real state machine (the steps a driver takes), so it passes; then a
genuinely broken variant, planted as a misbehaving driver would write it, is reported."""

from __future__ import annotations

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from support import fast_settings

from coordinator.audit_check import capacity_violations, fleet_violations
from coordinator.clock import FakeClock
from coordinator.emergency import make_verifier
from coordinator.policy.planning import build_plan
from coordinator.policy.rollout_machine import observe, step_rollout
from coordinator.signing import new_command, public_key_text, sign
from persistence import Store
from schemas import (
    AckVerdict,
    CanaryGroup,
    CommandStatus,
    Decision,
    EventKind,
    LifecycleKind,
    NewEvent,
    OccurrenceRecord,
    OccurrenceState,
    RolloutAction,
    RolloutRecord,
    RolloutStatus,
    Verdict,
    WaveStatus,
)

MEMBERS = ["occ-1", "occ-2", "occ-3", "occ-4"]  # explorer occ-1, early adopter occ-2
DRIVER = "occ-4"
LEASE_TTL = 60.0
SOAK = 5.0  # simulated seconds: more than every soak of fast_settings()
EVERYONE_ALIVE = 3600.0  # member TTL for the observations: liveness is not under test here


class History:
    """Members, decisions, driver steps and operator commands on one real Store."""

    def __init__(self, store: Store, clock: FakeClock) -> None:
        self.store = store
        self.clock = clock
        self.me: dict[str, OccurrenceRecord] = {}
        self.rollout_id = ""

    async def join(self) -> None:
        for occurrence_id in MEMBERS:
            me = await self.store.register(occurrence_id, host="h", pid=1, protocol_version=1)
            await self.store.set_state(me, OccurrenceState.WAKEUP)
            self.me[occurrence_id] = me

    async def decide(self, kind: LifecycleKind) -> RolloutRecord:
        if kind is LifecycleKind.WAKEUP:
            task = await self.store.open_wakeup_task("occ-1", 86400)
        else:
            task, _ = await self.store.request_shutdown("maintenance", "operator")
        assert task is not None
        claim = await self.store.claim_task(task.task_id, "occ-1", LEASE_TTL)
        assert claim is not None
        decision = Decision(
            verdict=Verdict.ACCEPT, reason="t", decided_by="occ-1", decided_at=self.clock.now()
        )
        plan = build_plan(kind, "occ-1", MEMBERS, fast_settings())
        rollout = await self.store.record_decision(
            claim, decision, plan, driver=DRIVER, lease_ttl=LEASE_TTL
        )
        self.rollout_id = rollout.rollout_id
        return rollout

    async def step(self, *, after: float = 0.0) -> RolloutRecord:
        """Let ``after`` seconds pass, then take one step as the driver does."""
        self.clock.advance(after)
        rollout = await self.store.rollout(self.rollout_id)
        token: int | None = rollout.driver_token
        if rollout.driver_id != DRIVER:  # freed by a pause, resume or retry: take it again
            token = await self.store.acquire_driver(self.rollout_id, DRIVER, LEASE_TTL)
        assert token is not None
        observed = observe(await self.store.members(), self.clock.now(), EVERYONE_ALIVE)
        step = step_rollout(rollout, observed, self.clock.now(), driver=DRIVER)
        if step.change is not None:
            await self.store.apply_step(
                self.rollout_id, DRIVER, token, step.change, lease_ttl=LEASE_TTL
            )
        return await self.store.rollout(self.rollout_id)

    async def act(self, occurrence_id: str, state: OccurrenceState) -> None:
        """A member acts on its wave's signal."""
        rollout = await self.store.rollout(self.rollout_id)
        wave = rollout.wave_of(occurrence_id)
        assert wave is not None and wave.signalled_at is not None
        await self.store.set_state(
            self.me[occurrence_id], state, rollout_id=self.rollout_id, wave=wave.group
        )

    async def operator(self, action: RolloutAction) -> None:
        record = await self.store.control_rollout(
            self.rollout_id, action, issued_by="operator", reason=f"drill: {action}"
        )
        assert record.status is CommandStatus.ACCEPTED, record.detail

    async def plant(self, kind: EventKind, wave: CanaryGroup) -> None:
        """Write what a driver that ignored the rollout's state would have written."""
        await self.store.record_event(
            NewEvent(
                kind=kind,
                occurrence_id=DRIVER,
                rollout_id=self.rollout_id,
                task_id=self.rollout_id,
                wave=wave,
                details={"members": []},
            )
        )

    async def violations(self) -> list[str]:
        return await fleet_violations(self.store)


async def explorer_reached(history: History, state: OccurrenceState) -> None:
    """A wakeup decided, its explorer signalled and at ``state``."""
    await history.join()
    await history.decide(LifecycleKind.WAKEUP)
    await history.step()
    await history.act("occ-1", state)


async def woken(history: History) -> None:
    """A wakeup rollout taken to completion by the driver."""
    await explorer_reached(history, OccurrenceState.WORK)
    await history.step(after=SOAK)
    await history.act("occ-2", OccurrenceState.WORK)
    await history.step(after=SOAK)
    for general in ("occ-3", "occ-4"):
        await history.act(general, OccurrenceState.WORK)
    done = await history.step(after=SOAK)
    assert done.status is RolloutStatus.COMPLETED


async def aborted_by_the_explorer_gate(history: History) -> RolloutRecord:
    """A wakeup rollout whose explorer failed: the gate aborted it."""
    await explorer_reached(history, OccurrenceState.FAILED)
    return await history.step(after=SOAK)


async def test_a_paused_and_resumed_rollout_passes(store: Store, clock: FakeClock) -> None:
    history = History(store, clock)
    await explorer_reached(history, OccurrenceState.WORK)
    await history.operator(RolloutAction.PAUSE)
    clock.advance(3 * SOAK)  # held: nothing is signalled or judged meanwhile
    await history.operator(RolloutAction.RESUME)
    rollout = await history.step(after=SOAK)
    assert [w.status for w in rollout.waves][:2] == [WaveStatus.HEALTHY, WaveStatus.SIGNALLED]
    await history.operator(RolloutAction.PAUSE)  # a second hold, mid early adopters
    await history.act("occ-2", OccurrenceState.WORK)  # signalled before the pause: may act
    await history.operator(RolloutAction.RESUME)
    await history.step(after=SOAK)
    for general in ("occ-3", "occ-4"):
        await history.act(general, OccurrenceState.WORK)
    done = await history.step(after=SOAK)

    assert done.status is RolloutStatus.COMPLETED
    kinds = [e.kind for e in await store.events(rollout_id=history.rollout_id)]
    assert kinds.count(EventKind.ROLLOUT_PAUSED) == kinds.count(EventKind.ROLLOUT_RESUMED) == 2
    assert await history.violations() == []


async def test_waves_signalled_or_judged_while_paused_are_reported(
    store: Store, clock: FakeClock
) -> None:
    history = History(store, clock)
    await explorer_reached(history, OccurrenceState.WORK)
    await history.step(after=SOAK)  # explorer healthy, early adopters signalled
    await history.operator(RolloutAction.PAUSE)
    await history.plant(EventKind.WAVE_HEALTHY, CanaryGroup.EARLY_ADOPTER)
    await history.plant(EventKind.WAVE_SIGNALLED, CanaryGroup.GENERAL)

    violations = await history.violations()
    assert any("early_adopter judged healthy while the rollout was paused" in v for v in violations)
    assert any("general signalled while the rollout was paused" in v for v in violations)


async def test_a_retried_rollout_passes_also_when_the_retry_fails_first(
    store: Store, clock: FakeClock
) -> None:
    history = History(store, clock)
    aborted = await aborted_by_the_explorer_gate(history)
    assert aborted.status is RolloutStatus.ABORTED
    assert [w.status for w in aborted.waves] == [WaveStatus.FAILED, *[WaveStatus.SKIPPED] * 2]

    await history.operator(RolloutAction.RETRY)  # the cause is not fixed yet: fails again
    again = await history.step()
    assert again.status is RolloutStatus.ABORTED

    # The explorer restarts (a new incarnation) and serves; the second retry passes.
    history.me["occ-1"] = await store.register("occ-1", host="h", pid=2, protocol_version=1)
    await history.act("occ-1", OccurrenceState.WORK)
    await history.operator(RolloutAction.RETRY)
    rollout = await history.step()
    assert [w.status for w in rollout.waves][:2] == [WaveStatus.HEALTHY, WaveStatus.SIGNALLED]
    await history.act("occ-2", OccurrenceState.WORK)
    await history.step(after=SOAK)
    for general in ("occ-3", "occ-4"):
        await history.act(general, OccurrenceState.WORK)
    done = await history.step(after=SOAK)

    assert done.status is RolloutStatus.COMPLETED
    events = await store.events(rollout_id=history.rollout_id)
    explorer = [e.kind for e in events if e.wave is CanaryGroup.EXPLORER]
    assert explorer.count(EventKind.WAVE_FAILED) == 2 and EventKind.WAVE_HEALTHY in explorer
    assert explorer.count(EventKind.WAVE_SIGNALLED) == 1  # a retry does not signal again
    kinds = [e.kind for e in events]
    assert kinds.count(EventKind.ROLLOUT_ABORTED) == kinds.count(EventKind.ROLLOUT_RETRIED) == 2
    assert await history.violations() == []


async def test_a_wave_signalled_twice_without_a_retry_is_reported(
    store: Store, clock: FakeClock
) -> None:
    history = History(store, clock)
    await history.join()
    await history.decide(LifecycleKind.WAKEUP)
    await history.step()
    await history.plant(EventKind.WAVE_SIGNALLED, CanaryGroup.EXPLORER)
    assert any("explorer signalled again while signalled" in v for v in await history.violations())


async def test_signalling_a_failed_wave_again_instead_of_retrying_is_reported(
    store: Store, clock: FakeClock
) -> None:
    history = History(store, clock)
    await aborted_by_the_explorer_gate(history)
    await history.plant(EventKind.WAVE_SIGNALLED, CanaryGroup.EXPLORER)
    await history.plant(EventKind.WAVE_HEALTHY, CanaryGroup.EXPLORER)

    violations = await history.violations()
    assert any("a wave was signalled after the abort (explorer)" in v for v in violations)
    assert any("explorer signalled again while failed" in v for v in violations)
    assert any("explorer judged healthy while the rollout was aborted" in v for v in violations)


async def test_a_retry_that_signals_the_retried_wave_again_is_reported(
    store: Store, clock: FakeClock
) -> None:
    history = History(store, clock)
    await aborted_by_the_explorer_gate(history)
    await history.operator(RolloutAction.RETRY)
    await history.plant(EventKind.WAVE_SIGNALLED, CanaryGroup.EXPLORER)
    await history.plant(EventKind.WAVE_SIGNALLED, CanaryGroup.EARLY_ADOPTER)

    violations = await history.violations()
    assert any("explorer signalled again while signalled" in v for v in violations)
    assert any("early_adopter signalled before explorer settled" in v for v in violations)


async def test_an_operator_abort_passes_and_nothing_may_follow_it(
    store: Store, clock: FakeClock
) -> None:
    history = History(store, clock)
    await explorer_reached(history, OccurrenceState.WORK)
    await history.operator(RolloutAction.ABORT)
    await history.act("occ-1", OccurrenceState.FAILED)  # signalled before: may still act
    assert (await store.rollout(history.rollout_id)).status is RolloutStatus.ABORTED
    assert await history.violations() == []

    await history.plant(EventKind.WAVE_HEALTHY, CanaryGroup.EXPLORER)
    await history.plant(EventKind.WAVE_SIGNALLED, CanaryGroup.EARLY_ADOPTER)
    violations = await history.violations()
    assert any("explorer judged healthy while the rollout was aborted" in v for v in violations)
    assert any("a wave was signalled after the abort (early_adopter)" in v for v in violations)


async def test_a_rollout_aborted_by_an_emergency_stop_passes(
    store: Store, clock: FakeClock
) -> None:
    history = History(store, clock)
    await woken(history)
    await history.decide(LifecycleKind.SHUTDOWN)
    await history.step()  # the explorer is told to leave, and leaves
    await history.act("occ-1", OccurrenceState.SHUTTING_DOWN)
    await history.act("occ-1", OccurrenceState.SHUTDOWN)
    await store.deregister(history.me["occ-1"], reason="coordinated shutdown")

    key = Ed25519PrivateKey.generate()
    settings = fast_settings(trusted_keys=public_key_text(key.public_key()))
    order = sign(new_command("drill", (), now=clock.now(), audience=settings.fleet_id), key)
    record = await store.submit_emergency(
        order, issued_by="operator", verify=make_verifier(settings)
    )
    assert record.status is CommandStatus.ACCEPTED
    shutdown = await store.rollout(history.rollout_id)
    assert shutdown.status is RolloutStatus.ABORTED
    assert (shutdown.abort_reason or "").startswith("emergency stop")
    for occurrence_id in ("occ-2", "occ-3", "occ-4"):
        me = history.me[occurrence_id]
        await store.acknowledge_emergency(record, me, AckVerdict.STOPPED, "ok")
        await store.set_state(me, OccurrenceState.SHUTDOWN, details={"emergency": "x"})
        await store.deregister(me, reason="emergency stop")

    assert await history.violations() == []
    assert await capacity_violations(store) == []

    # A stale driver that went on after the stop would be caught.
    await history.plant(EventKind.WAVE_HEALTHY, CanaryGroup.EXPLORER)
    await history.plant(EventKind.WAVE_SIGNALLED, CanaryGroup.EARLY_ADOPTER)
    violations = await history.violations()
    assert any("explorer judged healthy while the rollout was aborted" in v for v in violations)
    assert any("a wave was signalled after the abort (early_adopter)" in v for v in violations)
