"""Signed emergency commands: make one, sign it, verify it.

``verify`` is pure: the caller passes ``now`` and a way to ask whether a nonce was already
used, so every refusal can be tested with plain values and no storage. The keys live in
``coordinator.keys`` (re-exported here, where embedders have imported them from).
"""

from __future__ import annotations

import base64
import math
import secrets
from collections.abc import Callable, Iterable, Mapping

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)
from pydantic import ValidationError

from coordinator.keys import (
    KEY_ID_LENGTH,
    PUBLIC_KEY_BYTES,
    TRUSTED_KEYS_ENV,
    b64_text,
    generate_key_pair,
    key_id,
    load_private_key,
    load_trusted_keys,
    public_key_text,
)
from schemas import (
    EMERGENCY_SHUTDOWN,
    EmergencyCommand,
    RefusalReason,
    SignedCommand,
    Verification,
)
from schemas.settings import setting_env_name

__all__ = [
    "DEFAULT_CLOCK_SKEW",
    "FLEET_ID_ENV",
    "KEY_ID_LENGTH",
    "MAX_AGE_ENV",
    "PUBLIC_KEY_BYTES",
    "SIGNATURE_BYTES",
    "TRUSTED_KEYS_ENV",
    "generate_key_pair",
    "key_id",
    "load_private_key",
    "load_trusted_keys",
    "new_command",
    "public_key_text",
    "sign",
    "verify",
]

MAX_AGE_ENV = setting_env_name("emergency_max_age")
FLEET_ID_ENV = setting_env_name("fleet_id")
DEFAULT_CLOCK_SKEW = 30.0  # seconds a command may seem to come from the future
SIGNATURE_BYTES = 64
_SHOWN_TEXT = 40  # characters of an untrusted field quoted in a refusal


def new_command(
    reason: str, targets: Iterable[str], now: float, *, audience: str
) -> EmergencyCommand:
    """A command for the fleet ``audience``, issued at ``now`` (whole seconds, rounded
    down) with a fresh nonce; pydantic's ``ValidationError`` (a ``ValueError``) names a bad
    reason, target or audience."""
    return EmergencyCommand(
        action=EMERGENCY_SHUTDOWN,
        audience=audience,
        reason=reason,
        targets=tuple(targets),
        issued_at=math.floor(now),
        nonce=secrets.token_hex(16),
    )


def sign(command: EmergencyCommand, private_key: Ed25519PrivateKey) -> SignedCommand:
    payload = command.canonical_bytes()
    return SignedCommand(
        payload=payload.decode("utf-8"),
        signature=b64_text(private_key.sign(payload)),
        key_id=key_id(private_key.public_key()),
    )


def verify(
    signed: SignedCommand,
    trusted: Mapping[str, Ed25519PublicKey],
    *,
    now: float,
    max_age: float,
    audience: str,
    nonce_seen: Callable[[str], bool] | None = None,
    clock_skew: float = DEFAULT_CLOCK_SKEW,
) -> Verification:
    """Accept ``signed`` only if a trusted key signed it, it is well formed, meant for the
    fleet ``audience``, fresh and new.

    Checks run in a fixed order, so a command has exactly one refusal reason: unsigned,
    unknown key, bad signature, malformed, wrong audience, expired, from the future,
    replayed. Never raises on any text in ``signed``. ``nonce_seen`` only reads: to stop
    two occurrences from both acting on one command, the store must also record the nonce
    atomically.
    """
    if not signed.signature:
        return _refused(RefusalReason.UNSIGNED, "the command carries no signature")
    public_key = trusted.get(signed.key_id)
    if public_key is None:
        return _refused(RefusalReason.UNKNOWN_KEY, _unknown_key_detail(signed.key_id, trusted))
    payload = _signed_bytes(signed, public_key)
    if payload is None:
        return _refused(
            RefusalReason.BAD_SIGNATURE,
            f"the signature does not match the payload for key {signed.key_id}",
        )
    command, problem = _parse(payload)
    if command is None:
        return _refused(RefusalReason.MALFORMED, problem)
    if command.audience != audience:
        # Nonces are tracked per database: without this, a command signed for one fleet
        # could be replayed to every other fleet that trusts the same key.
        return _refused(
            RefusalReason.WRONG_AUDIENCE,
            f"signed for fleet {_quoted(command.audience)}, and this is fleet "
            f"{_quoted(audience)} ({FLEET_ID_ENV})",
            command,
        )
    return _judge_freshness(command, now, max_age, clock_skew, nonce_seen)


