"""Ed25519 keys for emergency commands: make a key pair, load the signing key, load the
keys an occurrence trusts (``COORDINATOR_TRUSTED_KEYS``), and name a key by its id.

Every failure is a ``ConfigurationError`` that says which entry or file is wrong and
never prints what may be key material.
"""

from __future__ import annotations

import base64
import hashlib
import os
import stat
from pathlib import Path

from cryptography.exceptions import UnsupportedAlgorithm
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

from schemas import ConfigurationError
from schemas.settings import setting_env_name

TRUSTED_KEYS_ENV = setting_env_name("trusted_keys")
KEY_ID_LENGTH = 16  # hex characters of the public key's SHA-256
PUBLIC_KEY_BYTES = 32

# An entry of COORDINATOR_TRUSTED_KEYS that fails to load may be key material pasted by
# mistake. A public key's base64 is 44 characters and paths usually contain a dot; longer
# dot-less text could be a private key and is never printed.
_MAX_SHOWN_ENTRY = 60


def generate_key_pair() -> tuple[bytes, str]:
    """A new key pair: the private key as unencrypted PKCS8 PEM, the public key as one line
    of base64 (the text ``load_trusted_keys`` accepts)."""
    private_key = Ed25519PrivateKey.generate()
    pem = private_key.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption())
    return pem, public_key_text(private_key.public_key())


def public_key_text(public_key: Ed25519PublicKey) -> str:
    return b64_text(_raw(public_key))


def key_id(public_key: Ed25519PublicKey) -> str:
    """The short fingerprint a signed command names its key by."""
    return hashlib.sha256(_raw(public_key)).hexdigest()[:KEY_ID_LENGTH]


def _raw(public_key: Ed25519PublicKey) -> bytes:
    return public_key.public_bytes(Encoding.Raw, PublicFormat.Raw)


def b64_text(data: bytes) -> str:
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
