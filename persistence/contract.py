"""The Store's contract, written once: what every public method promises, on every backend.

``Store`` implements it (mypy checks that below); ``tests/integration/test_store_contract.py``
checks that this protocol names every public member of the Store and that the contract
suite calls each of them on both backends. Every method runs as one short transaction,
retried on transient errors (``retry.TRANSACTION``); once the retries run out it raises
``DatabaseUnavailable`` and ``degraded`` says since when. Times are Unix seconds, judged
by ``now()``.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from sqlalchemy.ext.asyncio import AsyncEngine

from persistence.change_feed import ChangeFeed
from persistence.changes import Change
from persistence.emergency import Verifier
from persistence.transactions import Clock, Degraded
from schemas import (
    AckVerdict,
    CanaryGroup,
    Claim,
    CommandKind,
    CommandRecord,
    Decision,
    EmergencyAck,
    EngineIdentity,
    EventRecord,
    FleetView,
    LifecycleKind,
    NewEvent,
    OccurrenceRecord,
    OccurrenceState,
    RolloutAction,
    RolloutChange,
    RolloutPlan,
    RolloutRecord,
    RunState,
    SharedTask,
    SignedCommand,
    WaveRecord,
)


class StoreContract(Protocol):
    """One object per process; safe to share between the tasks of that process."""

    engine: AsyncEngine
    clock_offset: float
    """Seconds added to the local clock to read the database server's clock."""
    degraded: Degraded | None
    """Set while transactions keep failing after their retries; cleared by the next one
    that succeeds (a write, if writes were what failed)."""

    # -- opening, time, backend -----------------------------------------------------------

    @classmethod
    async def open(
        cls,
        database_url: str,
        *,
        clock: Clock = ...,
        server_time: bool = False,
        read_only: bool = False,
    ) -> StoreContract:
        """Connect, create missing tables, record the schema version, return a ready
        store. ``server_time``: judge time by the server's clock. ``read_only``: create
        nothing, need only read access; every write raises the driver's error. Raises
        ``NewerSchema`` for a database of a newer schema (changing nothing), and
        ``DatabaseUnavailable`` (URL named, password hidden) when it cannot be opened."""

    async def close(self) -> None:
        """Release every connection; the store is unusable afterwards."""

    def now(self) -> float:
        """The time every lease, heartbeat and gate is judged by."""

    async def align_clock_with_server(self) -> float:
        """Judge time by the server's clock (a remote backend); returns the offset."""

    @property
    def backend(self) -> str:
        """The backend's name (``sqlite``, ``postgresql``)."""

    def change_feed(self) -> ChangeFeed:
        """The changes other processes commit to this database, as its backend hears
        them (NOTIFY on PostgreSQL, wake files on SQLite)."""

    def wake_file(self, change: Change = Change.FLEET) -> Path | None:
        """The file a commit of ``change`` touches (SQLite); None where the server
        notifies."""

    def touch_wake_files(self, changes: Iterable[Change]) -> None:
        """Wake the pollers of ``changes`` now (done at every commit that changed them);
        a file that cannot be touched is logged, never raised."""

    # -- membership ----------------------------------------------------------------------

    async def register(
        self,
        occurrence_id: str,
        *,
        host: str,
        pid: int,
        protocol_version: int,
        engine: EngineIdentity | None = None,
    ) -> OccurrenceRecord:
        """Start a new incarnation of ``occurrence_id`` (generation + 1); older live
        ones are superseded and learn it on their next heartbeat. ``engine``, the
        decision engine it loaded, is recorded on its row (``unknown`` without it)."""

    async def heartbeat(self, me: OccurrenceRecord) -> None:
        """Refresh liveness; ``Superseded`` if this incarnation was replaced or ended."""

    async def set_state(
        self,
        me: OccurrenceRecord,
        state: OccurrenceState,
        *,
        rollout_id: str | None = None,
        wave: CanaryGroup | None = None,
        details: dict[str, Any] | None = None,
    ) -> None:
        """Report a new state with its audit event, in one transaction; ``Superseded``
        if this incarnation is no longer registered."""

    async def deregister(
        self, me: OccurrenceRecord, *, reason: str, run_state: RunState | None = None
    ) -> None:
        """End this incarnation: no longer live, holding no lease; ``run_state``
        (complete or error) is recorded with it."""

    async def members(self) -> list[OccurrenceRecord]:
        """The newest incarnation of each occurrence id, in id order."""

    async def count_live(self, member_ttl: float) -> int:
        """Incarnations not ended whose last heartbeat is within ``member_ttl``."""

    # -- shared tasks and decisions ------------------------------------------------------

    async def open_wakeup_task(self, requested_by: str, window: float) -> SharedTask | None:
        """The open wakeup task, created if no wakeup decision is in force; None while
        one is in force or a shutdown rollout still runs. Check and create are one
        write: no second wakeup can be opened meanwhile."""

    async def request_shutdown(self, reason: str, requested_by: str) -> tuple[SharedTask, bool]:
        """Open the shared shutdown task; ``(task, created)``."""

    async def submit_shutdown(
        self, reason: str, requested_by: str
    ) -> tuple[SharedTask, CommandRecord]:
        """Open the shutdown task as an operator command; refused (``conflict``, nothing
        else changed) while a shutdown is requested or rolling out."""

    async def task(self, task_id: str) -> SharedTask | None:
        """The task, or None if there is none with that id."""

    async def claim_task(self, task_id: str, holder: str, lease_ttl: float) -> Claim | None:
        """Claim a pending task or take over an expired claim; exactly one of any number
        of racing claimers wins; each claim increments the fencing token. None if taken."""

    async def renew_claim(self, claim: Claim, lease_ttl: float) -> Claim:
        """Extend the claim's lease; ``StaleFencingToken`` if it is no longer held."""

    async def release_claim(self, claim: Claim, *, error: str) -> None:
        """Give the task back (the decision failed) so another attempt can claim it;
        ``StaleFencingToken`` if it is no longer held."""

    async def record_decision(
        self,
        claim: Claim,
        decision: Decision,
        plan: RolloutPlan,
        *,
        driver: str | None,
        lease_ttl: float,
    ) -> RolloutRecord:
        """Complete the task with the decision and create its rollout, fenced by the
        claim; a rejected decision's rollout is ``rejected`` with every wave skipped.
        ``driver`` holds the new rollout's driver lease from the start."""

    # -- rollouts ------------------------------------------------------------------------

    async def fleet_view(self, decision_window: float) -> FleetView:
        """One consistent snapshot of what one poll needs: members, running rollouts,
        the wakeup in force within ``decision_window``, the latest shutdown, open tasks."""

    async def rollout(self, rollout_id: str) -> RolloutRecord:
        """The rollout with its waves; ``NotFound`` for an unknown id."""

    async def rollouts(
        self, *, limit: int | None = 20, kind: LifecycleKind | None = None
    ) -> list[RolloutRecord]:
        """Rollouts, newest first."""

    async def acquire_driver(
        self, rollout_id: str, holder: str, lease_ttl: float, *, grace: float = 0.0
    ) -> int | None:
        """Take the driver lease of a running rollout free for ``grace`` seconds; the new
        fencing token, or None if someone else holds a valid lease."""

    async def renew_driver(
        self, rollout_id: str, holder: str, token: int, lease_ttl: float
    ) -> None:
        """Extend the driver lease, bumping no version; ``StaleFencingToken`` if the
        lease is no longer this holder's or the rollout no longer runs."""

    async def release_driver(self, rollout_id: str, holder: str, token: int) -> None:
        """Give the lease up at once (a clean exit): takeover is one poll away."""

    async def apply_step(
        self,
        rollout_id: str,
        holder: str,
        token: int,
        change: RolloutChange,
        *,
        lease_ttl: float,
        release: bool = False,
    ) -> None:
        """Apply one step and renew (or release) the lease, writing nothing unless the
        token is current (``StaleFencingToken``) and the rollout is at the version the
        step was computed from (``StaleRolloutView``)."""

    async def conclude_rollout(self, rollout_id: str, change: RolloutChange) -> bool:
        """Apply a final change to a rollout nobody drives (lease free or expired, still
        running, at the change's version); False, writing nothing, if someone moved it."""

    async def join_last_wave(self, rollout_id: str, occurrence_id: str) -> WaveRecord | None:
        """Add a late occurrence to the last wave while it is pending; the wave it is in,
        or None once that wave was signalled or the rollout is over."""

    async def control_rollout(
        self, rollout_id: str, action: RolloutAction, *, issued_by: str, reason: str
    ) -> CommandRecord:
        """Apply an operator's action (pause, resume, abort, retry) or record why not
        (``refused``, ``conflict``); ``NotFound`` for an unknown rollout."""

    # -- operator and emergency commands -------------------------------------------------

    async def command(self, command_id: str) -> CommandRecord:
        """The command; ``NotFound`` for an unknown id."""

    async def commands(
        self, *, limit: int | None = 50, kind: CommandKind | None = None
    ) -> list[CommandRecord]:
        """Operator commands, newest first."""

    async def submit_emergency(
        self, signed: SignedCommand, *, issued_by: str, verify: Verifier | None = None
    ) -> CommandRecord:
        """Store an emergency command, with its verdict at once if ``verify`` is given;
        ``UnknownTargets`` (recording nothing) if it names an occurrence never seen."""

    async def settle_emergency(self, command_id: str, verify: Verifier) -> CommandRecord:
        """Record the verdict on a pending command (no-op if already settled)."""

    async def emergency_commands_since(self, since: float) -> list[tuple[CommandRecord, bool]]:
        """Emergency commands recorded at or after ``since``, oldest first, each with
        whether another command with its nonce was accepted (a replay)."""

    async def acknowledge_emergency(
        self,
        record: CommandRecord,
        me: OccurrenceRecord,
        verdict: AckVerdict,
        detail: str,
        *,
        leave: str | None = None,
    ) -> EmergencyAck:
        """Record this incarnation's answer (once: a repeat returns the first); with
        ``leave``, a ``stopped`` answer also ends the incarnation in the same write."""

    async def emergency_acks(self, command_id: str) -> list[EmergencyAck]:
        """The answers to a command, in the order they were given."""

    # -- audit trail ---------------------------------------------------------------------

    async def record_event(self, event: NewEvent) -> None:
        """Append one event to the audit trail, waking the fleet's listeners."""

    async def events(
        self,
        *,
        after_id: int = 0,
        limit: int | None = None,
        rollout_id: str | None = None,
        kinds: tuple[str, ...] = (),
    ) -> list[EventRecord]:
        """Events with ``event_id > after_id``, oldest first."""

    async def latest_events(
        self, limit: int, *, rollout_id: str | None = None
    ) -> list[EventRecord]:
        """The ``limit`` newest events, oldest first (as a log reads)."""


if TYPE_CHECKING:
    from persistence.store import Store

    def _store_keeps_the_contract(store: Store) -> StoreContract:
        return store  # mypy: the Store implements every member above
