"""The base of the Store: short transactions with bounded retry, and the audit append."""

from __future__ import annotations

import math
from collections.abc import Awaitable, Callable, Iterable
from contextlib import AbstractAsyncContextManager, nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import anyio
from sqlalchemy import insert
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine
from tenacity import Future, RetryCallState, RetryError

from persistence.backends import WRITE_OPTION, Backend, backend_named
from persistence.changes import ALL_CHANGES, Change
from persistence.log import get_logger
from persistence.retry import TRANSACTION, retrying
from persistence.tables import events
from persistence.transient import is_transient
from schemas import DatabaseUnavailable, NewEvent

T = TypeVar("T")

log = get_logger("coordinator.store")

_APPENDED = "coordinator_appended_events"
_WROTE_NOTHING = "coordinator_wrote_nothing"


def wrote_nothing(conn: AsyncConnection) -> None:
    """Say that this write transaction changed no row (a claim or a lease someone else
    holds): a sole writer's readers then need not read again for it (``Commits``)."""
    conn.info[_WROTE_NOTHING] = True


__all__ = ["ALL_CHANGES", "Change", "Clock", "Commits", "Degraded", "StoreBase"]


Clock = Callable[[], float]
"""Returns the current time in Unix seconds."""


def describe_error(exc: DBAPIError | OSError, *, deadline: float | None = None) -> str:
    """The driver's or the network's own words, without SQLAlchemy's statement dump;
    ``deadline`` is the seconds an unexplained ``TimeoutError`` waited."""
    if isinstance(exc, DBAPIError):
        return str(exc.orig)
    if isinstance(exc, TimeoutError) and not str(exc):
        waited = f"within {deadline:g} s" if deadline and math.isfinite(deadline) else "in time"
        return f"no answer {waited} (network partition?)"
    return str(exc) or type(exc).__name__


def database_failure(exc: BaseException) -> str | None:
    """What failed, if ``exc`` is the database failing rather than a bug of ours: an error
    its driver raised that no retry cures (a dropped database, a read-only file, missing
    permissions) or ``DatabaseUnavailable``; None for anything else. Lets the layers
    above tell the two apart without knowing SQLAlchemy."""
    if isinstance(exc, DatabaseUnavailable):
        return str(exc)
    if isinstance(exc, DBAPIError):
        return describe_error(exc)
    return None


@dataclass(frozen=True)
class Degraded:
    """The database has kept failing since ``since`` (store clock), with ``error``."""

    since: float
    error: str
    writes: bool
    """Writes failed (a full disk fails writes while reads go on): only a write that
    succeeds ends it."""


@dataclass
class Commits:
    """The write transactions this Store committed, by what a read of them could see.

    Where the Store is the database's sole writer (``Backend.sole_writer``), a read that
    returned rows at counts ``(fleet, emergency)`` would return the same rows while they
    stand: a reader may skip it. A heartbeat counts apart (it changes one member's
    ``last_heartbeat_at``, which a reader judges by its age, see ``fleet_views``)."""

    fleet: int = 0
    """What a fleet view reads: members, tasks, rollouts and waves."""
    rollouts: int = 0
    """What a light fleet view reads (no members): tasks, rollouts and waves."""
    emergency: int = 0
    """What the emergency check reads: the commands."""
    heartbeats: int = 0
    on_emergency: list[Callable[[], None]] = field(default_factory=list)
    """Called at once when a command is committed: a sole writer's emergency loops wait
    for this rather than check periodically."""
    light_rows: tuple[int, Any] | None = None
    """What the last light read of this database read (``fleet_reads``), with the
    ``rollouts`` count it was read at: while that count stands, what any reader's light
    read would read. (A fleet's occurrences all read at once after a change.)"""

    def count(self, changed: frozenset[Change], *, heartbeat: bool, members_only: bool) -> None:
        if heartbeat:
            self.heartbeats += 1
            return
        # A write that announced nothing (a lease renewal, a release) still changed rows
        # of the fleet; commands are only written by writes that announce it (the change
        # feed relies on that too: a listener runs only the reads a change names).
        kinds = changed or frozenset({Change.FLEET})
        if Change.FLEET in kinds:
            self.fleet += 1
            self.rollouts += not members_only
        if Change.EMERGENCY in kinds:
            self.emergency += 1
            for listener in list(self.on_emergency):
                listener()


