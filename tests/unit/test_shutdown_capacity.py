"""Capacity during a shutdown: the plan keeps ``MIN_SERVING_FRACTION`` of its members
serving until the last wave (the one its driver leaves with); a wakeup is not cut."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from coordinator.policy.groups import (
    early_adopter_count,
    serving_floor,
    shutdown_early_adopter_count,
)
from coordinator.policy.planning import build_plan
from schemas import CanaryGroup, LifecycleKind, RolloutPlan, Settings, kind_policy, load_settings

PROPERTY = settings(max_examples=300, deadline=None, database=None)
EXPLORER, EARLY, GENERAL = CanaryGroup.EXPLORER, CanaryGroup.EARLY_ADOPTER, CanaryGroup.GENERAL


def fleet(size: int) -> list[str]:
    return [f"occ-{n}" for n in range(1, size + 1)]


def floor_exactly(total: int, permille: int) -> int:
    """``ceil(total * permille / 1000)`` in integers: the floor without any float."""
    return -(-total * permille // 1000)


def serving_before_each_wave_but_the_last(plan: RolloutPlan) -> list[int]:
    """Planned members still serving after each wave before the last wave with members."""
    sizes = [len(w.members) for w in plan.waves]
    last = max(i for i, size in enumerate(sizes) if size)
    serving, left = [], 0
    for size in sizes[:last]:
        left += size
        serving.append(plan.total_members - left)
    return serving


def shutdown_plan(size: int, min_serving: float, early_fraction: float = 0.3) -> RolloutPlan:
    config = Settings(min_serving_fraction=min_serving, early_adopter_fraction=early_fraction)
    return build_plan(LifecycleKind.SHUTDOWN, "occ-1", fleet(size), config)


# --- the rule, by example -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("total", "fraction", "floor"),
    [(9, 0.8, 8), (10, 0.8, 8), (100, 0.8, 80), (10, 0.7, 7), (3, 0.5, 2), (7, 0.0, 0)],
)
def test_the_serving_floor_is_the_ceiling_of_the_fraction(
    total: int, fraction: float, floor: int
) -> None:
    # 0.7 * 10 is 7.000000000000001 in floats: the floor is still 7.
    assert serving_floor(total, fraction) == floor


@pytest.mark.parametrize(
    ("total", "early"),
    [(1, 0), (2, 0), (4, 0), (5, 0), (9, 0), (10, 1), (15, 2), (20, 3), (100, 19), (200, 39)],
)
def test_early_adopters_of_a_shutdown_at_the_default_minimum(total: int, early: int) -> None:
    assert shutdown_early_adopter_count(total) == early


def test_a_minimum_of_zero_cuts_nothing() -> None:
    for total in range(1, 201):
        expected = min(early_adopter_count(total), total - 1)
        assert shutdown_early_adopter_count(total, min_serving_fraction=0.0) == expected


def test_the_default_shutdown_plan_for_nine_keeps_eight_serving(
    clean_env: pytest.MonkeyPatch,
) -> None:
    plan = build_plan(LifecycleKind.SHUTDOWN, "occ-1", fleet(9), load_settings())

    assert [w.group for w in plan.waves] == [EXPLORER, EARLY, GENERAL]
    assert [len(w.members) for w in plan.waves] == [1, 0, 8]
    assert plan.wave(EXPLORER).members == ("occ-1",)
    assert serving_before_each_wave_but_the_last(plan) == [8, 8]
    assert min(serving_before_each_wave_but_the_last(plan)) / 9 >= 0.8


def test_the_early_adopters_cut_from_a_shutdown_join_the_general_wave(
    clean_env: pytest.MonkeyPatch,
) -> None:
    plan = build_plan(LifecycleKind.SHUTDOWN, "occ-1", fleet(20), load_settings())

    # 20 at 0.8: 16 must serve, so 4 may leave early: the explorer and 3 of the usual 6.
    assert plan.wave(EARLY).members == ("occ-2", "occ-3", "occ-4")
    assert plan.wave(GENERAL).members == tuple(fleet(20)[4:])


def test_a_wakeup_plan_is_not_cut(clean_env: pytest.MonkeyPatch) -> None:
    plan = build_plan(LifecycleKind.WAKEUP, "occ-1", fleet(9), load_settings())

    assert [len(w.members) for w in plan.waves] == [1, 2, 6]


def test_a_shutdown_at_a_minimum_of_zero_is_the_fsd_plan(clean_env: pytest.MonkeyPatch) -> None:
    plan = build_plan(
        LifecycleKind.SHUTDOWN, "occ-1", fleet(9), load_settings(min_serving_fraction=0.0)
    )

    assert [len(w.members) for w in plan.waves] == [1, 2, 6]


# --- the rule, as a property over fleets of 1 to 200 --------------------------------------


@PROPERTY
@given(
    size=st.integers(min_value=1, max_value=200),
    permille=st.integers(min_value=0, max_value=999),
    early_fraction=st.floats(min_value=0.01, max_value=0.99),
)
def test_before_the_last_wave_the_floor_serves_or_the_plan_is_the_smallest_canary(
    size: int, permille: int, early_fraction: float
) -> None:
    """For every prefix of waves but the last: planned members still serving >=
    ceil(fraction * N). Only when N - ceil(fraction * N) < 1 (the fleet cannot spare even
    its explorer) does the explorer alone leave before the last wave, the smallest canary."""
    plan = shutdown_plan(size, permille / 1000, early_fraction)
    floor = floor_exactly(size, permille)

    assert plan.total_members == size
    serving = serving_before_each_wave_but_the_last(plan)
    if size - floor >= 1:
        assert all(count >= floor for count in serving), (serving, floor)
    else:
        assert [len(w.members) for w in plan.waves[:-1]] == [1, 0]
        assert plan.wave(EXPLORER).members == ("occ-1",)


@PROPERTY
@given(
    size=st.integers(min_value=1, max_value=200),
    permille=st.integers(min_value=0, max_value=999),
    early_fraction=st.floats(min_value=0.01, max_value=0.99),
)
def test_the_shutdown_plan_cuts_no_more_early_adopters_than_it_must(
    size: int, permille: int, early_fraction: float
) -> None:
    """The early adopters are the usual count, or as many as leave the floor serving."""
    plan = shutdown_plan(size, permille / 1000, early_fraction)
    floor = floor_exactly(size, permille)
    usual = min(early_adopter_count(size, early_fraction), size - 1)

    assert len(plan.wave(EARLY).members) == max(0, min(usual, size - floor - 1))


@PROPERTY
@given(
    size=st.integers(min_value=2, max_value=200),
    fraction=st.floats(min_value=0.0, max_value=1.0, exclude_max=True),
)
def test_the_driver_still_leaves_with_the_general_wave(size: int, fraction: float) -> None:
    """A floor of one member or more leaves members in the general wave, so it stays the
    last wave (the one a shutdown's driver leaves with, ``driver_leaves_last``)."""
    assert kind_policy(LifecycleKind.SHUTDOWN).driver_leaves_last
    plan = shutdown_plan(size, fraction)

    if serving_floor(size, fraction) >= 1:
        assert plan.waves[-1].group is GENERAL and plan.waves[-1].members
    # Any float, not only thousandths: the floor serves, or only the explorer left.
    serving = serving_before_each_wave_but_the_last(plan)[-1]
    assert serving >= fraction * size - 1e-9 or serving == size - 1
