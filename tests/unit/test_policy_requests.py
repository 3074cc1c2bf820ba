"""A new wakeup or shutdown request: open, join, wait or refuse (the kind's conflict rule)."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st
from policy_records import rollout, task

from schemas import LifecycleKind, RolloutRecord, RolloutStatus, SharedTask, kind_policy
from schemas.policy import RequestOutcome, answer_request

PROPERTY = settings(max_examples=200, deadline=None, database=None)
WAKEUP, SHUTDOWN = LifecycleKind.WAKEUP, LifecycleKind.SHUTDOWN
IN_PROGRESS = (RolloutStatus.RUNNING, RolloutStatus.PAUSED)


def ask(
    kind: LifecycleKind,
    *,
    in_force: RolloutRecord | None = None,
    in_progress: tuple[RolloutRecord, ...] = (),
    open_tasks: tuple[SharedTask, ...] = (),
) -> tuple[RequestOutcome, str | None, str]:
    answer = answer_request(
        kind_policy(kind), in_force=in_force, in_progress=in_progress, open_tasks=open_tasks
    )
    return answer.outcome, answer.task_id, answer.detail


def test_a_wakeup_opens_a_task_when_nothing_stands_in_its_way() -> None:
    assert ask(WAKEUP)[0] is RequestOutcome.OPEN


def test_a_wakeup_joins_the_decision_in_force() -> None:
    wakeup = rollout(WAKEUP, RolloutStatus.COMPLETED)
    assert ask(WAKEUP, in_force=wakeup, open_tasks=(task(WAKEUP),))[0] is (
        RequestOutcome.JOIN_DECISION
    )


def test_a_wakeup_joins_the_open_wakeup_task() -> None:
    assert ask(WAKEUP, open_tasks=(task(SHUTDOWN), task(WAKEUP, task_id="w")))[:2] == (
        RequestOutcome.JOIN_TASK,
        "w",
    )


def test_a_wakeup_waits_for_a_shutdown_in_progress_even_with_a_task_open() -> None:
    shutdown = rollout(SHUTDOWN, RolloutStatus.PAUSED)
    assert ask(WAKEUP, in_progress=(shutdown,), open_tasks=(task(WAKEUP),))[0] is (
        RequestOutcome.WAIT
    )


def test_a_wakeup_in_progress_does_not_hold_back_a_wakeup_request() -> None:
    assert ask(WAKEUP, in_progress=(rollout(WAKEUP),))[0] is RequestOutcome.OPEN


def test_a_shutdown_is_refused_while_one_is_requested() -> None:
    outcome, task_id, detail = ask(SHUTDOWN, open_tasks=(task(SHUTDOWN, task_id="s-1"),))
    assert (outcome, task_id) == (RequestOutcome.REFUSE, "s-1")
    assert detail == ("a shutdown request is already open: task s-1 (requested by op: maintenance)")


def test_a_shutdown_is_refused_while_one_is_rolling_out() -> None:
    paused = rollout(SHUTDOWN, RolloutStatus.PAUSED, rollout_id="s-2")
    outcome, task_id, detail = ask(SHUTDOWN, in_progress=(rollout(WAKEUP), paused))
    assert (outcome, task_id) == (RequestOutcome.REFUSE, "s-2")
    assert detail == "a shutdown is already rolling out: rollout s-2 is paused"


def test_a_shutdown_ignores_the_wakeup_in_force_and_a_wakeup_rolling_out() -> None:
    wakeup = rollout(WAKEUP)
    assert ask(SHUTDOWN, in_force=wakeup, in_progress=(wakeup,))[0] is RequestOutcome.OPEN


@PROPERTY
@given(
    kind=st.sampled_from(LifecycleKind),
    in_force=st.booleans(),
    rolling=st.lists(
        st.tuples(st.sampled_from(LifecycleKind), st.sampled_from(IN_PROGRESS)), max_size=3
    ),
    open_kinds=st.sets(st.sampled_from(LifecycleKind)),
)
def test_every_request_gets_the_answer_its_kind_describes(
    kind: LifecycleKind,
    in_force: bool,
    rolling: list[tuple[LifecycleKind, RolloutStatus]],
    open_kinds: set[LifecycleKind],
) -> None:
    in_progress = tuple(rollout(k, s, rollout_id=f"r-{i}") for i, (k, s) in enumerate(rolling))
    open_tasks = tuple(task(k) for k in sorted(open_kinds))
    decided = rollout(WAKEUP, RolloutStatus.COMPLETED) if in_force else None
    outcome = ask(kind, in_force=decided, in_progress=in_progress, open_tasks=open_tasks)[0]
    shutdown_rolling = any(k is SHUTDOWN for k, _ in rolling)
    if kind is WAKEUP:
        expected = (
            RequestOutcome.JOIN_DECISION
            if in_force
            else RequestOutcome.WAIT
            if shutdown_rolling
            else RequestOutcome.JOIN_TASK
            if WAKEUP in open_kinds
            else RequestOutcome.OPEN
        )
    else:
        refused = shutdown_rolling or SHUTDOWN in open_kinds
        expected = RequestOutcome.REFUSE if refused else RequestOutcome.OPEN
    assert outcome is expected
