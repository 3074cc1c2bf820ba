"""A new request for a lifecycle decision: open a task, join one, wait, or refuse.

The kind's description (``schemas.kinds``) says which: a wakeup joins the decision in
force or the task already open, and waits for a shutdown rolling out; a shutdown is
refused, as a conflict the store records, while one is requested or rolling out.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum

from schemas.kinds import KindPolicy
from schemas.records import RolloutRecord, SharedTask


class RequestOutcome(StrEnum):
    OPEN = "open"
    """Open a new task of the kind."""
    JOIN_TASK = "join_task"
    """A task of the kind is open already: that one is the answer."""
    JOIN_DECISION = "join_decision"
    """A decision of the kind is in force: nothing to decide."""
    WAIT = "wait"
    """A rollout in progress must finish first; ask again later."""
    REFUSE = "refuse"
    """A conflict: recorded as a refused command, nothing else changes."""


@dataclass(frozen=True)
class RequestAnswer:
    outcome: RequestOutcome
    task_id: str | None = None
    """The task joined (``JOIN_TASK``), or the one in the way (``REFUSE``)."""
    detail: str = ""
    """Why a request is refused, in a sentence for the operator."""


def answer_request(
    policy: KindPolicy,
    *,
    in_force: RolloutRecord | None,
    in_progress: Iterable[RolloutRecord],
    open_tasks: Iterable[SharedTask],
) -> RequestAnswer:
    """What to do with a new request of ``policy.kind``, given the decision of that kind
    in force (see ``wakeup_in_force``), the rollouts in progress (running or paused,
    newest first) and the open shared tasks."""
    if policy.joins_decision_in_force and in_force is not None:
        return RequestAnswer(RequestOutcome.JOIN_DECISION)
    blocking = next(
        (r for r in in_progress if r.kind is policy.waits_for and not r.status.is_finished), None
    )
    requested = next((t for t in open_tasks if t.kind is policy.kind), None)
    if policy.refuses_while_open:
        if requested is not None:
            return RequestAnswer(
                RequestOutcome.REFUSE,
                requested.task_id,
                f"a {policy.kind.value} request is already open: task {requested.task_id} "
                f"(requested by {requested.requested_by}: {requested.reason})",
            )
        if blocking is not None:
            return RequestAnswer(
                RequestOutcome.REFUSE,
                blocking.task_id,
                f"a {blocking.kind.value} is already rolling out: rollout "
                f"{blocking.rollout_id} is {blocking.status.value}",
            )
        return RequestAnswer(RequestOutcome.OPEN)
    if blocking is not None:
        return RequestAnswer(RequestOutcome.WAIT)
    if requested is not None:
        return RequestAnswer(RequestOutcome.JOIN_TASK, requested.task_id)
    return RequestAnswer(RequestOutcome.OPEN)
