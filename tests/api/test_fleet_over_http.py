"""A real fleet (three ``run`` processes) operated only through the control API: bad
emergency commands leave every occurrence serving, a targeted one stops exactly its
target, a shutdown requested over HTTP rolls out in waves, and the metrics count it all."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import anyio
import child_processes
import httpx
import pytest
from api_server import TOKEN, ApiServer, Signer, start_api
from fleet import Fleet, coordinator_env
from invariants import check_fleet_invariants
from prometheus_client.parser import text_string_to_metric_families

from persistence import Store

pytestmark = pytest.mark.processes

MEMBERS = ["occurrence-1", "occurrence-2", "occurrence-3"]
EXIT_EMERGENCY = 3
WAKE_DEADLINE = 120.0  # seconds for three processes to start and wake up in waves
ACT_DEADLINE = 60.0  # seconds for the fleet to act on one command


@pytest.fixture
def fleet_env(database_url: str, signer: Signer) -> dict[str, str]:
    return coordinator_env(
        database_url,
        COORDINATOR_TRUSTED_KEYS=signer.public_text,
        AGENT_OCCURRENCE_COUNT=str(len(MEMBERS)),
    )


@pytest.fixture
def fleet(tmp_path: Path, fleet_env: dict[str, str]) -> Iterator[Fleet]:
    running = Fleet(tmp_path, fleet_env)
    try:
        yield running
    finally:
        running.stop_all()


async def poll(
    client: httpx.AsyncClient, path: str, done: Callable[[Any], bool], deadline: float, what: str
) -> Any:
    """GET ``path`` until ``done(json)``; fail naming ``what`` and the last answer."""
    last: Any = None
    try:
        with anyio.fail_after(deadline):
            while True:
                last = (await client.get(path)).json()
                if done(last):
                    return last
                await anyio.sleep(0.2)
    except TimeoutError:
        raise AssertionError(f"timed out waiting for {what}; last answer: {last}") from None


def serving(status: dict[str, Any], members: list[str]) -> bool:
    by_id = {o["occurrence_id"]: o for o in status["occurrences"]}
    return all(
        m in by_id and (by_id[m]["state"], by_id[m]["alive"]) == ("work", True) for m in members
    )


async def test_a_fleet_operated_over_http(
    fleet: Fleet,
    fleet_env: dict[str, str],
    db: Store,
    signer: Signer,
    stranger: Signer,
    tmp_path: Path,
) -> None:
    for occurrence_id in MEMBERS:
        fleet.start(occurrence_id)
    api = await start_api(tmp_path / "api", fleet_env)
    try:
        async with api.authorized() as client:
            await _operate(api, client, fleet, signer, stranger)
    finally:
        assert api.stop() == 0
    await check_fleet_invariants(db)


async def _operate(
    api: ApiServer,
    client: httpx.AsyncClient,
    fleet: Fleet,
    signer: Signer,
    stranger: Signer,
) -> None:
    status = await poll(
        client,
        "/v1/status",
        lambda s: serving(s, MEMBERS) and s["rollouts"][0]["status"] == "completed",
        WAKE_DEADLINE,
        "three occurrences in work after the wakeup rollout",
    )
    assert status["rollouts"][0]["kind"] == "wakeup"
    smoke = child_processes.run(
        [sys.executable, "-m", "coordinator", "smoke", "--base-url", api.base_url,
         "--token", TOKEN, "--min-alive", "3"],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert smoke.returncode == 0, smoke.stdout

    # Bad commands: refused by the API, then refused by every occurrence they name.
    wrongly_aimed = await client.post(
        "/v1/emergency-shutdown",
        json=signer.command("not this fleet", targets=["occurrence-99"]).model_dump(),
    )
    assert (wrongly_aimed.status_code, wrongly_aimed.json()["error"]) == (422, "unknown_target")
    refused_ids = []
    for bad in (
        stranger.command("forged"),
        signer.command("stale", at=time.time() - 3600),
        signer.command("unsigned").model_copy(update={"signature": ""}),
    ):
        response = await client.post("/v1/emergency-shutdown", json=bad.model_dump())
        assert response.status_code == 403
        refused_ids.append(response.json()["details"]["command"]["command_id"])
    for command_id in refused_ids:
        detail = await poll(
            client,
            f"/v1/commands/{command_id}",
            lambda d: len(d["acks"]) == len(MEMBERS),
            ACT_DEADLINE,
            f"every occurrence to refuse command {command_id}",
        )
        assert {a["verdict"] for a in detail["acks"]} == {"refused"}
    assert serving((await client.get("/v1/status")).json(), MEMBERS)
    assert all(p.poll() is None for p in fleet.processes.values())

    # A valid command aimed at one occurrence stops that one only.
    stop_third = await client.post(
        "/v1/emergency-shutdown",
        json=signer.command("stop the third", targets=[MEMBERS[2]]).model_dump(),
    )
    assert stop_third.status_code == 202
    command_id = stop_third.json()["command"]["command_id"]
    detail = await poll(
        client, f"/v1/commands/{command_id}", lambda d: d["acks"], ACT_DEADLINE, "the stop's ack"
    )
    assert [(a["occurrence_id"], a["verdict"]) for a in detail["acks"]] == [(MEMBERS[2], "stopped")]
    assert fleet.processes[MEMBERS[2]].wait(timeout=ACT_DEADLINE) == EXIT_EMERGENCY
    assert serving((await client.get("/v1/status")).json(), MEMBERS[:2])

    # A coordinated shutdown requested over HTTP: decided once, rolled out in waves.
    requested = await client.post("/v1/shutdown", json={"reason": "end of the test"})
    assert requested.status_code == 202
    task_id = requested.json()["task"]["task_id"]
    await poll(
        client,
        f"/v1/events?rollout_id={task_id}&kind=rollout_completed",
        lambda page: page["events"],
        ACT_DEADLINE,
        "the shutdown rollout to complete",
    )
    codes = await fleet.wait_exits(ACT_DEADLINE)
    assert codes == {MEMBERS[0]: 0, MEMBERS[1]: 0, MEMBERS[2]: EXIT_EMERGENCY}

    metrics = await client.get("/metrics")
    _check_metrics(metrics.text)


def _check_metrics(text: str) -> None:
    samples = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }

    def value(name: str, **labels: str) -> float:
        return samples.get((name, tuple(sorted(labels.items()))), 0.0)

    assert value("coordinator_occurrences", state="shutdown", alive="false") == 3
    assert value("coordinator_rollouts", kind="wakeup", status="completed") == 1
    assert value("coordinator_rollouts", kind="shutdown", status="completed") == 1
    for group in ("explorer", "early_adopter", "general"):
        count = "coordinator_wave_duration_seconds_count"
        assert value(count, kind="wakeup", group=group, status="healthy") == 1, group
    assert value("coordinator_decision_latency_seconds_count", kind="wakeup") == 1
    assert value("coordinator_decision_latency_seconds_count", kind="shutdown") == 1
    assert value("coordinator_emergency_ack_latency_seconds_count", verdict="stopped") == 1
    # Measured on the database clock: one occurrence polling every 0.2 s or woken at once.
    assert value("coordinator_emergency_ack_latency_seconds_sum", verdict="stopped") < ACT_DEADLINE
    refused = "coordinator_commands_refused_total"
    for refusal in ("unknown_key", "expired", "unsigned"):
        assert value(refused, kind="emergency_shutdown", refusal=refusal) == 1, refusal
    assert value("coordinator_commands", kind="emergency_shutdown", status="accepted") == 1
    assert value("coordinator_commands", kind="shutdown", status="accepted") == 1
