"""Change notifications: PostgreSQL LISTEN/NOTIFY wakes pollers as soon as a change commits.

Every write transaction that appends to the audit trail also sends ``NOTIFY coordinator``
(delivered at commit, see ``StoreBase._append``) with what it changed (``Change``: the
fleet, emergency commands, or both), so a listener runs only the reads that can see
something new. A listener holds one dedicated connection per process. The notification
is only a hint: polling stays the source of truth, so a notification lost while the
listener reconnects delays, never corrupts. SQLite has no NOTIFY: there every committed
change touches a wake file per kind of change beside the database, and the feed
``stat()``s them every 50 ms (no SQL, no thread hop), so a change reaches every process
within about 50 ms instead of a poll interval.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import anyio
import asyncpg
from sqlalchemy import make_url

from persistence.log import get_logger
from persistence.transactions import ALL_CHANGES, Change, wake_file_of
from persistence.transactions import NOTIFY_CHANNEL as CHANNEL

RECONNECT_DELAY = 1.0  # seconds, doubled per failure up to the maximum
RECONNECT_MAX_DELAY = 10.0
LIVENESS_CHECK = 2.0  # seconds between checks that the listening connection is alive
WAKE_CHECK = 0.05  # seconds between stat() calls of SQLite's wake file
ANSWER_TIMEOUT = 5.0  # seconds; a partitioned link never errors, it only stays silent

log = get_logger("coordinator.change_feed")

OnChange = Callable[[frozenset[Change]], None]
"""Called with what changed; every kind when the feed cannot tell (after a reconnect)."""


def changes_of(payload: str) -> frozenset[Change]:
    """The changes a NOTIFY payload names; all of them for one this version cannot read
    (a newer writer, or an older one that sent an event kind)."""
    try:
        return frozenset(Change(part) for part in payload.split(","))
    except ValueError:
        return ALL_CHANGES


class ChangeFeed:
    def __init__(self, database_url: str) -> None:
        url = make_url(database_url)
        self.enabled = url.get_backend_name() == "postgresql"
        self._dsn = url.set(drivername="postgresql").render_as_string(hide_password=False)
        self._wake_files: dict[Change, Path] = {}
        if not self.enabled:
            for change in Change:
                path = wake_file_of(url.database, change)
                if path is not None:
                    self._wake_files[change] = path
        self.listening = False

    async def run(self, on_change: OnChange, listener: str = "") -> None:
        """Call ``on_change`` on every notification until cancelled; reconnect on loss.
        ``listener`` names who listens, in the logs."""
        if self._wake_files:
            self.listening = True
            try:
                await _watch(self._wake_files, on_change)
            finally:
                self.listening = False
        if not self.enabled:
            return
        feed_log = log.bind(occurrence_id=listener)
        delay = RECONNECT_DELAY
        while True:
            conn: asyncpg.Connection | None = None
            try:
                conn = await asyncpg.connect(
                    self._dsn, timeout=ANSWER_TIMEOUT, command_timeout=ANSWER_TIMEOUT
                )
                await conn.add_listener(
                    CHANNEL,
                    lambda _conn, _pid, _channel, payload: on_change(changes_of(payload)),
                )
                self.listening = True
                feed_log.info("notify_listening", channel=CHANNEL)
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


async def _watch(paths: dict[Change, Path], on_change: OnChange) -> None:
    last = {change: _mtime(path) for change, path in paths.items()}
    while True:
        await anyio.sleep(WAKE_CHECK)
        now = {change: _mtime(path) for change, path in paths.items()}
        changed = frozenset(change for change in paths if now[change] != last[change])
        last = now
        if changed:
            on_change(changed)


def _mtime(path: Path) -> int | None:
    try:
        return path.stat().st_mtime_ns
    except OSError:
        return None
