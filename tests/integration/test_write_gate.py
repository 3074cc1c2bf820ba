"""SQLite's write gate: writers queue on a kernel lock beside the database file. Proven
with a real second process holding it, killed with SIGKILL."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import anyio
import child_processes
import pytest

from persistence.write_gate import WriteGate, WriteGateTimeout, gate_file_of

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="flock is POSIX-only")

HOLD = """
import fcntl, os, sys, time
fd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT)
fcntl.flock(fd, fcntl.LOCK_EX)
print("held", flush=True)
time.sleep(120)
"""

PROBE = """
import fcntl, os, sys
fd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT)
try:
    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
except BlockingIOError:
    sys.exit(1)
"""


@pytest.fixture
def gate_file(tmp_path: Path) -> Path:
    path = gate_file_of(str(tmp_path / "fleet.db"))
    assert path is not None
    return path


@pytest.fixture
def holder(gate_file: Path) -> Iterator[subprocess.Popen[str]]:
    """Another process that holds the gate until it is killed."""
    with child_processes.popen(
        [sys.executable, "-c", HOLD, str(gate_file)], stdout=subprocess.PIPE, text=True
    ) as process:
        assert process.stdout is not None and process.stdout.readline() == "held\n"
        yield process
        process.kill()


def free_for_others(gate_file: Path) -> bool:
    probe = [sys.executable, "-c", PROBE, str(gate_file)]
    return child_processes.run(probe, timeout=60).returncode == 0


async def test_a_writer_gives_up_while_another_process_holds_the_gate(
    gate_file: Path, holder: subprocess.Popen[str]
) -> None:
    gate = WriteGate(gate_file, timeout=0.3)
    entered = False
    with pytest.raises(WriteGateTimeout, match=r"held SQLite.s write gate for 0\.3 s"):
        async with gate.held():
            entered = True
    assert not entered


async def test_the_gate_of_a_killed_holder_is_free_at_once_and_abandoned_waits_let_go(
    gate_file: Path, holder: subprocess.Popen[str]
) -> None:
    gate = WriteGate(gate_file, timeout=0.2)
    with pytest.raises(WriteGateTimeout):
        async with gate.held():
            pass  # never reached: the wait is abandoned, its thread still waits
    holder.kill()  # the kernel drops a dead process's lock
    holder.wait()
    # The abandoned thread gets in and must let go at once, or nobody else could.
    with anyio.fail_after(30):
        while not free_for_others(gate_file):
            await anyio.sleep(0.05)
    patient = WriteGate(gate_file, timeout=30)
    async with patient.held():
        assert not free_for_others(gate_file)  # held: another process is kept out
    assert free_for_others(gate_file)  # and released on leaving


async def test_writers_of_one_process_take_turns(gate_file: Path) -> None:
    gate = WriteGate(gate_file, timeout=30)
    inside: list[int] = []
    overlaps: list[int] = []

    async def write(n: int) -> None:
        async with gate.held():
            if inside:
                overlaps.append(n)
            inside.append(n)
            await anyio.sleep(0.02)
            inside.remove(n)

    with anyio.fail_after(30):
        async with anyio.create_task_group() as tg:
            for n in range(8):
                tg.start_soon(write, n)
    assert overlaps == []
    assert free_for_others(gate_file)