class StoreBase:
    def __init__(self, engine: AsyncEngine, clock: Clock, backend: Backend | None = None) -> None:
        self.engine = engine
        self._clock = clock
        self.clock_offset = 0.0
        """Seconds to add to the local clock to read the database server's clock."""
        self.degraded: Degraded | None = None
        """Set while transactions keep failing after their retries; cleared (and logged
        as ``database_recovered``) by the next one that succeeds."""
        self._backend = backend or backend_named(engine.dialect.name)
        self._write_gate = self._backend.write_gate(engine.url.database)
        self.commits = Commits()
        """What this Store committed (see ``Commits``); complete when ``sole_writer``."""
        self.sole_writer: bool = self._backend.sole_writer

    def now(self) -> float:
        """The time every lease, heartbeat and gate is judged by (Unix seconds)."""
        return self._clock() + self.clock_offset

    async def align_clock_with_server(self) -> float:
        """Judge time by the database server's clock, so hosts that drift still agree on
        when a lease expired (PostgreSQL). A database on this host (SQLite): nothing to
        align. Returns the offset now in force."""
        if not self._backend.remote_clock:
            return self.clock_offset

        async def work(conn: AsyncConnection) -> float:
            before = self._clock()
            server = await self._backend.read_server_clock(conn)
            after = self._clock()
            return server - (before + after) / 2  # half the round trip each way

        self.clock_offset = await self._read(work)
        return self.clock_offset

    @property
    def backend(self) -> str:
        """The backend's name (``engine.dialect.name``)."""
        return self._backend.name

    def wake_file(self, change: Change = Change.FLEET) -> Path | None:
        """SQLite's stand-in for NOTIFY: a file beside the database per kind of change,
        whose modification time every such commit bumps; pollers ``stat()`` it, which
        costs no SQL. None where the server notifies."""
        return self._backend.wake_file(self.engine.url.database, change)

    def touch_wake_files(self, changes: Iterable[Change]) -> None:
        for change in changes:
            path = self.wake_file(change)
            if path is None:
                continue
            try:
                path.touch()
            except OSError as exc:  # a hint only: pollers still poll
                log.warning("wake_file_untouchable", path=str(path), error=str(exc))

    async def _write(
        self,
        work: Callable[[AsyncConnection], Awaitable[T]],
        *,
        heartbeat: bool = False,
        members_only: bool = False,
    ) -> T:
        """Run ``work`` in one write transaction (SQLite: ``BEGIN IMMEDIATE``); with
        ``heartbeat``, one that changes nothing but a member's ``last_heartbeat_at``; with
        ``members_only``, one that changes the members (and the audit trail) alone."""
        return await self._transaction(
            work, write=True, heartbeat=heartbeat, members_only=members_only
        )

    async def _read(self, work: Callable[[AsyncConnection], Awaitable[T]]) -> T:
        """Run ``work`` in one read transaction: a consistent snapshot."""
        return await self._transaction(work, write=False)

    async def _transaction(
        self,
        work: Callable[[AsyncConnection], Awaitable[T]],
        *,
        write: bool,
        heartbeat: bool = False,
        members_only: bool = False,
    ) -> T:
        deadline = self._backend.transaction_deadline
        args = (work, write, deadline, heartbeat, members_only)
        # The first attempt outside tenacity: it nearly always succeeds, and tenacity's
        # loop costs more than a short transaction. A retryable failure goes on in it.
        try:
            result: T = await self._attempt(*args)
        except BaseException as exc:
            if not _retryable(exc):
                raise
            self._log_retry(1, TRANSACTION.first_wait(), exc, deadline)
            await anyio.sleep(TRANSACTION.first_wait())
            result = await self._retry(args, write, deadline)
        if self.degraded is not None and (write or not self.degraded.writes):
            self._recovered()
        return result

    async def _retry(self, args: tuple[Any, ...], write: bool, deadline: float) -> Any:
        """Attempts 2 to ``TRANSACTION.attempts``, once the first failed transiently."""

        def log_retry(state: RetryCallState) -> None:
            failure = _failure_of(state)
            self._log_retry(state.attempt_number + 1, state.upcoming_sleep, failure, deadline)

        rest = TRANSACTION.after_first_attempt()
        policy = retrying(rest, _retryable, before_sleep=log_retry, reraise=False)
        try:
            return await policy(self._attempt, *args)
        except RetryError as failed:
            exc = _failure_of(failed.last_attempt)
            error = describe_error(exc, deadline=deadline)
            self._degrade(error, write)
            raise DatabaseUnavailable(
                f"database still failing after {failed.last_attempt.attempt_number + 1} "
                f"attempts: {error}"
            ) from exc

    def _log_retry(self, attempt: int, delay: float, exc: BaseException, deadline: float) -> None:
        assert isinstance(exc, DBAPIError | OSError), exc
        error = describe_error(exc, deadline=deadline)
        # Once degraded, say so once, not at every attempt of every poll.
        retry_log = log.debug if self.degraded is not None else log.warning
        retry_log("database_retry", attempt=attempt, delay=delay, error=error)

    async def _attempt(
        self,
        work: Callable[[AsyncConnection], Awaitable[T]],
        write: bool,
        deadline: float,
        heartbeat: bool = False,
        members_only: bool = False,
    ) -> T:
        """One try of a transaction, then the wake files of what it changed."""
        # Shielded: a cancelled caller must not leave a claim half-written. The deadline
        # inside the shield still ends a transaction the network lost.
        limit = anyio.fail_after(deadline) if math.isfinite(deadline) else nullcontext()
        with anyio.CancelScope(shield=True), limit:
            async with self._gate(write), self.engine.connect() as conn:
                if write:
                    conn = await conn.execution_options(**{WRITE_OPTION: True})
                conn.info.pop(_APPENDED, None)
                conn.info.pop(_WROTE_NOTHING, None)
                async with conn.begin():
                    result = await work(conn)
                changed = conn.info.pop(_APPENDED, frozenset())
                # Counted before the connection is handed on: a sole writer's next
                # reader (the same connection, in turn) sees the count of what it reads.
                if write and not conn.info.pop(_WROTE_NOTHING, False):
                    self.commits.count(changed, heartbeat=heartbeat, members_only=members_only)
        if changed:
            self.touch_wake_files(changed)
        return result

    def _degrade(self, error: str, write: bool) -> None:
        if self.degraded is None:
            self.degraded = Degraded(since=self._clock(), error=error, writes=write)
            log.error("database_degraded", error=error, writes=write, retrying=True)

    def _recovered(self) -> None:
        assert self.degraded is not None
        down_for = self._clock() - self.degraded.since
        log.warning("database_recovered", down_for=round(down_for, 1), error=self.degraded.error)
        self.degraded = None

    def _gate(self, write: bool) -> AbstractAsyncContextManager[None]:
        """SQLite writers queue at the write gate first (see ``write_gate``)."""
        if write and self._write_gate is not None:
            return self._write_gate.held()
        return nullcontext()

    async def _append(
        self,
        conn: AsyncConnection,
        at: float,
        new: Iterable[NewEvent],
        changes: frozenset[Change] = frozenset({Change.FLEET}),
    ) -> None:
        """Append ``new`` to the audit trail; at commit, wake the listeners of ``changes``
        (``events --follow`` listens to all)."""
        rows = [
            {
                "at": at,
                "kind": e.kind,
                "occurrence_id": e.occurrence_id,
                "rollout_id": e.rollout_id,
                "task_id": e.task_id,
                "wave": e.wave,
                "details": e.details,
            }
            for e in new
        ]
        if rows:
            await conn.execute(insert(events), rows)
            already = conn.info.get(_APPENDED, frozenset())
            conn.info[_APPENDED] = already | changes  # wake SQLite pollers at commit
            if not changes <= already:  # say it once per transaction
                await self._backend.announce(conn, changes)


def _retryable(exc: BaseException) -> bool:
    """A transaction is retried on a transient database error, or on the network itself:
    asyncpg raises a refused or reset connection, and our deadline's ``TimeoutError``,
    as a bare ``OSError``."""
    return isinstance(exc, OSError) or is_transient(exc)


def _failure_of(attempt: RetryCallState | Future) -> DBAPIError | OSError:
    """The error a failed attempt raised (only those two are retried)."""
    outcome = attempt.outcome if isinstance(attempt, RetryCallState) else attempt
    exc = outcome.exception() if outcome is not None else None
    assert isinstance(exc, DBAPIError | OSError), exc
    return exc
