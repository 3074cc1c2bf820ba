"""The per-kind description: one record per lifecycle kind, consistent with itself."""

from __future__ import annotations

import pytest

from schemas import KIND_POLICIES, LifecycleKind, OccurrenceState, kind_policy


def test_every_kind_is_described_once() -> None:
    assert set(KIND_POLICIES) == set(LifecycleKind)
    for kind, policy in KIND_POLICIES.items():
        assert policy.kind is kind
        assert kind_policy(kind) is policy


@pytest.mark.parametrize("kind", list(LifecycleKind))
def test_a_member_on_its_way_is_not_yet_at_the_target(kind: LifecycleKind) -> None:
    policy = kind_policy(kind)
    assert policy.target_state not in policy.pending_states
    assert not policy.target_state.is_terminal or not policy.target_needs_heartbeat
    assert OccurrenceState.FAILED not in policy.pending_states


def test_the_driver_leaves_last_only_where_members_leave() -> None:
    for policy in KIND_POLICIES.values():
        assert not policy.driver_leaves_last or policy.members_leave


def test_what_differs_by_kind() -> None:
    wakeup, shutdown = kind_policy(LifecycleKind.WAKEUP), kind_policy(LifecycleKind.SHUTDOWN)
    assert (wakeup.target_state, shutdown.target_state) == (
        OccurrenceState.WORK,
        OccurrenceState.SHUTDOWN,
    )
    assert wakeup.one_member_passes and not shutdown.one_member_passes
    assert wakeup.waits_for_discovery and not shutdown.waits_for_discovery
    assert wakeup.joins_decision_in_force and not shutdown.joins_decision_in_force
    assert shutdown.refuses_while_open and not wakeup.refuses_while_open
