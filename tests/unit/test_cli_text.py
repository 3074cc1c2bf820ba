"""What the command line prints, as pure functions: escaped stored text, the current
wave in `status`, wave results in the timeline, one FAIL line per failed smoke check, the
argument types that refuse bad values, and simulate's capacity line."""

from __future__ import annotations

import argparse
import math
import unicodedata
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from coordinator.cli.arguments import bounded_int, reason_text, seconds, utf8_text
from coordinator.cli.simulate_cmd import capacity_text
from coordinator.cli.smoke_cmd import check_lines
from coordinator.fleet_report import render
from coordinator.report import Timeline
from coordinator.terminal_text import printable
from schemas import CanaryGroup, EventKind, EventRecord

# --- printable -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "shown"),
    [
        ("\x1b[31mred", "\\x1b[31mred"),
        ("a\x00b", "a\\x00b"),
        ("x\u202eexe.txt", "x\\u202eexe.txt"),
        ("two\nlines\r", "two\\x0alines\\x0d"),
        ("\x9b", "\\x9b"),  # C1 CSI: an escape sequence on some terminals
        ("zero\u200bwidth \u2066isolate", "zero\\u200bwidth \\u2066isolate"),
        ("héllo 世界 back\\slash", "héllo 世界 back\\slash"),
    ],
)
def test_printable_escapes_what_acts_on_a_terminal(raw: str, shown: str) -> None:
    assert printable(raw) == shown


@given(st.text())
def test_printable_leaves_no_control_format_or_separator_character(text: str) -> None:
    shown = printable(text)
    assert not [c for c in shown if unicodedata.category(c) in {"Cc", "Cf", "Zl", "Zp", "Cs"}]
    assert printable(shown) == shown  # escaping once is enough


# --- status: the current wave -------------------------------------------------------------


def _report(current_wave: dict[str, Any] | None) -> dict[str, Any]:
    return {
        "now": "2026-01-01T00:00:00Z",
        "occurrences": [],
        "rollouts": [
            {
                "rollout_id": "shutdown_1",
                "kind": "shutdown",
                "status": "running",
                "decided_by": "occurrence-1",
                "decision": "accept",
                "created_at": "2026-01-01T00:00:00Z",
                "abort_reason": None,
                "driver": "occurrence-1",
                "waves": [
                    {"group": "explorer", "members": ["occurrence-2"], "status": "signalled"}
                ],
                "current_wave": current_wave,
            }
        ],
    }


def test_status_text_shows_the_current_wave_its_gate_and_times() -> None:
    text = render(
        _report(
            {
                "group": "explorer",
                "status": "signalled",
                "members": ["occurrence-2"],
                "gate": "soaking; then checks that members reached 'shutdown'",
                "next_check_in": 4.2,
                "time_left": 295.0,
            }
        )
    )
    assert (
        "now: explorer wave, soaking; then checks that members reached 'shutdown'; "
        "next check in 4.2 s, times out in 295 s"
    ) in text


def test_status_text_of_a_pending_wave_has_no_times() -> None:
    wave = {
        "group": "general",
        "status": "pending",
        "members": [],
        "gate": "waiting for the previous wave's gate",
        "next_check_in": None,
        "time_left": None,
    }
    last_line = render(_report(wave)).splitlines()[-1]
    assert last_line == "    now: general wave, waiting for the previous wave's gate"


def test_status_text_escapes_stored_text() -> None:
    report = _report(None)
    report["rollouts"][0]["abort_reason"] = "bad\x1b[2J"
    assert "aborted: bad\\x1b[2J" in render(report)


# --- the timeline ---------------------------------------------------------------------------


def _event(event_id: int, kind: str, wave: CanaryGroup, **details: Any) -> EventRecord:
    return EventRecord(
        event_id=event_id,
        at=1000.0 + event_id,
        kind=kind,
        occurrence_id="occurrence-3",  # the driver writes both
        rollout_id="shutdown_1",
        task_id="shutdown_1",
        wave=wave,
        details=details,
    )


GENERAL = [f"occurrence-{i}" for i in range(3, 9)]


def test_a_healthy_wave_counts_its_members_and_names_the_driver_leaving_last() -> None:
    lines = Timeline().lines(
        [
            _event(1, EventKind.WAVE_SIGNALLED, CanaryGroup.GENERAL, members=GENERAL),
            _event(2, EventKind.WAVE_HEALTHY, CanaryGroup.GENERAL, reached=GENERAL[1:], failed=[]),
        ],
        origin=1000.0,
    )
    assert lines[1] == (
        "T+0:02  Wave 3 (general) healthy: 5 of 6 reached; occurrence-3 (driving) leaves "
        "after recording the result"
    )


