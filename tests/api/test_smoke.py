"""``smoke`` against a real server: it passes on a healthy one, names every problem on a
broken one, and never changes the fleet."""

from __future__ import annotations

import json
import socket
from pathlib import Path

import pytest
from api_server import TOKEN, ApiServer, smoke, start_api
from fleet_state import Seeded, assert_nothing_changed, drop_database, snapshot

from persistence import Store

pytestmark = pytest.mark.processes


async def test_smoke_passes_against_a_healthy_server_and_changes_nothing(
    api: ApiServer, db: Store
) -> None:
    before = await snapshot(db)

    result = smoke(
        "--base-url", api.base_url, "--token", TOKEN,
        "--expect-backend", db.backend, "--min-alive", "3",
    )  # fmt: skip
    as_json = smoke("--base-url", api.base_url, "--json", env={"COORDINATOR_API_TOKEN": TOKEN})

    assert result.returncode == 0, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    for check in ("status", "diagnostics", "metrics", "openapi", "token"):
        assert any(line.startswith(f"ok    {check}") for line in lines), (check, lines)
    assert "3 occurrence(s), 3 alive (3 work)" in result.stdout
    assert f"database {db.backend}" in result.stdout
    assert lines[-1] == f"smoke check passed: 5 checks against {api.base_url}"
    report = json.loads(as_json.stdout)
    assert as_json.returncode == 0
    assert report["ok"] is True
    assert [c["check"] for c in report["checks"]][-1] == "token"  # the token came from env
    assert_nothing_changed(before, await snapshot(db), "smoke checks")


async def test_smoke_names_everything_that_is_off(api: ApiServer, db: Store) -> None:
    other = "postgresql" if db.backend == "sqlite" else "sqlite"

    result = smoke(
        "--base-url", api.base_url, "--token", "not-the-token-0123456789",
        "--expect-backend", other, "--min-alive", "4",
    )  # fmt: skip

    assert result.returncode == 1
    out = result.stdout
    assert "FAIL  status       3 occurrence(s) alive, expected at least 4" in out
    assert f"FAIL  diagnostics  the backend is {db.backend}, expected {other}" in out
    assert "FAIL  token" in out and "the token is rejected (401)" in out
    assert "ok    metrics" in out
    assert "smoke check FAILED: 3 of 5 checks (status, diagnostics, token)" in out


async def test_smoke_fails_on_a_read_only_server_when_given_a_token(
    seeded: Seeded, api_env: dict[str, str], tmp_path: Path
) -> None:
    server = await start_api(tmp_path / "api", api_env, "--read-only")
    try:
        with_token = smoke("--base-url", server.base_url, "--token", TOKEN)
        without = smoke("--base-url", server.base_url)
    finally:
        assert server.stop() == 0

    assert with_token.returncode == 1
    assert "the server is read-only (403)" in with_token.stdout
    assert without.returncode == 0  # reads are all a read-only server promises


def test_smoke_fails_when_nothing_answers_and_refuses_a_bad_url() -> None:
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]

    nothing = smoke("--base-url", f"http://127.0.0.1:{port}")
    bad_url = smoke("--base-url", "127.0.0.1:8077")

    assert nothing.returncode == 1
    assert f"cannot connect to http://127.0.0.1:{port}" in nothing.stdout
    assert "the control API does not answer" in nothing.stdout
    assert bad_url.returncode == 2
    assert "--base-url must start with http://" in bad_url.stderr


async def test_smoke_fails_when_the_database_behind_the_server_is_gone(
    api_on_postgres: ApiServer, postgres_url: str
) -> None:
    assert smoke("--base-url", api_on_postgres.base_url).returncode == 0
    await drop_database(postgres_url)

    result = smoke("--base-url", api_on_postgres.base_url)

    assert result.returncode == 1
    assert "FAIL  status       GET /v1/status answered 503" in result.stdout
    assert "FAIL  diagnostics  the database does not answer" in result.stdout
    assert "FAIL  metrics" in result.stdout
