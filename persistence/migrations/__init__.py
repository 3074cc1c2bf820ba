"""The schema's history as Alembic revisions, shipped inside the package.

``persistence.migration`` runs them (``python -m coordinator migrate``); nothing here is
imported by the runtime. A revision is history: once released it never changes, so each
one spells out its own tables and columns instead of importing ``persistence.tables``.
"""
