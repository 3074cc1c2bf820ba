"""Every database retry of this package, as one policy on tenacity.

Each retry names how many attempts it makes, how long it waits between them, and which
errors it retries (the caller's predicate, ``transient.is_transient`` for database
errors); tenacity runs the loop and waits with anyio's sleep, so a retry never blocks the
event loop. Code that runs synchronously inside SQLAlchemy's async adaptation (a
``connect`` event) waits the same way through ``await_only``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import anyio
from sqlalchemy.util import await_only
from tenacity import (
    AsyncRetrying,
    RetryCallState,
    Retrying,
    retry_if_exception,
    stop_after_attempt,
    stop_never,
    wait_exponential,
    wait_incrementing,
)
from tenacity.stop import StopBaseT
from tenacity.wait import WaitBaseT

Retryable = Callable[[BaseException], bool]
"""True for an error that a retry may cure."""
BeforeSleep = Callable[[RetryCallState], None]
"""Called after a failed attempt, before waiting (``state.upcoming_sleep`` seconds)."""


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how patiently to retry: waits from ``first_delay`` seconds, doubled
    (``doubling``) or grown by ``first_delay`` per attempt, up to ``max_delay``."""

    attempts: int | None
    """Attempts in all, the first included; None for no limit."""
    first_delay: float
    max_delay: float
    doubling: bool = True

    def stop(self) -> StopBaseT:
        return stop_never if self.attempts is None else stop_after_attempt(self.attempts)

    def wait(self) -> WaitBaseT:
        if self.doubling:
            return wait_exponential(multiplier=self.first_delay, max=self.max_delay)
        return wait_incrementing(
            start=self.first_delay, increment=self.first_delay, max=self.max_delay
        )

    def after_first_attempt(self) -> RetryPolicy:
        """The rest of this policy once its first attempt failed and its first wait was
        waited: the same later waits and the same number of attempts in all. (A caller
        makes the first attempt itself, outside tenacity, where it nearly always succeeds.)"""
        assert self.doubling, "only a doubling policy is shifted by one attempt"
        rest = None if self.attempts is None else self.attempts - 1
        return RetryPolicy(rest, 2 * self.first_delay, self.max_delay)

    def first_wait(self) -> float:
        """The wait after the first attempt fails."""
        return min(self.first_delay, self.max_delay)


TRANSACTION = RetryPolicy(attempts=8, first_delay=0.05, max_delay=1.0)
"""One Store transaction: about 3.6 s of waiting in all, then the Store reports itself
degraded (``DatabaseUnavailable``) and the caller's own loop tries again later."""
SCHEMA = RetryPolicy(attempts=50, first_delay=0.02, max_delay=0.5, doubling=False)
"""Creating the schema while other processes start: a starting occurrence waits out a
busy file or a full server."""
WAL_SWITCH = RetryPolicy(attempts=50, first_delay=0.02, max_delay=0.02, doubling=False)
"""Switching a fresh SQLite file to WAL, which needs a moment of exclusive access."""
RECONNECT = RetryPolicy(attempts=None, first_delay=1.0, max_delay=10.0)
"""The change feed's listening connection: forever, polling meanwhile."""


def retrying(
    policy: RetryPolicy,
    retry_on: Retryable,
    *,
    before_sleep: BeforeSleep | None = None,
    reraise: bool = True,
) -> AsyncRetrying:
    """An async retry of ``policy`` on errors ``retry_on`` accepts; any other error is
    raised at once. When the attempts run out the last error is raised (``reraise``) or
    a ``tenacity.RetryError`` holding it."""
    return AsyncRetrying(
        stop=policy.stop(),
        wait=policy.wait(),
        retry=retry_if_exception(retry_on),
        sleep=anyio.sleep,
        before_sleep=before_sleep,
        reraise=reraise,
    )


def retrying_in_greenlet(policy: RetryPolicy, retry_on: Retryable) -> Retrying:
    """A synchronous retry for code SQLAlchemy runs inside its async adaptation (an event
    listener of an async engine): its waits suspend the task, not the event loop thread."""
    return Retrying(
        stop=policy.stop(),
        wait=policy.wait(),
        retry=retry_if_exception(retry_on),
        sleep=_sleep_in_greenlet,
        reraise=True,
    )


def _sleep_in_greenlet(seconds: float) -> None:
    await_only(anyio.sleep(seconds))
