"""The health gate between waves: classify() per member, evaluate_gate() per wave."""

from __future__ import annotations

from collections.abc import Mapping

import pytest

from coordinator.policy.gate import GateOutcome, GateVerdict, MemberStatus, classify, evaluate_gate
from schemas import LifecycleKind, OccurrenceState

WAKEUP, SHUTDOWN = LifecycleKind.WAKEUP, LifecycleKind.SHUTDOWN
S = OccurrenceState
PASS, FAIL, WAIT = GateOutcome.PASS, GateOutcome.FAIL, GateOutcome.WAIT


def alive(state: OccurrenceState) -> MemberStatus:
    return MemberStatus(state=state, alive=True)


def dead(state: OccurrenceState) -> MemberStatus:
    return MemberStatus(state=state, alive=False)


def gate(
    kind: LifecycleKind,
    observed: Mapping[str, MemberStatus],
    *,
    members: tuple[str, ...] | None = None,
    final: bool = False,
    timed_out: bool = False,
    exclude: tuple[str, ...] = (),
) -> GateVerdict:
    return evaluate_gate(
        kind,
        tuple(observed) if members is None else members,
        observed,
        final=final,
        timed_out=timed_out,
        exclude=exclude,
    )


# --- classify -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        (None, "failed"),
        (alive(S.WORK), "reached"),
        (dead(S.WORK), "failed"),  # in work but its heartbeat is stale
        (alive(S.STARTING), "pending"),
        (alive(S.WAKEUP), "pending"),
        (dead(S.STARTING), "failed"),
        (dead(S.WAKEUP), "failed"),
        (alive(S.SHUTTING_DOWN), "failed"),
        (alive(S.SHUTDOWN), "failed"),
        (alive(S.FAILED), "failed"),
        (dead(S.FAILED), "failed"),
    ],
)
def test_classify_wakeup(status: MemberStatus | None, expected: str) -> None:
    assert classify(WAKEUP, status) == expected


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        (None, "failed"),
        (alive(S.SHUTDOWN), "reached"),
        (dead(S.SHUTDOWN), "reached"),  # a clean shutdown stops heartbeating: still reached
        (alive(S.FAILED), "failed"),
        (dead(S.FAILED), "failed"),
        (dead(S.WORK), "failed"),  # died without shutting down cleanly
        (dead(S.SHUTTING_DOWN), "failed"),
        (alive(S.WORK), "pending"),
        (alive(S.SHUTTING_DOWN), "pending"),
        (alive(S.STARTING), "pending"),
        (alive(S.WAKEUP), "pending"),
    ],
)
def test_classify_shutdown(status: MemberStatus | None, expected: str) -> None:
    assert classify(SHUTDOWN, status) == expected


# --- wakeup -------------------------------------------------------------------------------


def test_wakeup_non_final_wave_passes_as_soon_as_one_member_is_in_work() -> None:
    verdict = gate(WAKEUP, {"a": alive(S.WORK), "b": alive(S.WAKEUP), "c": alive(S.FAILED)})

    assert verdict == GateVerdict(PASS, reached=("a",), failed=("c",), pending=("b",))


def test_wakeup_final_wave_waits_for_pending_members_before_passing() -> None:
    observed = {"a": alive(S.WORK), "b": alive(S.WAKEUP)}

    assert gate(WAKEUP, observed, final=True).outcome is WAIT

    observed["b"] = alive(S.WORK)
    assert gate(WAKEUP, observed, final=True) == GateVerdict(PASS, ("a", "b"), (), ())


def test_wakeup_final_wave_with_partial_failure_passes_once_everyone_settled() -> None:
    verdict = gate(WAKEUP, {"a": alive(S.WORK), "b": alive(S.FAILED)}, final=True)

    assert verdict == GateVerdict(PASS, reached=("a",), failed=("b",), pending=())


@pytest.mark.parametrize("final", [False, True])
def test_wakeup_fails_before_timeout_when_every_member_settled_without_work(final: bool) -> None:
    observed = {"a": alive(S.FAILED), "b": dead(S.WAKEUP), "c": dead(S.WORK)}

    verdict = gate(WAKEUP, observed, members=("a", "b", "c", "unseen"), final=final)

    assert verdict == GateVerdict(FAIL, reached=(), failed=("a", "b", "c", "unseen"), pending=())


