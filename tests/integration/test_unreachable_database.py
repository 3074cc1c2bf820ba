"""A database that cannot be opened is one clear error, never a traceback: the Store
raises ``DatabaseUnavailable`` naming the URL with its password hidden, and every
operator command says so in one line and exits 2."""

from __future__ import annotations

import socket
import threading
from pathlib import Path

import anyio
import pytest

from coordinator.cli import main
from persistence import Store
from schemas import DatabaseUnavailable

PASSWORD = "hunter2-secret"


@pytest.fixture
def refused_url() -> str:
    """A PostgreSQL URL whose port nobody listens on: the connection is refused at once."""
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    return f"postgresql+asyncpg://fleet:{PASSWORD}@127.0.0.1:{port}/fleet"


async def test_a_refused_connection_is_database_unavailable(refused_url: str) -> None:
    with pytest.raises(DatabaseUnavailable) as caught:
        await Store.open(refused_url)

    message = str(caught.value)
    assert message.startswith("cannot open the database postgresql+asyncpg://fleet:***@127.0.0.1:")
    assert "Connect call failed" in message
    assert PASSWORD not in message


async def test_a_sqlite_file_in_a_missing_directory_is_database_unavailable(
    tmp_path: Path,
) -> None:
    missing = tmp_path / "no" / "such" / "dir"
    before = set(threading.enumerate())
    with pytest.raises(DatabaseUnavailable, match="unable to open database file"):
        await Store.open(f"sqlite+aiosqlite:///{missing}/fleet.db")
    assert not missing.exists()
    # aiosqlite stops a connection that failed to open without waiting for it: its worker
    # thread still has to hand this loop the result of its stop. Closed under it, as at
    # the end of the test, the thread raises "Event loop is closed" (on a busy machine,
    # where it runs late, past the second Store.open waits for it). Let it finish first. Only
    # aiosqlite's threads: anyio's idle worker thread, started by Store.open to wait for
    # them, lives until the event loop ends.
    started = [
        t
        for t in threading.enumerate()
        if t not in before and "_connection_worker_thread" in t.name
    ]
    with anyio.fail_after(60):
        while any(t.is_alive() for t in started):
            await anyio.sleep(0.01)


@pytest.mark.parametrize(
    "command",
    [
        ["status"],
        ["shutdown", "--reason", "maintenance"],
        ["events"],
        ["rollout", "pause", "wakeup_000000000000", "--reason", "look"],
    ],
    ids=lambda command: command[0],
)
def test_commands_report_an_unreachable_database_in_one_line(
    refused_url: str, command: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    code = main([*command, "--db", refused_url])

    out, err = capsys.readouterr()
    assert code == 2
    assert out == ""
    assert err.count("\n") == 1, err
    assert err.startswith(f"coordinator {command[0]}")
    assert ": cannot open the database postgresql+asyncpg://fleet:***@127.0.0.1:" in err
    assert PASSWORD not in err
