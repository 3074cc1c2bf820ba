"""The signed emergency command: canonical bytes, and why verify() accepts or refuses."""

from __future__ import annotations

import base64
import json
import math
import string
from collections.abc import Callable
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import given, settings
from hypothesis import strategies as st

from coordinator.keys import MAX_KEY_FILE_BYTES, key_id, load_private_key, load_trusted_keys
from coordinator.signing import DEFAULT_CLOCK_SKEW, new_command, sign, verify
from schemas import (
    ConfigurationError,
    EmergencyCommand,
    RefusalReason,
    SignedCommand,
    Verification,
    load_settings,
)

PROPERTY = settings(max_examples=200, deadline=None, database=None)

NOW = 1_700_000_000
MAX_AGE = 300.0
FLEET = "fleet-a"
NONCE = "0123456789abcdef0123456789abcdef"

TRUSTED_KEY = Ed25519PrivateKey.generate()
UNTRUSTED_KEY = Ed25519PrivateKey.generate()
TRUSTED_ID = key_id(TRUSTED_KEY.public_key())
TRUSTED = {TRUSTED_ID: TRUSTED_KEY.public_key()}

ID_ALPHABET = string.ascii_letters + string.digits + "._-"
occurrence_ids = st.text(ID_ALPHABET, min_size=1, max_size=64).filter(lambda s: s != "__shared__")
reasons = st.text(max_size=500).filter(lambda s: s.strip() != "")
# Any text at all, lone surrogates included: what a hostile HTTP body could decode to.
any_text = st.text(st.characters(exclude_categories=()), max_size=300)


def command(
    reason: str = "maintenance",
    targets: tuple[str, ...] = (),
    issued_at: int = NOW,
    audience: str = FLEET,
) -> EmergencyCommand:
    return EmergencyCommand(
        audience=audience, reason=reason, targets=targets, issued_at=issued_at, nonce=NONCE
    )


def signed(
    reason: str = "maintenance",
    targets: tuple[str, ...] = (),
    issued_at: int = NOW,
    key: Ed25519PrivateKey = TRUSTED_KEY,
    audience: str = FLEET,
) -> SignedCommand:
    return sign(command(reason, targets, issued_at, audience), key)


def signed_raw(payload: bytes, key: Ed25519PrivateKey = TRUSTED_KEY) -> SignedCommand:
    """Whatever bytes a trusted key chose to sign, canonical or not."""
    return SignedCommand(
        payload=payload.decode("utf-8"),
        signature=base64.b64encode(key.sign(payload)).decode("ascii"),
        key_id=key_id(key.public_key()),
    )


def check(
    command: SignedCommand,
    *,
    now: float = NOW,
    nonce_seen: Callable[[str], bool] | None = None,
) -> Verification:
    return verify(command, TRUSTED, now=now, max_age=MAX_AGE, audience=FLEET, nonce_seen=nonce_seen)


def flip_byte(data: bytes, index: int, mask: int) -> bytes:
    return data[:index] + bytes([data[index] ^ mask]) + data[index + 1 :]


# --- the command and its canonical form ---------------------------------------------------


def test_canonical_bytes_are_compact_sorted_json_of_the_six_fields() -> None:
    issued = command(reason="  drain é  ", targets=("occ-2", "occ-1", "occ-2"), issued_at=12)

    assert (
        issued.canonical_bytes()
        == (
            '{"action":"emergency_shutdown","audience":"fleet-a","issued_at":12,'
            '"nonce":"0123456789abcdef0123456789abcdef","reason":"drain é",'
            '"targets":["occ-1","occ-2"]}'
        ).encode()
    )


def test_new_commands_carry_whole_seconds() -> None:
    issued = new_command("x", [], 1_700_000_000.999, audience=FLEET)

    assert issued.issued_at == 1_700_000_000
    assert b'"issued_at":1700000000,' in issued.canonical_bytes()


def test_no_targets_means_the_whole_fleet() -> None:
    assert command().applies_to("anyone")
    assert command(targets=("occ-1",)).applies_to("occ-1")
    assert not command(targets=("occ-1",)).applies_to("occ-2")


