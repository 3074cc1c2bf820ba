"""Read, decide, write: a pure rule run inside one write transaction.

The store reads what a rule needs, calls the rule (``schemas.policy``), and writes what
it decided, all in one write transaction serialized with every other lifecycle write,
so nothing the rule read can change before its decision is written. The SQL around a
rule reads and writes; it holds no rule. ``settle_emergency`` does the same with the
caller's verifier.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TypeVar

from sqlalchemy.ext.asyncio import AsyncConnection

from persistence.engine import serialize_lifecycle
from persistence.transactions import StoreBase

Seen = TypeVar("Seen")
Decided = TypeVar("Decided")
Result = TypeVar("Result")


async def read_decide_write(
    conn: AsyncConnection,
    now: float,
    read: Callable[[AsyncConnection, float], Awaitable[Seen]],
    decide: Callable[[Seen, float], Decided],
    write: Callable[[AsyncConnection, Seen, Decided, float], Awaitable[Result]],
) -> Result:
    """Within an open write transaction (serialized already): read, decide, write."""
    seen = await read(conn, now)
    return await write(conn, seen, decide(seen, now), now)


class DecidingStore(StoreBase):
    async def _decide(
        self,
        read: Callable[[AsyncConnection, float], Awaitable[Seen]],
        decide: Callable[[Seen, float], Decided],
        write: Callable[[AsyncConnection, Seen, Decided, float], Awaitable[Result]],
    ) -> Result:
        """One write transaction, serialized with every other lifecycle write: ``read``
        what ``decide`` (pure) needs, then ``write`` its decision."""

        async def work(conn: AsyncConnection) -> Result:
            await serialize_lifecycle(conn)
            return await read_decide_write(conn, self.now(), read, decide, write)

        return await self._write(work)
