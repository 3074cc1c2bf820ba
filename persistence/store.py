"""The Store: every database operation the runtime needs, named after what it needs."""

from __future__ import annotations

import time

from sqlalchemy.exc import DBAPIError

from persistence.audit import AuditStore
from persistence.emergency import EmergencyStore
from persistence.engine import create_engine, create_schema
from persistence.membership import MembershipStore
from persistence.rollout_control import RolloutControlStore
from persistence.rollouts import RolloutStore
from persistence.shared_tasks import SharedTaskStore
from persistence.transactions import Clock, describe_error
from schemas import DatabaseUnavailable
from schemas.settings import hide_password


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
        cannot be opened: an error of its driver, or of the network (asyncpg raises a
        refused connection or an unknown host as a bare ``OSError``).
        """
        engine = create_engine(database_url)
        store = cls(engine, clock)
        try:
            await create_schema(engine)
            if server_time:
                await store.align_clock_with_server()
        except (DBAPIError, OSError) as exc:
            await engine.dispose()
            if isinstance(exc, DatabaseUnavailable):  # the clock's read ran out of retries
                raise
            raise DatabaseUnavailable(
                f"cannot open the database {hide_password(database_url)}: {describe_error(exc)}"
            ) from exc
        except BaseException:
            await engine.dispose()
            raise
        return store

    async def close(self) -> None:
        await self.engine.dispose()
