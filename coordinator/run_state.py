"""Where one run of an occurrence is in its life, and why it ended: one record, pure rules.

A run is ``starting`` (registering), then ``serving`` (in the fleet, its loops running).
It ends in one of two ways:

- it **departs** for a reason of its own (a coordinated shutdown, an emergency stop, a
  rejected wakeup): ``departing`` while its leave is written, its loops still running
  (the write may wait out a database outage, and the emergency loop must go on
  answering), then ``left`` once the database holds it;
- it is **closed** (by the program that embeds it, a stop signal, or a crash): its loops
  are cancelled at once and the leave is written on the way out, ``closing``.

Either way it ends ``stopped``. The first reason stands, except that an emergency stop
outranks a departure not yet written, and a crash outranks everything: whatever the run
was leaving for, it failed. The exit code of ``run`` and the reason in the audit trail
both read ``Run.reason``.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from enum import StrEnum

from schemas import CommandRecord, OccurrenceState
from schemas import RunState as AuditRunState


class RunStatus(StrEnum):
    STARTING = "starting"
    SERVING = "serving"
    DEPARTING = "departing"
    LEFT = "left"
    CLOSING = "closing"
    STOPPED = "stopped"


class LeaveReason(StrEnum):
    """Every way a run ends. The value is the reason the audit trail records."""

    COORDINATED_SHUTDOWN = "coordinated shutdown"
    """Left in its wave of the fleet's coordinated shutdown."""
    EMERGENCY_STOP = "emergency stop"
    """Stopped by an operator's signed emergency command."""
    WAKEUP_REJECTED = "wakeup rejected"
    """The fleet's wakeup was rejected: there is nothing to serve."""
    CLOSED = "closed by the embedding program"
    """The embedding program stopped it (``stop()``, leaving ``async with``, cancelling)."""
    STOP_SIGNAL = "stop signal"
    """The ``run`` command got SIGTERM or SIGINT: an operator's uncoordinated stop."""
    FAILED = "failed"
    """A hook failed (state ``failed``) and the ``run`` command stopped it."""
    CRASHED = "error"
    """A loop or an action raised: the error is in ``Run.error``."""
    SUPERSEDED = "superseded"
    """A newer incarnation took its occurrence id (the same id started again)."""


DEPARTURES = frozenset(
    {LeaveReason.COORDINATED_SHUTDOWN, LeaveReason.EMERGENCY_STOP, LeaveReason.WAKEUP_REJECTED}
)
CLOSES = frozenset({LeaveReason.CLOSED, LeaveReason.STOP_SIGNAL, LeaveReason.FAILED})
CRASHES = frozenset({LeaveReason.CRASHED, LeaveReason.SUPERSEDED})

AUDIT_RUN_STATE: dict[LeaveReason, AuditRunState | None] = {
    LeaveReason.COORDINATED_SHUTDOWN: AuditRunState.COMPLETE,
    # The emergency acknowledgement records the cancellation itself, with its command.
    LeaveReason.EMERGENCY_STOP: None,
    LeaveReason.WAKEUP_REJECTED: AuditRunState.COMPLETE,
    LeaveReason.CLOSED: AuditRunState.COMPLETE,
    LeaveReason.STOP_SIGNAL: AuditRunState.COMPLETE,
    LeaveReason.FAILED: AuditRunState.ERROR,
    LeaveReason.CRASHED: AuditRunState.ERROR,
    LeaveReason.SUPERSEDED: AuditRunState.ERROR,
}
"""The run-state event recorded with each leave (``schemas.RunState``), if any."""


class IllegalTransition(RuntimeError):
    """A run was asked to change in a way its life does not allow."""


@dataclass(frozen=True)
class Run:
    """One run of an occurrence: its status, its phase in the fleet's lifecycle (the
    ``OccurrenceState`` the database holds), and once it ends, why."""

    status: RunStatus = RunStatus.STARTING
    phase: OccurrenceState = OccurrenceState.STARTING
    reason: LeaveReason | None = None
    error: BaseException | None = None
    """What crashed it (reason ``error`` or ``superseded``)."""
    command: CommandRecord | None = None
    """The emergency command that stopped it (reason ``emergency stop``)."""

    @property
    def winding_down(self) -> bool:
        """Its loops must end and ``run`` return."""
        return self.status in (RunStatus.LEFT, RunStatus.CLOSING, RunStatus.STOPPED)

    @property
    def leave_begun(self) -> bool:
        """Its row may be stopped under it: a ``Superseded`` from a late write is expected."""
        return self.status not in (RunStatus.STARTING, RunStatus.SERVING)

    @property
    def leave_unwritten(self) -> bool:
        """Closed before its departure was written: ``run`` writes the leave on its way out."""
        return self.status is RunStatus.CLOSING

    @property
    def audit_reason(self) -> str | None:
        """The reason its leave records (with the error, for a crash)."""
        if self.reason is None:
            return None
        if self.error is not None:
            return f"{self.reason.value}: {self.error!r}"
        return self.reason.value


