"""Every process a test starts ends with the test, however the run ends.

A real pytest session, loading this suite's own conftest, runs a tiny test that starts a
``coordinator serve`` and a ``coordinator run`` with the suite's helpers and then waits;
this test stops that session mid-test, as CI stops a run that overstays (SIGTERM), or as
the kernel's OOM killer does (SIGKILL, where no Python code runs any more), and then
checks by pid that neither child is left.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import anyio
import child_processes
import pytest

pytestmark = pytest.mark.processes

TESTS = Path(__file__).resolve().parents[1]
START_DEADLINE = 120.0  # seconds for the inner session to start its children
END_DEADLINE = 60.0  # seconds for the session and its children to be gone once signalled

INNER_TEST = """
import os
from pathlib import Path

import anyio
from api_server import server_env, start_api
from fleet import Fleet, coordinator_env

from persistence import Store


async def test_serves_until_stopped(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'fleet.db'}"
    await (await Store.open(url)).close()  # serve opens only an existing fleet's database
    server = await start_api(tmp_path / "api", server_env(url))
    # No fixture stops this one: the suite's own machinery has to.
    occurrence = Fleet(tmp_path, coordinator_env(url, AGENT_OCCURRENCE_COUNT="1")).start("o-1")
    Path(os.environ["CHILD_PIDS"]).write_text(f"{server.process.pid} {occurrence.pid}")
    await anyio.sleep(3600)  # the signal lands here
"""


def gone(pid: int) -> bool:
    """No such process, or only its zombie (dead, waiting for a parent to reap it)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return True
    return stat.rsplit(")", 1)[1].split()[0] == "Z"


@pytest.mark.parametrize("stop", [signal.SIGTERM, signal.SIGKILL], ids=lambda s: s.name)
async def test_a_stopped_test_run_leaves_no_child_running(
    tmp_path: Path, stop: signal.Signals
) -> None:
    (tmp_path / "test_inner.py").write_text(INNER_TEST)
    pids_file = tmp_path / "child-pids"
    env = {k: v for k, v in os.environ.items() if not k.startswith("COORDINATOR_")}
    env["CHILD_PIDS"] = str(pids_file)
    env["PYTHONPATH"] = os.pathsep.join(str(TESTS / d) for d in ("", "api", "processes"))
    session = child_processes.popen(
        [
            sys.executable,
            "-m",
            "pytest",
            "-p",
            "conftest",  # this suite's top-level conftest, as a plugin
            "-p",
            "no:cacheprovider",
            "-o",
            "asyncio_mode=auto",
            "-o",
            "asyncio_default_fixture_loop_scope=function",
            "-q",
            "test_inner.py",
        ],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    children: list[int] = []
    try:
        with anyio.fail_after(START_DEADLINE):
            while not pids_file.exists() or len(pids_file.read_text().split()) < 2:
                assert session.poll() is None, session.communicate()[0].decode()
                await anyio.sleep(0.1)
        children = [int(pid) for pid in pids_file.read_text().split()]
        assert not any(gone(pid) for pid in children)

        session.send_signal(stop)
        with anyio.move_on_after(END_DEADLINE):
            while session.poll() is None or not all(gone(pid) for pid in children):
                await anyio.sleep(0.1)
        assert session.poll() is not None, f"pytest ignored {stop.name}"
        output = session.communicate()[0].decode(errors="replace")
        left = [pid for pid in children if not gone(pid)]
        assert left == [], (
            f"children {children} of the stopped session, {left} still running:\n{output}"
        )
        if stop is signal.SIGTERM:
            # Stopped like Ctrl-C: the test interrupted, its fixtures torn down.
            assert session.returncode == pytest.ExitCode.INTERRUPTED, output
    finally:
        child_processes.end(session)
        for pid in children:  # even when the check failed: leave nothing behind
            if not gone(pid):
                os.kill(pid, signal.SIGKILL)
