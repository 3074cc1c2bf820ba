"""The Store: every database operation the runtime needs, named after what it needs."""

from __future__ import annotations

import time

from sqlalchemy import make_url
from sqlalchemy.exc import DBAPIError

from persistence.audit import AuditStore
from persistence.emergency import EmergencyStore
from persistence.engine import create_engine, create_schema
from persistence.membership import MembershipStore
from persistence.rollout_control import RolloutControlStore
from persistence.rollouts import RolloutStore
from persistence.shared_tasks import SharedTaskStore
from persistence.transactions import Clock
from schemas import DatabaseUnavailable


class Store(
    MembershipStore,
    SharedTaskStore,
    RolloutStore,
    RolloutControlStore,
    EmergencyStore,
    AuditStore,
):
    """One object per process; safe to share between the tasks of that process."""

    @classmethod
    async def open(
        cls, database_url: str, *, clock: Clock = time.time, server_time: bool = False
    ) -> Store:
        """Connect, create missing tables, and return a ready store. With ``server_time``
        (for a real clock only) times are judged by the database server's clock.

        Raises ``DatabaseUnavailable`` (naming the URL, password hidden) if the database
        cannot be opened.
        """
        engine = create_engine(database_url)
        try:
            await create_schema(engine)
        except DBAPIError as exc:
            await engine.dispose()
            shown = make_url(database_url).render_as_string(hide_password=True)
            raise DatabaseUnavailable(f"cannot open the database {shown}: {exc.orig}") from exc
        except BaseException:
            await engine.dispose()
            raise
        store = cls(engine, clock)
        if server_time:
            await store.align_clock_with_server()
        return store

    async def close(self) -> None:
        await self.engine.dispose()
