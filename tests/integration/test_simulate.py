"""Every simulate scenario and failure mode, on a real SQLite file, checked from the DB."""

from __future__ import annotations

from typing import Any

import pytest
from invariants import check_fleet_invariants, check_shutdown_capacity

from coordinator.policy.groups import DEFAULT_MIN_SERVING_FRACTION
from coordinator.simulation import SimulationConfig, simulate
from persistence import Store
from schemas import CanaryGroup, EventKind, TaskStatus

TIME_SCALE = 4.0  # simulated seconds per wall-clock second
# Simulated seconds. Every occurrence shares one event loop, which a busy machine starves
# for seconds at a time: what only delays a healthy fleet is short (soaks, polls), but
# what a late heartbeat or renewal would turn into a different fleet is sized so that no
# starvation a test can meet reaches it. A heartbeat may be 15 wall seconds late before
# its member looks gone, a renewal 10 (three renewals per lease) before a second decider
# or driver may take over, a signalled member has a minute to report its new state before
# its wave's gate gives up on it (a member that fails says so at once, so no failure
# scenario waits for that), and discovery waits up to a minute for every occurrence to
# register (it ends as soon as they all have, so a healthy run never waits for it).
SIM_TIMINGS: dict[str, Any] = {
    "poll_interval": 0.5,
    "heartbeat_interval": 1.0,
    "member_ttl": 60.0,
    "lease_ttl": 60.0,
    "explorer_soak": 2.0,
    "early_adopter_soak": 3.0,
    "health_poll": 0.5,
    "health_timeout": 240.0,
    # Every occurrence is expected (AGENT_OCCURRENCE_COUNT): discovery ends once all are
    # live, and the grace only bounds a start so slow that some never register in time.
    "discovery_grace": 240.0,
}


async def run(
    url: str,
    scenario: str,
    *,
    occurrences: int = 6,
    fail: str | None = None,
    overrides: dict[str, Any] | None = None,
) -> tuple[dict[str, Any], Store]:
    config = SimulationConfig(
        occurrences=occurrences,
        scenario=scenario,
        fail=CanaryGroup(fail) if fail else None,
        time_scale=TIME_SCALE,
        database_url=url,
        overrides={**SIM_TIMINGS, **(overrides or {})},
    )
    report = await simulate(config)
    store = await Store.open(url)
    try:
        await check_fleet_invariants(store)
        minimum = (overrides or {}).get("min_serving_fraction", DEFAULT_MIN_SERVING_FRACTION)
        await check_shutdown_capacity(store, minimum)
        for rollout in report["rollouts"]:
            assert rollout["decision_invocations"] == 1, rollout
    except BaseException:
        await store.close()  # a failed check must not also leak the connection
        raise
    return report, store


def waves(report: dict[str, Any], kind: str) -> dict[str, dict[str, Any]]:
    rollout = next(r for r in report["rollouts"] if r["kind"] == kind)
    return {w["group"]: w for w in rollout["waves"]}


def rollout(report: dict[str, Any], kind: str) -> dict[str, Any]:
    return next(r for r in report["rollouts"] if r["kind"] == kind)


async def test_lifecycle_of_nine(database_url: str) -> None:
    report, store = await run(database_url, "lifecycle", occurrences=9)
    try:
        assert [(r["kind"], r["status"]) for r in report["rollouts"]] == [
            ("wakeup", "completed"),
            ("shutdown", "completed"),
        ], [(r["kind"], r["status"], r.get("abort_reason"), r["waves"]) for r in report["rollouts"]]
        # The wakeup follows the FSD's groups; the shutdown keeps MIN_SERVING_FRACTION
        # (0.8: 8 of 9) serving until its last wave, so no early adopter leaves before it.
        for kind, sizes in (("wakeup", [1, 2, 6]), ("shutdown", [1, 0, 8])):
            plan = waves(report, kind)
            assert [len(plan[g]["members"]) for g in ("explorer", "early_adopter", "general")] == (
                sizes
            )
            assert all(
                w["status"] == ("healthy" if w["members"] else "skipped") for w in plan.values()
            )
            assert plan["explorer"]["members"] == [rollout(report, kind)["decided_by"]]
        assert set(report["final_states"].values()) == {"shutdown"}
        assert len(report["final_states"]) == 9
        # Only the explorer down, eight still serving before the last wave.
        assert report["min_available_during_shutdown"] == 8
        assert report["serving_during_shutdown"] == {
            "serving": 8,
            "planned": 9,
            "floor": 8,
            "fraction": 0.8889,
            "minimum": 0.8,
            "held": True,
        }
    finally:
        await store.close()


