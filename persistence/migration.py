"""Where a database stands against the schema's history (``persistence/migrations``), and
the one way to move it: Alembic's upgrade on the caller's connection, in the caller's
transaction.

A Store opening a database creates the schema only when the database has none of it
(nothing to lose). Any other database that is not at this code's head revision (made
before migrations existed, an agent's own database, an older revision) is left alone:
``python -m coordinator migrate`` inspects it, shows its evidence and applies.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import inspect
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine

from persistence.tables import metadata
from schemas import DatabaseUnavailable

MIGRATIONS = Path(__file__).parent / "migrations"
MIGRATE_HINT = (
    "`python -m coordinator migrate --dry-run` shows what it would change and its "
    "compatibility gate, `migrate --apply` applies it (see docs/migrations.md)"
)


class SchemaBehind(DatabaseUnavailable):
    """The database is not at this coordinator's schema, and only ``migrate`` may change it."""

    def __init__(self, state: SchemaState) -> None:
        found = (
            f"revision {state.revision}" if state.revision else "a schema made before migrations"
        )
        super().__init__(
            f"the database has {found}, this coordinator needs revision {state.head}: "
            f"migrate it first. {MIGRATE_HINT}"
        )
        self.state = state


class UnknownRevision(DatabaseUnavailable):
    """The database is at a revision this coordinator's history does not have (newer)."""

    def __init__(self, state: SchemaState) -> None:
        super().__init__(
            f"the database is at schema revision {state.revision}, which this coordinator "
            f"(head {state.head}) does not know: it was migrated by a newer coordinator. "
            "Upgrade coordinator on this host to the version the rest of the fleet runs"
        )
        self.state = state


def alembic_config() -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    return config


@cache
def _script() -> ScriptDirectory:
    return ScriptDirectory.from_config(alembic_config())


def head_revision() -> str:
    head = _script().get_current_head()
    assert head is not None, "persistence/migrations has no revision"
    return head


def known_revisions() -> frozenset[str]:
    return frozenset(r.revision for r in _script().walk_revisions())


@dataclass(frozen=True)
class SchemaState:
    revision: str | None
    """What ``alembic_version`` records; None where it records nothing."""
    head: str
    ours_present: tuple[str, ...]
    """The tables of the schema the database has (whoever made them)."""
    pending: tuple[str, ...]
    """The revisions an upgrade would run, oldest first (empty when unknown or at head)."""

    @property
    def at_head(self) -> bool:
        return self.revision == self.head

    @property
    def empty(self) -> bool:
        """Nothing of the schema is there: creating it loses nothing."""
        return self.revision is None and not self.ours_present

    @property
    def known(self) -> bool:
        return self.revision is None or self.revision in known_revisions()


def schema_state(conn: Connection) -> SchemaState:
    revision = MigrationContext.configure(conn).get_current_revision()
    present = set(inspect(conn).get_table_names())
    ours = tuple(t.name for t in metadata.sorted_tables if t.name in present)
    head = head_revision()
    pending: tuple[str, ...] = ()
    if revision is None or revision in known_revisions():
        steps = _script().iterate_revisions(head, revision)  # newest first
        pending = tuple(reversed([s.revision for s in steps]))
    return SchemaState(revision, head, ours, pending)


def upgrade_to_head(conn: Connection) -> None:
    """Run the pending revisions on ``conn``, inside its open transaction."""
    config = alembic_config()
    config.attributes["connection"] = conn
    command.upgrade(config, "head")


def check_usable(state: SchemaState) -> None:
    """Raise unless a Store may use a database in ``state`` as it is (or create it)."""
    if not state.known:
        raise UnknownRevision(state)
    if not state.at_head and not state.empty:
        raise SchemaBehind(state)


async def refuse_unknown_revision(engine: AsyncEngine) -> None:
    """A reader's check: one that is behind reads on (the columns it reads are there),
    one at a revision it does not know is refused."""
    async with engine.connect() as conn:
        state = await conn.run_sync(schema_state)
    if not state.known:
        raise UnknownRevision(state)
