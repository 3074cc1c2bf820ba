"""Change notifications: a listener hears that another process committed a change.

Every committed change that a poll could see tells the backend's change source what it
changed (``Change``: the fleet, emergency commands, or both), so a listener runs only the
reads that can see something new. PostgreSQL notifies (LISTEN/NOTIFY, one dedicated
connection per process); SQLite touches wake files beside the database, which the feed
``stat()``s every 50 ms. Either is only a hint: polling stays the source of truth, so a
change missed while the listener reconnects delays, never corrupts.
"""

from __future__ import annotations

from sqlalchemy import make_url

from persistence.backends import Backend, backend_for
from persistence.changes import OnChange, changes_of

__all__ = ["ChangeFeed", "OnChange", "changes_of"]


class ChangeFeed:
    def __init__(self, database_url: str, backend: Backend | None = None) -> None:
        url = make_url(database_url)
        backend = backend or backend_for(url)
        self.enabled = backend.notifies
        """Changes are pushed by the server, which reports every kind on each connect."""
        self._source = backend.change_source(url)

    @property
    def listening(self) -> bool:
        return self._source is not None and self._source.listening

    async def run(self, on_change: OnChange, listener: str = "") -> None:
        """Call ``on_change`` on every change heard until cancelled; reconnect on loss.
        ``listener`` names who listens, in the logs. Returns at once where nothing can
        be heard (an in-memory database)."""
        if self._source is not None:
            await self._source.run(on_change, listener)
