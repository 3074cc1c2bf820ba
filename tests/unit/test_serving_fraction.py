"""``coordinator_serving_fraction``: the share of the fleet serving, during a shutdown of
what its plan holds (so it reads against ``MIN_SERVING_FRACTION``)."""

from __future__ import annotations

from collections.abc import Sequence

from policy_records import member, rollout, wave

from coordinator.api.metrics import SERVING_FRACTION_HELP, FleetRecords, families, serving_fraction
from schemas import LifecycleKind, OccurrenceRecord, OccurrenceState, RolloutRecord, RolloutStatus

NOW, TTL = 100.0, 30.0
WORK, SHUTDOWN, WAKEUP = OccurrenceState.WORK, OccurrenceState.SHUTDOWN, OccurrenceState.WAKEUP


def records(
    members: Sequence[OccurrenceRecord], rollouts: Sequence[RolloutRecord] = ()
) -> FleetRecords:
    return FleetRecords(
        now=NOW,
        member_ttl=TTL,
        members=members,
        rollouts=rollouts,
        task_events=(),
        commands=(),
        acks=(),
    )


def shutdown(status: RolloutStatus = RolloutStatus.RUNNING) -> RolloutRecord:
    """Nine planned: explorer a, no early adopter, eight general."""
    general = tuple("bcdefghi")
    return rollout(
        LifecycleKind.SHUTDOWN,
        status,
        waves=[wave(0, members=("a",)), wave(1, members=()), wave(2, members=general)],
    )


def fleet(left: str = "", *, silent: str = "", late: str = "") -> list[OccurrenceRecord]:
    """a..i in work but those ``left`` (shut down), ``silent`` (a stale heartbeat) and the
    ``late`` ones (not planned, waking up)."""
    found = []
    for oid in "abcdefghi":
        state = SHUTDOWN if oid in left else WORK
        stopped = NOW - 1 if oid in left else None
        beat = NOW - 2 * TTL if oid in silent else NOW - 1
        found.append(member(oid, state=state, stopped_at=stopped, heartbeat=beat))
    found += [member(oid, state=WAKEUP, heartbeat=NOW - 1) for oid in late]
    return found


def test_during_a_shutdown_it_is_the_planned_members_still_serving() -> None:
    assert serving_fraction(records(fleet(left="a"), [shutdown()])) == 8 / 9


def test_a_dead_member_in_work_does_not_serve() -> None:
    assert serving_fraction(records(fleet(left="a", silent="b"), [shutdown()])) == 7 / 9


def test_members_outside_the_shutdown_count_neither_way() -> None:
    # Two new occurrences waiting for the shutdown to end: not planned, not serving.
    assert serving_fraction(records(fleet(left="a", late="xy"), [shutdown()])) == 8 / 9


def test_a_paused_shutdown_is_still_in_progress() -> None:
    assert serving_fraction(records(fleet(left="a"), [shutdown(RolloutStatus.PAUSED)])) == 8 / 9


def test_without_a_shutdown_in_progress_it_is_the_live_fleet_in_work() -> None:
    done = shutdown(RolloutStatus.COMPLETED)
    # Eight live (a left, so it is no longer part of the fleet), two of them waking up.
    assert serving_fraction(records(fleet(left="a", late="xy"), [done])) == 8 / 10
    assert serving_fraction(records(fleet())) == 1.0


def test_an_empty_fleet_serves_nothing() -> None:
    assert serving_fraction(records([])) == 0.0
    assert serving_fraction(records(fleet(left="abcdefghi"))) == 0.0


def test_the_gauge_is_exported_with_its_definition() -> None:
    (family,) = [
        f
        for f in families(records(fleet(left="a"), [shutdown()]), version="v", backend="b")
        if f.name == "coordinator_serving_fraction"
    ]
    assert family.type == "gauge"
    assert family.documentation == SERVING_FRACTION_HELP
    assert [s.value for s in family.samples] == [8 / 9]
