"""When the database behind the server fails, every route says so: 503 with a JSON body
(not a 500, not a dropped connection), the server keeps answering, and its log has the
traceback."""

from __future__ import annotations

import json

import pytest
from api_server import ApiServer
from fleet_state import drop_database

pytestmark = pytest.mark.processes


async def test_a_database_that_fails_is_a_503_on_every_route(
    api_on_postgres: ApiServer, postgres_url: str
) -> None:
    await drop_database(postgres_url)
    async with api_on_postgres.authorized() as client:
        status = await client.get("/v1/status")
        metrics = await client.get("/metrics")
        shutdown = await client.post("/v1/shutdown", json={"reason": "leave"})
        diagnostics = await client.get("/v1/diagnostics")

    for response in (status, metrics, shutdown):
        assert response.status_code == 503, response.request.url
        body = response.json()
        assert body["error"] == "database_unavailable"
        assert body["message"].startswith("the database is unavailable: ")
        assert "does not exist" in body["message"]
    # Diagnostics report the failure instead of failing.
    assert diagnostics.status_code == 200
    assert diagnostics.json()["database"]["reachable"] is False
    assert api_on_postgres.stop() == 0
    logged = [json.loads(line) for line in api_on_postgres.stderr.splitlines()]
    failures = [line for line in logged if line["event"] == "api_database_unavailable"]
    assert len(failures) == 3
    assert all(line["exception"].startswith("Traceback") for line in failures)
