"""The emergency stop as an occurrence judges it: verify, decide whether it is aimed at
this occurrence, and say what to do. Pure, apart from loading the configured keys."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from pydantic import ValidationError

from coordinator.signing import load_trusted_keys, verify
from persistence.emergency import Verifier
from schemas import CommandRecord, EmergencyCommand, Settings, SignedCommand, Verification


def make_verifier(settings: Settings) -> Verifier:
    """``verify(signed, recorded_at, nonce_seen)`` with the keys of
    ``COORDINATOR_TRUSTED_KEYS``; raises ``ConfigurationError`` for a bad key entry.

    Freshness is judged at the moment the database recorded the command, so every
    occurrence reaches the same verdict, even one that looks late after an outage.
    """
    trusted = load_trusted_keys(settings.trusted_keys)
    max_age = settings.emergency_max_age

    def verify_command(
        signed: SignedCommand, recorded_at: float, nonce_seen: Callable[[str], bool]
    ) -> Verification:
        return verify(signed, trusted, now=recorded_at, max_age=max_age, nonce_seen=nonce_seen)

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
    """What this occurrence does about one emergency command it has not answered yet."""
    assert record.signed is not None
    verdict = verifier(record.signed, record.created_at, lambda _nonce: replayed)
    # Targets are read even from a command that fails verification, only to decide who
    # records the refusal; a refused command never stops anyone.
    command = verdict.command or _readable(record.signed)
    aimed = command is None or command.applies_to(occurrence_id)
    if not aimed:
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
