"""Emergency commands: stored exactly as received, verified once for the record, and
acknowledged by each occurrence they stop.

Verification is the caller's (``coordinator.emergency``): this layer holds no keys and
no cryptography. It gives the verifier what makes every verdict the same wherever it is
reached: the command's bytes, the moment the database recorded it (freshness is judged
at that moment, not whenever an occurrence happens to look), and whether another
command with the same nonce was already accepted (a replay).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass

from pydantic import ValidationError
from sqlalchemy import bindparam, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from persistence.commands import CommandLog, command_event, command_from_row, insert_command
from persistence.deciding import apply_rollout_edit, read_decide_write
from persistence.emergency_acks import EMERGENCY_ONLY
from persistence.engine import serialize_lifecycle
from persistence.queries import open_tasks
from persistence.rollout_control import IN_PROGRESS, locked_rollouts
from persistence.tables import commands, occurrences, rollouts, tasks
from persistence.transactions import ALL_CHANGES
from schemas import (
    OPEN_TASK_STATUSES,
    CommandKind,
    CommandRecord,
    CommandStatus,
    EmergencyCommand,
    EventKind,
    NewEvent,
    RolloutRecord,
    RunState,
    SharedTask,
    SignedCommand,
    TaskStatus,
    UnknownTargets,
    Verification,
)
from schemas.policy import FleetStopAbort, fleet_stop_aborts, fleet_stop_cancels
from schemas.policy.emergency import EMERGENCY_STOP_REASON

__all__ = ["EMERGENCY_STOP_REASON", "EmergencyStore", "Verifier", "nonce_of"]

Verifier = Callable[[SignedCommand, float, Callable[[str], bool]], Verification]
"""``verify(signed, recorded_at, nonce_seen)``: the verdict on one command."""


def nonce_of(payload: str) -> str | None:
    """The nonce a payload claims, read without trusting it (for the replay lookup)."""
    try:
        nonce = json.loads(payload).get("nonce")
    except (ValueError, AttributeError):
        return None
    return nonce[:64] if isinstance(nonce, str) else None


_EMERGENCY_SINCE = (  # every emergency check runs it: built once
    select(commands)
    .where(commands.c.kind == CommandKind.EMERGENCY_SHUTDOWN.value)
    .where(commands.c.created_at >= bindparam("since"))
    .order_by(commands.c.created_at)
)


class EmergencyStore(CommandLog):
    async def submit_emergency(
        self, signed: SignedCommand, *, issued_by: str, verify: Verifier | None = None
    ) -> CommandRecord:
        """Store an emergency command. With ``verify`` its verdict is recorded at once;
        without (an issuer that trusts no keys), the first occurrence to see it does.

        A command that names an occurrence this database has never registered raises
        ``UnknownTargets`` and records nothing (a typo must not be accepted as a stop of
        nobody). A refused command is recorded whatever it names: its targets are not
        to be trusted.
        """

        async def work(conn: AsyncConnection) -> CommandRecord:
            await serialize_lifecycle(conn)
            now = self.now()
            record = await insert_command(
                conn,
                now,
                CommandKind.EMERGENCY_SHUTDOWN,
                CommandStatus.PENDING,
                issued_by=issued_by,
                detail="awaiting verification",
                signed=signed,
                nonce=nonce_of(signed.payload),
            )
            if verify is not None:
                return await self._settle(conn, record, verify, now, known_targets=True)
            await _refuse_unknown_targets(conn, _claimed_targets(signed.payload))
            await self._append(conn, now, [command_event(record)], EMERGENCY_ONLY)
            return record

        return await self._write(work)

    async def settle_emergency(self, command_id: str, verify: Verifier) -> CommandRecord:
        """Record the verdict on a pending command (no-op if already settled)."""

        async def work(conn: AsyncConnection) -> CommandRecord:
            await serialize_lifecycle(conn)
            row = (
                await conn.execute(select(commands).where(commands.c.command_id == command_id))
            ).one()
            record = command_from_row(row)
            if record.status is not CommandStatus.PENDING:
                return record
            return await self._settle(conn, record, verify, self.now())

        return await self._write(work)

    async def _settle(
        self,
        conn: AsyncConnection,
        record: CommandRecord,
        verify: Verifier,
        now: float,
        *,
        known_targets: bool = False,
    ) -> CommandRecord:
        """Record the verdict; with ``known_targets``, an accepted command naming an
        unknown occurrence raises ``UnknownTargets`` instead (the caller rolls back)."""
        assert record.signed is not None
        used = await _nonce_used(conn, record)
        verdict = verify(record.signed, record.created_at, lambda _nonce: used)
        command = verdict.command
        if known_targets and verdict.accepted and command is not None:
            await _refuse_unknown_targets(conn, command.targets)
        settled = record.model_copy(
            update={
                "status": CommandStatus.ACCEPTED if verdict.accepted else CommandStatus.REFUSED,
                "refusal": verdict.refused.value if verdict.refused else None,
                "detail": verdict.detail,
                "reason": command.reason if command else None,
                "targets": command.targets if command else (),
            }
        )
        await conn.execute(
            update(commands)
            .where(commands.c.command_id == record.command_id)
            .values(
                status=settled.status.value,
                refusal=settled.refusal,
                detail=settled.detail,
                reason=settled.reason,
                targets=list(settled.targets),
                settled_at=now,
            )
        )
        new = [command_event(settled)]
        aborted: list[NewEvent] = []
        if settled.accepted:
            new.append(_run_state(RunState.CANCEL_REQUESTED, settled))
            aborted = await _abort_in_progress(conn, settled, now)
        await self._append(conn, now, new + aborted, ALL_CHANGES if aborted else EMERGENCY_ONLY)
        return settled

    async def emergency_commands_since(self, since: float) -> list[tuple[CommandRecord, bool]]:
        """Emergency commands recorded at or after ``since``, oldest first, each with
        whether another command with its nonce was accepted (a replay)."""

        async def work(conn: AsyncConnection) -> list[tuple[CommandRecord, bool]]:
            rows = await conn.execute(_EMERGENCY_SINCE, {"since": since})
            found = [command_from_row(r) for r in rows]
            return [(record, await _nonce_used(conn, record)) for record in found]

        return await self._read(work)


def _claimed_targets(payload: str) -> tuple[str, ...]:
    """The targets an unverified payload claims (none if it cannot be read)."""
    try:
        return EmergencyCommand.model_validate_json(payload).targets
    except ValidationError:
        return ()


async def _refuse_unknown_targets(conn: AsyncConnection, targets: tuple[str, ...]) -> None:
    if not targets:
        return
    known = set(
        await conn.scalars(
            select(occurrences.c.occurrence_id)
            .where(occurrences.c.occurrence_id.in_(targets))
            .distinct()
        )
    )
    unknown = [target for target in targets if target not in known]
    if unknown:
        raise UnknownTargets(
            f"no occurrence {', '.join(repr(t) for t in unknown)} has ever joined this fleet: "
            "check the id (`status` lists the occurrences); nothing was recorded"
        )


async def _nonce_used(conn: AsyncConnection, record: CommandRecord) -> bool:
    """Was ``record``'s nonce accepted on another command (is ``record`` a replay)?"""
    if record.nonce is None:
        return False
    other = await conn.scalar(
        select(commands.c.command_id)
        .where(commands.c.nonce == record.nonce)
        .where(commands.c.status == CommandStatus.ACCEPTED.value)
        .where(commands.c.command_id != record.command_id)
        .limit(1)
    )
    return other is not None


