"""The read routes over HTTP, against a real server and a seeded database (both backends)."""

from __future__ import annotations

import pytest
from api_server import TOKEN, ApiServer, Signer
from fleet_state import MEMBERS, Seeded, assert_nothing_changed, snapshot
from prometheus_client.parser import text_string_to_metric_families

from persistence import Store

pytestmark = pytest.mark.processes


async def test_status_is_the_fleet_report(api: ApiServer, seeded: Seeded) -> None:
    async with api.client() as client:
        response = await client.get("/v1/status")
        limited = await client.get("/v1/status", params={"limit": 1})

    assert response.status_code == 200
    report = response.json()
    assert [(o["occurrence_id"], o["state"], o["alive"]) for o in report["occurrences"]] == [
        (m, "work", True) for m in MEMBERS
    ]
    (rollout,) = report["rollouts"]
    assert (rollout["rollout_id"], rollout["kind"], rollout["status"]) == (
        seeded.wakeup_id,
        "wakeup",
        "running",
    )
    assert rollout["current_wave"]["group"] == "explorer"
    assert limited.status_code == 200


async def test_events_page_oldest_first_and_filter_by_rollout(
    api: ApiServer, seeded: Seeded, db: Store
) -> None:
    everything = await db.events()
    async with api.client() as client:
        first = (await client.get("/v1/events", params={"limit": 3})).json()
        rest = (await client.get("/v1/events", params={"after_id": first["next_after_id"]})).json()
        of_rollout = (
            await client.get("/v1/events", params={"rollout_id": seeded.wakeup_id})
        ).json()
        by_kind = (
            await client.get(
                "/v1/events", params=[("kind", "decision_made"), ("kind", "task_created")]
            )
        ).json()
        past_the_end = (
            await client.get("/v1/events", params={"after_id": everything[-1].event_id})
        ).json()

    ids = [e["event_id"] for e in first["events"] + rest["events"]]
    assert ids == [e.event_id for e in everything]  # oldest first, the newest last
    assert first["next_after_id"] == ids[2]
    assert {e["rollout_id"] for e in of_rollout["events"]} == {seeded.wakeup_id}
    assert [e["kind"] for e in by_kind["events"]] == ["task_created", "decision_made"]
    assert past_the_end == {"events": [], "next_after_id": everything[-1].event_id}


async def test_a_rollout_and_the_commands_can_be_read(
    api: ApiServer, seeded: Seeded, db: Store
) -> None:
    async with api.client() as client:
        rollout = await client.get(f"/v1/rollouts/{seeded.wakeup_id}")
        missing = await client.get("/v1/rollouts/wakeup_000000000000")
        commands = await client.get("/v1/commands")
        no_command = await client.get("/v1/commands/00000000-0000-0000-0000-000000000000")

    assert rollout.status_code == 200
    assert rollout.json() == (await db.rollout(seeded.wakeup_id)).model_dump(mode="json")
    assert missing.status_code == 404
    assert missing.json() == {
        "error": "not_found",
        "message": "no rollout with id 'wakeup_000000000000'",
    }
    assert commands.json() == {"commands": []}
    assert no_command.status_code == 404
    assert no_command.json()["error"] == "not_found"


async def test_diagnostics_describe_the_server_and_hide_every_secret(
    api: ApiServer, signer: Signer, database_url: str, db: Store
) -> None:
    async with api.client() as client:
        response = await client.get("/v1/diagnostics")

    assert response.status_code == 200
    found = response.json()
    assert found["database"]["backend"] == db.backend
    assert found["database"]["reachable"] is True
    assert found["database"]["live_occurrences"] == len(MEMBERS)
    assert found["coordinator"]["version"]
    for package in ("sqlalchemy", "asyncpg", "aiosqlite", "fastapi", "uvicorn"):
        assert found["packages"][package], package
    assert found["engine"]["source"] == "builtin:accept"
    assert found["emergency"]["trusted_keys"] == 1
    assert len(found["emergency"]["key_ids"][0]) == 16
    assert found["api"] == {"read_only": False, "token_configured": True}
    assert found["settings"]["api_token"] == "***"
    assert found["settings"]["trusted_keys"] == ["(inline key)"]
    assert found["settings"]["member_ttl"] == 3600
    # The token and the key itself appear nowhere, whatever field they might hide in.
    assert TOKEN not in response.text
    assert signer.public_text not in response.text


async def test_metrics_count_the_fleet_in_prometheus_text(api: ApiServer, seeded: Seeded) -> None:
    async with api.client() as client:
        response = await client.get("/metrics")

    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain; version=0.0.4")
    families = {f.name: f for f in text_string_to_metric_families(response.text)}
    samples = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in families.values()
        for s in family.samples
    }
    assert samples[("coordinator_up", ())] == 1
    assert samples[("coordinator_occurrences", (("alive", "true"), ("state", "work")))] == 3
    assert samples[("coordinator_occurrences", (("alive", "false"), ("state", "work")))] == 0
    # No shutdown in progress: the three live occurrences, all in work.
    assert samples[("coordinator_serving_fraction", ())] == 1.0
    assert samples[("coordinator_rollouts", (("kind", "wakeup"), ("status", "running")))] == 1
    assert samples[("coordinator_rollouts", (("kind", "shutdown"), ("status", "running")))] == 0
    # The seeded wakeup was decided once: one observation of decision latency.
    assert samples[("coordinator_decision_latency_seconds_count", (("kind", "wakeup"),))] == 1
    for name in (
        "coordinator_wave_duration_seconds",
        "coordinator_emergency_ack_latency_seconds",
        "coordinator_commands_refused",
        "coordinator_commands",
        "coordinator_info",
    ):
        assert name in families, name
    assert families["coordinator_wave_duration_seconds"].type == "histogram"
    assert families["coordinator_commands_refused"].type == "counter"


async def test_the_openapi_schema_documents_every_route_and_the_bearer_lock(
    api: ApiServer,
) -> None:
    async with api.client() as client:
        schema = (await client.get("/openapi.json")).json()
        docs = await client.get("/docs")

    # The documentation pages would load their scripts from a CDN: only the schema is served.
    assert (docs.status_code, docs.json()["error"]) == (404, "not_found")
    paths = schema["paths"]
    for path in (
        "/v1/status",
        "/v1/events",
        "/v1/diagnostics",
        "/metrics",
        "/v1/commands",
        "/v1/commands/{command_id}",
        "/v1/shutdown",
        "/v1/rollouts/{rollout_id}/{action}",
        "/v1/emergency-shutdown",
    ):
        assert path in paths, path
    assert paths["/v1/emergency-shutdown"]["post"]["security"] == [{"HTTPBearer": []}]
    assert "security" not in paths["/v1/status"]["get"]
    body = paths["/v1/emergency-shutdown"]["post"]["requestBody"]["content"]["application/json"]
    assert body["schema"]["$ref"].endswith("/SignedCommand")
    assert "ErrorBody" in schema["components"]["schemas"]


async def test_unknown_routes_and_methods_answer_json_and_change_nothing(
    api: ApiServer, db: Store
) -> None:
    before = await snapshot(db)
    async with api.client(TOKEN) as client:
        unknown = await client.get("/v1/nothing-here")
        wrong_method = await client.delete("/v1/shutdown")
        get_a_post = await client.get("/v1/emergency-shutdown")

    assert (unknown.status_code, unknown.json()["error"]) == (404, "not_found")
    assert (wrong_method.status_code, wrong_method.json()["error"]) == (405, "method_not_allowed")
    assert get_a_post.status_code == 405
    assert_nothing_changed(before, await snapshot(db), "requests to no route")
