"""The one clock the runtime reads time through, so tests and ``simulate`` can drive it."""

from __future__ import annotations

import time
from typing import Protocol

import anyio


class Clock(Protocol):
    def now(self) -> float:
        """Current time in Unix seconds."""

    async def sleep(self, seconds: float) -> None:
        """Wait ``seconds`` of this clock's time."""


class SystemClock:
    def now(self) -> float:
        return time.time()

    async def sleep(self, seconds: float) -> None:
        await anyio.sleep(max(seconds, 0.0))


class ScaledClock:
    """Time that runs ``scale`` times faster than the wall clock (for ``simulate``).

    Starts at the real current time, so stored timestamps stay plausible.
    """

    def __init__(self, scale: float) -> None:
        if scale <= 0:
            raise ValueError(f"time scale must be > 0 (got {scale})")
        self.scale = scale
        self._origin = time.time()
        self._start = time.monotonic()

    @property
    def origin(self) -> float:
        return self._origin

    def now(self) -> float:
        return self._origin + (time.monotonic() - self._start) * self.scale

    async def sleep(self, seconds: float) -> None:
        await anyio.sleep(max(seconds, 0.0) / self.scale)


class FakeClock:
    """Time that only moves when a test calls ``advance``."""

    def __init__(self, start: float = 1_700_000_000.0) -> None:
        self._now = start
        self._changed = anyio.Event()

    def now(self) -> float:
        return self._now

    def advance(self, seconds: float) -> None:
        self._now += seconds
        self._changed.set()
        self._changed = anyio.Event()

    async def sleep(self, seconds: float) -> None:
        until = self._now + seconds
        while self._now < until:
            await self._changed.wait()


def seconds_per_wall_second(clock: Clock) -> float:
    """How many of ``clock``'s seconds pass in one wall-clock second: the scale of a
    ``ScaledClock``, 1 for any other (a fake clock moves only when told, at no cost)."""
    return clock.scale if isinstance(clock, ScaledClock) else 1.0