@pytest.mark.parametrize(
    "fields",
    [
        {"reason": "   "},
        {"reason": "x" * 501},
        {"targets": ("__shared__",)},
        {"targets": ("has space",)},
        {"issued_at": math.inf},
        {"issued_at": math.nan},
        {"issued_at": 1.5},
        {"issued_at": 1_700_000_000.0},  # a float, even a whole one: its spelling varies
        {"issued_at": "1700000000"},
        {"issued_at": True},
        {"issued_at": -1},
        {"issued_at": 2**53},  # beyond the integers every JSON parser reads exactly
        {"audience": ""},
        {"audience": "no spaces"},
        {"audience": "x" * 65},
        {"nonce": NONCE.upper()},
        {"nonce": NONCE[:-1]},
        {"action": "wakeup"},
    ],
    ids=str,
)
def test_an_invalid_command_cannot_be_built(fields: dict[str, object]) -> None:
    valid: dict[str, object] = {
        "audience": FLEET,
        "reason": "maintenance",
        "issued_at": NOW,
        "nonce": NONCE,
    }

    with pytest.raises(ValueError):
        EmergencyCommand.model_validate({**valid, **fields})


def test_a_reason_is_stripped_before_its_length_is_checked() -> None:
    assert command(reason=" " + "x" * 500 + "\n").reason == "x" * 500


def test_new_commands_get_fresh_nonces() -> None:
    first, second = (
        new_command("x", [], NOW, audience=FLEET),
        new_command("x", [], NOW, audience=FLEET),
    )

    assert first.nonce != second.nonce
    assert len(first.nonce) == 32


def test_an_accepted_verification_needs_its_command() -> None:
    with pytest.raises(ValueError):
        Verification(detail="accepted, but what?")


# --- verify: accepted ---------------------------------------------------------------------


def test_a_command_signed_by_a_trusted_key_is_accepted() -> None:
    result = check(signed(reason="disk full", targets=("occ-3", "occ-1")))

    assert result.accepted
    assert result.refused is None
    assert result.command == command(reason="disk full", targets=("occ-1", "occ-3"))
    assert "occ-1, occ-3" in result.detail


def test_the_wire_form_survives_a_json_round_trip() -> None:
    wire = signed(reason="naïve ☃ reason").model_dump_json()

    assert check(SignedCommand.model_validate_json(wire)).accepted


# --- verify: each refusal -----------------------------------------------------------------


def test_an_unsigned_command_is_refused_before_anything_else() -> None:
    unsigned = signed().model_copy(update={"signature": "", "key_id": "nobody"})

    result = check(unsigned)

    assert (result.refused, result.command) == (RefusalReason.UNSIGNED, None)


def test_a_command_signed_by_an_untrusted_key_is_refused() -> None:
    result = check(signed(key=UNTRUSTED_KEY))

    assert result.refused is RefusalReason.UNKNOWN_KEY
    assert "COORDINATOR_TRUSTED_KEYS" in result.detail


def test_with_no_trusted_keys_every_command_is_refused_and_says_what_to_set() -> None:
    result = verify(signed(), {}, now=NOW, max_age=MAX_AGE, audience=FLEET)

    assert result.refused is RefusalReason.UNKNOWN_KEY
    assert "set COORDINATOR_TRUSTED_KEYS" in result.detail


@pytest.mark.parametrize(
    "signature",
    [
        "not base64!",
        base64.b64encode(bytes(63)).decode(),  # one byte short
        base64.b64encode(bytes(64)).decode(),  # the right length, signing nothing
        base64.b64encode(UNTRUSTED_KEY.sign(b"anything")).decode(),
        "é" * 88,
    ],
    ids=["not-base64", "63-bytes", "zeros", "other-payload", "non-ascii"],
)
def test_a_signature_that_does_not_match_is_refused(signature: str) -> None:
    result = check(signed().model_copy(update={"signature": signature}))

    assert (result.refused, result.command) == (RefusalReason.BAD_SIGNATURE, None)


