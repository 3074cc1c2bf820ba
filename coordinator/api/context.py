"""What the control API was built with: one object the routes read, set by ``create_app``."""

from __future__ import annotations

from dataclasses import dataclass

from fastapi import FastAPI, Request

from persistence import Store
from persistence.emergency import Verifier
from schemas import Settings


@dataclass(frozen=True)
class Access:
    """Who may change the fleet: clients with ``token``, unless ``read_only``."""

    token: str | None
    read_only: bool


@dataclass(frozen=True)
class ApiContext:
    settings: Settings
    store: Store
    """Opened and closed by the caller of ``create_app``, shared by every request."""
    access: Access
    verifier: Verifier
    """Judges emergency commands with the keys of ``COORDINATOR_TRUSTED_KEYS``."""
    key_ids: tuple[str, ...]
    version: str
    allowed_hosts: frozenset[str] = frozenset({"localhost"})
    """Host names answered besides IP addresses (``coordinator.api.hosts``)."""


def context_of(source: Request | FastAPI) -> ApiContext:
    """The context of the application that serves ``source`` (or of that application)."""
    app = source.app if isinstance(source, Request) else source
    context: ApiContext = app.state.context
    return context
