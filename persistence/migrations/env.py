"""Alembic's environment: the migrations run on the connection the caller passes in
``config.attributes["connection"]``, inside the caller's transaction, so the caller
decides (after its checks) whether they commit or roll back."""

from alembic import context

from persistence.tables import metadata

connection = context.config.attributes["connection"]
context.configure(
    connection=connection,
    target_metadata=metadata,
    transaction_per_migration=False,
    compare_type=True,
)
with context.begin_transaction():  # joins the caller's open transaction
    context.run_migrations()
