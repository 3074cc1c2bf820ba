"""Request and response bodies of the control API (they make its OpenAPI schema)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, field_validator

from schemas import CommandRecord, EmergencyAck, EventRecord, SharedTask
from schemas.commands import MAX_REASON_LENGTH

MAX_REQUESTER_LENGTH = 64


class _Body(BaseModel):
    # A misspelt field is a mistake to report, not to ignore.
    model_config = ConfigDict(extra="forbid", frozen=True)


def _clean_reason(value: str) -> str:
    reason = value.strip()
    if not reason:
        raise ValueError("reason must not be empty")
    return reason


class ShutdownBody(_Body):
    reason: str = Field(max_length=MAX_REASON_LENGTH, description="why (shown to the decider)")
    requested_by: str | None = Field(
        default=None,
        max_length=MAX_REQUESTER_LENGTH,
        description="who asks, as recorded next to the client's address",
    )

    _reason = field_validator("reason")(_clean_reason)


class RolloutActionBody(_Body):
    reason: str = Field(max_length=MAX_REASON_LENGTH, description="why, for the audit trail")

    _reason = field_validator("reason")(_clean_reason)


class ShutdownAccepted(BaseModel):
    status: str = "requested"
    task: SharedTask
    message: str


class CommandAnswer(BaseModel):
    command: CommandRecord
    message: str


class CommandDetail(BaseModel):
    command: CommandRecord
    acks: list[EmergencyAck]


class CommandList(BaseModel):
    commands: list[CommandRecord]


class EventPage(BaseModel):
    events: list[EventRecord]
    next_after_id: int
    """Pass as ``after_id`` to read on from here."""


class AuthCheck(BaseModel):
    authenticated: bool
    read_only: bool
