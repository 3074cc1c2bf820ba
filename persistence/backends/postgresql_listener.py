"""PostgreSQL's change notifications: LISTEN on one dedicated connection per process.

Every write transaction that appends to the audit trail also sends ``NOTIFY coordinator``
(delivered at commit) with what it changed, so a listener runs only the reads that can
see something new. The notification is only a hint: polling stays the source of truth,
so a notification lost while the listener reconnects delays, never corrupts.
"""

from __future__ import annotations

from dataclasses import replace

import anyio
import asyncpg
from tenacity import RetryCallState

from persistence.changes import ALL_CHANGES, OnChange, changes_of
from persistence.log import get_logger
from persistence.retry import RECONNECT, retrying

NOTIFY_CHANNEL = "coordinator"
CONNECTION_ERRORS = (OSError, asyncpg.PostgresError, asyncpg.InterfaceError)
"""What a lost or refused listening connection raises."""
LIVENESS_CHECK = 2.0  # seconds between checks that the listening connection is alive
ANSWER_TIMEOUT = 5.0  # seconds; a partitioned link never errors, it only stays silent

log = get_logger("coordinator.change_feed")


class NotifyListener:
    def __init__(self, dsn: str) -> None:
        self._dsn = dsn
        self.listening = False

    async def run(self, on_change: OnChange, listener: str) -> None:
        """Listen until cancelled; after a lost connection, poll meanwhile and reconnect
        (``retry.RECONNECT``: the first wait after a loss is one delay, and doubles)."""
        feed_log = log.bind(occurrence_id=listener)

        def log_failure(state: RetryCallState) -> None:
            feed_log.warning(
                "notify_degraded_to_polling",
                error=repr(state.outcome.exception() if state.outcome else None),
                retry_in=round(state.upcoming_sleep, 1),
            )

        lost_before = False
        while True:
            # A lost connection counts as the first failure: the waits then go on from
            # the second (two delays), as if the loss had been a failed connect.
            policy = (
                replace(RECONNECT, first_delay=RECONNECT.first_delay * 2)
                if lost_before
                else RECONNECT
            )
            conn: asyncpg.Connection = await retrying(
                policy, _is_connection_error, before_sleep=log_failure
            )(self._connect, on_change)
            try:
                self.listening = True
                feed_log.info("notify_listening", channel=NOTIFY_CHANNEL)
                on_change(ALL_CHANGES)  # anything committed while we were not listening
                while not conn.is_closed():
                    await anyio.sleep(LIVENESS_CHECK)
                    await conn.execute("SELECT 1", timeout=ANSWER_TIMEOUT)
            except CONNECTION_ERRORS as exc:
                feed_log.warning(
                    "notify_degraded_to_polling",
                    error=repr(exc),
                    retry_in=round(RECONNECT.first_delay, 1),
                )
            finally:
                self.listening = False
                await _close(conn)
            await anyio.sleep(RECONNECT.first_delay)
            lost_before = True

    async def _connect(self, on_change: OnChange) -> asyncpg.Connection:
        conn = await asyncpg.connect(
            self._dsn, timeout=ANSWER_TIMEOUT, command_timeout=ANSWER_TIMEOUT
        )
        try:
            await conn.add_listener(
                NOTIFY_CHANNEL,
                lambda _conn, _pid, _channel, payload: on_change(changes_of(payload)),
            )
        except BaseException:
            await _close(conn)
            raise
        return conn


async def _close(conn: asyncpg.Connection) -> None:
    """Close politely if the server answers; drop the socket if it does not (a
    partitioned link never answers, and a close must not hang or raise)."""
    if conn.is_closed():
        return
    with anyio.CancelScope(shield=True):
        try:
            await conn.close(timeout=2)
        except CONNECTION_ERRORS:
            conn.terminate()


def _is_connection_error(exc: BaseException) -> bool:
    return isinstance(exc, CONNECTION_ERRORS)
