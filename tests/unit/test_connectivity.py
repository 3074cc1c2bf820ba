"""The guard that keeps an occurrence from taking members cut off with it for gone."""

from __future__ import annotations

import math

from coordinator.clock import FakeClock
from coordinator.connectivity import GAP_FACTOR, Connectivity

HEARTBEAT = 2.0  # seconds between heartbeats


def test_an_occurrence_that_never_missed_a_heartbeat_trusts_staleness_at_once() -> None:
    clock = FakeClock()
    seen = Connectivity(clock, HEARTBEAT)
    assert seen.unbroken_for() == math.inf
    for _ in range(5):
        clock.advance(HEARTBEAT)
        seen.heartbeat_landed()
        assert seen.unbroken_for() == math.inf


def test_an_overdue_heartbeat_means_no_view_of_the_database() -> None:
    clock = FakeClock()
    seen = Connectivity(clock, HEARTBEAT)
    clock.advance(GAP_FACTOR * HEARTBEAT)  # exactly the gap: still one view
    assert seen.unbroken_for() == math.inf
    clock.advance(0.1)  # a write hung by a partition has not landed yet
    assert seen.unbroken_for() == 0.0


def test_after_a_gap_the_view_counts_from_the_first_heartbeat_that_landed() -> None:
    clock = FakeClock()
    seen = Connectivity(clock, HEARTBEAT)
    clock.advance(25.0)  # a partition: no heartbeat lands
    assert seen.unbroken_for() == 0.0
    seen.heartbeat_landed()  # the link heals
    assert seen.unbroken_for() == 0.0
    for beat in range(1, 6):
        clock.advance(HEARTBEAT)
        seen.heartbeat_landed()
        assert seen.unbroken_for() == beat * HEARTBEAT


def test_a_second_gap_starts_the_count_again() -> None:
    clock = FakeClock()
    seen = Connectivity(clock, HEARTBEAT)
    clock.advance(10.0)
    seen.heartbeat_landed()
    clock.advance(HEARTBEAT)
    seen.heartbeat_landed()
    assert seen.unbroken_for() == HEARTBEAT
    clock.advance(3 * HEARTBEAT)  # overdue again
    assert seen.unbroken_for() == 0.0
    seen.heartbeat_landed()
    clock.advance(1.0)
    assert seen.unbroken_for() == 1.0
