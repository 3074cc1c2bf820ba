"""Persistence: the tables, the engine factory and the Store. All SQL lives here."""

from persistence.change_feed import ChangeFeed
from persistence.engine import create_engine, create_schema
from persistence.store import Store
from persistence.tables import SCHEMA_VERSION
from persistence.transactions import Change, Degraded, database_failure
from schemas.fleet import FleetView  # moved to schemas; kept importable from here

__all__ = [
    "SCHEMA_VERSION",
    "Change",
    "ChangeFeed",
    "Degraded",
    "FleetView",
    "Store",
    "create_engine",
    "create_schema",
    "database_failure",
]
