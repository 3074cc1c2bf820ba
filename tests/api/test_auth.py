"""Every mutating route refuses a client without the right bearer token, before it reads
the body, and the refusal changes nothing at all (not even a recorded command)."""

from __future__ import annotations

from pathlib import Path

import pytest
from api_server import TOKEN, ApiServer, Signer, start_api
from fleet_state import Seeded, assert_nothing_changed, snapshot

from persistence import Store

pytestmark = pytest.mark.processes

CREDENTIALS = {
    "no token": {},
    "wrong token": {"Authorization": "Bearer not-the-token-0123456789"},
    "token with a suffix": {"Authorization": f"Bearer {TOKEN}x"},
    "token prefix": {"Authorization": f"Bearer {TOKEN[:-1]}"},
    "other scheme": {"Authorization": f"Basic {TOKEN}"},
    "scheme only": {"Authorization": "Bearer"},
}


def mutating_requests(seeded: Seeded, signer: Signer) -> list[tuple[str, str, object]]:
    """One valid request per mutating route: only the token is missing."""
    return [
        ("POST", "/v1/shutdown", {"reason": "maintenance"}),
        ("POST", f"/v1/rollouts/{seeded.wakeup_id}/pause", {"reason": "look first"}),
        ("POST", f"/v1/rollouts/{seeded.wakeup_id}/abort", {"reason": "bad build"}),
        ("POST", "/v1/emergency-shutdown", signer.command().model_dump()),
    ]


async def test_without_the_right_token_every_mutating_route_answers_401_and_changes_nothing(
    api: ApiServer, seeded: Seeded, signer: Signer, db: Store
) -> None:
    before = await snapshot(db)
    for method, path, body in mutating_requests(seeded, signer):
        for name, headers in CREDENTIALS.items():
            async with api.client(**headers) as client:
                response = await client.request(method, path, json=body)
            what = f"{method} {path} with {name}"
            assert response.status_code == 401, what
            expected = "missing_token" if name == "no token" else "invalid_token"
            assert response.json()["error"] == expected, what
            assert "COORDINATOR_API_TOKEN" in response.json()["message"], what
            assert response.headers["www-authenticate"] == "Bearer", what
    assert_nothing_changed(before, await snapshot(db), "unauthenticated commands")


async def test_the_token_is_checked_before_the_body_is_read(api: ApiServer, db: Store) -> None:
    before = await snapshot(db)
    async with api.client() as client:
        broken_json = await client.post(
            "/v1/shutdown", content=b"{not json", headers={"Content-Type": "application/json"}
        )
        huge = await client.post("/v1/emergency-shutdown", json={"payload": "x" * 100_000})

    # Without the token a client learns nothing about what a valid body looks like.
    assert (broken_json.status_code, broken_json.json()["error"]) == (401, "missing_token")
    assert (huge.status_code, huge.json()["error"]) == (401, "missing_token")
    assert_nothing_changed(before, await snapshot(db), "unauthenticated malformed bodies")


async def test_the_token_check_route_answers_without_changing_anything(
    api: ApiServer, db: Store
) -> None:
    before = await snapshot(db)
    async with api.authorized() as client:
        good = await client.get("/v1/auth")
    async with api.client("wrong-token-0123456789") as client:
        bad = await client.get("/v1/auth")

    assert good.json() == {"authenticated": True, "read_only": False}
    assert (bad.status_code, bad.json()["error"]) == (401, "invalid_token")
    assert_nothing_changed(before, await snapshot(db), "token checks")


async def test_a_read_only_server_refuses_every_mutating_route_with_403(
    seeded: Seeded, signer: Signer, api_env: dict[str, str], tmp_path: Path, db: Store
) -> None:
    server = await start_api(tmp_path / "read-only", api_env, "--read-only")
    try:
        before = await snapshot(db)
        async with server.authorized() as client:
            for method, path, body in mutating_requests(seeded, signer):
                response = await client.request(method, path, json=body)
                assert response.status_code == 403, path
                assert response.json()["error"] == "read_only", path
            auth = await client.get("/v1/auth")
            status = await client.get("/v1/status")
            diagnostics = (await client.get("/v1/diagnostics")).json()
        assert_nothing_changed(before, await snapshot(db), "commands to a read-only server")
        assert (auth.status_code, auth.json()["error"]) == (403, "read_only")
        assert status.status_code == 200  # reads still work
        assert diagnostics["api"]["read_only"] is True
    finally:
        assert server.stop() == 0


async def test_a_read_only_server_starts_without_any_token(
    seeded: Seeded, api_env: dict[str, str], tmp_path: Path
) -> None:
    server = await start_api(tmp_path / "no-token", api_env, "--read-only", token=None)
    try:
        async with server.client("anything-at-all-0123") as client:
            response = await client.post("/v1/shutdown", json={"reason": "x"})
            diagnostics = (await client.get("/v1/diagnostics")).json()
        assert (response.status_code, response.json()["error"]) == (403, "read_only")
        assert diagnostics["api"] == {"read_only": True, "token_configured": False}
        assert diagnostics["settings"]["api_token"] is None
    finally:
        assert server.stop() == 0
