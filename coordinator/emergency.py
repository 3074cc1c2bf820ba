"""The emergency stop as an occurrence judges it: verify, decide whether it is aimed at
this occurrence, and say what to do. Pure, apart from loading the configured keys."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from pydantic import ValidationError

from coordinator.signing import load_trusted_keys, verify
from persistence.emergency import Verifier
from schemas import (
    CommandRecord,
    CommandStatus,
    EmergencyCommand,
    Settings,
    SignedCommand,
    Verification,
)


def make_verifier(settings: Settings) -> Verifier:
    """``verify(signed, recorded_at, nonce_seen)`` with the keys of
    ``COORDINATOR_TRUSTED_KEYS``; raises ``ConfigurationError`` for a bad key entry.

    Freshness is judged at the moment the database recorded the command, so every
    occurrence reaches the same verdict, even one that looks late after an outage.
    """
    trusted = load_trusted_keys(settings.trusted_keys)
    max_age, fleet_id = settings.emergency_max_age, settings.fleet_id

    def verify_command(
        signed: SignedCommand, recorded_at: float, nonce_seen: Callable[[str], bool]
    ) -> Verification:
        return verify(
            signed,
            trusted,
            now=recorded_at,
            max_age=max_age,
            audience=fleet_id,
            nonce_seen=nonce_seen,
        )

    return verify_command


@dataclass(frozen=True)
class Judgement:
    stop: bool
    """Obey: run ``on_emergency_stop``, acknowledge, exit."""
    answer: bool
    """Record an acknowledgement (a stop, or a refusal this occurrence was aimed by)."""
    detail: str
    reason: str | None = None


def judge(
    record: CommandRecord, occurrence_id: str, verifier: Verifier, *, replayed: bool
) -> Judgement:
    """What this occurrence does about one emergency command it has not answered yet.

    The verdict recorded on the command is final (one verdict per command): a command
    recorded as refused is never obeyed, whatever keys this occurrence trusts, so what
    the issuer was told is what the fleet does. An accepted one is still verified here
    too, so an occurrence obeys only a key it trusts itself; if it cannot, it records
    its own refusal and keeps serving.
    """
    assert record.signed is not None
    if record.status is CommandStatus.PENDING:  # nobody recorded a verdict: nothing to act on
        return Judgement(stop=False, answer=False, detail="awaiting verification")
    # Targets are read even from a command that fails verification, only to decide who
    # records the refusal; a refused command never stops anyone.
    readable = _readable(record.signed)
    if record.status is CommandStatus.REFUSED:
        if readable is not None and not readable.applies_to(occurrence_id):
            return Judgement(stop=False, answer=False, detail="not a target")
        return Judgement(
            stop=False,
            answer=True,
            detail=f"{record.refusal}: {record.detail} (the verdict recorded with the command)",
        )
    verdict = verifier(record.signed, record.created_at, lambda _nonce: replayed)
    command = verdict.command or readable
    if command is not None and not command.applies_to(occurrence_id):
        return Judgement(stop=False, answer=False, detail="not a target")
    if not verdict.accepted:
        assert verdict.refused is not None
        return Judgement(
            stop=False, answer=True, detail=f"{verdict.refused.value}: {verdict.detail}"
        )
    assert command is not None
    return Judgement(stop=True, answer=True, detail=verdict.detail, reason=command.reason)


def _readable(signed: SignedCommand) -> EmergencyCommand | None:
    try:
        return EmergencyCommand.model_validate_json(signed.payload)
    except ValidationError:
        return None
