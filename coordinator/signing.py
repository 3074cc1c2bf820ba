"""Ed25519 keys and signed emergency commands: make keys, load them, sign, verify.

``verify`` is pure: the caller passes ``now`` and a way to ask whether a nonce was already
used, so every refusal can be tested with plain values and no storage.
"""

from __future__ import annotations

import base64
import hashlib
import math
import os
import secrets
import stat
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path

from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    NoEncryption,
    PrivateFormat,
    PublicFormat,
    load_pem_private_key,
    load_pem_public_key,
)
from pydantic import ValidationError

from schemas import (
    EMERGENCY_SHUTDOWN,
    ConfigurationError,
    EmergencyCommand,
    RefusalReason,
    SignedCommand,
    Verification,
)
from schemas.settings import setting_env_name

TRUSTED_KEYS_ENV = setting_env_name("trusted_keys")
MAX_AGE_ENV = setting_env_name("emergency_max_age")
FLEET_ID_ENV = setting_env_name("fleet_id")
DEFAULT_CLOCK_SKEW = 30.0  # seconds a command may seem to come from the future
KEY_ID_LENGTH = 16  # hex characters of the public key's SHA-256
PUBLIC_KEY_BYTES = 32
SIGNATURE_BYTES = 64

# An entry of COORDINATOR_TRUSTED_KEYS that fails to load may be key material pasted by
# mistake. A public key's base64 is 44 characters and paths usually contain a dot; longer
# dot-less text could be a private key and is never printed.
_MAX_SHOWN_ENTRY = 60
_SHOWN_TEXT = 40  # characters of an untrusted field quoted in a refusal


# --- keys ---------------------------------------------------------------------------------


def generate_key_pair() -> tuple[bytes, str]:
    """A new key pair: the private key as unencrypted PKCS8 PEM, the public key as one line
    of base64 (the text ``load_trusted_keys`` accepts)."""
    private_key = Ed25519PrivateKey.generate()
    pem = private_key.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption())
    return pem, public_key_text(private_key.public_key())


def public_key_text(public_key: Ed25519PublicKey) -> str:
    return _b64(_raw(public_key))


def key_id(public_key: Ed25519PublicKey) -> str:
    """The short fingerprint a signed command names its key by."""
    return hashlib.sha256(_raw(public_key)).hexdigest()[:KEY_ID_LENGTH]


def _raw(public_key: Ed25519PublicKey) -> bytes:
    return public_key.public_bytes(Encoding.Raw, PublicFormat.Raw)


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def load_private_key(path: str | Path) -> Ed25519PrivateKey:
    """The signing key written by ``keys generate``; ``ConfigurationError`` says what is wrong."""
    path = Path(path).expanduser()
    data = _read_key_file(path, what="private key")
    if _holds_a_public_key(data):
        hint = f" (probably {path.with_suffix('')})" if path.suffix == ".pub" else ""
        raise ConfigurationError(f"{path} holds a public key; signing needs the private key{hint}")
    try:
        private_key = load_pem_private_key(data, password=None)
    except TypeError:
        raise ConfigurationError(
            f"{path} is an encrypted private key; coordinator needs an unencrypted one "
            "(as written by `keys generate`)"
        ) from None
    except (ValueError, UnsupportedAlgorithm):
        raise ConfigurationError(
            f"{path} is not a PEM private key (expected one written by `keys generate`)"
        ) from None
    if not isinstance(private_key, Ed25519PrivateKey):
        raise ConfigurationError(
            f"{path} holds a {type(private_key).__name__.removeprefix('_')}, not an Ed25519 "
            "private key"
        )
    return private_key


def _holds_a_public_key(data: bytes) -> bool:
    as_text = data.decode("ascii", "replace")
    return b"PUBLIC KEY" in data or _public_key_from_base64(as_text) is not None


