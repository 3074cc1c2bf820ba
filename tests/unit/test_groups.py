"""Canary group assignment: explorer = decider, then early adopters and general in natural order."""

from __future__ import annotations

import random
import string

from hypothesis import given, settings
from hypothesis import strategies as st

from coordinator.policy.groups import assign_canary_groups, early_adopter_count, natural_key
from schemas import WAVE_ORDER, CanaryGroup, validate_occurrence_id

PROPERTY = settings(max_examples=100, deadline=None, database=None)

ID_ALPHABET = string.ascii_letters + string.digits + "._-"

EXPLORER, EARLY, GENERAL = CanaryGroup.EXPLORER, CanaryGroup.EARLY_ADOPTER, CanaryGroup.GENERAL


def occurrence_ids(count: int, prefix: str = "occurrence-") -> list[str]:
    return [f"{prefix}{n}" for n in range(1, count + 1)]


# Valid ids: arbitrary ones from the whole alphabet, and "name-N" ones where the natural
# order matters (occurrence-10 after occurrence-9).
_free_ids = st.text(alphabet=ID_ALPHABET, min_size=1, max_size=64).filter(
    lambda s: s != "__shared__"
)
_numbered_ids = st.builds(
    lambda prefix, n: f"{prefix}-{n}",
    st.sampled_from(["occurrence", "occ", "agent", "node"]),
    st.integers(min_value=0, max_value=10_000),
)
valid_ids = st.one_of(_free_ids, _numbered_ids)
fractions = st.floats(min_value=0.0, max_value=1.0, exclude_min=True, exclude_max=True)


# --- the FSD's own example ----------------------------------------------------------------


def test_nine_occurrences_split_one_two_six() -> None:
    members = occurrence_ids(9)

    groups = assign_canary_groups("occurrence-1", members)

    assert groups[EXPLORER] == ("occurrence-1",)
    assert groups[EARLY] == ("occurrence-2", "occurrence-3")
    assert groups[GENERAL] == tuple(occurrence_ids(9)[3:])
    assert [len(groups[g]) for g in WAVE_ORDER] == [1, 2, 6]


def test_decider_anywhere_in_the_list_is_the_explorer_and_is_left_out_of_the_others() -> None:
    members = occurrence_ids(9)
    random.Random(3).shuffle(members)

    groups = assign_canary_groups("occurrence-5", members)

    assert groups[EXPLORER] == ("occurrence-5",)
    assert groups[EARLY] == ("occurrence-1", "occurrence-2")
    assert groups[GENERAL] == (
        "occurrence-3",
        "occurrence-4",
        "occurrence-6",
        "occurrence-7",
        "occurrence-8",
        "occurrence-9",
    )


def test_decider_missing_from_members_still_counts_in_the_total() -> None:
    others = occurrence_ids(9)[1:]  # 8 members; with the decider, 9 occurrences

    groups = assign_canary_groups("occurrence-1", others)

    assert [len(groups[g]) for g in WAVE_ORDER] == [1, 2, 6]


def test_a_lone_decider_has_empty_early_and_general_waves() -> None:
    groups = assign_canary_groups("solo", ["solo"])

    assert groups == {EXPLORER: ("solo",), EARLY: (), GENERAL: ()}


def test_two_occurrences_give_one_early_adopter_and_no_general() -> None:
    groups = assign_canary_groups("b", ["a", "b"])

    assert groups == {EXPLORER: ("b",), EARLY: ("a",), GENERAL: ()}


def test_duplicate_members_are_counted_once() -> None:
    groups = assign_canary_groups("x", ["y", "y", "z", "x", "z"])

    assert groups[EXPLORER] == ("x",)
    assert sorted(groups[EARLY] + groups[GENERAL]) == ["y", "z"]


# --- natural order ------------------------------------------------------------------------


def test_natural_order_puts_ten_after_nine() -> None:
    ids = ["occurrence-10", "occurrence-9", "occurrence-1", "occurrence-2", "occurrence-11"]

    assert sorted(ids, key=natural_key) == [
        "occurrence-1",
        "occurrence-2",
        "occurrence-9",
        "occurrence-10",
        "occurrence-11",
    ]