def test_a_healthy_wave_names_its_failed_members() -> None:
    lines = Timeline().lines(
        [
            _event(1, EventKind.WAVE_SIGNALLED, CanaryGroup.GENERAL, members=GENERAL),
            _event(
                2,
                EventKind.WAVE_HEALTHY,
                CanaryGroup.GENERAL,
                reached=GENERAL[:5],
                failed=GENERAL[5:],
            ),
        ],
        origin=1000.0,
    )
    assert lines[1].endswith("healthy: 5 of 6 reached; failed: occurrence-8")


def test_the_timeline_escapes_stored_text() -> None:
    event = EventRecord(
        event_id=1,
        at=1000.0,
        kind=EventKind.SHUTDOWN_REQUESTED,
        occurrence_id=None,
        rollout_id=None,
        task_id="shutdown_1",
        wave=None,
        details={"requested_by": "op", "reason": "now\x1b[2J\u202e"},
    )
    assert Timeline().describe(event) == "shutdown requested by op: now\\x1b[2J\\u202e"


# --- smoke ------------------------------------------------------------------------------------


def test_one_failed_smoke_check_is_one_fail_line() -> None:
    lines = check_lines(
        "diagnostics", False, ["the database does not answer: timeout", "backend sqlite"]
    )
    assert [line.startswith("FAIL") for line in lines] == [True, False]
    assert lines == [
        "FAIL  diagnostics  the database does not answer: timeout",
        "                   backend sqlite",
    ]
    assert check_lines("metrics", True, []) == ["ok    metrics"]


# --- argument types -------------------------------------------------------------------------


@pytest.mark.parametrize("text", ["nan", "-nan", "inf", "-5", "1e308", "abc", "", "86401"])
def test_seconds_refuses_what_is_not_a_sane_duration(text: str) -> None:
    with pytest.raises(argparse.ArgumentTypeError, match="from 0 to 86400"):
        seconds(0, 86_400)(text)


def test_seconds_accepts_its_bounds() -> None:
    parse = seconds(0, 86_400)
    assert (parse("0"), parse("86400"), parse("1.5")) == (0.0, 86_400.0, 1.5)
    assert not math.isnan(parse("30"))


def test_text_must_be_utf8() -> None:
    with pytest.raises(argparse.ArgumentTypeError, match=r"valid UTF-8 text \(got 'bad\\xff'\)"):
        utf8_text("bad\udcff")
    assert utf8_text("héllo") == "héllo"


def test_reason_is_stripped_and_bounded() -> None:
    assert reason_text("  why  ") == "why"
    with pytest.raises(argparse.ArgumentTypeError, match="must not be empty"):
        reason_text("   ")
    with pytest.raises(argparse.ArgumentTypeError, match="at most 500"):
        reason_text("x" * 501)


def test_bounded_int() -> None:
    assert bounded_int(1, 10)("10") == 10
    for text in ("0", "11", "1.5", "x"):
        with pytest.raises(argparse.ArgumentTypeError):
            bounded_int(1, 10)(text)


# --- simulate's capacity line -------------------------------------------------------------


def capacity(serving: int, planned: int, floor: int, minimum: float = 0.8) -> dict[str, Any]:
    return {
        "serving": serving,
        "planned": planned,
        "floor": floor,
        "fraction": round(serving / planned, 4),
        "minimum": minimum,
        "held": serving >= floor,
    }


def test_the_capacity_line_gives_the_fraction_and_the_minimum() -> None:
    assert capacity_text(capacity(8, 9, 8)) == "8 of 9 (89%, minimum 80%)"
    assert capacity_text(capacity(80, 100, 80)) == "80 of 100 (80%, minimum 80%)"


def test_the_capacity_line_says_when_the_minimum_did_not_hold_and_why() -> None:
    # A member lost before the last wave: below the floor the plan kept.
    assert capacity_text(capacity(7, 9, 8)) == "7 of 9 (78%, below the minimum 80%)"
    # Three cannot keep 80% and still let one leave first.
    assert capacity_text(capacity(2, 3, 3)) == (
        "2 of 3 (67%, below the minimum 80%: 3 cannot spare even the explorer)"
    )
