"""A whole-fleet emergency stop aborts every rollout in progress and cancels every open
shared task; a targeted one neither."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st
from policy_records import command, rollout, task

from schemas import CommandStatus, EventKind, LifecycleKind, RolloutStatus, TaskStatus
from schemas.policy import fleet_stop_aborts, fleet_stop_cancels

PROPERTY = settings(max_examples=200, deadline=None, database=None)


def test_a_whole_fleet_stop_aborts_each_rollout_in_progress() -> None:
    running = rollout(LifecycleKind.SHUTDOWN, rollout_id="r-1")
    paused = rollout(LifecycleKind.WAKEUP, RolloutStatus.PAUSED, rollout_id="r-2")
    aborts = fleet_stop_aborts(command(reason="fire"), [running, paused], now=7.0)
    assert [a.edit.rollout_id for a in aborts] == ["r-1", "r-2"]
    for a in aborts:
        assert a.edit.status is RolloutStatus.ABORTED and a.edit.finished_at == 7.0
        assert a.edit.abort_reason == "emergency stop (cmd-1): fire"
        assert a.edit.task_status is TaskStatus.FAILED
        assert a.event.kind == EventKind.ROLLOUT_ABORTED
        assert a.event.details == {
            "reason": "emergency stop (cmd-1): fire",
            "command_id": "cmd-1",
            "emergency": True,
        }


@PROPERTY
@given(
    status=st.sampled_from(CommandStatus),
    targets=st.lists(st.sampled_from(["a", "b"]), max_size=2, unique=True),
    statuses=st.lists(st.sampled_from(RolloutStatus), max_size=4),
)
def test_only_an_accepted_stop_of_the_whole_fleet_aborts_and_only_what_is_in_progress(
    status: CommandStatus, targets: list[str], statuses: list[RolloutStatus]
) -> None:
    found = [rollout(status=s, rollout_id=f"r-{i}") for i, s in enumerate(statuses)]
    aborts = fleet_stop_aborts(command(status=status, targets=targets), found, now=1.0)
    whole_fleet = status is CommandStatus.ACCEPTED and not targets
    expected = [r.rollout_id for r in found if whole_fleet and not r.status.is_finished]
    assert [a.edit.rollout_id for a in aborts] == expected


def test_a_whole_fleet_stop_cancels_each_open_task_with_its_command() -> None:
    claimed = task(LifecycleKind.WAKEUP, task_id="t-1", status=TaskStatus.ACTIVE)
    cancels = fleet_stop_cancels(command(reason="fire"), [claimed])
    assert [(e.kind, e.task_id) for e in cancels] == [(EventKind.TASK_CANCELLED, "t-1")]
    assert cancels[0].details == {
        "reason": "emergency stop (cmd-1): fire",
        "command_id": "cmd-1",
        "was": "ACTIVE",
        "claimed_by": None,
    }


@PROPERTY
@given(
    status=st.sampled_from(CommandStatus),
    targets=st.lists(st.sampled_from(["a", "b"]), max_size=2, unique=True),
    kinds=st.lists(st.sampled_from(LifecycleKind), max_size=3),
)
def test_only_an_accepted_stop_of_the_whole_fleet_cancels_open_tasks(
    status: CommandStatus, targets: list[str], kinds: list[LifecycleKind]
) -> None:
    found = [task(k, task_id=f"t-{i}") for i, k in enumerate(kinds)]
    cancels = fleet_stop_cancels(command(status=status, targets=targets), found)
    whole_fleet = status is CommandStatus.ACCEPTED and not targets
    assert [e.task_id for e in cancels] == ([t.task_id for t in found] if whole_fleet else [])
