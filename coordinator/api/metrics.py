"""``GET /metrics``: the fleet in Prometheus' text format, computed from the database at
every scrape.

The database is the source of truth, so nothing is counted in this process: each scrape
reads the records and renders them into a fresh registry. Histograms and counters are
rebuilt from the whole history every time, which keeps them monotonic across restarts
of this server and identical on every replica of it.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.metrics_core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector

from coordinator.policy.member_policy import ACTIVE_STATES
from persistence import Store
from schemas import (
    CommandKind,
    CommandRecord,
    CommandStatus,
    EmergencyAck,
    EventKind,
    EventRecord,
    LifecycleKind,
    OccurrenceRecord,
    OccurrenceState,
    RolloutRecord,
    RolloutStatus,
)

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

# Upper bounds in seconds. Waves soak 30-60 s and gate for up to 300 s by default;
# decisions are one LLM call; an emergency stop is acknowledged within a second.
WAVE_BUCKETS = (1.0, 5.0, 15.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0, 3600.0)
DECISION_BUCKETS = (0.1, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0)
ACK_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)

_TASK_OPENED = (EventKind.TASK_CREATED.value, EventKind.SHUTDOWN_REQUESTED.value)


@dataclass(frozen=True)
class FleetRecords:
    """Everything one scrape reads."""

    now: float
    member_ttl: float
    members: Sequence[OccurrenceRecord]
    rollouts: Sequence[RolloutRecord]
    task_events: Sequence[EventRecord]
    """``task_created``, ``shutdown_requested`` and ``decision_made`` events."""
    commands: Sequence[CommandRecord]
    acks: Sequence[EmergencyAck]


async def read_records(store: Store, member_ttl: float) -> FleetRecords:
    kinds = (*_TASK_OPENED, EventKind.DECISION_MADE.value)
    commands = await store.commands(limit=None)
    acks: list[EmergencyAck] = []
    for command in commands:
        if command.kind is CommandKind.EMERGENCY_SHUTDOWN and command.accepted:
            acks += await store.emergency_acks(command.command_id)
    return FleetRecords(
        now=store.now(),
        member_ttl=member_ttl,
        members=await store.members(),
        rollouts=await store.rollouts(limit=None),
        task_events=await store.events(kinds=kinds),
        commands=commands,
        acks=acks,
    )


def families(records: FleetRecords, *, version: str, backend: str) -> list[Metric]:
    up = GaugeMetricFamily("coordinator_up", "1 while this control API can read the database")
    up.add_metric([], 1)
    info = GaugeMetricFamily(
        "coordinator_info",
        "Version and database backend of this server",
        labels=["version", "backend"],
    )
    info.add_metric([version, backend], 1)
    return [
        up,
        info,
        _occurrences(records),
        _serving_fraction(records),
        _rollouts(records.rollouts),
        _wave_durations(records.rollouts),
        _decision_latencies(records.task_events),
        _ack_latencies(records.acks),
        *_commands(records.commands),
    ]


def render(metrics: Iterable[Metric]) -> bytes:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Fixed(list(metrics)))
    return generate_latest(registry)


class _Fixed(Collector):
    def __init__(self, metrics: list[Metric]) -> None:
        self._metrics = metrics

    def collect(self) -> Iterator[Metric]:
        return iter(self._metrics)


def _occurrences(records: FleetRecords) -> GaugeMetricFamily:
    family = GaugeMetricFamily(
        "coordinator_occurrences",
        "Occurrences (newest incarnation of each id) by state and liveness",
        labels=["state", "alive"],
    )
    counts: dict[tuple[str, str], int] = defaultdict(int)
    for member in records.members:
        alive = member.is_alive(records.now, records.member_ttl)
        counts[(member.state.value, _bool(alive))] += 1
    # Every combination, zeros included: a series that vanishes cannot be alerted on.
    for state in OccurrenceState:
        for alive_label in ("true", "false"):
            family.add_metric([state.value, alive_label], counts[(state.value, alive_label)])
    return family


SERVING_FRACTION_HELP = (
    "Share of the fleet serving: while a shutdown is in progress (running or paused), its "
    "planned members alive in work over its planned members; otherwise alive occurrences "
    "in work over the live ones (starting, wakeup or work); 0 when there are none"
)


def serving_fraction(records: FleetRecords) -> float:
    """The share of the fleet serving now (see ``SERVING_FRACTION_HELP``): during a
    shutdown, of what its plan holds, so it reads against ``MIN_SERVING_FRACTION``."""
    alive = [m for m in records.members if m.is_alive(records.now, records.member_ttl)]
    shutdown = next(
        (
            r
            for r in records.rollouts
            if r.kind is LifecycleKind.SHUTDOWN and not r.status.is_finished
        ),
        None,
    )
    if shutdown is not None:
        planned = {m for w in shutdown.waves for m in w.members}
        serving = sum(
            1 for m in alive if m.occurrence_id in planned and m.state is OccurrenceState.WORK
        )
        return serving / len(planned) if planned else 0.0
    live = [m for m in alive if m.state in ACTIVE_STATES]
    serving = sum(1 for m in live if m.state is OccurrenceState.WORK)
    return serving / len(live) if live else 0.0


def _serving_fraction(records: FleetRecords) -> GaugeMetricFamily:
    family = GaugeMetricFamily("coordinator_serving_fraction", SERVING_FRACTION_HELP)
    family.add_metric([], serving_fraction(records))
    return family


def _rollouts(rollouts: Sequence[RolloutRecord]) -> GaugeMetricFamily:
    family = GaugeMetricFamily(
        "coordinator_rollouts", "Rollouts by kind and status", labels=["kind", "status"]
    )
    counts: dict[tuple[str, str], int] = defaultdict(int)
    for rollout in rollouts:
        counts[(rollout.kind.value, rollout.status.value)] += 1
    for kind in LifecycleKind:
        for status in RolloutStatus:
            family.add_metric([kind.value, status.value], counts[(kind.value, status.value)])
    return family


def _wave_durations(rollouts: Sequence[RolloutRecord]) -> HistogramMetricFamily:
    observed: dict[tuple[str, ...], list[float]] = defaultdict(list)
    for rollout in rollouts:
        for wave in rollout.waves:
            if wave.signalled_at is None or wave.finished_at is None:
                continue  # skipped, or not settled yet
            labels = (rollout.kind.value, wave.group.value, wave.status.value)
            observed[labels].append(wave.finished_at - wave.signalled_at)
    return histogram(
        "coordinator_wave_duration_seconds",
        "Seconds from a wave's signal to its gate's verdict (settled waves)",
        ["kind", "group", "status"],
        WAVE_BUCKETS,
        observed,
    )


def _decision_latencies(events: Sequence[EventRecord]) -> HistogramMetricFamily:
    opened: dict[str, float] = {}
    observed: dict[tuple[str, ...], list[float]] = defaultdict(list)
    for event in events:  # oldest first: a task is opened before it is decided
        if event.task_id is None:
            continue
        if event.kind in _TASK_OPENED:
            opened[event.task_id] = event.at
        elif event.task_id in opened:
            kind = str(event.details.get("kind", "unknown"))
            observed[(kind,)].append(event.at - opened[event.task_id])
    return histogram(
        "coordinator_decision_latency_seconds",
        "Seconds from a shared task's creation to its recorded decision",
        ["kind"],
        DECISION_BUCKETS,
        observed,
    )


def _ack_latencies(acks: Sequence[EmergencyAck]) -> HistogramMetricFamily:
    observed: dict[tuple[str, ...], list[float]] = defaultdict(list)
    for ack in acks:
        observed[(ack.verdict.value,)].append(ack.latency)
    return histogram(
        "coordinator_emergency_ack_latency_seconds",
        "Seconds from an emergency command's recording to each occurrence's acknowledgement",
        ["verdict"],
        ACK_BUCKETS,
        observed,
    )


def _commands(commands: Sequence[CommandRecord]) -> list[Metric]:
    by_status = GaugeMetricFamily(
        "coordinator_commands",
        "Operator commands by kind and status",
        labels=["kind", "status"],
    )
    refused = CounterMetricFamily(
        "coordinator_commands_refused",
        "Operator commands refused, by kind and reason (conflict, bad_signature, ...)",
        labels=["kind", "refusal"],
    )
    statuses: dict[tuple[str, str], int] = defaultdict(int)
    refusals: dict[tuple[str, str], int] = defaultdict(int)
    for command in commands:
        statuses[(command.kind.value, command.status.value)] += 1
        if command.status is CommandStatus.REFUSED:
            refusals[(command.kind.value, command.refusal or "unknown")] += 1
    for kind in CommandKind:
        for status in CommandStatus:
            by_status.add_metric([kind.value, status.value], statuses[(kind.value, status.value)])
    for labels, count in sorted(refusals.items()):
        refused.add_metric(list(labels), count)
    return [by_status, refused]


def histogram(
    name: str,
    documentation: str,
    labels: list[str],
    bounds: Sequence[float],
    observed: dict[tuple[str, ...], list[float]],
) -> HistogramMetricFamily:
    """A histogram family from raw observations, one series per label tuple."""
    family = HistogramMetricFamily(name, documentation, labels=labels)
    for label_values, values in sorted(observed.items()):
        buckets = [(_bound(le), float(sum(1 for v in values if v <= le))) for le in bounds]
        buckets.append(("+Inf", float(len(values))))
        family.add_metric(list(label_values), buckets, sum_value=math.fsum(values))
    return family


def _bound(value: float) -> str:
    return repr(float(value))


def _bool(value: bool) -> str:
    return "true" if value else "false"
