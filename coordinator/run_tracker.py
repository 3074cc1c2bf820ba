"""The current ``Run`` of one occurrence (see ``run_state``), and a wake-up for its waiters."""

from __future__ import annotations

from collections.abc import Callable

import anyio

from coordinator.run_state import Run


class RunTracker:
    """Holds the one run state; every change goes through ``become`` (with a transition
    of ``run_state``), which wakes whoever waits on it."""

    def __init__(self) -> None:
        self._run = Run()
        self._changed = anyio.Event()

    @property
    def run(self) -> Run:
        return self._run

    @property
    def winding_down(self) -> bool:
        return self._run.winding_down

    def become(self, run: Run) -> None:
        if run == self._run:
            return
        self._run = run
        self._changed.set()
        self._changed = anyio.Event()

    async def wait_until(self, done: Callable[[Run], bool]) -> Run:
        while not done(self._run):
            await self._changed.wait()
        return self._run
