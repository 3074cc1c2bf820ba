"""Which engine each occurrence loaded, as ``status`` prints it, and the rule
``smoke --expect-engine`` applies to each live occurrence."""

from __future__ import annotations

from typing import Any

import pytest

from coordinator.engine_report import engine_mismatch
from coordinator.fleet_report import render
from schemas import EngineIdentity, EngineKind

BUILTIN = EngineIdentity.builtin()
EXTERNAL = EngineIdentity(kind=EngineKind.EXTERNAL, name="my_agent.engine:Engine")
FALLBACK = EngineIdentity.builtin("module_missing: cannot import 'my_agent.engine'")


@pytest.mark.parametrize(
    ("found", "expected"),
    [
        (BUILTIN, "builtin"),
        (BUILTIN, "builtin:accept"),
        (EXTERNAL, "external"),
        (EXTERNAL, "my_agent.engine:Engine"),
    ],
)
def test_an_occurrence_that_loaded_what_is_expected_passes(
    found: EngineIdentity, expected: str
) -> None:
    assert engine_mismatch(found, expected) is None


@pytest.mark.parametrize(
    ("found", "expected", "reason"),
    [
        (BUILTIN, "external", "loaded builtin engine builtin:accept"),
        (BUILTIN, "my_agent.engine:Engine", "loaded builtin engine builtin:accept"),
        (EXTERNAL, "builtin", "loaded external engine my_agent.engine:Engine"),
        (EXTERNAL, "my_agent.engine:Other", "loaded external engine my_agent.engine:Engine"),
        (None, "builtin", "recorded no engine"),
    ],
)
def test_an_occurrence_that_loaded_something_else_is_named_with_what(
    found: EngineIdentity | None, expected: str, reason: str
) -> None:
    mismatch = engine_mismatch(found, expected)
    assert mismatch is not None and mismatch.startswith(reason), mismatch


@pytest.mark.parametrize("expected", ["builtin", "external", "my_agent.engine:Engine"])
def test_an_occurrence_whose_engine_failed_to_load_never_passes(expected: str) -> None:
    mismatch = engine_mismatch(FALLBACK, expected)
    assert mismatch is not None
    assert "did not load: module_missing: cannot import 'my_agent.engine'" in mismatch


def _occurrence(occurrence_id: str, engine: dict[str, Any]) -> dict[str, Any]:
    return {
        "occurrence_id": occurrence_id,
        "state": "work",
        "alive": True,
        "last_heartbeat_at": "2026-01-01T00:00:00Z",
        "host": "h",
        "pid": 1,
        "engine": engine,
    }


def test_status_text_shows_each_engine_and_why_a_named_one_did_not_load() -> None:
    report = {
        "now": "2026-01-01T00:00:00Z",
        "rollouts": [],
        "occurrences": [
            _occurrence("occurrence-1", {"kind": "external", "name": EXTERNAL.name, "error": None}),
            _occurrence(
                "occurrence-2",
                {"kind": "builtin", "name": "builtin:accept", "error": FALLBACK.error},
            ),
            _occurrence("occurrence-3", {"kind": "unknown", "name": None, "error": None}),
            _occurrence(
                "occurrence-4", {"kind": "builtin", "name": "builtin:accept", "error": "x\x1b[2J"}
            ),
        ],
    }

    lines = render(report).splitlines()

    assert lines[1].split()[-1] == "ENGINE"
    assert lines[2].endswith("my_agent.engine:Engine")
    assert lines[3].endswith("builtin:accept (fallback)")
    assert lines[4].endswith("unknown")
    assert (
        "  occurrence-2: COORDINATOR_ENGINE did not load, it runs builtin:accept instead: "
        "module_missing: cannot import 'my_agent.engine'"
    ) in lines
    assert any(line.endswith("instead: x\\x1b[2J") for line in lines)  # escaped, as all text