async def test_wakeup_only_leaves_everyone_working(database_url: str) -> None:
    report, store = await run(database_url, "wakeup")
    await store.close()
    assert [r["status"] for r in report["rollouts"]] == ["completed"]
    assert set(report["final_states"].values()) == {"work"}
    assert report["min_available_during_shutdown"] is None
    assert report["serving_during_shutdown"] is None


async def test_explorer_failure_aborts_and_fails_the_task(database_url: str) -> None:
    report, store = await run(database_url, "wakeup", fail="explorer")
    try:
        wakeup = rollout(report, "wakeup")
        plan = waves(report, "wakeup")
        assert wakeup["status"] == "aborted"
        assert plan["explorer"]["status"] == "failed"
        assert plan["early_adopter"]["status"] == plan["general"]["status"] == "skipped"
        task = await store.task(wakeup["rollout_id"])
        assert task is not None and task.status is TaskStatus.FAILED
        explorer = plan["explorer"]["members"][0]
        others = {k: v for k, v in report["final_states"].items() if k != explorer}
        assert report["final_states"][explorer] == "failed"
        assert set(others.values()) == {"wakeup"}  # nobody else was let in
    finally:
        await store.close()


async def test_early_adopter_failure_aborts_before_general(database_url: str) -> None:
    report, store = await run(database_url, "wakeup", fail="early_adopter")
    try:
        wakeup = rollout(report, "wakeup")
        plan = waves(report, "wakeup")
        assert wakeup["status"] == "aborted"
        assert [plan[g]["status"] for g in ("explorer", "early_adopter", "general")] == [
            "healthy",
            "failed",
            "skipped",
        ]
        states = report["final_states"]
        assert states[plan["explorer"]["members"][0]] == "work"  # the explorer keeps serving
        assert {states[m] for m in plan["early_adopter"]["members"]} == {"failed"}
        assert {states[m] for m in plan["general"]["members"]} == {"wakeup"}
        task = await store.task(wakeup["rollout_id"])
        assert task is not None and task.status is TaskStatus.COMPLETED
    finally:
        await store.close()


async def test_general_failure_is_logged_and_the_rollout_completes(database_url: str) -> None:
    report, store = await run(database_url, "wakeup", fail="general")
    await store.close()
    plan = waves(report, "wakeup")
    assert rollout(report, "wakeup")["status"] == "completed"
    assert plan["general"]["status"] == "failed"
    assert sorted(plan["general"]["failed"]) == sorted(plan["general"]["members"])
    assert plan["explorer"]["status"] == plan["early_adopter"]["status"] == "healthy"


async def test_rejected_shutdown_changes_nothing(database_url: str) -> None:
    report, store = await run(database_url, "reject")
    try:
        shutdown = rollout(report, "shutdown")
        assert shutdown["status"] == "rejected" and shutdown["decision"] == "reject"
        assert all(w["status"] == "skipped" for w in shutdown["waves"])
        assert set(report["final_states"].values()) == {"work"}
        requested = (await store.events(kinds=(EventKind.SHUTDOWN_REQUESTED,)))[0]
        after = await store.events(
            after_id=requested.event_id, kinds=(EventKind.OCCURRENCE_STATE_CHANGED,)
        )
        assert after == []  # no occurrence changed state after the request
    finally:
        await store.close()


