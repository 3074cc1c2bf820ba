"""What ``migrate`` prints: the evidence, readable at a glance."""

from __future__ import annotations

from pathlib import Path
from typing import Any


def render(evidence: dict[str, Any], exported: Path | None) -> str:
    schema, gate, rollback = (
        evidence["schema"],
        evidence["compatibility_gate"],
        evidence["rollback"],
    )
    before = schema["revision_before"] or "none (a schema made before migrations, or empty)"
    lines = [
        f"database   {evidence['database']} ({evidence['backend']})",
        f"schema     {before}; head {schema['head']}; "
        f"pending {', '.join(schema['pending']) or 'nothing'}",
        f"changes    {len(evidence['changes'])}",
        *(f"             {change}" for change in evidence["changes"]),
        f"gate       {gate['status']}"
        + (f": {', '.join(gate['blocking_issue_codes'])}" if gate["blocking_issue_codes"] else ""),
        *(f"             {i['code']}: {i['detail']}" for i in gate["issues"]),
        "rollback   "
        + (
            f"required: {', '.join(rollback['trigger_codes'])}"
            if rollback["required"]
            else f"not required (watched: {', '.join(rollback['watched'])})"
        ),
        *(f"             {t['code']}: {t['detail']}" for t in rollback["triggers"]),
        "tables     rows before -> after, content hash before -> after",
        *_tables(evidence["tables_before"], evidence["tables_after"]),
        f"result     {_result(evidence)}",
    ]
    if exported is not None:
        lines.append(f"evidence   {exported}")
    return "\n".join(lines)


def _tables(before: dict[str, Any], after: dict[str, Any] | None) -> list[str]:
    rows = []
    for name, was in before.items():
        now = (after or {}).get(name)
        if now is None:
            rows.append(f"             {name:<16} {was['rows']:>8}   {was['content_hash'][:19]}")
            continue
        same = "unchanged" if now["content_hash"] == was["content_hash"] else now["content_hash"]
        rows.append(
            f"             {name:<16} {was['rows']:>8} -> {now['rows']:<8} "
            f"{was['content_hash'][:19]} -> {same[:19]}"
        )
    return rows or ["             (no table of the schema yet)"]


def _result(evidence: dict[str, Any]) -> str:
    schema = evidence["schema"]
    if not schema["pending"] and schema["revision_before"] == schema["head"]:
        return "already at head: nothing to do"
    if evidence["applied"]:
        return f"applied: the database is at {schema['revision_after']}"
    blocked = evidence["compatibility_gate"]["status"] == "blocked"
    triggered = evidence["rollback"]["required"]
    if evidence["mode"] == "dry_run":
        if blocked or triggered:
            return "dry run: nothing changed; --apply would refuse (see above)"
        return "dry run: nothing changed; --apply would apply the changes above"
    return "not applied: rolled back, nothing changed (see above)"
