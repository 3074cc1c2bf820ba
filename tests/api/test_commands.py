"""Shutdown requests and rollout control over HTTP: what is accepted changes the fleet
and is recorded; what conflicts is refused (409) and recorded, and changes nothing else;
what is malformed (422, 413, 415) or unknown (404) is refused and not even recorded."""

from __future__ import annotations

import pytest
from api_server import ApiServer
from fleet_state import (
    Seeded,
    assert_nothing_changed,
    assert_only_refusal_recorded,
    decide_shutdown,
    snapshot,
)

from persistence import Store
from schemas import CommandKind, CommandStatus, RolloutStatus, TaskStatus

pytestmark = pytest.mark.processes


async def test_a_shutdown_is_requested_once_and_a_second_request_is_a_conflict(
    api: ApiServer, seeded: Seeded, db: Store
) -> None:
    async with api.authorized() as client:
        first = await client.post(
            "/v1/shutdown", json={"reason": "maintenance", "requested_by": "ops-alice"}
        )
        before = await snapshot(db)
        second = await client.post("/v1/shutdown", json={"reason": "again"})

    assert first.status_code == 202
    task = first.json()["task"]
    assert (task["kind"], task["status"], task["reason"]) == ("shutdown", "PENDING", "maintenance")
    assert task["requested_by"] == "ops-alice via api:127.0.0.1"
    assert second.status_code == 409
    assert second.json()["error"] == "conflict"
    assert task["task_id"] in second.json()["message"]
    assert second.json()["details"]["task_id"] == task["task_id"]
    refused = assert_only_refusal_recorded(before, await snapshot(db), "conflict", "2nd shutdown")
    assert refused.kind is CommandKind.SHUTDOWN
    assert second.json()["details"]["command"]["command_id"] == refused.command_id


async def test_a_shutdown_while_one_rolls_out_is_a_recorded_conflict(
    api: ApiServer, seeded: Seeded, db: Store
) -> None:
    task, created = await db.request_shutdown("first", requested_by="test")
    assert created
    rollout_id = await decide_shutdown(db, task.task_id)
    before = await snapshot(db)
    async with api.authorized() as client:
        response = await client.post("/v1/shutdown", json={"reason": "second"})

    assert response.status_code == 409
    body = response.json()
    assert body["error"] == "conflict"
    assert body["message"] == f"a shutdown is already rolling out: rollout {rollout_id} is running"
    assert body["details"]["task_id"] == task.task_id
    refused = assert_only_refusal_recorded(before, await snapshot(db), "conflict", "a 2nd shutdown")
    assert body["details"]["command"]["command_id"] == refused.command_id
    assert refused.rollout_id == rollout_id


async def test_pause_resume_and_abort_change_the_rollout_and_are_recorded(
    api: ApiServer, seeded: Seeded, db: Store
) -> None:
    path = f"/v1/rollouts/{seeded.wakeup_id}"
    async with api.authorized() as client:
        paused = await client.post(f"{path}/pause", json={"reason": "look at the explorer"})
        assert (await db.rollout(seeded.wakeup_id)).status is RolloutStatus.PAUSED
        resumed = await client.post(f"{path}/resume", json={"reason": "looks fine"})
        assert (await db.rollout(seeded.wakeup_id)).status is RolloutStatus.RUNNING
        aborted = await client.post(f"{path}/abort", json={"reason": "bad build"})

    for response, action in ((paused, "pause"), (resumed, "resume"), (aborted, "abort")):
        assert response.status_code == 200, action
        command = response.json()["command"]
        assert (command["kind"], command["status"]) == (action, "accepted")
        assert command["rollout_id"] == seeded.wakeup_id
        assert command["issued_by"] == "api:127.0.0.1"
    rollout = await db.rollout(seeded.wakeup_id)
    assert rollout.status is RolloutStatus.ABORTED
    assert rollout.abort_reason == "aborted by an operator: bad build"
    assert (await db.task(rollout.task_id)).status is TaskStatus.FAILED  # type: ignore[union-attr]
    recorded = await db.commands(limit=None)
    assert [(c.kind, c.status) for c in reversed(recorded)] == [
        (CommandKind.PAUSE, CommandStatus.ACCEPTED),
        (CommandKind.RESUME, CommandStatus.ACCEPTED),
        (CommandKind.ABORT, CommandStatus.ACCEPTED),
    ]


