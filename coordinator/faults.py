"""The faults of a simulated run, drawn from its seed: a pure plan, applied by
``fault_injection``.

Each fault names when it strikes (simulated seconds from the start), which occurrence (by
its number, or by its role: whoever holds a task's claim or a rollout's driver lease
then, where the faults that matter fall), and for how long. Every kind stands for
something a real fleet meets:

- ``crash``: the process dies without cleanup (kill -9); after ``duration`` it is started
  again, as a new incarnation.
- ``pause``: the process is frozen (SIGSTOP) for ``duration``, often longer than its
  leases, and then goes on with what it read before (SIGCONT); at once, or (``after_read``)
  the moment its next read returns, the worst moment: it then acts on what it read.
- ``transient``: one statement fails with one of the error classes a retry may cure (a
  busy file, a full disk, a dropped connection, a reset socket).
- ``partition``: every statement fails for ``duration`` (the network to the database is cut).
- ``skew``: the occurrence's clock runs ``duration`` seconds ahead from then on.
- ``slow_commit``: one transaction holds its connection ``duration`` seconds before it commits.
- ``engine_refuse``: the decision engine raises on its next call.
- ``engine_hang``: the decision engine's next call never answers.
- ``stalls``: for ``duration``, a share of the occurrence's reads are followed by a short
  freeze (a busy host, a long garbage collection): it acts on what it read a moment late,
  the gap in which other processes' commits land in a real fleet.
- ``zombie``: the moment the occurrence next takes a lease (a task's claim, a rollout's
  driver lease), it is frozen for ``duration``, past that lease (a suspended VM, a
  stop-the-world pause of tens of seconds), while the fleet goes on without it: the lease
  runs out and someone else takes it. Then it resumes and goes on with the lease it took:
  a stale holder whose every write its fencing token must refuse. Aimed at a role, it
  strikes whoever takes that role's lease next.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from enum import StrEnum


class FaultKind(StrEnum):
    CRASH = "crash"
    PAUSE = "pause"
    TRANSIENT = "transient"
    PARTITION = "partition"
    SKEW = "skew"
    SLOW_COMMIT = "slow_commit"
    ENGINE_REFUSE = "engine_refuse"
    ENGINE_HANG = "engine_hang"
    STALLS = "stalls"
    ZOMBIE = "zombie"


ALL_FAULTS = tuple(FaultKind)

TRANSIENT_ERRORS = ("locked", "disk_full", "io_error", "connection_dropped", "socket_reset")
"""The transient error classes a ``transient`` fault raises (``fault_injection`` makes
each the way the driver raises it)."""


ROLES = ("claimer", "driver")
ROLE_SHARE = 0.5
"""The share of faults aimed at a lease holder rather than at an occurrence by number."""


@dataclass(frozen=True)
class FaultWindow:
    """Where faults may fall, and how many: ``count`` faults from ``start`` to ``end``."""

    start: float = 0.5
    end: float = 25.0
    """A lifecycle of the explorer's timings takes about 30 simulated seconds unharmed
    (the wakeup's waves the first 15): faults fall on its decisions and on its waves."""
    count: int = 6
    pause: tuple[float, float] = (5.0, 45.0)
    """From shorter than a lease (15 s) to beyond a member's TTL (30 s)."""
    downtime: tuple[float, float] = (1.0, 20.0)
    partition: tuple[float, float] = (2.0, 30.0)
    skew: tuple[float, float] = (0.5, 10.0)
    slow_commit: tuple[float, float] = (0.05, 3.0)
    stalls: tuple[float, float] = (10.0, 60.0)
    zombie: tuple[float, float] = (20.0, 40.0)
    """Past a lease (15 s), and by most of a member's TTL (30 s) or beyond it."""


ZOMBIE_ARMED = 120.0
"""A zombie fault waits this long (simulated seconds) for its occurrence to take a lease,
then lapses: the leases of a lifecycle are taken in its first two minutes or so."""


@dataclass(frozen=True, order=True)
class Fault:
    at: float
    occurrence: int
    """Which occurrence, by its number (``occurrence-<n>``)."""
    kind: FaultKind
    duration: float = 0.0
    error: str = ""
    """For ``transient``: which of ``TRANSIENT_ERRORS``."""
    role: str = ""
    """``claimer`` or ``driver``: strike whoever holds that lease when the fault falls
    (``occurrence`` if nobody does)."""
    after_read: bool = False
    """For ``pause``: freeze when the next read returns, not at once."""

    def describe(self) -> str:
        if self.kind is FaultKind.ZOMBIE:
            who = f"the next {self.role}" if self.role else f"occurrence-{self.occurrence}"
            what = f"zombie {who} at {self.at:.1f} s: frozen at its next lease"
            return what + f" for {self.duration:.1f} s"
        who = (
            f"the {self.role} (else occurrence-{self.occurrence})"
            if self.role
            else (f"occurrence-{self.occurrence}")
        )
        what = f"{self.kind} {who} at {self.at:.1f} s"
        if self.after_read:
            what += " after its next read"
        if self.error:
            what += f" ({self.error})"
        if self.duration:
            what += f" for {self.duration:.1f} s"
        return what

    @property
    def ends(self) -> float:
        """When the fault is over (a skew never is: it stays, and counts as at once)."""
        if self.kind in (FaultKind.CRASH, FaultKind.PAUSE, FaultKind.PARTITION, FaultKind.STALLS):
            return self.at + self.duration
        if self.kind is FaultKind.ZOMBIE:  # at the latest: frozen just before it lapses
            return self.at + ZOMBIE_ARMED + self.duration
        return self.at


def parse_kinds(text: str) -> tuple[FaultKind, ...]:
    """``--faults crash,pause`` (or ``all``, or ``none``) as fault kinds."""
    names = [n.strip() for n in text.split(",") if n.strip()]
    if names == ["all"]:
        return ALL_FAULTS
    if names == ["none"]:
        return ()
    known = {k.value: k for k in FaultKind}
    unknown = [n for n in names if n not in known]
    if unknown:
        raise ValueError(
            f"unknown fault {', '.join(unknown)} (choose from all, none, {', '.join(known)})"
        )
    return tuple(dict.fromkeys(known[n] for n in names))


def draw_faults(
    seed: int, occurrences: int, kinds: tuple[FaultKind, ...], window: FaultWindow
) -> tuple[Fault, ...]:
    """The faults of ``seed``, in time order. Its own stream of the seed: the faults of a
    seed stay the same whatever the schedule draws."""
    if not kinds or window.count <= 0:
        return ()
    draw = random.Random(f"faults-{seed}")
    faults = []
    for _ in range(draw.randint(1, window.count)):
        kind = draw.choice(kinds)
        at = round(draw.uniform(window.start, window.end), 3)
        target = draw.randint(1, occurrences)
        duration, error = 0.0, ""
        if kind is FaultKind.CRASH:
            duration = draw.uniform(*window.downtime)
        elif kind is FaultKind.PAUSE:
            duration = draw.uniform(*window.pause)
        elif kind is FaultKind.PARTITION:
            duration = draw.uniform(*window.partition)
        elif kind is FaultKind.SKEW:
            duration = draw.uniform(*window.skew)
        elif kind is FaultKind.SLOW_COMMIT:
            duration = draw.uniform(*window.slow_commit)
        elif kind is FaultKind.STALLS:
            duration = draw.uniform(*window.stalls)
        elif kind is FaultKind.ZOMBIE:
            duration = draw.uniform(*window.zombie)
        elif kind is FaultKind.TRANSIENT:
            error = draw.choice(TRANSIENT_ERRORS)
        role = draw.choice(ROLES) if draw.random() < ROLE_SHARE else ""
        after_read = kind is FaultKind.PAUSE and draw.random() < 0.5
        faults.append(Fault(at, target, kind, round(duration, 3), error, role, after_read))
    return tuple(sorted(faults))


def faults_end(faults: tuple[Fault, ...]) -> float:
    """When the last fault is over (0 without faults)."""
    return max((f.ends for f in faults), default=0.0)
