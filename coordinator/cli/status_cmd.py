"""``status``: the occurrences and the rollouts, as a table or JSON."""

from __future__ import annotations

import argparse
import json
from datetime import UTC, datetime
from typing import Any

import anyio

from coordinator.cli.options import (
    EXIT_OK,
    add_database_flag,
    existing_database_url,
    refuse,
    settings_from_args,
)
from persistence import Store
from schemas import ConfigurationError, DatabaseUnavailable, OccurrenceRecord, RolloutRecord


def add_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = commands.add_parser(
        "status",
        help="show the occurrences and the rollouts",
        description="Show every occurrence (its newest incarnation) and the recent rollouts.",
    )
    add_database_flag(parser)
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument(
        "--limit",
        type=positive_int,
        default=10,
        help="how many rollouts, newest first (default 10)",
    )
    parser.set_defaults(handler=handle)


def positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1 (got {value})")
    return value


def handle(args: argparse.Namespace) -> int:
    try:
        url = existing_database_url(args)
        member_ttl = settings_from_args(args).member_ttl
    except ConfigurationError as exc:
        return refuse("status", exc)
    try:
        report = anyio.run(_collect, url, member_ttl, args.limit)
    except DatabaseUnavailable as exc:
        return refuse("status", exc)
    print(json.dumps(report, indent=2) if args.json else render(report))
    return EXIT_OK


def iso(at: float | None) -> str | None:
    if at is None:
        return None
    return datetime.fromtimestamp(at, UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


async def _collect(url: str, member_ttl: float, limit: int) -> dict[str, Any]:
    store = await Store.open(url)
    try:
        members = await store.members()
        rollouts = await store.rollouts(limit=limit)
        now = store.now()
    finally:
        await store.close()
    return {
        "occurrences": [_occurrence(m, now, member_ttl) for m in members],
        "rollouts": [_rollout(r) for r in rollouts],
    }


def _occurrence(m: OccurrenceRecord, now: float, member_ttl: float) -> dict[str, Any]:
    return {
        "occurrence_id": m.occurrence_id,
        "state": m.state.value,
        "alive": m.is_alive(now, member_ttl),
        "last_heartbeat_at": iso(m.last_heartbeat_at),
        "host": m.host,
        "pid": m.pid,
    }


def _rollout(r: RolloutRecord) -> dict[str, Any]:
    return {
        "rollout_id": r.rollout_id,
        "kind": r.kind.value,
        "status": r.status.value,
        "decided_by": r.decision.decided_by,
        "decision": r.decision.verdict.value,
        "created_at": iso(r.created_at),
        "abort_reason": r.abort_reason,
        "driver": r.driver_id,
        "waves": [
            {"group": w.group.value, "members": list(w.members), "status": w.status.value}
            for w in r.waves
        ],
    }


def _table(headers: list[str], rows: list[list[str]]) -> str:
    widths = [
        max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(headers)
    ]
    lines = ["  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True))]
    lines += ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) for r in rows]
    return "\n".join(line.rstrip() for line in lines)


def render(report: dict[str, Any]) -> str:
    occ = report["occurrences"]
    alive = sum(1 for o in occ if o["alive"])
    parts = [f"Occurrences: {len(occ)} known, {alive} alive"]
    if occ:
        parts.append(
            _table(
                ["OCCURRENCE", "STATE", "ALIVE", "LAST HEARTBEAT", "HOST/PID"],
                [
                    [
                        o["occurrence_id"],
                        o["state"],
                        "yes" if o["alive"] else "no",
                        o["last_heartbeat_at"] or "-",
                        f"{o['host']}/{o['pid']}",
                    ]
                    for o in occ
                ],
            )
        )
    parts.append("")
    parts.append(f"Rollouts (newest first): {len(report['rollouts'])}")
    for r in report["rollouts"]:
        parts.append(
            f"{r['rollout_id']}  {r['kind']:<8}  {r['status']:<9}  decided by {r['decided_by']}"
            f" ({r['decision']}) at {r['created_at']}"
            + (f"  aborted: {r['abort_reason']}" if r["abort_reason"] else "")
        )
        for w in r["waves"]:
            members = ", ".join(w["members"]) or "-"
            parts.append(f"    {w['group']:<14} {w['status']:<9} {members}")
    return "\n".join(parts)
