"""The decider's pure steps: when discovery is done, the plan, and the FSD's messages."""

from __future__ import annotations

import pytest

from coordinator.policy.planning import build_plan, discovery_done
from coordinator.prompts import render_message, render_shutdown_message, render_wakeup_message
from schemas import WAVE_ORDER, CanaryGroup, LifecycleKind, RolloutPlan, Settings, load_settings

EXPLORER, EARLY, GENERAL = CanaryGroup.EXPLORER, CanaryGroup.EARLY_ADOPTER, CanaryGroup.GENERAL
NINE = [f"occ-{n}" for n in range(1, 10)]

# Distinct, non-default timings, so the messages can only have taken them from the plan.
EXPLORER_SOAK, EARLY_SOAK, HEALTH_POLL, HEALTH_TIMEOUT = 12.0, 34.0, 3.0, 120.0


@pytest.fixture
def fleet_settings(clean_env: pytest.MonkeyPatch) -> Settings:
    return load_settings(
        explorer_soak=EXPLORER_SOAK,
        early_adopter_soak=EARLY_SOAK,
        health_poll=HEALTH_POLL,
        health_timeout=HEALTH_TIMEOUT,
        agent_occurrence_count=9,
    )


def line_starting(message: str, prefix: str) -> str:
    """The one line of ``message`` that starts with ``prefix`` (after indentation)."""
    lines = [line for line in message.splitlines() if line.strip().startswith(prefix)]
    assert len(lines) == 1, (prefix, lines)
    return lines[0]


# --- discovery ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("live", "expected", "waited", "grace", "done"),
    [
        (9, 9, 0.0, 10.0, True),  # the expected count is live: done at once
        (10, 9, 0.0, 10.0, True),  # more than expected
        (8, 9, 9.9, 10.0, False),  # short of the count, inside the grace period
        (8, 9, 10.0, 10.0, True),  # grace period over: go with whoever is live
        (1, 9, 60.0, 10.0, True),
        (5, None, 3.0, 10.0, False),  # no expected count: wait out the grace
        (5, None, 10.0, 10.0, True),
        (1, None, 0.0, 0.0, True),  # no grace at all
    ],
)
def test_discovery_done(
    live: int, expected: int | None, waited: float, grace: float, done: bool
) -> None:
    assert discovery_done(live, expected, waited, grace) is done


# --- plan ---------------------------------------------------------------------------------


def test_plan_for_nine_occurrences(fleet_settings: Settings) -> None:
    plan = build_plan(LifecycleKind.WAKEUP, "occ-1", NINE, fleet_settings, request_reason="morning")

    assert plan.kind is LifecycleKind.WAKEUP
    assert [w.group for w in plan.waves] == list(WAVE_ORDER)
    assert [len(w.members) for w in plan.waves] == [1, 2, 6]
    assert plan.wave(EXPLORER).members == ("occ-1",)
    assert [w.soak for w in plan.waves] == [EXPLORER_SOAK, EARLY_SOAK, 0.0]
    assert (plan.health_poll, plan.health_timeout) == (HEALTH_POLL, HEALTH_TIMEOUT)
    assert plan.expected_occurrences == 9
    assert plan.discovered_occurrences == 9
    assert plan.total_members == 9
    assert plan.request_reason == "morning"


def test_the_decider_counts_among_the_discovered_even_if_not_listed(
    fleet_settings: Settings,
) -> None:
    plan = build_plan(LifecycleKind.SHUTDOWN, "occ-1", NINE[1:], fleet_settings)

    assert plan.discovered_occurrences == 9
    assert plan.wave(EXPLORER).members == ("occ-1",)
    assert plan.request_reason is None


def test_discovered_count_ignores_duplicates_and_can_fall_short_of_the_expected(
    fleet_settings: Settings,
) -> None:
    plan = build_plan(LifecycleKind.WAKEUP, "occ-1", ["occ-2", "occ-2", "occ-3"], fleet_settings)

    assert plan.discovered_occurrences == 3
    assert plan.expected_occurrences == 9
    assert sorted(m for w in plan.waves for m in w.members) == ["occ-1", "occ-2", "occ-3"]


def test_the_plan_uses_the_configured_early_adopter_fraction(clean_env: pytest.MonkeyPatch) -> None:
    half = load_settings(early_adopter_fraction=0.5)

    plan = build_plan(LifecycleKind.WAKEUP, "occ-1", NINE, half)

    assert len(plan.wave(EARLY).members) == int(9 * 0.5)


# --- wakeup message -----------------------------------------------------------------------


@pytest.fixture
def nine_plan(fleet_settings: Settings) -> RolloutPlan:
    return build_plan(LifecycleKind.WAKEUP, "occ-1", NINE, fleet_settings)


