"""The Host guard over real HTTP: a request naming a host the server does not know (what
a browser sends after DNS rebinding) is refused in the API's one error shape, before any
route runs; IP addresses, localhost and the configured names are answered."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from api_server import ApiServer, Signer, start_api
from fleet_state import Seeded, assert_nothing_changed, snapshot

from persistence import Store

pytestmark = pytest.mark.processes

REBOUND = "attacker.example"  # the name a rebinding page was loaded from
ALLOWED = "fleet-api.internal"


@pytest.fixture
async def named_api(
    seeded: Seeded, api_env: dict[str, str], tmp_path: Path
) -> AsyncIterator[ApiServer]:
    """``serve`` that also answers to ``ALLOWED`` (``COORDINATOR_API_ALLOWED_HOSTS``)."""
    env = {**api_env, "COORDINATOR_API_ALLOWED_HOSTS": f"other.internal, {ALLOWED.upper()}"}
    server = await start_api(tmp_path / "named-api", env)
    try:
        yield server
    finally:
        assert server.stop() == 0, server.stderr


async def test_a_request_for_an_unknown_host_is_refused_and_changes_nothing(
    named_api: ApiServer, signer: Signer, db: Store
) -> None:
    port = urlsplit(named_api.base_url).port
    before = await snapshot(db)
    async with named_api.authorized() as client:
        for host in (REBOUND, f"{REBOUND}:{port}", f"{ALLOWED}.{REBOUND}", "localhost.evil"):
            headers = {"Host": host}
            read = await client.get("/v1/status", headers=headers)
            stop = await client.post(
                "/v1/emergency-shutdown", json=signer.command().model_dump(), headers=headers
            )
            for response in (read, stop):
                assert response.status_code == 400, (host, response.text)
                body = response.json()
                assert body["error"] == "host_not_allowed", host
                assert repr(host) in body["message"]
                assert "COORDINATOR_API_ALLOWED_HOSTS" in body["message"]
    assert_nothing_changed(before, await snapshot(db), "requests for an unknown host")
    assert "api_host_refused" in named_api.stdout + named_api.stderr


async def test_ip_addresses_localhost_and_the_configured_names_are_answered(
    named_api: ApiServer,
) -> None:
    port = urlsplit(named_api.base_url).port
    hosts = [
        f"127.0.0.1:{port}",
        f"[::1]:{port}",
        "10.1.2.3",
        f"localhost:{port}",
        "LOCALHOST",
        f"{ALLOWED}:{port}",
        f"{ALLOWED}.",  # the same name, fully qualified
        "other.internal",
    ]
    async with named_api.client() as client:
        for host in hosts:
            response = await client.get("/v1/status", headers={"Host": host})
            assert response.status_code == 200, (host, response.text)
            assert response.json()["fleet_id"] == "default"  # the fleet's identity
