"""The fleet at a glance: occurrences, rollouts and the gate each running rollout waits
on. One report for ``status`` (table or JSON) and the control API's ``GET /v1/status``."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from coordinator.abandoned import conclude_abandoned_shutdowns
from coordinator.engine_report import engine_entry
from coordinator.terminal_text import printable
from persistence import Store
from schemas import OccurrenceRecord, RolloutRecord, RolloutStatus, WaveRecord, WaveStatus
from schemas.kinds import kind_policy


def iso(at: float | None) -> str | None:
    if at is None:
        return None
    return datetime.fromtimestamp(at, UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


async def collect_status(store: Store, member_ttl: float, limit: int) -> dict[str, Any]:
    await conclude_abandoned_shutdowns(store, member_ttl)  # one nobody can finish ends here
    members = await store.members()
    rollouts = await store.rollouts(limit=limit)
    now = store.now()
    return {
        "now": iso(now),
        "occurrences": [_occurrence(m, now, member_ttl) for m in members],
        "rollouts": [_rollout(r, now) for r in rollouts],
    }


def _occurrence(m: OccurrenceRecord, now: float, member_ttl: float) -> dict[str, Any]:
    return {
        "occurrence_id": m.occurrence_id,
        "state": m.state.value,
        "alive": m.is_alive(now, member_ttl),
        "last_heartbeat_at": iso(m.last_heartbeat_at),
        "host": m.host,
        "pid": m.pid,
        "engine": engine_entry(m),
    }


def _rollout(r: RolloutRecord, now: float) -> dict[str, Any]:
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
        "current_wave": current_wave(r, now),
    }


def current_wave(r: RolloutRecord, now: float) -> dict[str, Any] | None:
    """The wave a running (or paused) rollout is at, what its gate waits for, and how
    long until the gate is next checked and until it times out."""
    if r.status.is_finished:
        return None
    wave = next((w for w in r.waves if not w.status.is_settled), None)
    if wave is None:
        return None
    return {
        "group": wave.group.value,
        "status": wave.status.value,
        "members": list(wave.members),
        "gate": _gate(r, wave, now),
        "next_check_in": _seconds_until(wave.next_check_at, now),
        "time_left": _seconds_until(wave.deadline, now),
    }


def _gate(r: RolloutRecord, wave: WaveRecord, now: float) -> str:
    if r.status is RolloutStatus.PAUSED:
        return "paused by an operator: the gate is not checked until resumed"
    if wave.status is WaveStatus.PENDING:
        return "waiting for the previous wave's gate"
    target = kind_policy(r.kind).target_state.value
    if wave.signalled_at is not None and now < wave.signalled_at + wave.soak:
        return f"soaking; then checks that members reached {target!r}"
    return f"checking every {r.health_poll:g} s that members reached {target!r}"


def _seconds_until(at: float | None, now: float) -> float | None:
    return None if at is None else round(max(0.0, at - now), 1)


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
    parts = [f"Fleet: {report['fleet_id']}"] if "fleet_id" in report else []
    parts.append(f"Occurrences: {len(occ)} known, {alive} alive")
    if occ:
        parts.append(
            _table(
                ["OCCURRENCE", "STATE", "ALIVE", "LAST HEARTBEAT", "HOST/PID", "ENGINE"],
                [
                    [
                        o["occurrence_id"],
                        o["state"],
                        "yes" if o["alive"] else "no",
                        o["last_heartbeat_at"] or "-",
                        printable(f"{o['host']}/{o['pid']}"),
                        _engine_cell(o["engine"]),
                    ]
                    for o in occ
                ],
            )
        )
        parts += [
            f"  {o['occurrence_id']}: COORDINATOR_ENGINE did not load, it runs "
            f"{printable(o['engine']['name'])} instead: {printable(o['engine']['error'])}"
            for o in occ
            if o["engine"]["error"]
        ]
    parts.append("")
    parts.append(f"Rollouts (newest first): {len(report['rollouts'])}")
    for r in report["rollouts"]:
        parts.append(
            f"{r['rollout_id']}  {r['kind']:<8}  {r['status']:<9}  decided by "
            f"{printable(r['decided_by'])} ({r['decision']}) at {r['created_at']}"
            + (f"  aborted: {printable(r['abort_reason'])}" if r["abort_reason"] else "")
        )
        for w in r["waves"]:
            members = ", ".join(w["members"]) or "-"
            parts.append(f"    {w['group']:<14} {w['status']:<9} {members}")
        if r["current_wave"] is not None:
            parts.append("    " + current_wave_line(r["current_wave"]))
    return "\n".join(parts)


def _engine_cell(engine: dict[str, Any]) -> str:
    # The name says what runs; "(fallback)" that it is not what was configured, and why
    # is on its own line below the table (an error is too long for a cell).
    if engine["name"] is None:
        return str(engine["kind"])
    return printable(engine["name"]) + (" (fallback)" if engine["error"] else "")


def current_wave_line(wave: dict[str, Any]) -> str:
    """ "now: general wave, soaking; then checks ...; next check in 4.2 s, times out in
    295 s" (a wave not yet signalled has neither)."""
    timing = [
        f"{label} {seconds:g} s"
        for label, seconds in (
            ("next check in", wave["next_check_in"]),
            ("times out in", wave["time_left"]),
        )
        if seconds is not None
    ]
    return f"now: {wave['group']} wave, {wave['gate']}" + (
        "; " + ", ".join(timing) if timing else ""
    )
