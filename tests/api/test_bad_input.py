"""Hostile input over HTTP, on both backends: text no database can store (lone surrogates,
U+0000), bytes that are not UTF-8, numbers and ids beyond what the tables hold. Each is a
422 in the API's own error shape that names what is wrong, and changes nothing: no command
is recorded, no event written (a refusal the store could record would need the text it
cannot store)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from api_server import ApiServer, Signer
from fleet_state import Seeded, assert_nothing_changed, snapshot

from persistence import Store

pytestmark = pytest.mark.processes

LONE_SURROGATE = "\ud800"
JSON = {"Content-Type": "application/json"}


def raw_json(body: dict[str, Any]) -> bytes:
    """``body`` as JSON text with every non-ASCII character escaped: how a client that
    holds a lone surrogate sends it (``"\\ud800"``), since it has no UTF-8 form."""
    return json.dumps(body, ensure_ascii=True).encode("ascii")


def assert_invalid(response: Any, field: str, says: str, name: str) -> None:
    assert response.status_code == 422, (name, response.status_code, response.text)
    body = response.json()
    assert body["error"] == "invalid_request", name
    assert says in body["message"], (name, body["message"])
    (problem,) = body["details"]["problems"]
    assert (problem["in"], problem["field"]) == ("body", field), (name, problem)


def text_cases(seeded: Seeded, signer: Signer, bad: str) -> list[tuple[str, str, dict[str, Any]]]:
    """(path, field, body) for every text field of every mutating route, holding ``bad``."""
    signed = signer.command().model_dump()
    rollout = f"/v1/rollouts/{seeded.wakeup_id}"
    return [
        ("/v1/shutdown", "reason", {"reason": f"maintenance {bad}"}),
        ("/v1/shutdown", "requested_by", {"reason": "maintenance", "requested_by": f"ops{bad}"}),
        *[(f"{rollout}/{action}", "reason", {"reason": f"why{bad}"}) for action in
          ("pause", "resume", "abort", "retry")],
        ("/v1/emergency-shutdown", "payload", {**signed, "payload": signed["payload"] + bad}),
        ("/v1/emergency-shutdown", "signature", {**signed, "signature": bad}),
        ("/v1/emergency-shutdown", "key_id", {**signed, "key_id": bad}),
    ]  # fmt: skip


async def test_a_lone_surrogate_in_any_text_field_is_a_422_that_changes_nothing(
    api: ApiServer, seeded: Seeded, db: Store, signer: Signer
) -> None:
    before = await snapshot(db)
    async with api.authorized() as client:
        for path, field, body in text_cases(seeded, signer, LONE_SURROGATE):
            response = await client.post(path, content=raw_json(body), headers=JSON)
            assert_invalid(response, field, "lone surrogate", f"{path} {field}")
        # The same as UTF-8-shaped bytes (CESU), which Python's JSON reader would let in.
        cesu = b'{"reason": "maintenance \xed\xa0\x80"}'
        response = await client.post("/v1/shutdown", content=cesu, headers=JSON)
        assert response.status_code == 422
        assert "not UTF-8" in response.json()["message"]
    assert_nothing_changed(before, await snapshot(db), "text with lone surrogates")


async def test_a_nul_character_in_any_text_field_is_a_422_that_changes_nothing(
    api: ApiServer, seeded: Seeded, db: Store, signer: Signer
) -> None:
    # PostgreSQL's text cannot hold U+0000: it was a 503 there, and stored on SQLite.
    before = await snapshot(db)
    async with api.authorized() as client:
        for path, field, body in text_cases(seeded, signer, "\x00"):
            response = await client.post(path, content=raw_json(body), headers=JSON)
            assert_invalid(response, field, "U+0000", f"{path} {field}")
    assert_nothing_changed(before, await snapshot(db), "text with NUL")


async def test_a_surrogate_or_nul_in_an_unknown_field_name_is_a_422(
    api: ApiServer, seeded: Seeded, db: Store
) -> None:
    before = await snapshot(db)
    async with api.authorized() as client:
        for bad in (LONE_SURROGATE, "\x00"):
            body = {"reason": "maintenance", f"force{bad}": True}
            response = await client.post("/v1/shutdown", content=raw_json(body), headers=JSON)
            assert response.status_code == 422, (repr(bad), response.text)
            assert response.json()["error"] == "invalid_request"
    assert_nothing_changed(before, await snapshot(db), "unknown fields with bad names")


async def test_a_body_that_is_not_utf8_is_a_422_that_says_where(
    api: ApiServer, seeded: Seeded, db: Store
) -> None:
    before = await snapshot(db)
    async with api.authorized() as client:
        latin1 = await client.post("/v1/shutdown", content=b'{"reason": "caf\xe9"}', headers=JSON)
        utf16 = await client.post(
            "/v1/shutdown", content='{"reason": "x"}'.encode("utf-16"), headers=JSON
        )
    assert latin1.status_code == 422, latin1.text
    assert latin1.json()["error"] == "invalid_request"
    assert latin1.json()["message"] == (
        "the request body is not UTF-8 text: byte 0xe9 at offset 15 is invalid"
    )
    assert utf16.status_code == 422, utf16.text
    assert "not UTF-8" in utf16.json()["message"]
    assert_nothing_changed(before, await snapshot(db), "bodies that are not UTF-8")


@pytest.mark.parametrize("after_id", [2**31, 2**63 - 1, 2**63, 2**64 + 1, 10**30])
async def test_an_after_id_beyond_the_event_ids_is_a_422(api: ApiServer, after_id: int) -> None:
    async with api.client() as client:
        response = await client.get("/v1/events", params={"after_id": after_id})
    assert response.status_code == 422, response.text
    body = response.json()
    assert body["error"] == "invalid_request"
    (problem,) = body["details"]["problems"]
    assert (problem["in"], problem["field"]) == ("query", "after_id")
    assert "2147483647" in problem["problem"]


async def test_the_largest_after_id_reads_an_empty_page(api: ApiServer) -> None:
    async with api.client() as client:
        response = await client.get("/v1/events", params={"after_id": 2**31 - 1})
    assert response.status_code == 200, response.text
    assert response.json() == {"events": [], "next_after_id": 2**31 - 1}


async def test_ids_that_no_record_can_have_are_a_422_that_changes_nothing(
    api: ApiServer, seeded: Seeded, db: Store
) -> None:
    before = await snapshot(db)
    async with api.authorized() as client:
        answers = {
            "rollout": await client.get("/v1/rollouts/wakeup_%00"),
            "command": await client.get("/v1/commands/x%00y"),
            "events of": await client.get("/v1/events", params={"rollout_id": "a\x00"}),
            "events kind": await client.get("/v1/events", params={"kind": "a\x00"}),
            "control": await client.post("/v1/rollouts/x%00/pause", json={"reason": "why"}),
        }
    for name, response in answers.items():
        assert response.status_code == 422, (name, response.text)
        assert response.json()["error"] == "invalid_request", name
    assert_nothing_changed(before, await snapshot(db), "ids no record can have")
