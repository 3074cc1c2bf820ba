"""The emergency route over HTTP: forged, tampered, expired, replayed, wrongly targeted and
malformed commands are each refused, and the only trace they leave is their recorded
refusal; a body that is not a signed command is refused before anything is stored."""

from __future__ import annotations

import base64
import json
import sys
import time
from pathlib import Path

import child_processes
import pytest
from api_server import ApiServer, Signer
from fleet_state import (
    MEMBERS,
    Seeded,
    assert_nothing_changed,
    assert_only_refusal_recorded,
    snapshot,
)

from coordinator.signing import key_id
from persistence import Store
from schemas import CommandStatus, RolloutStatus, SignedCommand

pytestmark = pytest.mark.processes

ROUTE = "/v1/emergency-shutdown"


def signed_raw(signer: Signer, payload: str) -> SignedCommand:
    """Any text, validly signed by ``signer``: what a key holder with a bug could send."""
    signature = signer.private_key.sign(payload.encode("utf-8"))
    return SignedCommand(
        payload=payload,
        signature=base64.b64encode(signature).decode("ascii"),
        key_id=key_id(signer.private_key.public_key()),
    )


def refused_commands(signer: Signer, stranger: Signer) -> dict[str, tuple[SignedCommand, str]]:
    """Each bad command, and the refusal it must get."""
    good = signer.command("stop the fleet")
    forged = stranger.command("stop the fleet")
    tampered = good.payload.replace("stop the fleet", "stop everything")
    fields = json.loads(good.payload)
    now = time.time()

    def canonical(**changes: object) -> str:
        return json.dumps({**fields, **changes}, sort_keys=True, separators=(",", ":"))

    return {
        "unsigned": (SignedCommand(payload=good.payload), "unsigned"),
        "signed by an untrusted key": (forged, "unknown_key"),
        "untrusted signature under the trusted key id": (
            forged.model_copy(update={"key_id": good.key_id}),
            "bad_signature",
        ),
        "payload changed after signing": (
            good.model_copy(update={"payload": tampered}),
            "bad_signature",
        ),
        "signature not base64": (good.model_copy(update={"signature": "!!!"}), "bad_signature"),
        "expired": (signer.command("late", at=now - 3600), "expired"),
        "from the future": (signer.command("early", at=now + 3600), "from_the_future"),
        "signed text that is not a command": (signed_raw(signer, "reboot"), "malformed"),
        "signed command of another action": (
            signed_raw(signer, canonical(action="reboot")),
            "malformed",
        ),
        "signed command aimed at the shared task id": (
            signed_raw(signer, canonical(targets=["__shared__"])),
            "malformed",
        ),
        "signed command aimed at an invalid id": (
            signed_raw(signer, canonical(targets=["bad id!"])),
            "malformed",
        ),
        "payload not in canonical form": (
            signed_raw(signer, json.dumps(fields, indent=1)),
            "malformed",
        ),
        "issue time as a float": (
            signed_raw(signer, canonical(issued_at=float(fields["issued_at"]))),
            "malformed",
        ),
        "no audience (a command of the old wire form)": (
            signed_raw(
                signer,
                json.dumps(
                    {k: v for k, v in fields.items() if k != "audience"},
                    sort_keys=True,
                    separators=(",", ":"),
                ),
            ),
            "malformed",
        ),
        "signed for another fleet": (signer.command("stop", audience="fleet-z"), "wrong_audience"),
    }


async def test_every_bad_command_is_refused_with_403_and_only_its_refusal_is_recorded(
    api: ApiServer, seeded: Seeded, signer: Signer, stranger: Signer, db: Store
) -> None:
    async with api.authorized() as client:
        for name, (command, refusal) in refused_commands(signer, stranger).items():
            before = await snapshot(db)
            response = await client.post(ROUTE, json=command.model_dump())

            assert response.status_code == 403, name
            body = response.json()
            assert body["error"] == refusal, name
            assert body["message"].startswith("emergency command refused: "), name
            recorded = assert_only_refusal_recorded(before, await snapshot(db), refusal, name)
            assert body["details"]["command"]["command_id"] == recorded.command_id, name
            assert recorded.signed == command, name  # stored exactly as received
            assert recorded.issued_by == "api:127.0.0.1"
    rollout = await db.rollout(seeded.wakeup_id)
    assert rollout.status is RolloutStatus.RUNNING  # none of them stopped anything


