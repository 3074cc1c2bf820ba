"""Virtual time and a seeded schedule: the ground the deterministic simulator runs on.

``run_seeded(main, seed)`` runs ``main`` on an asyncio loop whose clock is virtual: when
every task waits, time jumps to the next timer instead of passing, so a 30 s soak costs no
wall time. Which ready task runs next is drawn from the seed, and so are the ids the
Store makes (``uuid4``) and the nonces of signed commands: with the database run inline on
the loop's thread (``persistence.backends.sqlite_inline``), one seed gives one schedule,
and the same audit trail every time.
"""

from __future__ import annotations

import asyncio
import random
import secrets
import selectors
import uuid
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

import anyio

T = TypeVar("T")

VIRTUAL_EPOCH = 1_800_000_000.0
"""Where virtual time starts (Unix seconds, in January 2027): stored times look real."""


class Deadlock(RuntimeError):
    """Every task waits and no timer is set: nothing can ever happen again."""


class _JumpingSelector(selectors.DefaultSelector):
    """Never blocks: a select that would wait ``timeout`` seconds moves time on instead."""

    def __init__(self) -> None:
        super().__init__()
        self.now = 0.0

    def select(self, timeout: float | None = None) -> list[tuple[selectors.SelectorKey, int]]:
        ready = super().select(0)  # the loop's own wake-up pipe, nothing else
        if ready:
            return ready
        if timeout is None:
            raise Deadlock("every task waits and no timer is set")
        self.now += timeout
        return []


class VirtualTimeLoop(asyncio.SelectorEventLoop):
    """An event loop on virtual time that runs its ready callbacks in a seeded order."""

    def __init__(self, seed: int) -> None:
        self._selector_of_time = _JumpingSelector()
        super().__init__(self._selector_of_time)
        self._order = random.Random(seed)

    def time(self) -> float:
        return self._selector_of_time.now

    def _run_once(self) -> None:
        # The callbacks ready at this step could run in any order in a real process: the
        # seed picks one. (Timers falling due in this step join after them, in time order.)
        ready: Any = self._ready  # type: ignore[attr-defined]
        if len(ready) > 1:
            callbacks = list(ready)
            self._order.shuffle(callbacks)
            ready.clear()
            ready.extend(callbacks)
        super()._run_once()  # type: ignore[misc]


class VirtualClock:
    """The injected clock on virtual time: ``now`` is the loop's, ``sleep`` its timers."""

    def __init__(self, epoch: float = VIRTUAL_EPOCH) -> None:
        self._epoch = epoch

    @property
    def origin(self) -> float:
        return self._epoch

    def now(self) -> float:
        return self._epoch + asyncio.get_running_loop().time()

    async def sleep(self, seconds: float) -> None:
        await anyio.sleep(max(seconds, 0.0))


@contextmanager
def seeded_ids(seed: int) -> Iterator[random.Random]:
    """``uuid.uuid4`` and ``secrets.token_hex`` drawn from ``seed`` while inside (the
    simulator owns its process: nothing else may need real randomness meanwhile)."""
    draw = random.Random(seed)
    uuid4, token_hex = uuid.uuid4, secrets.token_hex

    def seeded_uuid4() -> uuid.UUID:
        return uuid.UUID(int=draw.getrandbits(128), version=4)

    def seeded_token_hex(nbytes: int | None = None) -> str:
        size = 32 if nbytes is None else nbytes
        return draw.randbytes(size).hex()

    uuid.uuid4 = seeded_uuid4
    secrets.token_hex = seeded_token_hex
    try:
        yield draw
    finally:
        uuid.uuid4, secrets.token_hex = uuid4, token_hex


def run_seeded(main: Callable[[], Awaitable[T]], seed: int) -> T:
    """Run ``main`` to completion on virtual time with the schedule and ids of ``seed``."""
    loop = VirtualTimeLoop(seed)
    try:
        with seeded_ids(seed):
            return loop.run_until_complete(_as_coroutine(main))
    finally:
        loop.run_until_complete(loop.shutdown_asyncgens())
        loop.close()


async def _as_coroutine(main: Callable[[], Awaitable[T]]) -> T:
    return await main()