def test_an_untrusted_key_claiming_a_trusted_key_id_is_a_bad_signature() -> None:
    forged = signed(key=UNTRUSTED_KEY).model_copy(update={"key_id": TRUSTED_ID})

    assert check(forged).refused is RefusalReason.BAD_SIGNATURE


def test_a_non_canonical_base64_spelling_of_a_valid_signature_is_refused() -> None:
    genuine = signed()
    # The character before "==" carries 4 padding bits; setting one keeps the same bytes.
    padded = genuine.signature[:-3] + chr(ord(genuine.signature[-3]) + 1) + "=="
    assert base64.b64decode(padded) == base64.b64decode(genuine.signature)

    result = check(genuine.model_copy(update={"signature": padded}))

    assert result.refused is RefusalReason.BAD_SIGNATURE


CANONICAL = command().canonical_bytes().decode()


@pytest.mark.parametrize(
    "payload",
    [
        "",
        "not json",
        "[]",
        "{}",
        CANONICAL.replace(",", ", "),  # valid JSON, not compact
        CANONICAL.replace('"targets":[]', '"targets":["b","a"]'),  # not sorted
        CANONICAL.replace(f"{NOW}", f"{NOW}.0"),  # a float's spelling of the time
        CANONICAL.replace(f"{NOW}", "1.7e9"),
        CANONICAL.replace(f"{NOW}", f'"{NOW}"'),  # the time as text
        CANONICAL.replace(f'"audience":"{FLEET}",', ""),  # no audience: an old command
        CANONICAL.replace("}", ',"extra":1}'),
        CANONICAL.replace("emergency_shutdown", "wakeup"),
        CANONICAL.replace('"targets":[]', '"targets":["__shared__"]'),
        CANONICAL.replace(f"{NOW}", "NaN"),
        CANONICAL.replace('"maintenance"', '"  maintenance"'),  # not stripped
        CANONICAL.replace('"maintenance"', '"\\ud800"'),  # a lone surrogate
        "[" * 10_000,
    ],
)
def test_a_signed_payload_that_is_not_a_canonical_command_is_malformed(payload: str) -> None:
    result = check(signed_raw(payload.encode()))

    assert (result.refused, result.command) == (RefusalReason.MALFORMED, None)
    assert result.detail


@pytest.mark.parametrize(
    ("age", "refused"),
    [
        (0.0, None),
        (MAX_AGE, None),
        (MAX_AGE + 0.001, RefusalReason.EXPIRED),
        (10 * MAX_AGE, RefusalReason.EXPIRED),
        (-DEFAULT_CLOCK_SKEW, None),
        (-DEFAULT_CLOCK_SKEW - 0.001, RefusalReason.FROM_THE_FUTURE),
        (-3600.0, RefusalReason.FROM_THE_FUTURE),
    ],
)
def test_freshness_boundaries(age: float, refused: RefusalReason | None) -> None:
    result = check(signed(issued_at=NOW), now=NOW + age)

    assert result.refused is refused
    assert result.command == command()  # a refusal for age still says what was asked


def test_the_age_limit_and_the_skew_are_the_callers() -> None:
    old = signed(issued_at=NOW - 1000)
    ahead = signed(issued_at=NOW + 100)

    assert verify(old, TRUSTED, now=NOW, max_age=1001, audience=FLEET).accepted
    assert verify(ahead, TRUSTED, now=NOW, max_age=MAX_AGE, audience=FLEET, clock_skew=100).accepted
    assert not verify(
        ahead, TRUSTED, now=NOW, max_age=MAX_AGE, audience=FLEET, clock_skew=99
    ).accepted


def test_a_command_whose_nonce_was_seen_is_a_replay() -> None:
    asked: list[str] = []

    def seen(nonce: str) -> bool:
        asked.append(nonce)
        return True

    result = check(signed(), nonce_seen=seen)

    assert result.refused is RefusalReason.REPLAYED
    assert asked == [NONCE]
    assert NONCE in result.detail


