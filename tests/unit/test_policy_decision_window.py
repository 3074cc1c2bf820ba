"""The decision window: a recent wakeup, not followed by an accepted shutdown, is in force."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st
from policy_records import rollout

from schemas import LifecycleKind
from schemas.policy import wakeup_in_force

PROPERTY = settings(max_examples=200, deadline=None, database=None)
times = st.floats(min_value=0, max_value=10_000, allow_nan=False)


def test_no_wakeup_is_in_force_before_the_first() -> None:
    assert wakeup_in_force(None, None, now=10.0, window=100.0) is None


def test_a_wakeup_decided_exactly_a_window_ago_is_still_in_force() -> None:
    wakeup = rollout(LifecycleKind.WAKEUP, created_at=100.0)
    assert wakeup_in_force(wakeup, None, now=200.0, window=100.0) is wakeup
    assert wakeup_in_force(wakeup, None, now=200.5, window=100.0) is None


def test_a_shutdown_accepted_at_the_same_moment_ends_the_wakeup() -> None:
    wakeup = rollout(LifecycleKind.WAKEUP, created_at=100.0)
    shutdown = rollout(LifecycleKind.SHUTDOWN, rollout_id="s", created_at=100.0)
    assert wakeup_in_force(wakeup, shutdown, now=150.0, window=100.0) is None


@PROPERTY
@given(wakeup_at=times, shutdown_at=st.none() | times, now=times, window=times)
def test_in_force_exactly_when_recent_and_not_followed_by_a_shutdown(
    wakeup_at: float, shutdown_at: float | None, now: float, window: float
) -> None:
    wakeup = rollout(LifecycleKind.WAKEUP, created_at=wakeup_at)
    shutdown = (
        None
        if shutdown_at is None
        else rollout(LifecycleKind.SHUTDOWN, rollout_id="s", created_at=shutdown_at)
    )
    recent = wakeup_at >= now - window
    followed = shutdown_at is not None and shutdown_at >= wakeup_at
    found = wakeup_in_force(wakeup, shutdown, now, window)
    assert found is (wakeup if recent and not followed else None)
