"""A sleep on the injected clock that a poke cuts short (the poll and emergency loops')."""

from __future__ import annotations

import math

import anyio

from coordinator.clock import Clock


class Nap:
    """``await nap.nap(seconds)`` sleeps ``seconds`` of ``clock``'s time, or until
    ``poke()`` (``math.inf``: until poked). A poke while awake is kept: the next nap
    returns at once, so a wake-up that arrives while the loop works is never lost."""

    def __init__(self, clock: Clock) -> None:
        self._clock = clock
        self._poked = False
        self._scope: anyio.CancelScope | None = None

    def poke(self) -> None:
        self._poked = True
        if self._scope is not None:
            self._scope.cancel()

    async def nap(self, seconds: float) -> None:
        if self._poked:
            self._poked = False
            return
        with anyio.CancelScope() as scope:
            self._scope = scope
            if math.isinf(seconds):  # until poked: no timer
                await anyio.sleep_forever()
            else:
                await self._clock.sleep(seconds)
        self._scope = None
        self._poked = False