def test_the_nonce_is_not_looked_up_for_a_command_already_refused() -> None:
    asked: list[str] = []

    def seen(nonce: str) -> bool:
        asked.append(nonce)
        return False

    check(signed(issued_at=NOW - 2 * int(MAX_AGE)), nonce_seen=seen)
    check(signed(key=UNTRUSTED_KEY), nonce_seen=seen)

    assert asked == []


def test_a_command_signed_for_another_fleet_is_refused_as_wrong_audience() -> None:
    result = check(signed(audience="fleet-b"))

    assert result.refused is RefusalReason.WRONG_AUDIENCE
    assert result.command == command(audience="fleet-b")  # what it asked, for the record
    assert "'fleet-b'" in result.detail and "'fleet-a'" in result.detail


def test_the_audience_is_judged_before_freshness_and_the_nonce() -> None:
    asked: list[str] = []

    def seen(nonce: str) -> bool:
        asked.append(nonce)
        return True

    stale_elsewhere = signed(audience="fleet-b", issued_at=NOW - 2 * int(MAX_AGE))

    assert check(stale_elsewhere, nonce_seen=seen).refused is RefusalReason.WRONG_AUDIENCE
    assert check(signed(audience="fleet-b"), nonce_seen=seen).refused is (
        RefusalReason.WRONG_AUDIENCE
    )
    assert asked == []


def test_a_new_nonce_is_accepted() -> None:
    assert check(signed(), nonce_seen=lambda nonce: False).accepted


def test_the_settings_for_verification_come_from_their_variables(
    clean_env: pytest.MonkeyPatch,
) -> None:
    assert (load_settings().trusted_keys, load_settings().emergency_max_age) == ("", 300.0)

    clean_env.setenv("COORDINATOR_TRUSTED_KEYS", "a.pub,b.pub")
    clean_env.setenv("COORDINATOR_EMERGENCY_MAX_AGE", "60")

    assert (load_settings().trusted_keys, load_settings().emergency_max_age) == ("a.pub,b.pub", 60)


# --- properties ---------------------------------------------------------------------------


@PROPERTY
@given(
    reason=reasons,
    targets=st.lists(occurrence_ids, max_size=5),
    issued_at=st.integers(min_value=0, max_value=4_000_000_000),
    age=st.floats(min_value=-DEFAULT_CLOCK_SKEW, max_value=MAX_AGE),
)
def test_any_fresh_signed_command_is_accepted_as_issued(
    reason: str, targets: list[str], issued_at: int, age: float
) -> None:
    issued = new_command(reason, targets, issued_at, audience=FLEET)
    now = issued_at + age
    if not -DEFAULT_CLOCK_SKEW <= now - issued_at <= MAX_AGE:
        return  # rounding carried the age just past a limit: the boundary tests cover that

    result = verify(sign(issued, TRUSTED_KEY), TRUSTED, now=now, max_age=MAX_AGE, audience=FLEET)

    assert result.accepted, result.detail
    assert result.command == issued
    assert all(result.command.applies_to(target) for target in targets)


@PROPERTY
@given(issued_at=st.integers(min_value=0, max_value=2**53 - 1))
def test_any_valid_time_survives_the_canonical_json(issued_at: int) -> None:
    result = check(signed(issued_at=issued_at), now=issued_at)

    assert result.accepted, result.detail
    assert result.command is not None
    assert result.command.issued_at == issued_at


@PROPERTY
@given(reason=reasons, data=st.data())
def test_flipping_any_byte_of_the_payload_is_refused(reason: str, data: st.DataObject) -> None:
    genuine = signed(reason=reason)
    payload = genuine.payload.encode()
    index = data.draw(st.integers(0, len(payload) - 1))
    mask = data.draw(st.integers(1, 255))
    # Invalid UTF-8 travels as lone surrogates, as a lenient decoder would hand it over.
    tampered = flip_byte(payload, index, mask).decode("utf-8", "surrogateescape")

    result = check(genuine.model_copy(update={"payload": tampered}))

    assert result.refused is RefusalReason.BAD_SIGNATURE


