"""The database backends, one module each behind ``base.Backend``, found by URL."""

from __future__ import annotations

from typing import Any

from sqlalchemy import ColumnElement
from sqlalchemy.engine import URL, make_url

from persistence.backends.base import WRITE_OPTION, Backend, ChangeSource
from persistence.backends.postgresql import PostgreSQLBackend
from persistence.backends.sqlite import SQLiteBackend
from schemas import ConfigurationError

BACKENDS: dict[str, Backend] = {b.name: b for b in (SQLiteBackend(), PostgreSQLBackend())}
"""Every backend, by its dialect name."""

BACKEND_NAMES = tuple(BACKENDS)


class UnknownBackend(ConfigurationError):
    """No backend of this package serves that database."""


def backend_named(name: str) -> Backend:
    """The backend of a dialect name (``engine.dialect.name``)."""
    try:
        return BACKENDS[name]
    except KeyError:
        raise UnknownBackend(
            f"no backend for {name!r} databases (known: {', '.join(BACKEND_NAMES)})"
        ) from None


def backend_for(url: str | URL) -> Backend:
    """The backend that serves the database at ``url``."""
    return backend_named(make_url(url).get_backend_name())


def partial_index_where(clause: ColumnElement[bool] | Any) -> dict[str, Any]:
    """The keyword arguments that make an ``Index`` partial on every backend."""
    return {f"{name}_where": clause for name in BACKENDS}


__all__ = [
    "BACKENDS",
    "BACKEND_NAMES",
    "WRITE_OPTION",
    "Backend",
    "ChangeSource",
    "UnknownBackend",
    "backend_for",
    "backend_named",
    "partial_index_where",
]
