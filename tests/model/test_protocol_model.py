"""The Promela model of the protocol (docs/model/protocol.pml), checked by spin.

The exhaustive check must find no error and must finish the search. With a fence taken
out, it must find the counterexample that fence exists for. See docs/model/README.md for
what the model stands for and how to run it by hand.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
MODEL = ROOT / "docs" / "model" / "protocol.pml"
REQUIRE_ENV = "COORDINATOR_REQUIRE_SPIN"
# Read once at import: tests/conftest.py clears every COORDINATOR_ variable before a test.
SPIN_REQUIRED = os.environ.get(REQUIRE_ENV) == "1"

MAX_DEPTH = 100_000
# exact: lossless state compression (no bitstate, no hash compaction); pan stops, and
# says so, rather than take more than this many megabytes
PAN_BUILD = ["-O2", "-DSAFETY", "-DCOLLAPSE", "-DMEMLIM=2048"]
BACKSTOP = 600  # seconds: a hung tool fails the test instead of the suite's backstop


@dataclass(frozen=True)
class Tools:
    spin: str
    cc: str


def tools() -> Tools:
    spin, cc = shutil.which("spin"), shutil.which("gcc") or shutil.which("cc")
    missing = [name for name, path in (("spin", spin), ("gcc", cc)) if path is None]
    if missing:
        reason = (
            f"the protocol model needs {' and '.join(missing)} on PATH "
            "(Debian: apt-get install spin gcc)"
        )
        if SPIN_REQUIRED:
            pytest.fail(f"{REQUIRE_ENV}=1, but {reason}")
        pytest.skip(reason)
    assert spin is not None and cc is not None
    return Tools(spin, cc)


def run(args: list[str], cwd: Path) -> str:
    done = subprocess.run(
        args, cwd=cwd, capture_output=True, text=True, timeout=BACKSTOP, check=False
    )
    assert done.returncode == 0, f"{' '.join(args)} failed:\n{done.stdout}\n{done.stderr}"
    return done.stdout + done.stderr


def build(tmp_path: Path, defines: list[str], *, bfs: bool = False) -> Tools:
    """spin -a and gcc in ``tmp_path``: the verifier ./pan for the model with ``defines``."""
    found = tools()
    shutil.copy(MODEL, tmp_path / MODEL.name)
    run([found.spin, *defines, "-a", MODEL.name], tmp_path)
    flags = [*PAN_BUILD, "-DBFS"] if bfs else PAN_BUILD
    run([found.cc, *flags, "-o", "pan", "pan.c"], tmp_path)
    return found


def number(pattern: str, report: str) -> int:
    match = re.search(pattern, report)
    assert match, f"no {pattern!r} in pan's report:\n{report}"
    return int(match.group(1))


EXHAUSTIVE = {
    # three occurrences, two lease expiries (pauses or crashes), one failed engine call,
    # an emergency stop while the rollout runs
    "default": [],
    # and a second incarnation of one occurrence beside a paused first one
    "restart": ["-DRESTART", "-DMAXEXPIRE=1", "-DMAXENGINEFAIL=0"],
    # the stop at any moment, the decision in flight included, each emergency loop late:
    # nothing is signalled once the stop is recorded (the stop fails the open task)
    "strict_emergency": ["-DSTRICT_EMERGENCY"],
}


@pytest.mark.parametrize("variant", sorted(EXHAUSTIVE))
def test_the_exhaustive_check_finds_no_error(tmp_path: Path, variant: str) -> None:
    build(tmp_path, EXHAUSTIVE[variant])
    report = run(["./pan", f"-m{MAX_DEPTH}"], tmp_path)
    assert "Full statespace search" in report, report
    assert "max search depth too small" not in report, report
    assert "Search not completed" not in report, report
    assert "-DMEMLIM bound" not in report and "out of memory" not in report, report
    assert number(r"errors: (\d+)", report) == 0, report
    assert number(r"depth reached (\d+)", report) < MAX_DEPTH, report
    assert number(r"(\d+) states, stored", report) > 100_000, report  # it really searched
    assert not list(tmp_path.glob("*.trail")), report


COUNTEREXAMPLES = {
    # a driver that took the lease over steps from the view it read before: the token
    # fence passes, and only the version refuses the stale step
    "NO_STATE_FENCING": (["-DNO_STATE_FENCING"], "assert((signals["),
    # a paused incarnation's decision, recorded while its successor holds the claim
    "NO_DECISION_FENCING": (["-DNO_DECISION_FENCING"], "assert((mytok==task_token))"),
    # a stop that leaves the open task alone: the decision in flight is recorded after
    # it and its explorer wave signalled
    "STOP_KEEPS_OPEN_TASKS": (
        ["-DSTRICT_EMERGENCY", "-DSTOP_KEEPS_OPEN_TASKS"],
        "assert(!(estop))",
    ),
}


@pytest.mark.parametrize("removed", sorted(COUNTEREXAMPLES))
def test_without_a_fence_spin_finds_the_counterexample(tmp_path: Path, removed: str) -> None:
    defines, assertion = COUNTEREXAMPLES[removed]
    found = build(tmp_path, defines, bfs=True)  # breadth-first: the shortest trail
    report = run(["./pan"], tmp_path)
    assert number(r"errors: (\d+)", report) == 1, report
    assert (tmp_path / f"{MODEL.name}.trail").exists(), report
    replay = run([found.spin, *defines, "-t", MODEL.name], tmp_path)
    assert "assertion violated" in replay, replay
    assert assertion in replay, replay
