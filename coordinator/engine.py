"""The decision engine seam: the agent's own wakeup affirmation and shutdown consent."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from schemas import LifecycleKind, RolloutPlan


@dataclass(frozen=True)
class DecisionRequest:
    """What the deciding occurrence is asked, on behalf of every occurrence."""

    kind: LifecycleKind
    task_id: str
    """The shared task decided: stable across retries, usable as an idempotency key."""
    occurrence_id: str
    message: str
    """The FSD's multi-occurrence message, rendered with the real wave plan."""
    plan: RolloutPlan
    reason: str | None = None
    """Why a shutdown was requested (None for wakeup)."""


class EngineTimeout(TimeoutError):
    """The decision engine did not answer within ``decision_timeout``."""


@dataclass(frozen=True)
class EngineAnswer:
    accept: bool
    reason: str


@runtime_checkable
class DecisionEngine(Protocol):
    """Usually an LLM call. Called once per shared task, by the occurrence that claimed it.

    Raising an exception gives the task back, so another attempt decides it.
    """

    async def decide(self, request: DecisionRequest) -> EngineAnswer: ...


class AcceptingEngine:
    """Accepts every wakeup and shutdown. For demos, tests and ``run``."""

    async def decide(self, request: DecisionRequest) -> EngineAnswer:
        return EngineAnswer(
            accept=True, reason=f"{request.kind.value} accepted by the built-in engine"
        )


class ScriptedEngine:
    """Answers from a fixed script per kind; counts its calls (for ``simulate``)."""

    def __init__(self, *, accept_wakeup: bool = True, accept_shutdown: bool = True) -> None:
        self._accept = {
            LifecycleKind.WAKEUP: accept_wakeup,
            LifecycleKind.SHUTDOWN: accept_shutdown,
        }
        self.requests: list[DecisionRequest] = []

    async def decide(self, request: DecisionRequest) -> EngineAnswer:
        self.requests.append(request)
        accept = self._accept[request.kind]
        verdict = "accepted" if accept else "rejected"
        return EngineAnswer(accept=accept, reason=f"{request.kind.value} {verdict} by script")