def registered(run: Run) -> Run:
    """Its registration landed: it serves. A run closed while registering stays closing
    (its leave is written on the way out)."""
    if run.status is RunStatus.CLOSING:
        return run
    _require(run, "register", RunStatus.STARTING)
    return replace(run, status=RunStatus.SERVING)


def enter_phase(run: Run, phase: OccurrenceState) -> Run:
    """Take on ``phase``, which the database already holds (a write may land at any
    moment of the run's life until it stopped, however it ends)."""
    if phase is OccurrenceState.STARTING:
        raise IllegalTransition("a run never goes back to the phase 'starting'")
    if run.status in (RunStatus.STARTING, RunStatus.STOPPED):
        raise IllegalTransition(f"a {run.status.value} run has no phase to change")
    return replace(run, phase=phase)


def may_depart(run: Run, reason: LeaveReason) -> bool:
    """Whether ``depart(run, reason)`` is allowed."""
    if reason not in DEPARTURES:
        return False
    if run.status is RunStatus.SERVING:
        return True
    # The operator's brake outranks a departure not yet written (a coordinated one).
    return (
        run.status is RunStatus.DEPARTING
        and reason is LeaveReason.EMERGENCY_STOP
        and run.reason is not LeaveReason.EMERGENCY_STOP
    )


def depart(run: Run, reason: LeaveReason, *, command: CommandRecord | None = None) -> Run:
    """It leaves the fleet for ``reason``; its loops run on while the leave is written."""
    if not may_depart(run, reason):
        raise IllegalTransition(f"a {run.status.value} run cannot depart for {reason.value!r}")
    if (command is not None) != (reason is LeaveReason.EMERGENCY_STOP):
        raise IllegalTransition("an emergency stop, and only one, names its command")
    return replace(run, status=RunStatus.DEPARTING, reason=reason, command=command)


def left(run: Run) -> Run:
    """Its departure is written. A run closed meanwhile stays closing (the close's
    cleanup writes the leave again, which the database takes as already done); one that
    already left (an emergency stop wrote it first) has left."""
    if run.status in (RunStatus.CLOSING, RunStatus.LEFT):
        return run
    _require(run, "have left", RunStatus.DEPARTING)
    return replace(run, status=RunStatus.LEFT)


def close(run: Run, reason: LeaveReason) -> Run:
    """Stop it now, for ``reason``: its loops are cancelled, and the leave (if not yet
    written) is written on the way out. Closing a run that already ends changes nothing:
    the first reason stands (a departure in progress keeps its own)."""
    if reason not in CLOSES:
        raise IllegalTransition(f"{reason.value!r} is not a way to close a run")
    if run.status in (RunStatus.STARTING, RunStatus.SERVING):
        return replace(run, status=RunStatus.CLOSING, reason=reason)
    if run.status is RunStatus.DEPARTING:
        return replace(run, status=RunStatus.CLOSING)
    return run


def crash(run: Run, error: BaseException, *, superseded: bool = False) -> Run:
    """A loop or an action raised ``error``: whatever it was leaving for, the run failed.
    The first crash is the one reported."""
    if run.status is RunStatus.STOPPED:
        raise IllegalTransition("a stopped run runs nothing that could crash")
    if run.reason in CRASHES:
        return run
    reason = LeaveReason.SUPERSEDED if superseded else LeaveReason.CRASHED
    status = RunStatus.LEFT if run.status is RunStatus.LEFT else RunStatus.CLOSING
    return replace(run, status=status, reason=reason, error=error)


def stopped(run: Run) -> Run:
    """``run`` returned. A run cancelled from outside, never closed, was closed by its
    embedding program; one that never registered has nothing to leave."""
    if run.status is RunStatus.STOPPED:
        raise IllegalTransition("a run stops once")
    if not run.winding_down:
        run = close(run, LeaveReason.CLOSED)
    return replace(run, status=RunStatus.STOPPED)


def _require(run: Run, what: str, status: RunStatus) -> None:
    if run.status is not status:
        raise IllegalTransition(f"a {run.status.value} run cannot {what}")
