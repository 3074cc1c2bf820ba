"""The command line refuses bad input at start, in one line that names the flag, with
exit 2 and nothing changed; reads need no write access; refusals exit non-zero; what it
prints on a terminal cannot act on the terminal."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import anyio
import child_processes
import pytest
from fleet import Fleet, coordinator, coordinator_env, wait_members, wait_rollout

from coordinator.signing import generate_key_pair
from persistence import Store
from schemas import LifecycleKind, OccurrenceState, RolloutStatus

pytestmark = pytest.mark.processes

BAD_BYTE = os.fsdecode(b"\xff")  # how Python hands an argv byte that is not UTF-8 over
HOSTILE = "evil\x1b]0;pwned\x07\x1b[2J\x00\u202etxt.exe\r"


@pytest.fixture
def fleet_db(tmp_path: Path) -> str:
    """A coordinator database that exists (so a refusal cannot come from a missing file)."""

    async def create() -> None:
        store = await Store.open(url)
        await store.close()

    url = f"sqlite+aiosqlite:///{tmp_path / 'fleet.db'}"
    anyio.run(create)
    return url


@pytest.fixture
def private_key(tmp_path: Path) -> str:
    private, _ = generate_key_pair()
    path = tmp_path / "operator"
    path.write_bytes(private)
    return str(path)


async def _event_count(url: str) -> int:
    store = await Store.open(url)
    try:
        return len(await store.events())
    finally:
        await store.close()


BAD_INPUT = [
    (["shutdown", "--reason", f"bad{BAD_BYTE}"], "--reason"),
    (["shutdown", "--reason", "x", "--wait", "--timeout", "nan"], "--timeout"),
    (["shutdown", "--reason", "x", "--wait", "--timeout", "-5"], "--timeout"),
    (["rollout", "retry", "wakeup_1", "--reason", "x", "--by", BAD_BYTE], "--by"),
    (["rollout", "abort", "wakeup_1", "--reason", f"bad{BAD_BYTE}"], "--reason"),
    (["emergency-shutdown", "--reason", "x", "--key", "KEY", "--by", BAD_BYTE], "--by"),
    (["emergency-shutdown", "--reason", f"{BAD_BYTE}", "--key", "KEY"], "--reason"),
    (
        ["emergency-shutdown", "--reason", "x", "--key", "KEY", "--wait", "--timeout", "nan"],
        "--timeout",
    ),
    (["emergency-shutdown", "--reason", "x", "--key", "/dev/zero"], "--key"),
    (["run", "--lease-ttl", "1e308"], "COORDINATOR_LEASE_TTL"),
    (["run", "--poll-interval", "1e-300"], "COORDINATOR_POLL_INTERVAL"),
    (["run", "--health-timeout", "inf"], "COORDINATOR_HEALTH_TIMEOUT"),
    (["simulate", "--time-scale", "1e308", "--occurrences", "2"], "--time-scale"),
    (["simulate", "--time-scale", "nan", "--occurrences", "2"], "--time-scale"),
    (["events", "--rollout", BAD_BYTE], "--rollout"),
    (["smoke", "--base-url", "http://127.0.0.1:9", "--timeout", "nan"], "--timeout"),
]


@pytest.mark.parametrize(("args", "named"), BAD_INPUT, ids=[f"{a[0]} {n}" for a, n in BAD_INPUT])
def test_bad_input_is_refused_at_start_in_one_line(
    fleet_db: str, private_key: str, args: list[str], named: str
) -> None:
    before = anyio.run(_event_count, fleet_db)
    args = [private_key if a == "KEY" else a for a in args]
    result = coordinator(*args, env=coordinator_env(fleet_db), timeout=60)
    assert result.returncode == 2, result.stdout + result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert named in lines[0]
    assert "Traceback" not in result.stderr
    assert anyio.run(_event_count, fleet_db) == before  # nothing recorded


def test_simulate_says_in_one_line_that_it_cannot_open_its_database(tmp_path: Path) -> None:
    missing = tmp_path / "no" / "such" / "dir" / "f.db"
    result = coordinator(
        "simulate", "--occurrences", "2", "--db", f"sqlite:///{missing}", env=coordinator_env("")
    )
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        f"coordinator simulate: cannot open the database sqlite+aiosqlite:///{missing}: "
        "unable to open database file"
    ]
    assert result.stdout == ""


def test_events_escapes_stored_control_characters_but_json_keeps_them(fleet_db: str) -> None:
    async def request() -> None:
        store = await Store.open(fleet_db)
        try:
            await store.submit_shutdown(HOSTILE, requested_by=f"op{HOSTILE}")
        finally:
            await store.close()

    anyio.run(request)
    env = coordinator_env(fleet_db)
    text = coordinator("events", env=env)
    assert text.returncode == 0, text.stderr
    for raw in ("\x1b", "\x00", "\x07", "\u202e", "\r"):
        assert raw not in text.stdout
    assert "evil\\x1b]0;pwned\\x07\\x1b[2J\\x00\\u202etxt.exe\\x0d" in text.stdout
    assert len(text.stdout.strip().splitlines()) == 1  # one event, one line

    as_json = coordinator("events", "--json", env=env)
    reasons = [json.loads(line)["details"].get("reason") for line in as_json.stdout.splitlines()]
    assert HOSTILE in reasons

    status = coordinator("status", env=env)
    assert status.returncode == 0 and "\x1b" not in status.stdout


def test_a_refused_shutdown_exits_1_and_says_why(fleet_db: str) -> None:
    env = coordinator_env(fleet_db)
    first = coordinator("shutdown", "--reason", "maintenance", env=env)
    assert first.returncode == 0, first.stderr
    again = coordinator("shutdown", "--reason", "maintenance again", env=env)
    assert again.returncode == 1
    assert "refused: a shutdown request is already open" in again.stderr
    assert again.stdout == ""
    followed = coordinator("shutdown", "--reason", "and wait", "--wait", "--timeout", "1", env=env)
    assert followed.returncode == 1 and "refused" in followed.stderr


# --- reading a fleet without write access --------------------------------------------------

DROP_WRITE_ACCESS = [
    # As nobody, where nobody can run this interpreter (a system Python, a shared venv).
    ["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups"],
    # Else as root without the capabilities that override file permissions: for files
    # it does not own, root is then an ordinary user.
    ["setpriv", "--inh-caps=-all", "--bounding-set=-dac_override,-dac_read_search,-fowner"],
]


def _unprivileged_prefix() -> list[str]:
    """A command prefix that runs a process without write access to files owned by
    ``nobody`` with mode 444, or skip saying why none works here."""
    if shutil.which("setpriv") is None:
        pytest.skip("needs setpriv (util-linux) to run the CLI without write access")
    probe = Path(tempfile.mkdtemp(prefix="coordinator-ro-probe-"))
    try:
        (probe / "f").write_text("")
        os.chmod(probe / "f", 0o444)
        os.chmod(probe, 0o555)
        if os.geteuid() == 0:
            os.chown(probe / "f", 65534, 65534)
            os.chown(probe, 65534, 65534)
        for prefix in DROP_WRITE_ACCESS:
            check = "import sys; open(sys.argv[1], 'a')"
            tried = subprocess.run(
                [*prefix, sys.executable, "-c", check, str(probe / "f")],
                capture_output=True,
                text=True,
            )
            if "PermissionError" in tried.stderr:
                return prefix
    finally:
        os.chmod(probe, 0o755)
        shutil.rmtree(probe, ignore_errors=True)
    pytest.skip("cannot run a process without write access here (setpriv refused)")


@pytest.fixture
def read_only_fleet_db(fleet_db: str) -> Iterator[str]:
    """The fleet's database, with a shutdown request in it, alone in a directory nobody
    may write to (owned by ``nobody``, mode 555; the file 444)."""

    async def request() -> None:
        store = await Store.open(fleet_db)
        try:
            await store.submit_shutdown("read me", requested_by="test")
        finally:
            await store.close()

    anyio.run(request)
    folder = Path(tempfile.mkdtemp(prefix="coordinator-ro-"))  # /tmp: reachable by nobody
    source = Path(fleet_db.removeprefix("sqlite+aiosqlite:///"))
    shutil.copy(source, folder / "fleet.db")
    os.chmod(folder / "fleet.db", 0o444)
    os.chmod(folder, 0o555)
    if os.geteuid() == 0:
        for path in (folder / "fleet.db", folder):
            os.chown(path, 65534, 65534)
    try:
        yield f"sqlite+aiosqlite:///{folder / 'fleet.db'}"
    finally:
        os.chmod(folder, 0o755)
        shutil.rmtree(folder, ignore_errors=True)


def test_status_and_events_need_no_write_access(read_only_fleet_db: str) -> None:
    prefix = _unprivileged_prefix()
    folder = Path(read_only_fleet_db.removeprefix("sqlite+aiosqlite:///")).parent
    env = coordinator_env(read_only_fleet_db, HOME=str(folder))
    for args in (["status"], ["status", "--json"], ["events"]):
        result = subprocess.run(
            [*prefix, sys.executable, "-m", "coordinator", *args],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
            cwd=folder,
        )
        assert result.returncode == 0, result.stderr
        assert "readonly" not in result.stderr
    assert "read me" in result.stdout  # the events were read
    assert sorted(p.name for p in folder.iterdir()) == ["fleet.db"]  # nothing written beside


# --- retry after a failed gate --------------------------------------------------------------

OCCURRENCES = ("occurrence-1", "occurrence-2", "occurrence-3")


@pytest.fixture
def fleet(tmp_path: Path, fleet_db: str) -> Iterator[Fleet]:
    running = Fleet(
        tmp_path,
        coordinator_env(fleet_db, AGENT_OCCURRENCE_COUNT="3", COORDINATOR_EXPLORER_SOAK="4"),
    )
    try:
        yield running
    finally:
        running.stop_all()


async def test_retry_warns_while_the_failed_member_is_not_back(fleet: Fleet, fleet_db: str) -> None:
    store = await Store.open(fleet_db)
    try:
        for occurrence_id in OCCURRENCES:
            fleet.start(occurrence_id)
        with anyio.fail_after(60):
            while not (found := await store.rollouts(kind=LifecycleKind.WAKEUP)):
                await anyio.sleep(0.05)
        rollout_id = found[0].rollout_id
        (explorer,) = found[0].waves[0].members
        fleet.processes[explorer].send_signal(signal.SIGTERM)  # gone during its soak
        assert await fleet.wait_exits_of([explorer], deadline=30) == {explorer: 0}
        aborted = await wait_rollout(store, LifecycleKind.WAKEUP, deadline=60)
        assert aborted.status is RolloutStatus.ABORTED

        retried = coordinator("rollout", "retry", rollout_id, "--reason", "too soon", env=fleet.env)
        assert retried.returncode == 0, retried.stderr
        assert "retry applied" in retried.stdout
        assert f"not in 'work' yet: {explorer} (gone)" in retried.stderr
        assert "restart" in retried.stderr

        # Restarted, the explorer serves again; a retry then says only what it does.
        again = await wait_rollout(store, LifecycleKind.WAKEUP, deadline=60)
        assert again.status is RolloutStatus.ABORTED  # the warning was right
        fleet.start(explorer)
        await wait_members(
            store,
            lambda ms: any(
                m.occurrence_id == explorer
                and m.state is OccurrenceState.WORK
                and m.stopped_at is None
                for m in ms
            ),
            deadline=60,
            what="the restarted explorer serving",
        )
        fixed = coordinator("rollout", "retry", rollout_id, "--reason", "restarted", env=fleet.env)
        assert fixed.returncode == 0, fixed.stderr
        assert "warning" not in fixed.stderr and "checked again now" in fixed.stderr
    finally:
        await store.close()


# --- --version and examples -----------------------------------------------------------------


def test_version_is_the_installed_distributions() -> None:
    from importlib.metadata import version

    import coordinator as package

    result = coordinator("--version", env=coordinator_env(""))
    assert result.returncode == 0
    # Written once (coordinator.__version__), read by the packaging metadata too.
    assert version("coordinator") == package.__version__
    assert result.stdout.strip() == f"python -m coordinator {package.__version__}"


COMMANDS = [
    [],
    ["simulate"],
    ["run"],
    ["status"],
    ["shutdown"],
    ["rollout"],
    ["rollout", "retry"],
    ["events"],
    ["emergency-shutdown"],
    ["keys", "generate"],
    ["serve"],
    ["smoke"],
]


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: " ".join(c) or "top")
def test_every_help_ends_with_examples(command: list[str]) -> None:
    result = coordinator(*command, "--help", env=coordinator_env(""))
    assert result.returncode == 0
    examples = result.stdout.split("\nexamples:\n", 1)[1].splitlines()
    assert examples and all(line.startswith("  ") for line in examples)
    assert any("python -m coordinator" in line for line in examples)


def test_simulating_one_occurrence_says_one_occurrence(tmp_path: Path) -> None:
    env = coordinator_env(
        "",
        COORDINATOR_EXPLORER_SOAK="1",
        COORDINATOR_EARLY_ADOPTER_SOAK="1",
        COORDINATOR_HEALTH_POLL="0.5",
    )
    result = coordinator(
        "simulate", "--occurrences", "1", "--scenario", "wakeup", "--time-scale", "10", env=env
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("Simulating 1 occurrence, scenario wakeup")
    assert "1 decision call)" in result.stdout
    assert "Wave 1 (explorer) healthy: 1 of 1 reached" in result.stdout
    assert "member(s)" not in result.stdout and "1 member " in result.stdout


@pytest.mark.parametrize("command", [["simulate", "--scenario", "wakeup"], ["events"]])
def test_a_reader_that_goes_away_ends_the_command_quietly(
    command: list[str], fleet_db: str
) -> None:
    """`coordinator events | head -1`: once the reader has gone, the command ends as if
    SIGPIPE had ended it (141), with no traceback. The read end is closed before the
    command writes anything, so its first write meets no reader whatever the load."""
    env = coordinator_env(
        fleet_db,
        COORDINATOR_EXPLORER_SOAK="1",
        COORDINATOR_EARLY_ADOPTER_SOAK="1",
        COORDINATOR_HEALTH_POLL="0.5",
    )
    if command[0] == "events":  # a trail to print: one line would fit any pipe's buffer
        # One occurrence in real time: no lease to lose to a busy machine, no time limit
        # that compressed time would make tight.
        filled = coordinator(
            "simulate",
            "--occurrences",
            "1",
            "--scenario",
            "wakeup",
            "--time-scale",
            "1",
            "--db",
            fleet_db,
            env=env,
        )
        assert filled.returncode == 0, filled.stderr
    argv = [sys.executable, "-m", "coordinator", *command]
    if command[0] == "events":
        argv += ["--db", fleet_db]
    process = child_processes.popen(
        argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    assert process.stdout is not None and process.stderr is not None
    process.stdout.close()
    try:
        stderr = process.stderr.read()
        code = process.wait(timeout=120)
    finally:
        process.stderr.close()
        child_processes.end(process)
    assert code == 128 + signal.SIGPIPE, stderr
    assert "Traceback" not in stderr and "BrokenPipeError" not in stderr, stderr
