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

T = TypeVar("T")

VIRTUAL_EPOCH = 1_800_000_000.0
"""Where virtual time starts (Unix seconds, in January 2027): stored times look real."""


class Deadlock(RuntimeError):
    """Every task waits and no timer is set: nothing can ever happen again."""


LIVELOCK_STEPS = 10_000
"""Steps of the loop at one virtual instant after which it is a livelock: a fleet that
polls, sleeps and heartbeats moves time on long before (a trial of 9 occurrences with
every fault took at most 28 steps at one instant, seeds 1-11)."""


class Livelock(RuntimeError):
    """The tasks kept running without time moving on: nothing that waits for time (a
    lease's expiry, a check, the end of the run) can ever happen."""

    def __init__(self, steps: int, at: float) -> None:
        super().__init__(f"{steps} steps of the loop at {at:.3f} s without time moving on")
        self.at = at


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
        self._instant = -1.0
        self._steps_at_instant = 0
        self.main: asyncio.Task[Any] | None = None
        """The task ``run_seeded`` runs: cancelled (once) on a livelock."""
        self.livelock: Livelock | None = None

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
        self._count_step()

    def _count_step(self) -> None:
        if self.time() != self._instant:
            self._instant, self._steps_at_instant = self.time(), 0
            return
        self._steps_at_instant += 1
        if self._steps_at_instant < LIVELOCK_STEPS:
            return
        if self.livelock is None and self.main is not None:
            # Cancel the run: its clean-up (closing the Store, removing files) still runs.
            self.livelock = Livelock(self._steps_at_instant, self.time())
            self.main.cancel()
            self._steps_at_instant = 0
        else:  # the cancellation did not end it either
            raise Livelock(self._steps_at_instant, self.time())


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
        # The loop is asyncio's (``VirtualTimeLoop``): its own sleep, without anyio's
        # look-up of the running library, which every nap of every occurrence paid.
        await asyncio.sleep(max(seconds, 0.0))


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
    """Raises ``Deadlock`` or ``Livelock`` if virtual time can never move on."""
    loop = VirtualTimeLoop(seed)
    try:
        with seeded_ids(seed):
            task: asyncio.Task[T] = loop.create_task(_as_coroutine(main))
            loop.main = task
            try:
                return loop.run_until_complete(task)
            except asyncio.CancelledError:
                if loop.livelock is not None:
                    raise loop.livelock from None
                raise
    finally:
        loop.run_until_complete(loop.shutdown_asyncgens())
        loop.close()


async def _as_coroutine(main: Callable[[], Awaitable[T]]) -> T:
    return await main()
