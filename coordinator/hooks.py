"""Lifecycle hooks: what the embedding agent does when its wave is signalled."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from schemas import CanaryGroup


@dataclass(frozen=True)
class WaveContext:
    """Tells a hook which rollout and wave it acts for (None when joining late/directly)."""

    occurrence_id: str
    rollout_id: str | None
    group: CanaryGroup | None
    reason: str | None = None


Hook = Callable[[WaveContext], Awaitable[None]]


async def _nothing(_: WaveContext) -> None:
    return None


@dataclass(frozen=True)
class LifecycleHooks:
    """``on_work``: start serving; return when ready, raise if you cannot (the occurrence
    is then ``failed`` and its wave's gate sees it). ``on_shutdown``: drain and stop;
    raising leaves the occurrence ``failed`` instead of ``shutdown``.
    ``on_emergency_stop``: reserved for the operators' emergency stop."""

    on_work: Hook = _nothing
    on_shutdown: Hook = _nothing
    on_emergency_stop: Hook = _nothing
