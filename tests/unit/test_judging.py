"""Who a decider may plan (invariant 8: no ghosts), as a pure function over many fleets."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st
from policy_records import member as record

from coordinator.policy.planning import judge_members
from schemas import OccurrenceState

NOW = 1_700_000_000.0
TTL = 10.0


def member(name: str, heartbeat_age: float, *, left: bool = False, state=OccurrenceState.WORK):
    return record(
        name,
        state=state,
        heartbeat=NOW - heartbeat_age,
        stopped_at=NOW - 1 if left else None,
        started_at=NOW - 100,
    )


def judge(members, *, view_age: float, trust: bool = True):
    return judge_members(
        members,
        decider="me",
        now=NOW,
        member_ttl=TTL,
        view_began=NOW - view_age,
        trust_staleness=trust,
    )


def test_a_member_killed_just_before_a_restart_is_not_planned() -> None:
    """Its heartbeat is fresh, but older than the decider's view: it proves nothing."""
    judged = judge([member("me", 0.1), member("ghost", 3.0)], view_age=1.0)
    assert judged.alive == ("me",)
    assert judged.unsure == ("ghost",)


def test_a_member_seen_heartbeating_since_the_decider_looked_is_planned() -> None:
    judged = judge([member("me", 0.1), member("peer", 0.5)], view_age=1.0)
    assert judged.alive == ("me", "peer") and judged.unsure == ()


def test_stale_members_are_gone_only_if_the_decider_can_trust_staleness() -> None:
    fleet = [member("me", 0.1), member("old", 40.0)]
    assert judge(fleet, view_age=100.0, trust=True).unsure == ()
    assert judge(fleet, view_age=100.0, trust=False).unsure == ("old",)


def test_members_that_left_or_do_not_serve_are_never_judged() -> None:
    fleet = [
        member("me", 0.1),
        member("left", 0.1, left=True),
        member("down", 0.1, state=OccurrenceState.SHUTDOWN),
        member("failed", 0.1, state=OccurrenceState.FAILED),
    ]
    judged = judge(fleet, view_age=0.0, trust=False)
    assert judged.alive == ("me",) and judged.unsure == ()


ages = st.floats(min_value=0.0, max_value=60.0, allow_nan=False)


@settings(max_examples=300, derandomize=True)
@given(
    heartbeats=st.lists(st.tuples(ages, st.booleans()), max_size=12),
    view_age=ages,
    trust=st.booleans(),
)
def test_everyone_planned_was_seen_alive_by_the_decider(
    heartbeats: list[tuple[float, bool]], view_age: float, trust: bool
) -> None:
    fleet = [member("me", 0.0)] + [
        member(f"m{i}", age, left=left) for i, (age, left) in enumerate(heartbeats)
    ]
    by_id = {m.occurrence_id: m for m in fleet}
    judged = judge(fleet, view_age=view_age, trust=trust)
    assert not set(judged.alive) & set(judged.unsure)
    for name in judged.alive:
        if name == "me":
            continue
        m = by_id[name]
        assert m.stopped_at is None
        assert NOW - m.last_heartbeat_at < TTL, "planned with a stale heartbeat"
        assert m.last_heartbeat_at >= NOW - view_age, "planned without being seen alive"
    # Everyone left out and not unsure is gone for good: left, or stale and trusted so.
    for m in fleet[1:]:
        if m.occurrence_id not in judged.alive and m.occurrence_id not in judged.unsure:
            stale = NOW - m.last_heartbeat_at >= TTL
            assert m.stopped_at is not None or (stale and trust)
