"""Loading the decision engine named by ``COORDINATOR_ENGINE`` (``package.module:attr``).

The attribute may be an engine instance, a class, or a factory called with no arguments.
A name that does not load is a start-up error: silently falling back to the built-in
engine, which accepts everything, would decide for the whole fleet without the agent.
"""

from __future__ import annotations

import importlib
import inspect
from dataclasses import dataclass
from typing import cast

from coordinator.engine import AcceptingEngine, DecisionEngine
from schemas import ConfigurationError

SETTING = "COORDINATOR_ENGINE"


@dataclass(frozen=True)
class LoadedEngine:
    engine: DecisionEngine
    source: str
    """What loaded: ``builtin:accept`` or the ``module:attr`` it came from."""


def load_engine(spec: str | None) -> LoadedEngine:
    if not spec:
        return LoadedEngine(AcceptingEngine(), "builtin:accept")
    module_name, sep, attribute = spec.partition(":")
    if not sep or not module_name or not attribute:
        raise ConfigurationError(f"{SETTING}: {spec!r} is not of the form package.module:attribute")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise ConfigurationError(f"{SETTING}: cannot import {module_name!r}: {exc}") from exc
    try:
        target = getattr(module, attribute)
    except AttributeError:
        raise ConfigurationError(
            f"{SETTING}: module {module_name!r} has no attribute {attribute!r}"
        ) from None
    engine: object = target
    if inspect.isclass(target) or inspect.isfunction(target):
        try:
            engine = target()
        except Exception as exc:
            raise ConfigurationError(f"{SETTING}: calling {spec!r} failed: {exc!r}") from exc
    decide = getattr(engine, "decide", None)
    if decide is None or not inspect.iscoroutinefunction(decide):
        raise ConfigurationError(
            f"{SETTING}: {spec!r} gave {type(engine).__name__}, which has no "
            "'async def decide(request)'"
        )
    return LoadedEngine(cast(DecisionEngine, engine), spec)
