"""SQLite's writers queue for the write lock in the kernel, not in SQLite's busy handler.

SQLite lets one writer in at a time and makes the others poll: its busy handler sleeps
ever longer between tries (1, 2, 5, 10, ... 100 ms), so under many writers the lock sits
free while they sleep, and an unlucky writer loses round after round. With 50 processes
acknowledging an emergency stop at once, the last acknowledgement came seconds late.

Every write transaction of this package first takes an exclusive ``flock`` on a file
beside the database. Waiters sleep in the kernel and one is woken the moment the holder
lets go, so ``BEGIN IMMEDIATE`` then finds SQLite's lock free. The gate changes nothing
about safety: SQLite's own lock still guards the file, and the gate is released when its
holder ends, even by kill -9. A holder that is paused (SIGSTOP) keeps the gate, exactly as
it would keep SQLite's lock: waiters give up after ``timeout`` and the Store retries.
"""

from __future__ import annotations

import os
import sys
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import anyio
import anyio.from_thread
from anyio import RunFinishedError
from anyio.lowlevel import current_token

GATE_SUFFIX = "-write-gate"


def gate_file_of(database: str | None) -> Path | None:
    """The gate file of a SQLite database path; none for an in-memory database, or where
    there is no ``flock`` (Windows: SQLite's busy handler alone)."""
    if sys.platform == "win32" or not database or database == ":memory:":
        return None
    if database.startswith("file:"):
        return None
    return Path(database + GATE_SUFFIX)


class WriteGateTimeout(TimeoutError):
    """Another process held the write gate for the whole timeout."""


class _Attempt:
    """One try to take the gate, on its own open file (a lock belongs to an open file, so
    two transactions of one process exclude each other too). The waiting runs in a thread
    of its own; if the caller stops waiting first, the thread lets go as soon as it gets
    in. That thread is a daemon: one still waiting for a paused holder never keeps its
    process from exiting."""

    def __init__(self, path: Path) -> None:
        self._fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        self._mutex = threading.Lock()
        self._abandoned = False
        self._closed = False
        self.held = False

    def wait(self) -> None:  # in a worker thread
        import fcntl

        try:
            fcntl.flock(self._fd, fcntl.LOCK_EX)
        except OSError:
            with self._mutex:
                self._close()
            raise
        with self._mutex:
            if self._abandoned:
                self._close()
            else:
                self.held = True

    def end(self) -> None:
        """Let go of the gate, or of the wait for it, whichever the attempt is at."""
        with self._mutex:
            if self._abandoned:
                return
            self._abandoned = True
            if self.held:
                self.held = False
                self._close()

    def _close(self) -> None:
        if not self._closed:
            self._closed = True
            os.close(self._fd)  # closing the file releases its lock


class WriteGate:
    def __init__(self, path: Path, timeout: float) -> None:
        self._path = path
        self._timeout = timeout

    @asynccontextmanager
    async def held(self) -> AsyncIterator[None]:
        """Hold the gate for the body; raise ``WriteGateTimeout`` if it stays taken."""
        attempt = _Attempt(self._path)
        got_in = anyio.Event()
        token = current_token()

        def wait() -> None:
            try:
                attempt.wait()
            except OSError:  # the file cannot be locked: the caller's timeout says so
                return
            if attempt.held:
                try:
                    anyio.from_thread.run_sync(got_in.set, token=token)
                except RunFinishedError:  # nobody is left to write
                    attempt.end()

        threading.Thread(target=wait, name="coordinator write gate", daemon=True).start()
        try:
            with anyio.move_on_after(self._timeout):
                await got_in.wait()
            if not attempt.held:
                raise WriteGateTimeout(
                    f"another process held SQLite's write gate for {self._timeout:g} s"
                )
            yield
        finally:
            attempt.end()