async def test_a_replayed_command_is_refused_and_changes_nothing_more(
    api: ApiServer, seeded: Seeded, signer: Signer, db: Store
) -> None:
    command = signer.command("stop the third", targets=[MEMBERS[2]])
    async with api.authorized() as client:
        first = await client.post(ROUTE, json=command.model_dump())
        assert first.status_code == 202
        assert first.json()["command"]["status"] == "accepted"

        before = await snapshot(db)
        replay = await client.post(ROUTE, json=command.model_dump())
        assert (replay.status_code, replay.json()["error"]) == (403, "replayed")
        assert_only_refusal_recorded(before, await snapshot(db), "replayed", "a replay")

        # The same nonce under a new, validly signed payload is still the same command.
        fields = json.loads(command.payload)
        fields["targets"] = [MEMBERS[1]]
        resigned = signed_raw(
            signer, json.dumps(fields, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
        )
        before = await snapshot(db)
        again = await client.post(ROUTE, json=resigned.model_dump())
        assert (again.status_code, again.json()["error"]) == (403, "replayed")
        assert_only_refusal_recorded(before, await snapshot(db), "replayed", "a re-signed replay")


async def test_a_command_naming_an_unknown_occurrence_is_422_and_nothing_is_recorded(
    api: ApiServer, seeded: Seeded, signer: Signer, db: Store
) -> None:
    before = await snapshot(db)
    async with api.authorized() as client:
        typo = await client.post(
            ROUTE,
            json=signer.command("typo", targets=[MEMBERS[0], "occurrence-99"]).model_dump(),
        )
        assert_nothing_changed(before, await snapshot(db), "a command naming an unknown target")
        # A forged one is recorded as refused whatever it names: its targets are not
        # trusted, and every refusal leaves its trace.
        forged = await client.post(
            ROUTE,
            json=signer.command("forged", targets=["occurrence-99"])
            .model_copy(update={"signature": ""})
            .model_dump(),
        )
    assert typo.status_code == 422, typo.text
    body = typo.json()
    assert body["error"] == "unknown_target"
    assert "'occurrence-99'" in body["message"] and "'occurrence-1'" not in body["message"]
    assert (forged.status_code, forged.json()["error"]) == (403, "unsigned")


async def test_a_command_for_all_aborts_the_rollout_and_the_open_reads_leave_out_its_signature(
    api: ApiServer, seeded: Seeded, signer: Signer, db: Store
) -> None:
    async with api.authorized() as client:
        command = signer.command("stop all")
        for_all = await client.post(ROUTE, json=command.model_dump())

    assert for_all.status_code == 202
    assert for_all.json()["command"]["signed"] == command.model_dump()  # to its poster only
    assert (await db.rollout(seeded.wakeup_id)).status is RolloutStatus.ABORTED
    command_id = for_all.json()["command"]["command_id"]
    async with api.client() as client:  # no token
        detail = (await client.get(f"/v1/commands/{command_id}")).json()
        listed = (await client.get("/v1/commands")).json()["commands"]
    assert detail["command"]["status"] == CommandStatus.ACCEPTED.value
    assert detail["acks"] == []  # no occurrence process runs here to acknowledge it
    # Without the token nobody gets a signed object: nothing to post again elsewhere.
    assert detail["command"]["signed"] is None
    assert [c["signed"] for c in listed] == [None]
    assert (await db.command(command_id)).signed == command  # still stored whole


async def test_a_body_that_is_not_a_signed_command_is_422_and_nothing_is_stored(
    api: ApiServer, seeded: Seeded, signer: Signer, db: Store
) -> None:
    good = signer.command().model_dump()
    bodies: dict[str, dict[str, object]] = {
        "not JSON": {"content": b"payload=x", "headers": {"Content-Type": "application/json"}},
        "no payload": {"json": {"signature": good["signature"], "key_id": good["key_id"]}},
        "payload not text": {"json": {**good, "payload": {"action": "emergency_shutdown"}}},
        "an extra field": {"json": {**good, "force": True}},
        "a JSON string": {"json": good["payload"]},
        "empty object": {"json": {}},
    }
    before = await snapshot(db)
    async with api.authorized() as client:
        for name, request in bodies.items():
            response = await client.post(ROUTE, **request)  # type: ignore[arg-type]
            assert response.status_code == 422, name
            assert response.json()["error"] == "invalid_request", name
    assert_nothing_changed(before, await snapshot(db), "bodies that are not commands")


async def test_a_command_printed_by_the_cli_is_accepted_over_http(
    api: ApiServer, seeded: Seeded, signer: Signer, db: Store, tmp_path: Path
) -> None:
    before = await snapshot(db)
    printed = child_processes.run(
        [
            *(sys.executable, "-m", "coordinator", "emergency-shutdown"),
            *("--reason", "runaway costs", "--target", MEMBERS[2]),
            *("--key", str(tmp_path / "operator"), "--print"),  # the `signer` fixture's key
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert printed.returncode == 0, printed.stderr
    assert_nothing_changed(before, await snapshot(db), "emergency-shutdown --print")

    async with api.authorized() as client:  # as `curl --data @-` would send it
        response = await client.post(
            ROUTE, content=printed.stdout, headers={"Content-Type": "application/json"}
        )

    assert response.status_code == 202, response.text
    command = response.json()["command"]
    assert (command["status"], command["reason"]) == ("accepted", "runaway costs")
    assert command["targets"] == [MEMBERS[2]]