def load_trusted_keys(spec: str) -> dict[str, Ed25519PublicKey]:
    """The public keys of ``COORDINATOR_TRUSTED_KEYS``, by key id.

    ``spec`` is comma-separated; each entry is a file (the ``.pub`` of ``keys generate``, or
    a PEM public key) or the base64 of the 32 raw key bytes. Blank entries are ignored.
    """
    keys: dict[str, Ed25519PublicKey] = {}
    entries = [entry.strip() for entry in spec.split(",")]
    for position, entry in enumerate(entries, start=1):
        if entry:
            public_key = _trusted_key(entry, position)
            keys[key_id(public_key)] = public_key
    return keys


def _trusted_key(entry: str, position: int) -> Ed25519PublicKey:
    path = Path(entry).expanduser()
    if path.is_file():
        return _public_key_from_file(path, position)
    public_key = _public_key_from_base64(entry)
    if public_key is None:
        raise ConfigurationError(
            f"{TRUSTED_KEYS_ENV}: {_shown_entry(entry, position)} is neither an existing file "
            f"nor the base64 of a {PUBLIC_KEY_BYTES}-byte Ed25519 public key"
        )
    return public_key


def _public_key_from_file(path: Path, position: int) -> Ed25519PublicKey:
    data = _read_key_file(path, what=f"{TRUSTED_KEYS_ENV} entry {position}")
    if b"PRIVATE KEY" in data:
        raise ConfigurationError(
            f"{TRUSTED_KEYS_ENV}: entry {position} {str(path)!r} is a private key; trust its "
            "public key (the .pub file) instead, and keep the private key off the fleet"
        )
    if data.lstrip().startswith(b"-----BEGIN"):
        try:
            public_key = load_pem_public_key(data)
        except (ValueError, UnsupportedAlgorithm):
            public_key = None
        if isinstance(public_key, Ed25519PublicKey):
            return public_key
    else:
        from_text = _public_key_from_base64(data.decode("ascii", "replace"))
        if from_text is not None:
            return from_text
    raise ConfigurationError(
        f"{TRUSTED_KEYS_ENV}: entry {position} {str(path)!r} holds no Ed25519 public key "
        "(expected the .pub file of `keys generate` or a PEM public key)"
    )


def _public_key_from_base64(text: str) -> Ed25519PublicKey | None:
    try:
        raw = base64.b64decode(text.strip(), validate=True)
    except ValueError:
        return None
    if len(raw) != PUBLIC_KEY_BYTES:
        return None
    return Ed25519PublicKey.from_public_bytes(raw)


MAX_KEY_FILE_BYTES = 64 * 1024
"""A PEM Ed25519 key is about 120 bytes: anything far larger is not a key file."""


def _read_key_file(path: Path, *, what: str) -> bytes:
    """The bytes of a small regular file: a device (``/dev/zero``) or a FIFO would be read
    forever, and a huge file whole into memory."""
    try:
        # Checked before opening: opening a FIFO waits for a writer.
        if not stat.S_ISREG(os.stat(path).st_mode):
            raise ConfigurationError(f"{what}: {path} is not a regular file")
        with path.open("rb") as file:
            data = file.read(MAX_KEY_FILE_BYTES + 1)
    except FileNotFoundError:
        raise ConfigurationError(f"{what}: no file at {path}") from None
    except OSError as exc:
        raise ConfigurationError(f"{what}: cannot read {path}: {exc.strerror}") from None
    if len(data) > MAX_KEY_FILE_BYTES:
        raise ConfigurationError(
            f"{what}: {path} has more than {MAX_KEY_FILE_BYTES} bytes; not a key file"
        )
    return data


def _shown_entry(entry: str, position: int) -> str:
    if "PRIVATE" in entry.upper() or (len(entry) > _MAX_SHOWN_ENTRY and "." not in entry):
        return f"entry {position} (not shown: it may be key material)"
    return f"entry {position} {entry!r}"


# --- commands -----------------------------------------------------------------------------


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
        signature=_b64(private_key.sign(payload)),
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
    if len(signature) != SIGNATURE_BYTES or _b64(signature) != signed.signature:
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
