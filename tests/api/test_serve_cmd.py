"""``serve`` as an operator starts it: what it refuses to start with, how it stops, and
that no secret reaches its output."""

from __future__ import annotations

import signal
import socket
import subprocess
from pathlib import Path

import child_processes
import pytest
from api_server import TOKEN, Signer, serve_command, server_env, start_api
from fleet_state import Seeded
from sqlalchemy import make_url

pytestmark = pytest.mark.processes

START_TIMEOUT = 60  # seconds for a refusing `serve` to exit


def serve(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return child_processes.run(
        serve_command("--host", "127.0.0.1", "--port", "0", *args),
        env=env,
        capture_output=True,
        text=True,
        timeout=START_TIMEOUT,
    )


@pytest.mark.parametrize(
    ("token", "says"),
    [
        (None, "COORDINATOR_API_TOKEN is not set"),
        ("", "COORDINATOR_API_TOKEN is not set"),
        ("   ", "COORDINATOR_API_TOKEN is not set"),
        ("short-token", "at least 16 are required"),
    ],
)
def test_serve_refuses_to_start_without_a_usable_token(
    tmp_path: Path, token: str | None, says: str
) -> None:
    db = tmp_path / "fleet.db"
    env = server_env(f"sqlite+aiosqlite:///{db}")
    if token is not None:
        env["COORDINATOR_API_TOKEN"] = token

    result = serve(env)

    assert result.returncode == 2
    assert says in result.stderr
    assert "--read-only" in result.stderr or "guessed" in result.stderr
    assert not db.exists()  # refused before touching anything
    if token and token.strip():
        assert token not in result.stderr


def test_serve_refuses_a_missing_database_a_bad_key_and_a_taken_port(
    seeded: Seeded, database_url: str, tmp_path: Path
) -> None:
    missing = tmp_path / "typo.db"
    result = serve(server_env(f"sqlite+aiosqlite:///{missing}", COORDINATOR_API_TOKEN=TOKEN))
    assert (result.returncode, "no coordinator database" in result.stderr) == (2, True)
    assert not missing.exists()

    env = server_env(database_url, COORDINATOR_API_TOKEN=TOKEN)
    bad_key = serve({**env, "COORDINATOR_TRUSTED_KEYS": str(tmp_path / "nowhere.pub")})
    assert bad_key.returncode == 2
    assert "COORDINATOR_TRUSTED_KEYS" in bad_key.stderr

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        busy = child_processes.run(
            [*serve_command("--host", "127.0.0.1", "--port", str(port))],
            env=env,
            capture_output=True,
            text=True,
            timeout=START_TIMEOUT,
        )
    assert busy.returncode == 2
    assert f"cannot listen on 127.0.0.1:{port}" in busy.stderr


def test_serve_refuses_an_unreachable_database_without_showing_its_password(
    tmp_path: Path,
) -> None:
    with socket.socket() as closed:  # a port nobody listens on
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    url = f"postgresql+asyncpg://fleet:hunter2-secret@127.0.0.1:{port}/fleet"

    result = serve(server_env(url, COORDINATOR_API_TOKEN=TOKEN))

    assert result.returncode == 2
    assert "cannot open the database postgresql+asyncpg://fleet:***@" in result.stderr
    assert "hunter2" not in result.stderr + result.stdout


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
async def test_serve_stops_cleanly_on_a_stop_signal(
    seeded: Seeded, api_env: dict[str, str], tmp_path: Path, sig: signal.Signals
) -> None:
    server = await start_api(tmp_path / "api", api_env)

    assert server.stop(sig) == 0
    assert '"event": "api_stopped"' in server.stderr
    assert server.base_url.startswith("http://127.0.0.1:")


async def test_diagnostics_and_logs_never_show_the_database_password_or_the_token(
    postgres_url: str, signer: Signer, tmp_path: Path
) -> None:
    with_password = make_url(postgres_url).set(password="hunter2-secret")
    url = with_password.render_as_string(hide_password=False)
    env = server_env(url, COORDINATOR_TRUSTED_KEYS=signer.public_text)
    # The server creates the tables itself: trust authentication ignores the password.
    server = await start_api(tmp_path / "api", env)
    try:
        async with server.authorized() as client:
            diagnostics = await client.get("/v1/diagnostics")
            await client.get("/metrics")
            await client.post("/v1/shutdown", json={"reason": "leave"})
    finally:
        assert server.stop() == 0

    found = diagnostics.json()
    assert found["database"]["url"].startswith("postgresql+asyncpg://postgres:***@")
    assert found["settings"]["database_url"] == found["database"]["url"]
    everything = diagnostics.text + server.stdout + server.stderr
    assert "hunter2" not in everything
    assert TOKEN not in everything
    assert signer.public_text not in everything
