"""Which decision engine an occurrence loaded: recorded on its membership row when it
registers, so ``status``, ``/v1/diagnostics`` and ``smoke --expect-engine`` can say, per
occurrence, what decides when it is the one deciding."""

from __future__ import annotations

from enum import StrEnum

from pydantic import BaseModel, ConfigDict

BUILTIN_ENGINE_NAME = "builtin:accept"
"""The name the built-in engine (``AcceptingEngine``) is recorded and matched by."""


class EngineKind(StrEnum):
    BUILTIN = "builtin"
    """The built-in engine: ``COORDINATOR_ENGINE`` unset, or a named one did not load."""
    EXTERNAL = "external"
    """The agent's own engine: loaded from ``COORDINATOR_ENGINE`` or handed to the runtime."""
    UNKNOWN = "unknown"
    """Not recorded: a row written before the engine was, or by a caller that did not say."""


class EngineLoadFailure(StrEnum):
    """Why the engine named by ``COORDINATOR_ENGINE`` did not load (the ``engine_error``
    recorded begins with it)."""

    MALFORMED_NAME = "malformed_name"
    """Not of the form ``package.module:attribute``."""
    MODULE_MISSING = "module_missing"
    """The module (or a module it imports) is not installed."""
    IMPORT_FAILED = "import_failed"
    """The module raised while it was imported."""
    ATTRIBUTE_MISSING = "attribute_missing"
    """The module has no such attribute."""
    FACTORY_FAILED = "factory_failed"
    """The attribute is a class or factory, and calling it with no arguments raised."""
    NOT_AN_ENGINE = "not_an_engine"
    """What the attribute gave has no ``async def decide(request)``."""


class EngineIdentity(BaseModel):
    """The engine an occurrence runs with, and what went wrong loading the one asked for."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    kind: EngineKind
    name: str
    """``builtin:accept``, the ``module:attr`` it loaded, or an embedded engine's class."""
    error: str | None = None
    """``<failure>: <detail>`` when the named engine did not load and the built-in runs
    instead; None otherwise."""

    @classmethod
    def builtin(cls, error: str | None = None) -> EngineIdentity:
        return cls(kind=EngineKind.BUILTIN, name=BUILTIN_ENGINE_NAME, error=error)
