"""The database outage an occurrence serves through, put in the audit trail once over."""

from __future__ import annotations

from persistence import Degraded, Store
from schemas import DatabaseUnavailable, EventKind, NewEvent


class OutageWatch:
    """Loops report a failed call (``failed``) and a call that answered (``answered``):
    the first answer once the store is no longer degraded records one
    ``database_recovered`` event for the whole outage."""

    def __init__(self, store: Store, occurrence_id: str) -> None:
        self._store = store
        self._occurrence_id = occurrence_id
        self._outage: Degraded | None = None

    @property
    def ongoing(self) -> bool:
        """A call failed and none has answered since."""
        return self._outage is not None or self._store.degraded is not None

    def failed(self) -> None:
        self._outage = self._outage or self._store.degraded

    async def answered(self) -> None:
        outage = self._outage
        if outage is None or self._store.degraded is not None:
            return
        self._outage = None
        event = NewEvent(
            kind=EventKind.DATABASE_RECOVERED,
            occurrence_id=self._occurrence_id,
            details={"down_for": round(self._store.now() - outage.since, 1), "error": outage.error},
        )
        try:
            await self._store.record_event(event)
        except DatabaseUnavailable:
            self._outage = outage  # not over after all: recorded at the next success
