"""``RolloutRecord.wave_of`` answers from an index the record keeps beside its fields:
the same answers as a scan of the waves, for copies with other waves too, and invisible
to equality, hashing and dumps."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st
from policy_records import rollout, wave

from schemas import RolloutRecord, WaveRecord

NAMES = st.lists(st.sampled_from([f"occ-{i}" for i in range(8)]), max_size=6)


def scanned(record: RolloutRecord, occurrence_id: str) -> WaveRecord | None:
    return next((w for w in record.waves if occurrence_id in w.members), None)


@given(st.tuples(NAMES, NAMES, NAMES), st.tuples(NAMES, NAMES, NAMES))
def test_wave_of_is_the_first_wave_that_plans_the_member(
    planned: tuple[list[str], ...], replanned: tuple[list[str], ...]
) -> None:
    record = rollout(waves=[wave(i, members=m) for i, m in enumerate(planned)])
    copy = record.model_copy(
        update={"waves": tuple(wave(i, members=m) for i, m in enumerate(replanned))}
    )
    for occurrence_id in [f"occ-{i}" for i in range(9)]:
        assert record.wave_of(occurrence_id) == scanned(record, occurrence_id)
        assert copy.wave_of(occurrence_id) == scanned(copy, occurrence_id)


def test_the_index_is_not_part_of_the_record() -> None:
    asked, fresh = rollout(), rollout()
    asked.wave_of("occ-1")

    assert asked == fresh and hash(asked) == hash(fresh)
    assert asked.model_dump() == fresh.model_dump()
    assert asked.model_dump_json() == fresh.model_dump_json()
