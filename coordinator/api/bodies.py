"""Request and response bodies of the control API (they make its OpenAPI schema)."""

from __future__ import annotations

from typing import Annotated, Final, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from coordinator.api.json_text import NO_NUL_PATTERN
from schemas import CommandRecord, EmergencyAck, EventRecord, SharedTask
from schemas.commands import MAX_REASON_LENGTH

MAX_REQUESTER_LENGTH = 64

SPACE: Final = (
    r"\t\n\u000b\f\r\u001c-\u001f\u0020\u0085\u00a0"
    r"\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000"
)
r"""Every character ``str.strip()`` removes (``str.isspace()``), spelt out for a regular
expression: engines disagree on what ``\s`` means."""

REASON_PATTERN: Final = rf"^[^\u0000]*[^{SPACE}\u0000][^\u0000]*$"
"""A reason as the server takes it: something besides white space, and no U+0000."""


class _Body(BaseModel):
    # A misspelt field is a mistake to report, not to ignore.
    model_config = ConfigDict(extra="forbid", frozen=True)


def _clean_reason(value: str) -> str:
    reason = value.strip()
    if not reason:
        raise ValueError("reason must not be empty")
    return reason


def _reason(description: str) -> object:
    return Field(
        max_length=MAX_REASON_LENGTH,
        description=f"{description}; white space around it is dropped",
        json_schema_extra={"pattern": REASON_PATTERN},
    )


ShutdownReason = Annotated[
    str, _reason("why (shown to the decider)"), AfterValidator(_clean_reason)
]
AuditReason = Annotated[str, _reason("why, for the audit trail"), AfterValidator(_clean_reason)]


class ShutdownBody(_Body):
    reason: ShutdownReason
    requested_by: str | None = Field(
        default=None,
        max_length=MAX_REQUESTER_LENGTH,
        description="who asks, as recorded next to the client's address",
        json_schema_extra={"pattern": NO_NUL_PATTERN},
    )


class RolloutActionBody(_Body):
    reason: AuditReason


class Problem(BaseModel):
    """One thing wrong with a request."""

    model_config = ConfigDict(populate_by_name=True)

    source: Literal["body", "path", "query", "header"] = Field(
        alias="in", description="where the value was"
    )
    field: str = Field(description="its name, dotted for nested fields; empty: the whole body")
    problem: str
    got: str | None = Field(default=None, description="the value refused, cut at 80 characters")


class InvalidRequestDetails(BaseModel):
    problems: list[Problem]


class InvalidRequestBody(BaseModel):
    """The body of a 422: what is wrong with the request, field by field."""

    error: Literal["invalid_request"]
    message: str
    details: InvalidRequestDetails


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