def test_wakeup_message_speaks_for_the_whole_fleet(nine_plan: RolloutPlan) -> None:
    message = render_wakeup_message(nine_plan, agent_name="Aria", occurrence_id="occ-1")

    assert message.startswith("VERIFY_IDENTITY")
    assert "You are Aria, occurrence occ-1" in message
    assert "ALL 9 runtime occurrences" in message


def test_wakeup_message_lists_each_wave_with_its_real_count_members_and_timing(
    nine_plan: RolloutPlan,
) -> None:
    message = render_wakeup_message(nine_plan, agent_name="Aria", occurrence_id="occ-1")

    wave1 = line_starting(message, "- Wave 1")
    assert "1 occurrence (occ-1)" in wave1
    wave2 = line_starting(message, "- Wave 2")
    assert "2 occurrences (occ-2, occ-3)" in wave2
    assert f"{EXPLORER_SOAK:g} seconds after explorers" in wave2
    wave3 = line_starting(message, "- Wave 3")
    assert "6 occurrences (occ-4, occ-5, occ-6, occ-7, occ-8, occ-9)" in wave3
    assert f"{EARLY_SOAK:g} seconds after early adopters" in wave3
    health = line_starting(message, "Health:")
    assert f"every {HEALTH_POLL:g} s" in health
    assert f"up to {HEALTH_TIMEOUT:g} s" in health


def test_long_member_lists_are_cut_after_six_names(fleet_settings: Settings) -> None:
    members = [f"node-{n:02d}" for n in range(1, 13)]
    plan = build_plan(LifecycleKind.WAKEUP, "node-01", members, fleet_settings)
    general = plan.wave(GENERAL).members
    assert len(general) > 6

    message = render_wakeup_message(plan, agent_name="Aria", occurrence_id="node-01")

    wave3 = line_starting(message, "- Wave 3")
    assert (
        f"{len(general)} occurrences ({', '.join(general[:6])}, and {len(general) - 6} more)"
        in wave3
    )
    for hidden in general[6:]:
        assert hidden not in message


def test_a_lone_occurrence_has_empty_waves_named_none(clean_env: pytest.MonkeyPatch) -> None:
    plan = build_plan(LifecycleKind.WAKEUP, "solo", [], load_settings())

    message = render_wakeup_message(plan, agent_name="Aria", occurrence_id="solo")

    assert "ALL 1 runtime occurrences" in message
    assert "0 occurrences (none)" in line_starting(message, "- Wave 2")
    assert "0 occurrences (none)" in line_starting(message, "- Wave 3")


# --- shutdown message ---------------------------------------------------------------------


def test_shutdown_message_carries_the_plan_and_the_reason(fleet_settings: Settings) -> None:
    plan = build_plan(LifecycleKind.SHUTDOWN, "occ-1", NINE, fleet_settings)

    message = render_shutdown_message(
        plan, occurrence_id="occ-1", reason="maintenance window at 02:00"
    )

    assert message.startswith("SYSTEM SHUTDOWN REQUEST")
    assert "occurrence occ-1" in message
    assert "ALL 9 runtime occurrences" in message
    assert "Explorers - 1 occurrence: occ-1" in line_starting(message, "Wave 1")
    # MIN_SERVING_FRACTION 0.8 keeps 8 of 9 serving: no early adopter leaves before them.
    assert "Early Adopters - 0 occurrences: none" in line_starting(message, "Wave 2")
    assert "General - 8 occurrences: occ-2, occ-3, occ-4, occ-5, occ-6, occ-7, and 2 more" in (
        line_starting(message, "Wave 3")
    )
    assert "8 occurrences keep serving until this wave" in message
    assert f"after {EXPLORER_SOAK:g} seconds" in message
    assert f"after {EARLY_SOAK:g} seconds" in message
    health = line_starting(message, "Health:")
    assert f"every {HEALTH_POLL:g} s for up to {HEALTH_TIMEOUT:g} s" in health
    assert line_starting(message, "Reason for shutdown request:").endswith(
        "maintenance window at 02:00"
    )
    assert "[ACCEPT]" in message and "[REJECT]" in message


@pytest.mark.parametrize("kind", list(LifecycleKind))
def test_every_kind_has_its_message(kind: LifecycleKind, fleet_settings: Settings) -> None:
    """The decider asks for the message of the kind's prompt: each kind has one, and it is
    the FSD's message of that kind."""
    plan = build_plan(kind, "occ-1", NINE, fleet_settings)
    message = render_message(plan, agent_name="Aria", occurrence_id="occ-1", reason="r")
    expected = {
        LifecycleKind.WAKEUP: render_wakeup_message(plan, agent_name="Aria", occurrence_id="occ-1"),
        LifecycleKind.SHUTDOWN: render_shutdown_message(plan, occurrence_id="occ-1", reason="r"),
    }[kind]
    assert message == expected
