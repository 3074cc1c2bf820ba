"""Defects the deterministic simulator must find, each planted by patching the product
from outside (no switch in the product code): the three of the defects issue, four
classic ones, and the capacity floor of a shutdown's plan. Each ``plant_*`` takes a
``pytest.MonkeyPatch`` and applies one defect; the patch is undone with the monkeypatch.

Each patch keeps everything of the real code but the one guard it removes, so what the
simulator finds is that guard's absence, not a different program.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncConnection

import coordinator.member_actions
import coordinator.poll_loop
import persistence.emergency
from coordinator.decider import Decider
from coordinator.policy import groups, rollout_machine
from coordinator.trial_config import TrialConfig
from persistence.rollouts import RolloutStore, _held_by, _raise_why_not_applied
from persistence.shared_tasks import SharedTaskStore
from persistence.tables import tasks
from schemas import (
    Claim,
    EventKind,
    NewEvent,
    RolloutChange,
    RolloutRecord,
    StaleFencingToken,
    TaskStatus,
    WaveStatus,
)

Plant = Callable[[pytest.MonkeyPatch], None]


def plant_stale_driver_view(monkeypatch: pytest.MonkeyPatch) -> None:
    """A driver steps from a stale view: ``apply_step`` without its state fence (the
    rollout's version), fenced by the driver lease alone."""

    async def apply_step(
        self: RolloutStore,
        rollout_id: str,
        holder: str,
        token: int,
        change: RolloutChange,
        *,
        lease_ttl: float,
        release: bool = False,
    ) -> None:
        from persistence.tables import rollouts

        async def work(conn: AsyncConnection) -> None:
            now = self.now()
            keep = not release and not change.status.is_finished
            result = await conn.execute(
                update(rollouts)
                .where(*_held_by(rollout_id, holder, token))
                .values(
                    status=change.status.value,
                    finished_at=change.finished_at,
                    abort_reason=change.abort_reason,
                    driver_id=holder if keep else None,
                    driver_lease_expires_at=now + lease_ttl if keep else now,
                    version=rollouts.c.version + 1,
                )
            )
            if result.rowcount == 0:
                await _raise_why_not_applied(conn, rollout_id, holder, token, change.based_on)
            await self._apply_waves(conn, rollout_id, change, now)

        await self._write(work)

    monkeypatch.setattr(RolloutStore, "apply_step", apply_step)


def plant_last_driver_leaves_unrecorded(monkeypatch: pytest.MonkeyPatch) -> None:
    """The last wave's driver leaves with its wave, without recording the result: its
    members no longer wait for it, and the driver no longer stays behind the others."""
    next_action = coordinator.poll_loop.next_action

    def leaving_at_once(*args: Any, driving: Any = (), **kwargs: Any) -> Any:
        return next_action(*args, **kwargs)

    monkeypatch.setattr(coordinator.poll_loop, "next_action", leaving_at_once)
    monkeypatch.setattr(coordinator.member_actions, "leaves_last", lambda *_: False)


def plant_discovery_restarts_on_takeover(monkeypatch: pytest.MonkeyPatch) -> None:
    """Decider discovery timed from the claim, not the task's creation: a takeover
    restarts the wait."""
    decide = Decider.decide

    async def from_the_claim(self: Decider, claim: Claim) -> RolloutRecord | None:
        task = claim.task.model_copy(update={"created_at": self._store.now()})
        return await decide(self, claim.model_copy(update={"task": task}))

    monkeypatch.setattr(Decider, "decide", from_the_claim)


def plant_claim_ignores_lease_expiry(monkeypatch: pytest.MonkeyPatch) -> None:
    """A claim takes an active task whether or not its lease expired."""

    async def claim_task(
        self: SharedTaskStore, task_id: str, holder: str, lease_ttl: float
    ) -> Claim | None:
        from persistence.rows import task_from_row

        async def work(conn: AsyncConnection) -> Claim | None:
            now = self.now()
            previous = (
                await conn.execute(tasks.select().where(tasks.c.task_id == task_id))
            ).first()
            row = (
                await conn.execute(
                    update(tasks)
                    .where(tasks.c.task_id == task_id)
                    .where(tasks.c.status.in_([TaskStatus.PENDING.value, TaskStatus.ACTIVE.value]))
                    .values(
                        status=TaskStatus.ACTIVE.value,
                        claimed_by=holder,
                        lease_expires_at=now + lease_ttl,
                        fencing_token=tasks.c.fencing_token + 1,
                        updated_at=now,
                    )
                    .returning(*tasks.c)
                )
            ).first()
            if row is None:
                return None
            task = task_from_row(row)
            details: dict[str, Any] = {"fencing_token": task.fencing_token}
            if previous is not None and previous.claimed_by:
                details["took_over_from"] = previous.claimed_by
            event = NewEvent(
                kind=EventKind.TASK_CLAIMED, occurrence_id=holder, task_id=task_id, details=details
            )
            await self._append(conn, now, [event])
            return Claim(
                task=task,
                holder=holder,
                fencing_token=task.fencing_token,
                lease_expires_at=now + lease_ttl,
            )

        return await self._write(work)

    monkeypatch.setattr(SharedTaskStore, "claim_task", claim_task)


def plant_unfenced_decision_write(monkeypatch: pytest.MonkeyPatch) -> None:
    """The decision (and every other claim-fenced write) is written by task id alone,
    without the claim's fencing token or holder."""

    async def fenced_task_update(
        self: SharedTaskStore, conn: AsyncConnection, claim: Claim, **values: Any
    ) -> None:
        result = await conn.execute(
            update(tasks)
            .where(tasks.c.task_id == claim.task.task_id)
            .values(updated_at=self.now(), **values)
        )
        if result.rowcount == 0:
            raise StaleFencingToken(f"no task {claim.task.task_id}")

    monkeypatch.setattr(SharedTaskStore, "_fenced_task_update", fenced_task_update)


def plant_nonce_unchecked(monkeypatch: pytest.MonkeyPatch) -> None:
    """An emergency command's nonce is never looked up: a replay counts as new."""

    async def never_used(conn: AsyncConnection, record: Any) -> bool:
        return False

    monkeypatch.setattr(persistence.emergency, "_nonce_used", never_used)


def plant_shutdown_capacity_ignored(monkeypatch: pytest.MonkeyPatch) -> None:
    """A shutdown is planned with the FSD's groups as they are: its early adopters are not
    cut to keep MIN_SERVING_FRACTION of the fleet serving until the last wave."""
    early_adopter_count = groups.early_adopter_count

    def uncut(total: int, fraction: float, min_serving_fraction: float) -> int:
        return early_adopter_count(total, fraction)

    monkeypatch.setattr(groups, "shutdown_early_adopter_count", uncut)


def plant_wave_before_gate(monkeypatch: pytest.MonkeyPatch) -> None:
    """The next wave is signalled while its predecessor still soaks, before its gate."""
    step_rollout = rollout_machine.step_rollout

    def eager(rollout: RolloutRecord, observed: Any, now: float, **kwargs: Any) -> Any:
        step = step_rollout(rollout, observed, now, **kwargs)
        soaking = [w for w in rollout.waves if w.status is WaveStatus.SIGNALLED]
        if step.change is not None or not soaking:
            return step
        # Judge the soaking wave as if its gate had passed, but write only what follows.
        passed = soaking[0].model_copy(update={"status": WaveStatus.HEALTHY})
        waves = tuple(passed if w.index == passed.index else w for w in rollout.waves)
        ahead = step_rollout(rollout.model_copy(update={"waves": waves}), observed, now, **kwargs)
        if ahead.change is None or ahead.change.status.is_finished:
            return step
        return ahead

    import coordinator.driver

    monkeypatch.setattr(coordinator.driver, "step_rollout", eager)


PLANTED: dict[str, Plant] = {
    "stale driver view": plant_stale_driver_view,
    "last wave's driver leaves unrecorded": plant_last_driver_leaves_unrecorded,
    "discovery restarts on takeover": plant_discovery_restarts_on_takeover,
    "claim ignores lease expiry": plant_claim_ignores_lease_expiry,
    "decision written without its fencing token": plant_unfenced_decision_write,
    "emergency nonce unchecked": plant_nonce_unchecked,
    "wave signalled before its predecessor's gate": plant_wave_before_gate,
    "shutdown ignores the serving floor": plant_shutdown_capacity_ignored,
}


CONFIG = TrialConfig(occurrences=5)
"""Five occurrences: a wakeup with three waves with members (a shutdown has two: 4 of 5
must serve until its last wave), and every fault class."""
LATE_JOINER = TrialConfig(
    occurrences=5,
    faults=(),
    late_share=1.0,
    late_start=(40.0, 52.0),
    late_at_gate=True,
    write_latency=(0.0, 0.2),
)
"""No faults; one occurrence always comes up late, the moment one of the wakeup's health
gates falls due, and every write waits a seeded latency: its join races the driver's
step from what it read (the default explorer reaches that race too rarely)."""
CONFIG_OF = {"stale driver view": LATE_JOINER}
"""The trials that find each defect (``CONFIG`` unless named here)."""
