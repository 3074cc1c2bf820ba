"""PostgreSQL's change notifications: LISTEN on one dedicated connection per process.

Every write transaction that appends to the audit trail also sends ``NOTIFY coordinator``
(delivered at commit) with what it changed, so a listener runs only the reads that can
see something new. The notification is only a hint: polling stays the source of truth,
so a notification lost while the listener reconnects delays, never corrupts.
"""

from __future__ import annotations

import anyio
import asyncpg

from persistence.changes import ALL_CHANGES, OnChange, changes_of
from persistence.log import get_logger

NOTIFY_CHANNEL = "coordinator"
RECONNECT_DELAY = 1.0  # seconds, doubled per failure up to the maximum
RECONNECT_MAX_DELAY = 10.0
LIVENESS_CHECK = 2.0  # seconds between checks that the listening connection is alive
ANSWER_TIMEOUT = 5.0  # seconds; a partitioned link never errors, it only stays silent

log = get_logger("coordinator.change_feed")


class NotifyListener:
    def __init__(self, dsn: str) -> None:
        self._dsn = dsn
        self.listening = False

    async def run(self, on_change: OnChange, listener: str) -> None:
        """Reconnect on loss, forever: a lost connection degrades to polling meanwhile."""
        feed_log = log.bind(occurrence_id=listener)
        delay = RECONNECT_DELAY
        while True:
            conn: asyncpg.Connection | None = None
            try:
                conn = await asyncpg.connect(
                    self._dsn, timeout=ANSWER_TIMEOUT, command_timeout=ANSWER_TIMEOUT
                )
                await conn.add_listener(
                    NOTIFY_CHANNEL,
                    lambda _conn, _pid, _channel, payload: on_change(changes_of(payload)),
                )
                self.listening = True
                feed_log.info("notify_listening", channel=NOTIFY_CHANNEL)
                delay = RECONNECT_DELAY
                on_change(ALL_CHANGES)  # anything committed while we were not listening
                while not conn.is_closed():
                    await anyio.sleep(LIVENESS_CHECK)
                    await conn.execute("SELECT 1", timeout=ANSWER_TIMEOUT)
            except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
                feed_log.warning(
                    "notify_degraded_to_polling", error=repr(exc), retry_in=round(delay, 1)
                )
            finally:
                self.listening = False
                if conn is not None:
                    await _close(conn)
            await anyio.sleep(delay)
            delay = min(delay * 2, RECONNECT_MAX_DELAY)


async def _close(conn: asyncpg.Connection) -> None:
    """Close politely if the server answers; drop the socket if it does not (a
    partitioned link never answers, and a close must not hang or raise)."""
    if conn.is_closed():
        return
    with anyio.CancelScope(shield=True):
        try:
            await conn.close(timeout=2)
        except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError):
            conn.terminate()
