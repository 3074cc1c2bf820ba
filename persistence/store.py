"""The Store: every database operation the runtime needs, named after what it needs."""

from __future__ import annotations

import threading
import time

from sqlalchemy.exc import DBAPIError

from persistence.audit import AuditStore
from persistence.backends import Backend
from persistence.change_feed import ChangeFeed
from persistence.emergency import EmergencyStore
from persistence.emergency_acks import EmergencyAckStore
from persistence.engine import (
    create_engine,
    create_schema,
    missing_tables,
    settle_failed_connections,
)
from persistence.fleet_reads import FleetReadStore
from persistence.membership import MembershipStore
from persistence.migration import refuse_unknown_revision
from persistence.rollout_control import RolloutControlStore
from persistence.rollouts import RolloutStore
from persistence.schema_version import refuse_newer_schema
from persistence.shared_tasks import SharedTaskStore
from persistence.transactions import Clock, describe_error
from schemas import DatabaseUnavailable
from schemas.settings import hide_password


class Store(
    MembershipStore,
    SharedTaskStore,
    FleetReadStore,
    RolloutStore,
    RolloutControlStore,
    EmergencyStore,
    EmergencyAckStore,
    AuditStore,
):
    """One object per process; safe to share between the tasks of that process."""

    @classmethod
    async def open(
        cls,
        database_url: str,
        *,
        clock: Clock = time.time,
        server_time: bool = False,
        read_only: bool = False,
        backend: Backend | None = None,
    ) -> Store:
        """Connect, create missing tables, and return a ready store. With ``server_time``
        (for a real clock only) times are judged by the database server's clock. With
        ``read_only`` (``status``, ``events``) nothing is created and nothing can be
        written: it needs only read access to the database (on SQLite, to its file: no
        journal switch, no file beside it); every write raises the driver's error.
        ``backend`` replaces the one the URL names (the simulator's inline SQLite).

        Raises ``NewerSchema`` or ``UnknownRevision`` (``DatabaseUnavailable``) for a
        database written by a newer coordinator, and (unless ``read_only``)
        ``SchemaBehind`` for one not at this code's revision, before changing anything:
        only ``migrate`` changes an existing schema; ``DatabaseUnavailable`` (naming
        the URL, password hidden) if the database cannot be opened: an error of its
        driver, or of the network (asyncpg raises a refused connection or an unknown
        host as a bare ``OSError``).
        """
        threads_before = set(threading.enumerate())
        engine = create_engine(database_url, read_only=read_only, backend=backend)
        store = cls(engine, clock, backend)
        try:
            if not read_only:
                await create_schema(engine)  # refuses a newer schema first
            else:
                await refuse_newer_schema(engine)
                await refuse_unknown_revision(engine)
                if missing := await missing_tables(engine):
                    raise DatabaseUnavailable(
                        f"{hide_password(database_url)} is not a coordinator database "
                        f"(no table {', '.join(missing)})"
                    )
            if server_time:
                await store.align_clock_with_server()
        except (DBAPIError, OSError) as exc:
            await engine.dispose()
            await settle_failed_connections(database_url, threads_before)
            if isinstance(exc, DatabaseUnavailable):  # a newer schema, or retries ran out
                raise
            raise DatabaseUnavailable(
                f"cannot open the database {hide_password(database_url)}: {describe_error(exc)}"
            ) from exc
        except BaseException:
            await engine.dispose()
            raise
        return store

    def change_feed(self) -> ChangeFeed:
        """The changes other processes commit to this database, as its backend hears them."""
        return ChangeFeed(self.engine.url.render_as_string(hide_password=False), self._backend)

    async def close(self) -> None:
        await self.engine.dispose()
