"""Loading the decision engine named by ``COORDINATOR_ENGINE`` (``package.module:attr``).

The attribute may be an engine instance, a class, or a factory called with no arguments.

A name that does not load does not stop the occurrence: it runs with the built-in engine,
and what went wrong is recorded with its membership (``EngineIdentity.error``), logged
as ``engine_load_failed``, shown by ``status`` and ``/v1/diagnostics`` and failed by
``smoke --expect-engine``. Refusing to start would turn a bad engine roll-out into an
outage of every occurrence it reached, and would leave nothing in the database to say
why; rolling back is unsetting the setting. The built-in engine accepts everything, so
an occurrence on it by fallback never claims a decision (``member_policy.next_action``):
it follows the decisions of those whose engine loaded; ``smoke --expect-engine`` after
every change of the engine finds the ones that fell back.
"""

from __future__ import annotations

import importlib
import inspect
from dataclasses import dataclass
from typing import cast

from coordinator.engine import AcceptingEngine, DecisionEngine
from schemas import ConfigurationError, EngineIdentity, EngineKind, EngineLoadFailure

SETTING = "COORDINATOR_ENGINE"


class EngineLoadError(ConfigurationError):
    """The engine named by ``COORDINATOR_ENGINE`` did not load, and why (``failure``)."""

    def __init__(self, failure: EngineLoadFailure, detail: str) -> None:
        super().__init__(f"{SETTING}: {detail}")
        self.failure = failure
        self.detail = detail

    @property
    def recorded(self) -> str:
        """What the membership row keeps: ``<failure>: <detail>``."""
        return f"{self.failure.value}: {self.detail}"


@dataclass(frozen=True)
class LoadedEngine:
    engine: DecisionEngine
    identity: EngineIdentity
    failure: EngineLoadError | None = None
    """Why the engine asked for did not load (then ``engine`` is the built-in one)."""

    @property
    def source(self) -> str:
        """What loaded: ``builtin:accept`` or the ``module:attr`` it came from."""
        return self.identity.name


def load_engine(spec: str | None) -> LoadedEngine:
    """The engine ``spec`` names, or the built-in one when it is unset or does not load."""
    if not spec:
        return LoadedEngine(AcceptingEngine(), EngineIdentity.builtin())
    try:
        engine = import_engine(spec)
    except EngineLoadError as exc:
        return LoadedEngine(AcceptingEngine(), EngineIdentity.builtin(exc.recorded), exc)
    return LoadedEngine(engine, EngineIdentity(kind=EngineKind.EXTERNAL, name=spec))


def identify(engine: DecisionEngine) -> EngineIdentity:
    """The identity of an engine handed to the runtime by an embedding program."""
    if type(engine) is AcceptingEngine:
        return EngineIdentity.builtin()
    kind = type(engine)
    return EngineIdentity(kind=EngineKind.EXTERNAL, name=f"{kind.__module__}:{kind.__qualname__}")


def import_engine(spec: str) -> DecisionEngine:
    """The engine ``spec`` (``package.module:attr``) names; ``EngineLoadError`` if none."""
    module_name, sep, attribute = spec.partition(":")
    if not sep or not module_name or not attribute:
        raise EngineLoadError(
            EngineLoadFailure.MALFORMED_NAME,
            f"{spec!r} is not of the form package.module:attribute",
        )
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        raise EngineLoadError(
            EngineLoadFailure.MODULE_MISSING, f"cannot import {module_name!r}: {exc}"
        ) from exc
    except Exception as exc:  # the module is user code: whatever it raises is the finding
        raise EngineLoadError(
            EngineLoadFailure.IMPORT_FAILED, f"importing {module_name!r} failed: {exc!r}"
        ) from exc
    try:
        target = getattr(module, attribute)
    except AttributeError:
        raise EngineLoadError(
            EngineLoadFailure.ATTRIBUTE_MISSING,
            f"module {module_name!r} has no attribute {attribute!r}",
        ) from None
    engine: object = target
    if inspect.isclass(target) or inspect.isfunction(target):
        try:
            engine = target()
        except Exception as exc:
            raise EngineLoadError(
                EngineLoadFailure.FACTORY_FAILED, f"calling {spec!r} failed: {exc!r}"
            ) from exc
    decide = getattr(engine, "decide", None)
    if decide is None or not inspect.iscoroutinefunction(decide):
        raise EngineLoadError(
            EngineLoadFailure.NOT_AN_ENGINE,
            f"{spec!r} gave {type(engine).__name__}, which has no 'async def decide(request)'",
        )
    return cast(DecisionEngine, engine)
