"""Which decision engine each occurrence loaded: ``occurrences.engine_kind``,
``engine_name`` and ``engine_error``.

Additive only. ``engine_kind`` is NOT NULL with the server default ``'unknown'``: rows
registered before this revision (and inserts of a coordinator still at r0001 while the
fleet is upgraded) did not record their engine, and say so rather than claim one. The
other two are nullable: no name, no error.

Revision ID: r0002
Revises: r0001
Create Date: 2026-12-08
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "r0002"
down_revision = "r0001"
branch_labels = None
depends_on = None

# Frozen: spelled here, not imported from persistence/tables.py.
_COLUMNS = (
    ("engine_kind", sa.String(16), False, "unknown"),
    ("engine_name", sa.String(255), True, None),
    ("engine_error", sa.Text(), True, None),
)


def upgrade() -> None:
    present = {col["name"] for col in sa.inspect(op.get_bind()).get_columns("occurrences")}
    for name, type_, nullable, default in _COLUMNS:
        if name not in present:  # an adopted database may already have some of them
            op.add_column(
                "occurrences",
                sa.Column(name, type_, nullable=nullable, server_default=default),
            )


def downgrade() -> None:
    # SQLite drops a column by copying the table: batch mode does it on both backends.
    with op.batch_alter_table("occurrences") as batch:
        for name, *_ in reversed(_COLUMNS):
            batch.drop_column(name)
