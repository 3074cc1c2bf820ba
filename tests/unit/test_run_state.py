"""The run state of an occurrence: any sequence of events keeps it legal, and the exit
code of ``run`` is a function of the reason the run ended."""

from __future__ import annotations

import contextlib
from collections.abc import Callable

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from coordinator.cli.options import EXIT_EMERGENCY, EXIT_FAILED, EXIT_OK
from coordinator.cli.run_cmd import EXIT_CODES
from coordinator.run_state import (
    AUDIT_RUN_STATE,
    CLOSES,
    CRASHES,
    DEPARTURES,
    IllegalTransition,
    LeaveReason,
    Run,
    RunStatus,
    close,
    crash,
    depart,
    enter_phase,
    left,
    registered,
    stopped,
)
from schemas import CommandKind, CommandRecord, CommandStatus, OccurrenceState

COMMAND = CommandRecord(
    command_id="cmd-1",
    kind=CommandKind.EMERGENCY_SHUTDOWN,
    status=CommandStatus.ACCEPTED,
    issued_by="operator",
    reason="drill",
    created_at=1.0,
)

Event = Callable[[Run], Run]

# Each status a run may move to from each status (staying put is always allowed).
LEGAL_MOVES: dict[RunStatus, set[RunStatus]] = {
    RunStatus.STARTING: {RunStatus.SERVING, RunStatus.CLOSING, RunStatus.STOPPED},
    RunStatus.SERVING: {RunStatus.DEPARTING, RunStatus.CLOSING, RunStatus.STOPPED},
    RunStatus.DEPARTING: {RunStatus.LEFT, RunStatus.CLOSING, RunStatus.STOPPED},
    RunStatus.LEFT: {RunStatus.STOPPED},
    RunStatus.CLOSING: {RunStatus.STOPPED},
    RunStatus.STOPPED: set(),
}


def _depart(reason: LeaveReason) -> Event:
    command = COMMAND if reason is LeaveReason.EMERGENCY_STOP else None
    return lambda run: depart(run, reason, command=command)


events: st.SearchStrategy[Event] = st.one_of(
    st.just(registered),
    st.just(left),
    st.just(stopped),
    st.sampled_from(list(OccurrenceState)).map(lambda p: lambda run: enter_phase(run, p)),
    st.sampled_from(list(LeaveReason)).map(_depart),
    st.sampled_from(list(LeaveReason)).map(lambda r: lambda run: close(run, r)),
    st.booleans().map(lambda s: lambda run: crash(run, RuntimeError("boom"), superseded=s)),
)

# Most runs register first (the rest show what a run refuses before it has).
sequences = st.tuples(st.booleans(), st.lists(events, max_size=12)).map(
    lambda t: [registered, *t[1]] if t[0] else t[1]
)


def _check(run: Run) -> None:
    """What holds of every run, whatever happened to it."""
    ending = run.status not in (RunStatus.STARTING, RunStatus.SERVING)
    assert (run.reason is not None) == ending, run
    assert (run.error is not None) == (run.reason in CRASHES), run
    # The command that stopped it is kept even if it then crashed on its way out.
    if run.reason is LeaveReason.EMERGENCY_STOP:
        assert run.command is not None
    if run.command is not None:
        assert run.reason is LeaveReason.EMERGENCY_STOP or run.reason in CRASHES
    if run.status is RunStatus.DEPARTING:
        assert run.reason in DEPARTURES
    if run.status is RunStatus.STARTING:
        assert run.phase is OccurrenceState.STARTING
    if run.reason is not None:
        assert run.audit_reason is not None and run.audit_reason.startswith(run.reason.value)


@settings(max_examples=500)
@given(sequences)
def test_no_sequence_of_events_makes_an_illegal_run(sequence: list[Event]) -> None:
    run = Run()
    for event in sequence:
        try:
            after = event(run)
        except IllegalTransition:
            continue  # refused: the run is as it was
        _check(after)
        assert after.status is run.status or after.status in LEGAL_MOVES[run.status]
        # Once winding down, always winding down; a crash is the last word on why.
        assert after.winding_down or not run.winding_down
        if run.reason in CRASHES:
            assert after.reason is run.reason and after.error is run.error
        elif run.reason is not None and after.reason is not run.reason:
            # The first reason stands, unless an emergency stop outranks an unwritten
            # departure, or a crash outranks anything.
            assert after.reason in CRASHES or (
                after.reason is LeaveReason.EMERGENCY_STOP and run.status is RunStatus.DEPARTING
            ), (run, after)
        run = after


