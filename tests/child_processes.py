"""Every process a test starts ends with the test, however the run ends.

A pytest plugin (the top-level conftest loads it) and the one way the suite's helpers
start a process. Three layers, each catching what the one before cannot:

1. The end of each test kills what that test started and left running (its fixtures
   stop theirs first: this fixture is set up first, so it is torn down last).
2. SIGTERM (CI stopping a run that overstays, ``timeout``, a developer's ``kill``)
   becomes a KeyboardInterrupt, so pytest unwinds as on Ctrl-C: the running test's
   fixtures tear down, then the session's end kills whatever is still registered.
3. On Linux each child asks the kernel for SIGKILL when its parent dies
   (``PR_SET_PDEATHSIG``), for when no Python code runs any more (SIGKILL, OOM killer).

Each child leads a process group of its own, so a kill reaches what it started too (the
``run`` processes of ``scripts/chaos.py``, the command behind ``ip netns exec``). Short
system commands that end on their own (``ip``, ``mount``, ``openssl``) may still use
``subprocess.run``; anything of ours, or anything that could wait, starts here.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import suppress
from types import FrameType
from typing import Any

import pytest

END_DEADLINE = 30.0  # seconds for a killed child to be reaped

_started: list[subprocess.Popen[Any]] = []
_leaders: set[int] = set()
"""Pids of the children that lead a process group of their own (its id is their pid)."""

PR_SET_PDEATHSIG = 1  # from <linux/prctl.h>


def _death_signal_setter() -> Callable[[], None] | None:
    """What a child runs before exec to die with its parent, or None off Linux."""
    if not sys.platform.startswith("linux"):
        return None
    libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
    prctl = libc.prctl  # looked up here: between fork and exec, call only, never load

    def die_with_parent() -> None:
        prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)

    return die_with_parent


_die_with_parent = _death_signal_setter()


def popen(argv: Sequence[str], **kwargs: Any) -> subprocess.Popen[Any]:
    """``subprocess.Popen`` for a test: registered, in a process group of its own, and
    (on Linux) killed by the kernel if this process dies first."""
    kwargs.setdefault("start_new_session", True)
    # The death signal fires when the *thread* that forked the child ends: only the main
    # thread lives as long as the run.
    if _die_with_parent is not None and threading.current_thread() is threading.main_thread():
        kwargs.setdefault("preexec_fn", _die_with_parent)
    process = subprocess.Popen(argv, **kwargs)
    _started.append(process)
    if kwargs["start_new_session"]:
        _leaders.add(process.pid)
    return process


def run(argv: Sequence[str], *, timeout: float, **kwargs: Any) -> subprocess.CompletedProcess[Any]:
    """``subprocess.run`` for a test (``capture_output`` and ``text`` as there): the child
    and its group are killed if the wait ends any way but by its exit."""
    if kwargs.pop("capture_output", False):
        kwargs["stdout"] = kwargs["stderr"] = subprocess.PIPE
    with popen(argv, **kwargs) as process:  # closes the pipes on the way out
        try:
            out, err = process.communicate(timeout=timeout)
        except BaseException:
            end(process)
            raise
    return subprocess.CompletedProcess(process.args, process.returncode, out, err)


def end(process: subprocess.Popen[Any]) -> None:
    """Kill ``process`` and its group, and reap it; nothing once it was reaped.

    Until this process reaps it, the child (alive, or a zombie) keeps its pid, and so its
    group's id, from being given to anyone else: killing the group then reaches only what
    the child started, even if the child itself already exited. (Pids wrap around fast on
    a busy machine, pid_max is often 32768: a group id is never used after its reaping.)
    """
    if process.returncode is not None:
        return
    if process.pid in _leaders:
        with suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)  # a stopped (SIGSTOP) member dies too
    else:
        process.kill()
    process.wait(timeout=END_DEADLINE)
    # Its output pipes stay open: whoever reads them (a thread, maybe) closes them.
    if process.stdin is not None:
        process.stdin.close()


def end_all(since: int = 0) -> None:
    """End every child registered from index ``since`` on, and forget them."""
    for process in _started[since:]:
        end(process)
        _leaders.discard(process.pid)
    del _started[since:]


@pytest.fixture(autouse=True)
def _children_end_with_the_test() -> Iterator[None]:
    first = len(_started)
    yield
    end_all(first)


def _interrupt(signum: int, frame: FrameType | None) -> None:
    # Once: a second SIGTERM while the first unwinds must not cut the teardown short.
    # (A handler, not SIG_IGN: children would inherit an ignored SIGTERM.)
    signal.signal(signal.SIGTERM, _already_interrupted)
    raise KeyboardInterrupt(f"stopped by {signal.Signals(signum).name}")


def _already_interrupted(signum: int, frame: FrameType | None) -> None:
    pass


def pytest_configure(config: pytest.Config) -> None:
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, _interrupt)


def pytest_unconfigure(config: pytest.Config) -> None:
    end_all()
