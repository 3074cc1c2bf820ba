"""The migration's rules, pure: what blocks the gate, and what fires a rollback."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from schemas.policy.migration_gate import (
    ColumnSpec,
    Issue,
    IssueCode,
    TableSnapshot,
    TriggerCode,
    compatibility_gate,
    rollback_triggers,
    table_issues,
)

OURS = [
    ColumnSpec("task_id", "text", nullable=False, primary_key=True),
    ColumnSpec("outcome", "json"),
    ColumnSpec("created_at", "time", nullable=False),
    ColumnSpec("priority", "number"),
]


def codes(issues: list[Issue]) -> list[str]:
    return [str(i.code) for i in issues]


def test_the_gate_is_ready_only_without_issues() -> None:
    assert compatibility_gate([]).status == "ready"
    blocked = compatibility_gate([Issue(IssueCode.TRIAL_FAILED, "x"), Issue("trial_failed", "y")])
    assert blocked.status == "blocked" and blocked.blocking_issue_codes == ["trial_failed"]


def test_a_table_with_another_key_is_not_ours() -> None:
    found = [ColumnSpec("id", "integer", nullable=False, primary_key=True)]
    assert codes(table_issues("tasks", OURS, found, "sqlite")) == ["table_not_ours"]


def test_columns_that_serve_and_columns_that_do_not() -> None:
    found = [
        ColumnSpec("task_id", "text", nullable=False, primary_key=True),
        ColumnSpec("outcome", "text"),  # JSON written as its text: serves
        ColumnSpec("created_at", "text", nullable=False),  # serves on SQLite only
        ColumnSpec("priority", "integer"),  # serves a number
    ]
    assert table_issues("tasks", OURS, found, "sqlite") == []
    pg = table_issues("tasks", OURS, found, "postgresql")
    assert codes(pg) == ["column_type_conflict"] and "created_at" in pg[0].detail


def test_an_unknown_required_column_blocks_and_one_with_a_default_does_not() -> None:
    key = ColumnSpec("task_id", "text", nullable=False, primary_key=True)
    required = ColumnSpec("tenant", "text", nullable=False)
    defaulted = ColumnSpec("region", "text", nullable=False, has_default=True)
    assert codes(table_issues("tasks", OURS, [key, required], "sqlite")) == [
        "required_column_unknown"
    ]
    assert table_issues("tasks", OURS, [key, defaulted], "sqlite") == []


snapshots = st.builds(
    TableSnapshot,
    rows=st.integers(0, 5),
    content_hash=st.sampled_from(["sha256:a", "sha256:b"]),
    columns=st.just(("c",)),
)


@given(
    st.dictionaries(st.sampled_from("tuv"), snapshots),
    st.dictionaries(st.sampled_from("tuv"), snapshots),
)
def test_a_trigger_fires_exactly_for_each_table_that_changed(
    before: dict[str, TableSnapshot], after: dict[str, TableSnapshot]
) -> None:
    fired = rollback_triggers(before, after)
    changed = [t for t in sorted(before) if after.get(t) != before[t]]
    assert len(fired) == len(changed)
    for table, issue in zip(changed, fired, strict=True):
        assert issue.detail.startswith(f"{table}:")
        now = after.get(table)
        gone_or_counted = now is None or now.rows != before[table].rows
        expected = (
            TriggerCode.ROW_COUNT_CHANGED if gone_or_counted else TriggerCode.CONTENT_HASH_CHANGED
        )
        assert issue.code == expected
    assert rollback_triggers(before, before) == []
