"""Operator commands: each one is a row of ``commands`` and audit events, written in one
transaction with whatever it changes (or with nothing but its refusal)."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import Row, insert, select
from sqlalchemy.ext.asyncio import AsyncConnection

from persistence.tables import commands
from persistence.transactions import StoreBase
from schemas import (
    CommandKind,
    CommandRecord,
    CommandStatus,
    EventKind,
    NewEvent,
    NotFound,
    SignedCommand,
)

CONFLICT = "conflict"
"""The refusal of a command that does not fit the current state."""


def command_from_row(row: Row[Any]) -> CommandRecord:
    m = row._mapping
    signed = None
    if m["payload"] is not None:
        signed = SignedCommand(
            payload=m["payload"], signature=m["signature"] or "", key_id=m["key_id"] or ""
        )
    return CommandRecord(
        command_id=m["command_id"],
        kind=CommandKind(m["kind"]),
        status=CommandStatus(m["status"]),
        issued_by=m["issued_by"],
        reason=m["reason"],
        rollout_id=m["rollout_id"],
        targets=tuple(m["targets"]),
        refusal=m["refusal"],
        detail=m["detail"],
        created_at=m["created_at"],
        nonce=m["nonce"],
        key_id=m["key_id"],
        signed=signed,
    )


def command_event(record: CommandRecord, **details: Any) -> NewEvent:
    """The audit event of a command's verdict (or of its arrival, while pending)."""
    kind = {
        CommandStatus.ACCEPTED: EventKind.COMMAND_ACCEPTED,
        CommandStatus.REFUSED: EventKind.COMMAND_REFUSED,
        CommandStatus.PENDING: EventKind.COMMAND_RECEIVED,
    }[record.status]
    return NewEvent(
        kind=kind,
        rollout_id=record.rollout_id,
        task_id=record.rollout_id,
        details={
            "command_id": record.command_id,
            "command": record.kind.value,
            "issued_by": record.issued_by,
            "reason": record.reason,
            "refusal": record.refusal,
            "detail": record.detail,
            **({"targets": list(record.targets)} if record.targets else {}),
            **details,
        },
    )


async def insert_command(
    conn: AsyncConnection,
    now: float,
    kind: CommandKind,
    status: CommandStatus,
    *,
    issued_by: str,
    detail: str,
    reason: str | None = None,
    rollout_id: str | None = None,
    refusal: str | None = None,
    targets: tuple[str, ...] = (),
    signed: SignedCommand | None = None,
    nonce: str | None = None,
) -> CommandRecord:
    values: dict[str, Any] = {
        "command_id": str(uuid.uuid4()),
        "kind": kind.value,
        "status": status.value,
        "issued_by": issued_by,
        "reason": reason,
        "rollout_id": rollout_id,
        "targets": list(targets),
        "refusal": refusal,
        "detail": detail,
        "created_at": now,
        "settled_at": None if status is CommandStatus.PENDING else now,
        "nonce": nonce,
        "key_id": signed.key_id if signed else None,
        "payload": signed.payload if signed else None,
        "signature": signed.signature if signed else None,
    }
    await conn.execute(insert(commands).values(**values))
    return CommandRecord(
        command_id=values["command_id"],
        kind=kind,
        status=status,
        issued_by=issued_by,
        reason=reason,
        rollout_id=rollout_id,
        targets=targets,
        refusal=refusal,
        detail=detail,
        created_at=now,
        nonce=nonce,
        key_id=values["key_id"],
        signed=signed,
    )


class CommandLog(StoreBase):
    async def commands(
        self, *, limit: int | None = 50, kind: CommandKind | None = None
    ) -> list[CommandRecord]:
        """Operator commands, newest first."""

        async def work(conn: AsyncConnection) -> list[CommandRecord]:
            query = select(commands).order_by(commands.c.created_at.desc())
            if kind is not None:
                query = query.where(commands.c.kind == kind.value)
            if limit is not None:
                query = query.limit(limit)
            return [command_from_row(r) for r in await conn.execute(query)]

        return await self._read(work)

    async def command(self, command_id: str) -> CommandRecord:
        async def work(conn: AsyncConnection) -> CommandRecord:
            row = (
                await conn.execute(select(commands).where(commands.c.command_id == command_id))
            ).first()
            if row is None:
                raise NotFound(f"no command with id {command_id!r}")
            return command_from_row(row)

        return await self._read(work)
