"""The acknowledgements report shared by ``emergency-shutdown --wait`` and ``simulate``."""

from __future__ import annotations

from coordinator.emergency_report import AckReport, expected_targets, nearest_rank
from schemas import (
    AckVerdict,
    CommandKind,
    CommandRecord,
    CommandStatus,
    EmergencyAck,
    OccurrenceRecord,
    OccurrenceState,
)

COMMAND = CommandRecord(
    command_id="c1",
    kind=CommandKind.EMERGENCY_SHUTDOWN,
    status=CommandStatus.ACCEPTED,
    issued_by="op",
    detail="emergency shutdown of the whole fleet accepted",
    created_at=100.0,
)


def ack(
    occurrence_id: str, latency: float, verdict: AckVerdict = AckVerdict.STOPPED
) -> EmergencyAck:
    return EmergencyAck(
        command_id="c1",
        occurrence_id=occurrence_id,
        incarnation_id=f"i-{occurrence_id}",
        verdict=verdict,
        acked_at=100.0 + latency,
        latency=latency,
    )


def member(occurrence_id: str, heartbeat: float, stopped: bool = False) -> OccurrenceRecord:
    return OccurrenceRecord(
        occurrence_id=occurrence_id,
        incarnation_id=f"i-{occurrence_id}",
        generation=1,
        state=OccurrenceState.WORK,
        protocol_version=1,
        host="h",
        pid=1,
        started_at=0.0,
        last_heartbeat_at=heartbeat,
        stopped_at=heartbeat if stopped else None,
    )


def test_nearest_rank_is_always_a_measured_value() -> None:
    values = [10.0, 20.0, 30.0, 40.0]
    assert nearest_rank(values, 0.5) == 20.0
    assert nearest_rank(values, 0.95) == 40.0
    assert nearest_rank([7.0], 0.5) == nearest_rank([7.0], 0.95) == 7.0


def test_targets_are_the_named_ones_or_every_live_member() -> None:
    members = [member("a", 95.0), member("b", 50.0), member("c", 99.0, stopped=True)]
    assert expected_targets(members, ["z", "y", "z"], now=100.0, member_ttl=10.0) == ["y", "z"]
    assert expected_targets(members, [], now=100.0, member_ttl=10.0) == ["a"]


def test_who_stopped_refused_and_did_not_answer_with_the_spread() -> None:
    acks = (ack("a", 0.010), ack("b", 0.030, AckVerdict.REFUSED), ack("c", 0.020))
    report = AckReport(COMMAND, acks, expected=("a", "b", "c", "d"))
    assert report.stopped == ["a", "c"]
    assert report.refused == ["b"]
    assert report.silent == ["d"]
    assert report.latency_ms() == {"count": 3, "p50": 20.0, "p95": 30.0, "max": 30.0}
    text = "\n".join(report.lines())
    assert "d                        no answer" in text
    assert "cancel-to-ack over 3: p50 20.0 ms, p95 30.0 ms, max 30.0 ms" in text
    assert text.endswith("2 stopped, 1 refused, 1 did not answer")
    assert report.to_json()["not_acknowledged"] == ["d"]


def test_a_scaled_clock_is_reported_in_wall_clock_time() -> None:
    report = AckReport(COMMAND, (ack("a", 1.5),), expected=("a",), time_scale=15.0)
    assert report.latency_ms() == {"count": 1, "p50": 100.0, "p95": 100.0, "max": 100.0}
    assert report.to_json()["acknowledged"][0]["latency"] == 0.1


def test_without_waiting_only_the_command_and_its_targets_are_shown() -> None:
    report = AckReport(COMMAND, (), expected=("a",), waited=False)
    assert report.lines() == [
        "command c1: accepted - emergency shutdown of the whole fleet accepted",
        "  a                        no answer",
    ]
    assert report.to_json()["latency_ms"] is None
