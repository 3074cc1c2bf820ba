"""The signed emergency-shutdown command: what is signed, how it travels, why one is refused.

No cryptography here (``coordinator.signing`` signs and verifies). These models fix the
exact bytes that are signed, so the operator's machine and every occurrence agree on them.
"""

from __future__ import annotations

import json
import re
from enum import StrEnum
from typing import Final, Literal, Self

from pydantic import BaseModel, ConfigDict, Field, StrictInt, field_validator, model_validator

from schemas.errors import InvalidFleetId
from schemas.ids import validate_fleet_id, validate_occurrence_id

EMERGENCY_SHUTDOWN: Final = "emergency_shutdown"
MAX_REASON_LENGTH = 500  # characters
NONCE_HEX_LENGTH = 32
MAX_ISSUED_AT = 2**53 - 1
"""The largest integer every JSON parser reads exactly (JavaScript's safe integers)."""

_NONCE = re.compile(rf"[0-9a-f]{{{NONCE_HEX_LENGTH}}}")


class EmergencyCommand(BaseModel):
    """Stop now, without a decision or canary waves: an operator's signed order.

    ``targets`` empty means the whole fleet. The README's "canonical form" section is the
    contract for issuers written in other languages; ``canonical_bytes`` implements it.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    action: Literal["emergency_shutdown"] = EMERGENCY_SHUTDOWN
    audience: str
    """The fleet the command is for (its ``COORDINATOR_FLEET_ID``): any other refuses it,
    so a command signed for one fleet cannot be replayed to another that trusts the key."""
    reason: str
    targets: tuple[str, ...] = ()
    issued_at: StrictInt = Field(ge=0, le=MAX_ISSUED_AT)
    """Whole Unix seconds, on the issuing machine's clock. An integer, because a float's
    JSON spelling differs between languages (Python writes ``1700000000.0``), so an
    issuer elsewhere could not produce the signed bytes."""
    nonce: str
    """32 lowercase hex characters, unique per command: a second use is a replay."""

    @field_validator("audience")
    @classmethod
    def _audience(cls, value: str) -> str:
        try:
            return validate_fleet_id(value)
        except InvalidFleetId as exc:
            raise ValueError(str(exc)) from None

    @field_validator("reason")
    @classmethod
    def _reason(cls, value: str) -> str:
        reason = value.strip()
        if not reason:
            raise ValueError("reason must not be empty")
        if len(reason) > MAX_REASON_LENGTH:
            raise ValueError(
                f"reason has {len(reason)} characters; at most {MAX_REASON_LENGTH} are allowed"
            )
        try:
            reason.encode("utf-8")
        except UnicodeEncodeError:
            # A lone surrogate has no UTF-8 form, so the command could never be signed.
            raise ValueError("reason is not valid Unicode text") from None
        return reason

    @field_validator("targets")
    @classmethod
    def _targets(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        # One order, no duplicates: the same intent must always produce the same bytes.
        return tuple(sorted({validate_occurrence_id(target) for target in value}))

    @field_validator("nonce")
    @classmethod
    def _nonce(cls, value: str) -> str:
        if not _NONCE.fullmatch(value):
            raise ValueError(f"nonce must be {NONCE_HEX_LENGTH} lowercase hex characters")
        return value

    def canonical_bytes(self) -> bytes:
        """The bytes that are signed: compact JSON of the six fields, keys sorted, UTF-8
        (for these fields, the same bytes as RFC 8785's JSON Canonicalization Scheme)."""
        fields = {
            "action": self.action,
            "audience": self.audience,
            "reason": self.reason,
            "targets": list(self.targets),
            "issued_at": self.issued_at,
            "nonce": self.nonce,
        }
        text = json.dumps(fields, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
        return text.encode("utf-8")

    def applies_to(self, occurrence_id: str) -> bool:
        return not self.targets or occurrence_id in self.targets


class SignedCommand(BaseModel):
    """The wire and storage form: the payload exactly as signed, and its signature.

    Fields are plain text on purpose: whatever arrives is stored and refused with a reason,
    never rejected before it can be recorded (only text no database can store, U+0000 or a
    lone surrogate, is refused unrecorded, by the API's 422).
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    payload: str
    """The canonical JSON of an ``EmergencyCommand``, as text."""
    signature: str = ""
    """Standard base64 of the 64-byte Ed25519 signature of the payload's UTF-8; empty: unsigned."""
    key_id: str = ""
    """Fingerprint of the signing public key: 16 hex characters of its SHA-256."""


class RefusalReason(StrEnum):
    """Why a command was not obeyed, as recorded."""

    UNSIGNED = "unsigned"
    MALFORMED = "malformed"
    UNKNOWN_KEY = "unknown_key"
    BAD_SIGNATURE = "bad_signature"
    WRONG_AUDIENCE = "wrong_audience"
    """Signed for another fleet (its ``audience`` is not this fleet's id)."""
    EXPIRED = "expired"
    FROM_THE_FUTURE = "from_the_future"
    REPLAYED = "replayed"


class Verification(BaseModel):
    """The verdict on one ``SignedCommand``: the command to obey, or why it was refused.

    A refused command is still given when it could be read (expired, replayed...), so the
    refusal can be recorded with what it asked for.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    command: EmergencyCommand | None = None
    refused: RefusalReason | None = None
    detail: str

    @model_validator(mode="after")
    def _accepted_means_a_command(self) -> Self:
        if self.refused is None and self.command is None:
            raise ValueError("an accepted verification needs the command it accepted")
        return self

    @property
    def accepted(self) -> bool:
        return self.refused is None


# --- the operators' commands, as recorded -------------------------------------------------


class CommandKind(StrEnum):
    """Every operator action is one audited command of one of these kinds."""

    SHUTDOWN = "shutdown"
    PAUSE = "pause"
    RESUME = "resume"
    ABORT = "abort"
    RETRY = "retry"
    EMERGENCY_SHUTDOWN = "emergency_shutdown"


class RolloutAction(StrEnum):
    """What an operator may do to one rollout."""

    PAUSE = "pause"
    RESUME = "resume"
    ABORT = "abort"
    RETRY = "retry"
    """Re-run the health gate of the wave that failed, once the operator fixed its cause."""


class CommandStatus(StrEnum):
    PENDING = "pending"
    """An emergency command stored by an issuer that could not verify it: the first
    occurrence to see it verifies it and records the verdict."""
    ACCEPTED = "accepted"
    REFUSED = "refused"


class CommandRecord(BaseModel):
    """One row of ``commands``: who asked for what, and whether it was obeyed."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    command_id: str
    kind: CommandKind
    status: CommandStatus
    issued_by: str
    reason: str | None = None
    rollout_id: str | None = None
    targets: tuple[str, ...] = ()
    """Emergency commands: the occurrences to stop; empty means the whole fleet."""
    refusal: str | None = None
    """Why it was refused: a ``RefusalReason`` for emergency commands, else ``conflict``."""
    detail: str = ""
    created_at: float
    """When the database recorded it (the database's clock)."""
    nonce: str | None = None
    key_id: str | None = None
    signed: SignedCommand | None = None
    """Emergency commands: the payload and signature exactly as received."""

    @property
    def accepted(self) -> bool:
        return self.status is CommandStatus.ACCEPTED


class AckVerdict(StrEnum):
    STOPPED = "stopped"
    REFUSED = "refused"


class EmergencyAck(BaseModel):
    """One targeted occurrence's answer to an emergency command."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    command_id: str
    occurrence_id: str
    incarnation_id: str
    verdict: AckVerdict
    detail: str = ""
    acked_at: float
    latency: float
    """Seconds from the command's recording to this acknowledgement (cancel-to-ack)."""
