"""A bounded chaos run per backend (fixed seed): scripts/chaos.py as a user runs it.

Real `run` processes are killed (-9) and paused (SIGSTOP) at random moments, deciders and
drivers included; the script checks every invariant from the audit trail and fails on a
violation or a stalled rollout. `scripts/chaos.py --trials N` runs as many as you like.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import child_processes
import pytest

pytestmark = pytest.mark.processes

CHAOS_TIMEOUT = 600  # seconds for the whole chaos run, which bounds each of its own waits

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "chaos.py"


@pytest.mark.timeout(CHAOS_TIMEOUT + 120)  # above the run's own limit
def test_chaos_trials_find_no_violation(database_url: str, tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("COORDINATOR_")}
    result = child_processes.run(
        [
            sys.executable,
            str(SCRIPT),
            "--trials",
            "1",
            "--occurrences",
            "6",
            "--faults",
            "3",
            "--seed",
            "3",
            "--db",
            database_url,
        ],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=CHAOS_TIMEOUT,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "violations 0" in result.stdout
    assert "VIOLATION" not in result.stdout
