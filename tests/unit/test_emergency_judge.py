"""What an occurrence does about an emergency command: the verdict recorded on the
command is final, so a command recorded as refused never stops anyone, whatever keys the
occurrence trusts (DESIGN: one verdict per command)."""

from __future__ import annotations

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from coordinator.emergency import judge, make_verifier
from coordinator.signing import new_command, public_key_text, sign
from schemas import CommandKind, CommandRecord, CommandStatus, load_settings

NOW = 1_700_000_000.0
KEY = Ed25519PrivateKey.generate()
TRUSTING = make_verifier(load_settings(trusted_keys=public_key_text(KEY.public_key())))


def recorded(
    status: CommandStatus,
    targets: tuple[str, ...] = (),
    refusal: str | None = None,
    audience: str = "default",
) -> CommandRecord:
    """A validly signed command for ``audience``, recorded with ``status``."""
    signed = sign(new_command("drill", targets, NOW, audience=audience), KEY)
    return CommandRecord(
        command_id="c-1",
        kind=CommandKind.EMERGENCY_SHUTDOWN,
        status=status,
        issued_by="api:127.0.0.1",
        refusal=refusal,
        detail="no key is trusted to sign emergency commands: set COORDINATOR_TRUSTED_KEYS",
        created_at=NOW + 1,
        signed=signed,
    )


@pytest.mark.parametrize("targets", [(), ("occ-1",)], ids=["whole fleet", "targeted"])
def test_a_command_recorded_as_refused_is_never_obeyed_by_an_occurrence_that_trusts_its_key(
    targets: tuple[str, ...],
) -> None:
    record = recorded(CommandStatus.REFUSED, targets, refusal="unknown_key")

    judgement = judge(record, "occ-1", TRUSTING, replayed=False)

    assert not judgement.stop
    assert judgement.answer  # it still records that it refused, as the README says
    assert judgement.detail.startswith("unknown_key: ")


def test_a_refused_command_aimed_elsewhere_gets_no_answer() -> None:
    record = recorded(CommandStatus.REFUSED, ("occ-2",), refusal="unknown_key")

    judgement = judge(record, "occ-1", TRUSTING, replayed=False)

    assert (judgement.stop, judgement.answer) == (False, False)


def test_an_accepted_command_stops_an_occurrence_that_trusts_its_key() -> None:
    judgement = judge(recorded(CommandStatus.ACCEPTED), "occ-1", TRUSTING, replayed=False)

    assert (judgement.stop, judgement.answer, judgement.reason) == (True, True, "drill")


def test_an_accepted_command_is_refused_by_an_occurrence_that_does_not_trust_its_key() -> None:
    distrusting = make_verifier(load_settings())

    judgement = judge(recorded(CommandStatus.ACCEPTED), "occ-1", distrusting, replayed=False)

    assert (judgement.stop, judgement.answer) == (False, True)
    assert judgement.detail.startswith("unknown_key: ")


def test_an_accepted_command_for_another_fleet_is_refused_by_this_one() -> None:
    record = recorded(CommandStatus.ACCEPTED, audience="fleet-a")

    judgement = judge(record, "occ-1", TRUSTING, replayed=False)

    assert (judgement.stop, judgement.answer) == (False, True)
    assert judgement.detail.startswith("wrong_audience: ")


def test_a_pending_command_is_not_acted_on() -> None:
    judgement = judge(recorded(CommandStatus.PENDING), "occ-1", TRUSTING, replayed=False)

    assert (judgement.stop, judgement.answer) == (False, False)