@pytest.mark.parametrize("final", [False, True])
def test_wakeup_waits_while_nobody_reached_and_someone_is_pending(final: bool) -> None:
    verdict = gate(WAKEUP, {"a": alive(S.WAKEUP), "b": alive(S.FAILED)}, final=final)

    assert verdict.outcome is WAIT
    assert verdict.pending == ("a",)


@pytest.mark.parametrize("final", [False, True])
def test_wakeup_timeout_without_anyone_in_work_fails(final: bool) -> None:
    verdict = gate(
        WAKEUP, {"a": alive(S.WAKEUP), "b": alive(S.STARTING)}, final=final, timed_out=True
    )

    assert verdict == GateVerdict(FAIL, reached=(), failed=(), pending=("a", "b"))


def test_wakeup_final_wave_timeout_passes_if_someone_reached_and_reports_the_stragglers() -> None:
    verdict = gate(WAKEUP, {"a": alive(S.WORK), "b": alive(S.WAKEUP)}, final=True, timed_out=True)

    assert verdict == GateVerdict(PASS, reached=("a",), failed=(), pending=("b",))


# --- shutdown -----------------------------------------------------------------------------


def test_shutdown_passes_only_when_every_member_reached_shutdown() -> None:
    observed = {"a": dead(S.SHUTDOWN), "b": alive(S.SHUTTING_DOWN)}

    assert gate(SHUTDOWN, observed).outcome is WAIT

    observed["b"] = alive(S.SHUTDOWN)
    assert gate(SHUTDOWN, observed) == GateVerdict(PASS, ("a", "b"), (), ())


@pytest.mark.parametrize("final", [False, True])
def test_shutdown_is_all_or_nothing(final: bool) -> None:
    observed = {"a": dead(S.SHUTDOWN), "b": dead(S.SHUTDOWN), "c": alive(S.FAILED)}

    verdict = gate(SHUTDOWN, observed, final=final)

    assert verdict == GateVerdict(FAIL, reached=("a", "b"), failed=("c",), pending=())


def test_shutdown_waits_while_a_member_is_still_shutting_down_even_if_one_failed() -> None:
    verdict = gate(SHUTDOWN, {"a": alive(S.FAILED), "b": alive(S.SHUTTING_DOWN)})

    assert verdict.outcome is WAIT


def test_shutdown_timeout_fails_with_stuck_members_pending() -> None:
    verdict = gate(SHUTDOWN, {"a": dead(S.SHUTDOWN), "b": alive(S.WORK)}, timed_out=True)

    assert verdict == GateVerdict(FAIL, reached=("a",), failed=(), pending=("b",))


def test_timed_out_flag_does_not_turn_a_passing_wave_into_a_failure() -> None:
    assert gate(SHUTDOWN, {"a": dead(S.SHUTDOWN)}, timed_out=True).outcome is PASS
    assert gate(WAKEUP, {"a": alive(S.WORK)}, final=True, timed_out=True).outcome is PASS


# --- exclude and empty waves --------------------------------------------------------------


def test_excluded_members_are_not_judged() -> None:
    observed = {"driver": alive(S.WORK), "a": dead(S.SHUTDOWN), "b": dead(S.SHUTDOWN)}

    assert gate(SHUTDOWN, observed).outcome is WAIT
    verdict = gate(SHUTDOWN, observed, exclude=("driver",))
    assert verdict == GateVerdict(PASS, reached=("a", "b"), failed=(), pending=())


def test_excluding_a_failed_member_lets_a_wakeup_wave_pass_without_it() -> None:
    observed = {"a": alive(S.WORK), "b": alive(S.FAILED)}

    verdict = gate(WAKEUP, observed, final=True, exclude=("b",))

    assert verdict == GateVerdict(PASS, reached=("a",), failed=(), pending=())


@pytest.mark.parametrize("kind", [WAKEUP, SHUTDOWN])
def test_empty_wave_passes(kind: LifecycleKind) -> None:
    assert gate(kind, {}, members=(), final=True) == GateVerdict(PASS, (), (), ())


@pytest.mark.parametrize("kind", [WAKEUP, SHUTDOWN])
def test_wave_whose_only_member_is_excluded_passes(kind: LifecycleKind) -> None:
    verdict = gate(kind, {"driver": alive(S.WORK)}, final=True, exclude=("driver",))

    assert verdict == GateVerdict(PASS, (), (), ())