@pytest.mark.parametrize(
    ("action", "prepare", "says"),
    [
        ("resume", None, "only a paused rollout can be resumed"),
        ("retry", None, "only a rollout aborted by a failed health gate can be retried"),
        ("pause", "pause", "only a running rollout can be paused"),
        ("abort", "abort", "already aborted"),
    ],
)
async def test_an_action_the_rollout_state_does_not_allow_is_a_recorded_409(
    api: ApiServer, seeded: Seeded, db: Store, action: str, prepare: str | None, says: str
) -> None:
    path = f"/v1/rollouts/{seeded.wakeup_id}"
    async with api.authorized() as client:
        if prepare:
            assert (await client.post(f"{path}/{prepare}", json={"reason": "set up"})).is_success
        before = await snapshot(db)
        response = await client.post(f"{path}/{action}", json={"reason": "try it"})

    assert response.status_code == 409
    assert response.json()["error"] == "conflict"
    assert says in response.json()["message"]
    assert response.json()["details"]["command"]["status"] == "refused"
    refused = assert_only_refusal_recorded(before, await snapshot(db), "conflict", action)
    assert refused.kind.value == action


async def test_an_unknown_rollout_is_404_and_nothing_is_recorded(
    api: ApiServer, seeded: Seeded, db: Store
) -> None:
    before = await snapshot(db)
    async with api.authorized() as client:
        for action in ("pause", "resume", "abort", "retry"):
            response = await client.post(
                f"/v1/rollouts/wakeup_ffffffffffff/{action}", json={"reason": "typo"}
            )
            assert response.status_code == 404, action
            assert response.json() == {
                "error": "not_found",
                "message": "no rollout with id 'wakeup_ffffffffffff'",
            }
    assert_nothing_changed(before, await snapshot(db), "actions on an unknown rollout")


async def test_malformed_requests_are_refused_with_a_clear_message_and_change_nothing(
    api: ApiServer, seeded: Seeded, db: Store
) -> None:
    pause = f"/v1/rollouts/{seeded.wakeup_id}/pause"
    json_type = {"Content-Type": "application/json"}
    cases: list[tuple[str, str, dict[str, object], int, str, str]] = [
        ("/v1/shutdown", "content", {"content": b"{not json", "headers": json_type}, 422,
         "invalid_request", "not valid JSON"),
        ("/v1/shutdown", "no body", {}, 422, "invalid_request", "Field required"),
        ("/v1/shutdown", "empty reason", {"json": {"reason": "  "}}, 422, "invalid_request",
         "reason must not be empty"),
        ("/v1/shutdown", "reason not text", {"json": {"reason": 7}}, 422, "invalid_request",
         "reason"),
        ("/v1/shutdown", "unknown field", {"json": {"reason": "x", "force": True}}, 422,
         "invalid_request", "force: Extra inputs are not permitted"),
        ("/v1/shutdown", "a list", {"json": ["reason"]}, 422, "invalid_request", "valid"),
        ("/v1/shutdown", "too long a reason", {"json": {"reason": "x" * 501}}, 422,
         "invalid_request", "at most 500"),
        ("/v1/shutdown", "form encoded", {"data": {"reason": "x"}}, 415,
         "unsupported_media_type", "Content-Type: application/json"),
        ("/v1/shutdown", "huge body", {"json": {"reason": "x" * 100_000}}, 413,
         "body_too_large", "exceeds"),
        (pause, "no reason", {"json": {}}, 422, "invalid_request", "reason: Field required"),
        (f"/v1/rollouts/{seeded.wakeup_id}/explode", "unknown action", {"json": {"reason": "x"}},
         422, "invalid_request", "'pause', 'resume', 'abort' or 'retry'"),
    ]  # fmt: skip
    before = await snapshot(db)
    async with api.authorized() as client:
        for path, name, request, status, error, says in cases:
            response = await client.post(path, **request)  # type: ignore[arg-type]
            assert response.status_code == status, name
            body = response.json()
            assert body["error"] == error, name
            assert says in body["message"], (name, body["message"])
    assert_nothing_changed(before, await snapshot(db), "malformed requests")
