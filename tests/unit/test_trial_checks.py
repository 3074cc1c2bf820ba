"""The simulator's checks on hand-made audit trails: each passes a trail that keeps its
invariant and reports the one that breaks it (the check is proven by the break)."""

from __future__ import annotations

from typing import Any

import pytest

from coordinator.faults import ALL_FAULTS, FaultKind, FaultWindow, draw_faults, parse_kinds
from coordinator.trial_checks import (
    acted_after_stop,
    acted_unsignalled,
    claims_after_decision,
    healthy_holders_taken_over,
    left_without_shutdown,
    slow_decisions,
)
from schemas import CanaryGroup, EventKind, EventRecord

EXPLORER = CanaryGroup.EXPLORER


def trail(*rows: tuple[Any, ...]) -> list[EventRecord]:
    """Events from ``(kind, who, at, details, wave?)`` rows, numbered in order."""
    events = []
    for number, (kind, who, at, details, *wave) in enumerate(rows, start=1):
        events.append(
            EventRecord(
                event_id=number,
                at=at,
                kind=kind,
                occurrence_id=who,
                rollout_id="r",
                task_id="r",
                wave=wave[0] if wave else None,
                details=details,
            )
        )
    return events


def registered(who: str, incarnation: str, at: float = 0.0) -> tuple[Any, ...]:
    return (EventKind.OCCURRENCE_REGISTERED, who, at, {"incarnation_id": incarnation})


def test_a_claim_after_the_decision_is_reported() -> None:
    decided = (EventKind.DECISION_MADE, "a", 1.0, {})
    claimed = (EventKind.TASK_CLAIMED, "b", 2.0, {"fencing_token": 2})

    assert claims_after_decision(trail(claimed, decided)) == []
    assert claims_after_decision(trail(decided, claimed)) == ["b claimed r after it was decided"]


def test_a_task_given_back_after_the_decision_is_reported() -> None:
    decided = (EventKind.DECISION_MADE, "a", 1.0, {})
    released = (EventKind.TASK_RELEASED, "b", 2.0, {"error": "stale"})

    assert claims_after_decision(trail(released, decided)) == []
    assert claims_after_decision(trail(decided, released)) == ["b gave r back after it was decided"]


@pytest.mark.parametrize("faulted", [set(), {"a-1"}])
def test_a_takeover_is_reported_only_from_a_holder_no_fault_struck(faulted: set[str]) -> None:
    events = trail(
        registered("a", "a-1"),
        (EventKind.TASK_CLAIMED, "a", 1.0, {"fencing_token": 1}),
        (EventKind.TASK_CLAIMED, "b", 20.0, {"fencing_token": 2, "took_over_from": "a"}),
    )

    found = healthy_holders_taken_over(events, faulted)

    assert bool(found) == (not faulted), found


def test_the_decider_holds_the_driver_lease_it_was_given() -> None:
    events = trail(
        registered("a", "a-1"),
        (EventKind.DECISION_MADE, "a", 1.0, {}),
        (EventKind.DRIVER_ACQUIRED, "b", 5.0, {"driver_token": 2, "took_over_from": "a"}),
    )

    assert healthy_holders_taken_over(events, set()) == [
        "b took the driver lease of r from a, which no fault had struck"
    ]


def test_nothing_moves_after_a_fleet_wide_stop_is_accepted() -> None:
    stop = (EventKind.COMMAND_ACCEPTED, None, 5.0, {"command": "emergency_shutdown"})
    ack = (EventKind.EMERGENCY_ACKNOWLEDGED, "a", 6.0, {})
    signal = (EventKind.WAVE_SIGNALLED, "d", 7.0, {"members": ["a"]}, EXPLORER)
    to_work = (EventKind.OCCURRENCE_STATE_CHANGED, "a", 8.0, {"to": "work"})
    leaving = (EventKind.OCCURRENCE_STATE_CHANGED, "a", 8.0, {"to": "shutdown"})

    assert acted_after_stop(trail(signal, to_work, stop, ack, leaving)) == []
    assert acted_after_stop(trail(stop, ack, signal, to_work)) == [
        "r: explorer signalled after the emergency stop",
        "a went to work after acknowledging the stop",
    ]


def test_a_member_acting_for_a_wave_no_signal_named_is_reported() -> None:
    signal = (EventKind.WAVE_SIGNALLED, "d", 1.0, {"members": ["a"]}, EXPLORER)
    a_acts = (EventKind.OCCURRENCE_STATE_CHANGED, "a", 2.0, {"to": "work"}, EXPLORER)
    b_acts = (EventKind.OCCURRENCE_STATE_CHANGED, "b", 2.0, {"to": "work"}, EXPLORER)

    assert acted_unsignalled(trail(signal, a_acts)) == []
    assert acted_unsignalled(trail(signal, a_acts, b_acts)) == ["b acted for explorer of r unnamed"]


def test_leaving_after_a_rejected_shutdown_is_reported() -> None:
    serving = (EventKind.OCCURRENCE_STATE_CHANGED, "a", 1.0, {"to": "work"})
    leaving = (EventKind.OCCURRENCE_STATE_CHANGED, "a", 2.0, {"to": "shutting_down"})

    assert left_without_shutdown(trail(serving)) == []
    assert len(left_without_shutdown(trail(serving, leaving))) == 1


@pytest.mark.parametrize(
    ("claimed_at", "decided_at", "late"),
    [
        (0.0, 40.0, False),  # the first claimer waits out the grace from the task's creation
        (20.0, 40.0, False),  # a takeover ends discovery where the first would have
        (20.0, 50.0, False),  # ... or waits a member TTL for members it cannot judge
        (20.0, 60.0, True),  # a takeover that started discovery again
    ],
)
def test_a_decision_later_than_discovery_allows_is_reported(
    claimed_at: float, decided_at: float, late: bool
) -> None:
    events = trail(
        registered("a", "a-1"),
        (EventKind.TASK_CLAIMED, "a", claimed_at, {"fencing_token": 1}),
        (EventKind.DECISION_MADE, "a", decided_at, {}),
    )

    found = slow_decisions(
        events, {"r": 0.0}, grace=40.0, member_ttl=30.0, slack=3.0, faulted=set()
    )

    assert bool(found) == late, found
    assert (
        slow_decisions(events, {"r": 0.0}, grace=40.0, member_ttl=30.0, slack=3.0, faulted={"a-1"})
        == []
    )


def test_a_seed_draws_the_same_faults_every_time_and_seeds_differ() -> None:
    window = FaultWindow()
    drawn = [draw_faults(seed, 9, ALL_FAULTS, window) for seed in range(50)]

    assert drawn == [draw_faults(seed, 9, ALL_FAULTS, window) for seed in range(50)]
    assert len(set(drawn)) == 50
    kinds = {f.kind for faults in drawn for f in faults}
    assert kinds == set(ALL_FAULTS), "fifty seeds draw every kind"
    for faults in drawn:
        assert all(window.start <= f.at <= window.end for f in faults)
        assert all(1 <= f.occurrence <= 9 for f in faults)


def test_fault_kinds_parse_and_unknown_ones_are_named() -> None:
    assert parse_kinds("all") == ALL_FAULTS
    assert parse_kinds("none") == ()
    assert parse_kinds("crash, pause,crash") == (FaultKind.CRASH, FaultKind.PAUSE)
    with pytest.raises(ValueError, match="unknown fault meteor"):
        parse_kinds("crash,meteor")
    assert draw_faults(1, 9, (), FaultWindow()) == ()