def test_natural_order_drives_the_groups_with_twelve_members() -> None:
    members = occurrence_ids(12)
    random.Random(7).shuffle(members)

    groups = assign_canary_groups("occurrence-12", members)

    # 12 occurrences -> max(1, int(12 * 0.3)) = 3 early adopters: 1, 2, 3 (not 1, 10, 11).
    assert groups[EARLY] == ("occurrence-1", "occurrence-2", "occurrence-3")
    assert groups[GENERAL][-2:] == ("occurrence-10", "occurrence-11")


def test_ids_equal_as_numbers_are_still_ordered_deterministically() -> None:
    assert sorted(["a01", "a1", "a001"], key=natural_key) == sorted(
        ["a1", "a001", "a01"], key=natural_key
    )
    assert natural_key("a01") != natural_key("a1")


@PROPERTY
@given(
    prefix=st.text(alphabet=string.ascii_letters + "._-", min_size=1, max_size=10),
    a=st.integers(min_value=0, max_value=10**6),
    b=st.integers(min_value=0, max_value=10**6),
)
def test_numeric_suffixes_compare_as_numbers(prefix: str, a: int, b: int) -> None:
    left, right = natural_key(f"{prefix}{a}"), natural_key(f"{prefix}{b}")

    assert (left < right) == (a < b)


# --- early adopter count ------------------------------------------------------------------


def test_early_adopter_count_matches_the_fsd_example_and_never_drops_below_one() -> None:
    assert early_adopter_count(9) == 2
    assert early_adopter_count(1) == 1
    assert early_adopter_count(2) == 1
    assert early_adopter_count(3, fraction=0.01) == 1


# --- properties ---------------------------------------------------------------------------


@st.composite
def fleets(draw: st.DrawFn) -> tuple[str, list[str], float]:
    members = draw(st.lists(valid_ids, min_size=1, max_size=60, unique=True))
    decider = draw(st.one_of(st.sampled_from(members), valid_ids))
    return decider, members, draw(fractions)


@PROPERTY
@given(fleet=fleets())
def test_groups_partition_the_members_and_the_decider(fleet: tuple[str, list[str], float]) -> None:
    decider, members, fraction = fleet

    groups = assign_canary_groups(decider, members, fraction)

    everyone = [m for g in WAVE_ORDER for m in groups[g]]
    assert sorted(everyone) == sorted(set(members) | {decider})  # no loss, no duplicate
    assert groups[EXPLORER] == (decider,)
    for member in everyone:
        validate_occurrence_id(member)


@PROPERTY
@given(fleet=fleets())
def test_early_adopter_count_follows_the_fsd_formula(fleet: tuple[str, list[str], float]) -> None:
    decider, members, fraction = fleet
    others = set(members) - {decider}
    total = len(others) + 1

    groups = assign_canary_groups(decider, members, fraction)

    assert len(groups[EARLY]) == min(len(others), max(1, int(total * fraction)))
    assert len(groups[GENERAL]) == len(others) - len(groups[EARLY])


@PROPERTY
@given(fleet=fleets())
def test_each_group_is_in_natural_order_and_early_adopters_come_first(
    fleet: tuple[str, list[str], float],
) -> None:
    decider, members, fraction = fleet

    groups = assign_canary_groups(decider, members, fraction)

    for group in WAVE_ORDER:
        assert list(groups[group]) == sorted(groups[group], key=natural_key)
    if groups[EARLY] and groups[GENERAL]:
        assert natural_key(groups[EARLY][-1]) < natural_key(groups[GENERAL][0])


@PROPERTY
@given(fleet=fleets(), seed=st.integers())
def test_assignment_does_not_depend_on_input_order(
    fleet: tuple[str, list[str], float], seed: int
) -> None:
    decider, members, fraction = fleet
    shuffled = list(members)
    random.Random(seed).shuffle(shuffled)

    assert assign_canary_groups(decider, shuffled, fraction) == assign_canary_groups(
        decider, members, fraction
    )