@pytest.mark.parametrize("fail", ["explorer", "early_adopter"])
async def test_failed_shutdown_wave_keeps_the_rest_serving(database_url: str, fail: str) -> None:
    # At the default MIN_SERVING_FRACTION a shutdown of 6 has no early adopter (5 of 6
    # must serve until the last wave): without the floor, the FSD's 1 / 1 / 4.
    report, store = await run(
        database_url, "shutdown", fail=fail, overrides={"min_serving_fraction": 0.0}
    )
    try:
        shutdown = rollout(report, "shutdown")
        plan = waves(report, "shutdown")
        states = report["final_states"]
        assert shutdown["status"] == "aborted"
        assert plan[fail]["status"] == "failed"
        assert plan["general"]["status"] == "skipped"
        assert {states[m] for m in plan["general"]["members"]} == {"work"}
        assert {states[m] for m in plan[fail]["members"]} == {"failed"}
        task = await store.task(shutdown["rollout_id"])
        expected = TaskStatus.FAILED if fail == "explorer" else TaskStatus.COMPLETED
        assert task is not None and task.status is expected
    finally:
        await store.close()


async def test_shutdown_with_general_failure_completes(database_url: str) -> None:
    report, store = await run(database_url, "shutdown", fail="general")
    await store.close()
    plan = waves(report, "shutdown")
    assert rollout(report, "shutdown")["status"] == "completed"
    assert plan["general"]["status"] == "failed"
    assert plan["explorer"]["status"] == "healthy"
    # 6 at MIN_SERVING_FRACTION 0.8: 5 must serve until the last wave, none early.
    assert (plan["early_adopter"]["members"], plan["early_adopter"]["status"]) == ([], "skipped")
    assert len(plan["general"]["members"]) == 5


# Simulated seconds: the stop must land while the shutdown soaks after its explorer,
# and it is sent once the explorer has left; 10 wall seconds leave room for a starved loop.
EMERGENCY_EXPLORER_SOAK = 40.0


async def test_emergency_stop_mid_rollout_stops_everyone_left_and_aborts_it(
    database_url: str,
) -> None:
    report, store = await run(
        database_url, "emergency", overrides={"explorer_soak": EMERGENCY_EXPLORER_SOAK}
    )
    try:
        shutdown = rollout(report, "shutdown")
        (explorer,) = waves(report, "shutdown")["explorer"]["members"]
        everyone = set(report["final_states"])
        emergency = report["emergency"]
        command_id = emergency["command"]["command_id"]
        assert emergency["command"]["status"] == "accepted"

        # The explorer left in its wave; every other occurrence answered, once, by stopping.
        assert sorted(emergency["stopped"]) == sorted(everyone - {explorer})
        assert emergency["refused"] == [] and emergency["not_acknowledged"] == []
        assert emergency["latency_ms"]["count"] == len(everyone) - 1
        acks = await store.emergency_acks(command_id)
        assert sorted(a.occurrence_id for a in acks) == sorted(everyone - {explorer})
        acknowledged = await store.events(kinds=(EventKind.EMERGENCY_ACKNOWLEDGED,))
        assert sorted(e.occurrence_id or "" for e in acknowledged) == sorted(everyone - {explorer})
        assert await store.events(kinds=(EventKind.EMERGENCY_REFUSED,)) == []

        # The rollout was aborted by the stop, in the stop's own transaction.
        assert shutdown["status"] == "aborted"
        assert shutdown["abort_reason"].startswith(f"emergency stop ({command_id})")
        aborted = await store.events(
            rollout_id=shutdown["rollout_id"], kinds=(EventKind.ROLLOUT_ABORTED,)
        )
        assert [e.details.get("command_id") for e in aborted] == [command_id]
        assert all(w["status"] == "skipped" for w in shutdown["waves"][1:])

        # Nobody is left serving.
        assert set(report["final_states"].values()) == {"shutdown"}
        members = await store.members()
        assert {m.occurrence_id for m in members} == everyone
        assert all(m.stopped_at is not None for m in members)
    finally:
        await store.close()


def test_simulate_rejects_fail_for_the_emergency_scenario() -> None:
    with pytest.raises(ValueError, match="does not apply"):
        SimulationConfig(scenario="emergency", fail=CanaryGroup.GENERAL)
    with pytest.raises(ValueError, match="at least 2 occurrences"):
        SimulationConfig(scenario="emergency", occurrences=1)