@PROPERTY
@given(reason=reasons, index=st.integers(0, 63), mask=st.integers(1, 255))
def test_flipping_any_byte_of_the_signature_is_refused(reason: str, index: int, mask: int) -> None:
    genuine = signed(reason=reason)
    signature = flip_byte(base64.b64decode(genuine.signature), index, mask)

    result = check(genuine.model_copy(update={"signature": base64.b64encode(signature).decode()}))

    assert result.refused is RefusalReason.BAD_SIGNATURE


@PROPERTY
@given(reason=reasons, index=st.integers(0, 87), replacement=st.characters())
def test_changing_any_character_of_the_signature_text_is_refused(
    reason: str, index: int, replacement: str
) -> None:
    genuine = signed(reason=reason)
    text = genuine.signature
    changed = text[:index] + replacement + text[index + 1 :]
    if changed == text:
        return

    assert not check(genuine.model_copy(update={"signature": changed})).accepted


@PROPERTY
@given(reason=reasons, targets=st.lists(occurrence_ids, max_size=3))
def test_a_command_signed_by_an_untrusted_key_is_never_accepted(
    reason: str, targets: list[str]
) -> None:
    forged = sign(new_command(reason, targets, NOW, audience=FLEET), UNTRUSTED_KEY)

    assert check(forged).refused is RefusalReason.UNKNOWN_KEY
    claimed = forged.model_copy(update={"key_id": TRUSTED_ID})
    assert check(claimed).refused is RefusalReason.BAD_SIGNATURE


@PROPERTY
@given(
    payload=any_text,
    signature=st.one_of(any_text, st.just(signed().signature)),
    claimed_key=st.one_of(any_text, st.just(TRUSTED_ID)),
)
def test_arbitrary_text_is_refused_without_raising(
    payload: str, signature: str, claimed_key: str
) -> None:
    hostile = SignedCommand(payload=payload, signature=signature, key_id=claimed_key)

    result = check(hostile, nonce_seen=lambda nonce: False)

    assert not result.accepted
    assert result.refused is not None
    assert result.detail


json_values = st.recursive(
    st.none() | st.booleans() | st.floats() | st.integers() | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4)
    ),
    max_leaves=12,
)
command_like = st.fixed_dictionaries(
    {},
    optional={
        "action": st.sampled_from(["emergency_shutdown", "wakeup"]) | json_values,
        "audience": st.sampled_from([FLEET, "fleet-b"]) | json_values,
        "reason": reasons | json_values,
        "targets": st.lists(occurrence_ids, max_size=3) | json_values,
        "issued_at": st.integers() | st.floats() | json_values,
        "nonce": st.just(NONCE) | json_values,
    },
)


@PROPERTY
@given(document=command_like | json_values, spacing=st.sampled_from([None, (",", ":")]))
def test_any_json_a_trusted_key_signs_is_judged_without_raising(
    document: object, spacing: tuple[str, str] | None
) -> None:
    text = json.dumps(document, sort_keys=True, separators=spacing, ensure_ascii=False)

    result = check(signed_raw(text.encode()))

    if result.accepted:
        assert result.command is not None
        assert result.command.canonical_bytes().decode() == text
    else:
        assert result.refused is not RefusalReason.BAD_SIGNATURE


@pytest.mark.parametrize("what", ["trusted key", "private key"])
def test_a_key_file_far_larger_than_a_key_is_refused_without_reading_it_whole(
    tmp_path: Path, what: str
) -> None:
    huge = tmp_path / "huge.pub"
    huge.write_bytes(b"-----BEGIN PUBLIC KEY-----\n" + b"A" * (4 * MAX_KEY_FILE_BYTES))
    load = load_trusted_keys if what == "trusted key" else load_private_key
    with pytest.raises(ConfigurationError, match=f"more than {MAX_KEY_FILE_BYTES} bytes"):
        load(str(huge))


def test_a_private_key_path_that_is_a_device_is_refused() -> None:
    with pytest.raises(ConfigurationError, match="not a regular file"):
        load_private_key("/dev/zero")