def _run_state(state: RunState, record: CommandRecord) -> NewEvent:
    return NewEvent(
        kind=EventKind.RUN_STATE,
        details={
            "state": state.value,
            "command_id": record.command_id,
            "targets": list(record.targets) or "all",
            "reason": record.reason,
        },
    )


async def _abort_in_progress(
    conn: AsyncConnection, record: CommandRecord, now: float
) -> list[NewEvent]:
    """What an accepted stop does to the rollouts in progress and the decisions not yet
    made (see ``fleet_stop_aborts`` and ``fleet_stop_cancels``). ``record_decision``
    takes the same lifecycle lock, so a decision is either in a rollout read here or
    refused by the task this fails."""

    async def read(conn: AsyncConnection, now: float) -> _InFlight:
        if record.targets:  # a stop of named occurrences ends nothing: nothing to read
            return _InFlight((), ())
        in_progress = await locked_rollouts(conn, rollouts.c.status.in_(IN_PROGRESS))
        return _InFlight(tuple(in_progress), tuple(await open_tasks(conn)))

    def decide(found: _InFlight, now: float) -> _FleetStop:
        return _FleetStop(
            fleet_stop_aborts(record, found.rollouts, now),
            fleet_stop_cancels(record, found.open_tasks),
        )

    async def write(
        conn: AsyncConnection, _found: _InFlight, stop: _FleetStop, now: float
    ) -> list[NewEvent]:
        events = [a.event for a in stop.aborts if await apply_rollout_edit(conn, a.edit, now)]
        for cancel in stop.cancels:
            failed = await conn.execute(
                update(tasks)
                .where(tasks.c.task_id == cancel.task_id)
                .where(tasks.c.status.in_([s.value for s in OPEN_TASK_STATUSES]))
                .values(status=TaskStatus.FAILED.value, lease_expires_at=None, updated_at=now)
            )
            if failed.rowcount:
                events.append(cancel)
        return events

    return await read_decide_write(conn, now, read, decide, write)


@dataclass(frozen=True)
class _InFlight:
    rollouts: tuple[RolloutRecord, ...]
    open_tasks: tuple[SharedTask, ...]


@dataclass(frozen=True)
class _FleetStop:
    aborts: tuple[FleetStopAbort, ...]
    cancels: tuple[NewEvent, ...]
