"""Who is live, as seen by an observer that may itself have been cut off."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st
from policy_records import member

from coordinator.policy import Liveness, liveness, observe
from coordinator.policy.planning import judge_members

PROPERTY = settings(max_examples=300, deadline=None, database=None)
TTL = 30.0


def test_a_fresh_heartbeat_is_alive_to_everyone() -> None:
    m = member(heartbeat=80.0)
    assert liveness(m, 100.0, TTL, trust_staleness=True) is Liveness.FRESH
    assert liveness(m, 100.0, TTL, trust_staleness=False) is Liveness.FRESH


def test_a_stale_heartbeat_proves_death_only_to_an_observer_that_was_not_cut_off() -> None:
    m = member(heartbeat=70.0)  # exactly one TTL old: stale
    assert liveness(m, 100.0, TTL, trust_staleness=True) is Liveness.GONE
    assert liveness(m, 100.0, TTL, trust_staleness=False) is Liveness.UNKNOWN


def test_a_member_that_left_is_gone_whatever_its_heartbeat() -> None:
    m = member(heartbeat=99.0, stopped_at=99.5)
    assert liveness(m, 100.0, TTL, trust_staleness=False) is Liveness.GONE


@PROPERTY
@given(
    heartbeat=st.floats(min_value=0, max_value=200, allow_nan=False),
    stopped=st.booleans(),
    trust=st.booleans(),
)
def test_the_gate_and_the_planner_see_the_same_liveness(
    heartbeat: float, stopped: bool, trust: bool
) -> None:
    now = 100.0
    m = member("m", heartbeat=heartbeat, stopped_at=heartbeat if stopped else None)
    fresh = not stopped and now - heartbeat < TTL
    # The gate counts a member alive unless it is known gone.
    assert observe([m], now, TTL, trust_staleness=trust)["m"].alive == (
        fresh or (not stopped and not trust)
    )
    # The planner plans only members it saw alive, and waits for those it cannot judge.
    judged = judge_members(
        [m], decider="d", now=now, member_ttl=TTL, view_began=0.0, trust_staleness=trust
    )
    assert ("m" in judged.alive) == fresh
    assert ("m" in judged.unsure) == (not stopped and not fresh and not trust)