def _unknown_key_detail(claimed: str, trusted: Mapping[str, Ed25519PublicKey]) -> str:
    if not trusted:
        return f"no key is trusted to sign emergency commands: set {TRUSTED_KEYS_ENV}"
    return (
        f"key {_quoted(claimed)} is not a trusted key "
        f"({len(trusted)} configured in {TRUSTED_KEYS_ENV})"
    )


def _signed_bytes(signed: SignedCommand, public_key: Ed25519PublicKey) -> bytes | None:
    """The payload's bytes if ``public_key`` signed exactly them, else None."""
    try:
        signature = base64.b64decode(signed.signature, validate=True)
        payload = signed.payload.encode("utf-8")
    except ValueError:  # not base64, or text with no UTF-8 form: nothing could have signed it
        return None
    # Base64 has spare padding bits; demanding the one canonical text keeps a signed
    # command's stored form unique, as Ed25519 already does for the signature bytes.
    if len(signature) != SIGNATURE_BYTES or b64_text(signature) != signed.signature:
        return None
    try:
        public_key.verify(signature, payload)
    except InvalidSignature:
        return None
    return payload


def _parse(payload: bytes) -> tuple[EmergencyCommand | None, str]:
    try:
        command = EmergencyCommand.model_validate_json(payload)
    except ValidationError as exc:
        return None, f"the payload is not an emergency command: {_first_problem(exc)}"
    # Only the canonical form is accepted, so one command has exactly one signed encoding.
    if command.canonical_bytes() != payload:
        return None, (
            "the payload is not in canonical form (sorted keys, no whitespace, UTF-8; "
            "see the README)"
        )
    return command, ""


def _first_problem(exc: ValidationError) -> str:
    error = exc.errors()[0]
    where = ".".join(str(part) for part in error["loc"]) or "payload"
    return f"{where}: " + str(error["msg"]).removeprefix("Value error, ")


def _judge_freshness(
    command: EmergencyCommand,
    now: float,
    max_age: float,
    clock_skew: float,
    nonce_seen: Callable[[str], bool] | None,
) -> Verification:
    age = now - command.issued_at
    if age > max_age:
        return _refused(
            RefusalReason.EXPIRED,
            f"issued {age:.1f} s ago, longer than the {max_age:g} s a command stays valid "
            f"({MAX_AGE_ENV})",
            command,
        )
    if -age > clock_skew:
        return _refused(
            RefusalReason.FROM_THE_FUTURE,
            f"issued {-age:.1f} s in the future, more than the {clock_skew:g} s of clock skew "
            "tolerated",
            command,
        )
    if nonce_seen is not None and nonce_seen(command.nonce):
        return _refused(
            RefusalReason.REPLAYED,
            f"nonce {command.nonce} was already used: this command is a replay",
            command,
        )
    scope = ", ".join(command.targets) if command.targets else "the whole fleet"
    return Verification(command=command, detail=f"emergency shutdown of {scope} accepted")


def _refused(
    reason: RefusalReason, detail: str, command: EmergencyCommand | None = None
) -> Verification:
    return Verification(command=command, refused=reason, detail=detail)


def _quoted(text: str) -> str:
    shown = text if len(text) <= _SHOWN_TEXT else text[:_SHOWN_TEXT] + "..."
    return repr(shown)
