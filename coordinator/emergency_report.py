"""The answers to one emergency command: who stopped, who refused, who did not answer,
and how long each took from the command's recording to its acknowledgement
(cancel-to-ack). One report for ``emergency-shutdown --wait`` and for ``simulate
--scenario emergency``. Pure: built from records the caller read."""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from schemas import AckVerdict, CommandRecord, EmergencyAck, OccurrenceRecord


def expected_targets(
    members: Iterable[OccurrenceRecord], named: Iterable[str], now: float, member_ttl: float
) -> list[str]:
    """Who is expected to answer: the named occurrences, or every live one."""
    chosen = sorted(set(named))
    if chosen:
        return chosen
    return sorted(m.occurrence_id for m in members if m.is_alive(now, member_ttl))


def nearest_rank(sorted_values: Sequence[float], fraction: float) -> float:
    """The value at ``fraction`` (0 < fraction <= 1) of ``sorted_values`` by the nearest-
    rank method: always one of the measured values, also for small samples."""
    rank = max(1, math.ceil(fraction * len(sorted_values)))
    return sorted_values[rank - 1]


@dataclass(frozen=True)
class AckReport:
    command: CommandRecord
    acks: tuple[EmergencyAck, ...]
    expected: tuple[str, ...]
    time_scale: float = 1.0
    """Seconds of the store's clock per wall-clock second: latencies are reported in wall
    seconds (``simulate`` runs a scaled clock; everywhere else this is 1)."""
    waited: bool = True
    """Whether the answers were waited for (else only the command and its targets count)."""

    @property
    def stopped(self) -> list[str]:
        return [a.occurrence_id for a in self.acks if a.verdict is AckVerdict.STOPPED]

    @property
    def refused(self) -> list[str]:
        return [a.occurrence_id for a in self.acks if a.verdict is AckVerdict.REFUSED]

    @property
    def silent(self) -> list[str]:
        """Expected to answer, and did not (yet)."""
        answered = {a.occurrence_id for a in self.acks}
        return [o for o in self.expected if o not in answered]

    def latency(self, ack: EmergencyAck) -> float:
        """Cancel-to-ack of one answer, in wall-clock seconds."""
        return ack.latency / self.time_scale

    def latency_ms(self) -> dict[str, float] | None:
        """p50, p95 and max cancel-to-ack over every answer (in ms), None without any."""
        values = sorted(self.latency(a) * 1000 for a in self.acks)
        if not values:
            return None
        return {
            "count": len(values),
            "p50": round(nearest_rank(values, 0.50), 1),
            "p95": round(nearest_rank(values, 0.95), 1),
            "max": round(values[-1], 1),
        }

    def to_json(self) -> dict[str, Any]:
        """Every latency in it is in wall-clock seconds (``latency_ms``: milliseconds)."""
        return {
            "command": self.command.model_dump(mode="json", exclude={"signed"}),
            "acknowledged": [
                {**a.model_dump(mode="json"), "latency": self.latency(a)} for a in self.acks
            ],
            "stopped": self.stopped,
            "refused": self.refused,
            "not_acknowledged": self.silent,
            "latency_ms": self.latency_ms(),
        }

    def lines(self) -> list[str]:
        """The command's verdict, one line per answer and per silence, then the spread."""
        record = self.command
        lines = [f"command {record.command_id}: {record.status.value} - {record.detail}"]
        for ack in self.acks:
            lines.append(
                f"  {ack.occurrence_id:<24} {ack.verdict.value:<8} "
                f"{self.latency(ack) * 1000:8.1f} ms  {ack.detail}"
            )
        lines += [f"  {occurrence_id:<24} no answer" for occurrence_id in self.silent]
        if not self.waited:
            return lines
        spread = self.latency_ms()
        if spread is not None:
            lines.append(
                f"  cancel-to-ack over {spread['count']:g}: p50 {spread['p50']:.1f} ms, "
                f"p95 {spread['p95']:.1f} ms, max {spread['max']:.1f} ms"
            )
        lines.append(
            f"  {len(self.stopped)} stopped, {len(self.refused)} refused, "
            f"{len(self.silent)} did not answer"
        )
        return lines