@settings(max_examples=500)
@given(sequences)
def test_the_exit_code_is_a_function_of_the_reason(sequence: list[Event]) -> None:
    run = Run()
    for event in sequence:
        with contextlib.suppress(IllegalTransition):
            run = event(run)
    if run.status is not RunStatus.STOPPED:
        run = stopped(run)
    assert run.reason is not None  # every run that returned ended for a reason
    code = EXIT_CODES[run.reason]
    if run.error is not None:
        assert code == EXIT_FAILED
    elif run.command is not None:
        assert code == EXIT_EMERGENCY
    elif run.reason in (LeaveReason.COORDINATED_SHUTDOWN, LeaveReason.STOP_SIGNAL):
        assert code == EXIT_OK
    elif run.reason is not LeaveReason.CLOSED:  # a failure, a crash, a rejected wakeup
        assert code == EXIT_FAILED


def test_every_reason_has_an_exit_code_and_an_audit_run_state() -> None:
    assert set(EXIT_CODES) == set(LeaveReason) == set(AUDIT_RUN_STATE)
    assert set(LeaveReason) == DEPARTURES | CLOSES | CRASHES


def test_a_coordinated_shutdown_is_a_departure_then_a_stop() -> None:
    run = registered(Run())
    run = enter_phase(run, OccurrenceState.SHUTDOWN)
    run = depart(run, LeaveReason.COORDINATED_SHUTDOWN)
    assert not run.winding_down and run.leave_begun  # its loops run while it writes
    run = left(run)
    assert run.winding_down and not run.leave_unwritten
    run = stopped(run)
    assert run.reason is LeaveReason.COORDINATED_SHUTDOWN
    assert run.audit_reason == "coordinated shutdown"


def test_a_signal_closes_a_serving_run_and_its_leave_is_written_on_the_way_out() -> None:
    run = close(registered(Run()), LeaveReason.STOP_SIGNAL)
    assert run.winding_down and run.leave_unwritten
    assert stopped(run).reason is LeaveReason.STOP_SIGNAL


def test_a_departure_keeps_its_reason_when_closed_and_an_emergency_outranks_it() -> None:
    departing = depart(registered(Run()), LeaveReason.COORDINATED_SHUTDOWN)
    assert close(departing, LeaveReason.STOP_SIGNAL).reason is LeaveReason.COORDINATED_SHUTDOWN
    stopped_by = depart(departing, LeaveReason.EMERGENCY_STOP, command=COMMAND)
    assert stopped_by.reason is LeaveReason.EMERGENCY_STOP and stopped_by.command is COMMAND
    with pytest.raises(IllegalTransition):
        depart(stopped_by, LeaveReason.EMERGENCY_STOP, command=COMMAND)


def test_a_crash_outranks_any_reason_and_names_its_error() -> None:
    error = RuntimeError("boom")
    left_run = left(depart(registered(Run()), LeaveReason.COORDINATED_SHUTDOWN))
    run = crash(left_run, error)
    assert run.status is RunStatus.LEFT and run.reason is LeaveReason.CRASHED
    assert run.audit_reason == "error: RuntimeError('boom')"
    assert crash(run, ValueError("later")).error is error  # the first crash is reported


def test_a_run_cancelled_from_outside_was_closed_by_its_program() -> None:
    assert stopped(registered(Run())).reason is LeaveReason.CLOSED
    assert stopped(Run()).reason is LeaveReason.CLOSED


@pytest.mark.parametrize(
    "event",
    [
        lambda run: registered(registered(run)),
        lambda run: left(registered(run)),
        lambda run: depart(registered(run), LeaveReason.STOP_SIGNAL),
        lambda run: close(registered(run), LeaveReason.COORDINATED_SHUTDOWN),
        lambda run: depart(registered(run), LeaveReason.EMERGENCY_STOP),  # no command
        lambda run: enter_phase(run, OccurrenceState.WAKEUP),  # not registered yet
        lambda run: enter_phase(stopped(run), OccurrenceState.WORK),
        lambda run: crash(stopped(run), RuntimeError()),
        lambda run: stopped(stopped(run)),
    ],
)
def test_illegal_transitions_are_refused(event: Event) -> None:
    with pytest.raises(IllegalTransition):
        event(Run())
