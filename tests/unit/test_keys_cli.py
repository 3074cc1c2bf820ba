"""``keys generate`` and the key files: what is written, and that it signs and verifies."""

from __future__ import annotations

import base64
import stat
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed448 import Ed448PrivateKey
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    NoEncryption,
    PrivateFormat,
    PublicFormat,
)

from coordinator.cli import main
from coordinator.cli.keys_cmd import DEFAULT_KEY_NAME
from coordinator.keys import (
    generate_key_pair,
    key_id,
    load_private_key,
    load_trusted_keys,
    public_key_text,
)
from coordinator.signing import new_command, sign, verify
from schemas import ConfigurationError

NOW = 1_700_000_000.0


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def generate(out: Path, *extra: str) -> int:
    return main(["keys", "generate", "--out", str(out), *extra])


def round_trips(private: Path, trusted_spec: str) -> bool:
    signed = sign(
        new_command("drill", ["occ-1"], NOW, audience="default"), load_private_key(private)
    )
    return verify(
        signed, load_trusted_keys(trusted_spec), now=NOW, max_age=300, audience="default"
    ).accepted


@pytest.fixture
def key_dir(tmp_path: Path) -> Path:
    out = tmp_path / "keys"
    assert generate(out) == 0
    return out


# --- keys generate ------------------------------------------------------------------------


def test_generate_writes_a_private_key_only_its_owner_can_read(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "new" / "keys"

    assert generate(out) == 0

    private, public = out / DEFAULT_KEY_NAME, out / f"{DEFAULT_KEY_NAME}.pub"
    assert mode(private) == 0o600
    assert mode(out) == 0o700
    assert private.read_bytes().startswith(b"-----BEGIN PRIVATE KEY-----")
    lines = public.read_text().splitlines(keepends=True)
    assert len(lines) == 1 and lines[0].endswith("\n")
    assert len(base64.b64decode(lines[0].strip(), validate=True)) == 32

    printed = capsys.readouterr().out
    (fingerprint,) = load_trusted_keys(str(public))
    assert str(private.resolve()) in printed
    assert fingerprint in printed
    assert f"export COORDINATOR_TRUSTED_KEYS={public.resolve()}" in printed


def test_the_generated_files_round_trip_through_sign_and_verify(key_dir: Path) -> None:
    private = key_dir / DEFAULT_KEY_NAME
    public = key_dir / f"{DEFAULT_KEY_NAME}.pub"

    assert round_trips(private, str(public))
    assert round_trips(private, public.read_text().strip())
    assert round_trips(private, f" , {public} ,, ")


def test_generate_will_not_overwrite_a_key_pair(
    key_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    private = key_dir / DEFAULT_KEY_NAME
    before = private.read_bytes()
    capsys.readouterr()

    assert generate(key_dir) == 2

    assert private.read_bytes() == before
    assert "--force" in capsys.readouterr().err


def test_generate_will_not_overwrite_a_lone_public_key(tmp_path: Path) -> None:
    (tmp_path / "ops.pub").write_text("kept\n")

    assert generate(tmp_path, "--name", "ops") == 2

    assert not (tmp_path / "ops").exists()


def test_force_replaces_the_pair_and_does_not_inherit_loose_permissions(key_dir: Path) -> None:
    private = key_dir / DEFAULT_KEY_NAME
    old_public = (key_dir / f"{DEFAULT_KEY_NAME}.pub").read_text()
    private.chmod(0o644)

    assert generate(key_dir, "--force") == 0

    assert mode(private) == 0o600
    assert (key_dir / f"{DEFAULT_KEY_NAME}.pub").read_text() != old_public
    assert round_trips(private, str(key_dir / f"{DEFAULT_KEY_NAME}.pub"))
    assert not round_trips(private, old_public)


def test_generate_takes_a_name(tmp_path: Path) -> None:
    assert generate(tmp_path, "--name", "ops-2025") == 0

    assert round_trips(tmp_path / "ops-2025", str(tmp_path / "ops-2025.pub"))


@pytest.mark.parametrize("name", ["", ".", "..", "../escape", "a/b"])
def test_generate_refuses_a_name_that_is_not_a_plain_file_name(tmp_path: Path, name: str) -> None:
    assert generate(tmp_path / "keys", "--name", name) == 2

    assert not (tmp_path / "keys").exists()


# --- loading keys -------------------------------------------------------------------------


def write(path: Path, content: bytes) -> Path:
    path.write_bytes(content)
    return path


def test_a_pem_public_key_file_is_trusted(tmp_path: Path) -> None:
    private_pem, _ = generate_key_pair()
    private = write(tmp_path / "signer", private_pem)
    public_pem = (
        load_private_key(private)
        .public_key()
        .public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo)
    )

    assert round_trips(private, str(write(tmp_path / "signer.pem", public_pem)))


def test_trusted_keys_are_indexed_by_their_key_id(tmp_path: Path) -> None:
    signers = [load_private_key(write(tmp_path / n, generate_key_pair()[0])) for n in "ab"]
    texts = [public_key_text(signer.public_key()) for signer in signers]

    trusted = load_trusted_keys(",".join(texts))

    assert set(trusted) == {key_id(signer.public_key()) for signer in signers}
    assert load_trusted_keys("") == {} == load_trusted_keys(" , ")


@pytest.mark.parametrize(
    ("content", "complaint"),
    [
        (None, "no file"),
        (b"hello", "not a PEM private key"),
        (generate_key_pair()[1].encode() + b"\n", "public key"),
        (
            Ed448PrivateKey.generate().private_bytes(
                Encoding.PEM, PrivateFormat.PKCS8, NoEncryption()
            ),
            "not an Ed25519 private key",
        ),
    ],
    ids=["missing", "garbage", "public-key", "ed448"],
)
def test_a_bad_private_key_file_says_what_is_wrong(
    tmp_path: Path, content: bytes | None, complaint: str
) -> None:
    path = tmp_path / "signer.pub"
    if content is not None:
        path.write_bytes(content)

    with pytest.raises(ConfigurationError, match=complaint) as caught:
        load_private_key(path)

    assert str(path) in str(caught.value)


def test_passing_the_pub_file_as_private_key_points_at_the_private_one(key_dir: Path) -> None:
    with pytest.raises(ConfigurationError) as caught:
        load_private_key(key_dir / f"{DEFAULT_KEY_NAME}.pub")

    assert f"probably {key_dir / DEFAULT_KEY_NAME})" in str(caught.value)


def test_a_private_key_among_the_trusted_keys_is_refused_without_printing_it(
    key_dir: Path,
) -> None:
    private = key_dir / DEFAULT_KEY_NAME
    secret_line = private.read_text().splitlines()[1]

    with pytest.raises(ConfigurationError) as caught:
        load_trusted_keys(str(private))

    message = str(caught.value)
    assert "COORDINATOR_TRUSTED_KEYS" in message and str(private) in message
    assert secret_line not in message


@pytest.mark.parametrize(
    "pasted",
    [
        "-----BEGIN PRIVATE KEY-----MC4CAQAwBQYDK2VwBCIEIAQHDYxNwkDuagMck84RNMxGOXpctNOdVhRk",
        base64.b64encode(bytes(range(48))).decode(),  # the length of a DER private key
    ],
    ids=["pem", "der-base64"],
)
def test_pasted_key_material_is_never_echoed(pasted: str) -> None:
    with pytest.raises(ConfigurationError) as caught:
        load_trusted_keys(pasted)

    assert "COORDINATOR_TRUSTED_KEYS" in str(caught.value)
    assert pasted not in str(caught.value)


@pytest.mark.parametrize("entry", ["missing.pub", "c2hvcnQ=", "not base64!"])
def test_a_bad_trusted_key_entry_is_named(tmp_path: Path, entry: str) -> None:
    good = generate_key_pair()[1]

    with pytest.raises(ConfigurationError) as caught:
        load_trusted_keys(f"{good},{entry}")

    assert "COORDINATOR_TRUSTED_KEYS" in str(caught.value)
    assert f"entry 2 {entry!r}" in str(caught.value)


def test_a_trusted_key_file_that_holds_no_public_key_is_named(tmp_path: Path) -> None:
    path = write(tmp_path / "empty.pub", b"")

    with pytest.raises(ConfigurationError, match="holds no Ed25519 public key") as caught:
        load_trusted_keys(str(path))

    assert str(path) in str(caught.value)
