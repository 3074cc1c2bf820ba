"""Late joiners brought up by an event of the run instead of at a drawn time.

A late occurrence started at a time drawn in advance seldom joins at the moment that
matters: inside a driver's read-to-write gap, when the driver has read the fleet to judge
a wave and is about to write its step. The moment a health gate falls due (a wave's soak
ends) is such a moment: the driver reads the fleet then to judge that wave and signal
the next. A late joiner started then races that step, and the seeded schedule (and the
write latency, if any) orders the race.
"""

from __future__ import annotations

import random

from coordinator.virtual_time import VirtualClock
from persistence import Store
from schemas import LifecycleKind, WaveStatus

LOOK_EVERY = 1.0
"""Simulated seconds between looks at the wakeup (a wave's soak is known once it is
signalled, so the start itself falls exactly at the gate, not on a look)."""


async def until_gate_due(store: Store, clock: VirtualClock, seed: int, latest: float) -> None:
    """Return the moment the health gate of one of the wakeup's waves falls due (the wave
    drawn from ``seed`` among all but the last, whose own gate admits no joiner); at once
    if that wave is past or never signalled, and by ``latest`` (the fleet's clock, Unix
    seconds) at the latest: a wakeup that never comes does not keep it down for good."""
    draw = random.Random(f"late-gate-{seed}")
    index: int | None = None
    while clock.now() < latest:
        found = await store.rollouts(kind=LifecycleKind.WAKEUP, limit=1)
        if found:
            wakeup = found[0]
            if wakeup.status.is_finished or len(wakeup.waves) < 2:
                return
            if index is None:
                index = draw.randrange(len(wakeup.waves) - 1)
            wave = wakeup.waves[index]
            if wave.status is WaveStatus.SIGNALLED and wave.next_check_at is not None:
                await clock.sleep(min(wave.next_check_at, latest) - clock.now())
                return
            if wave.status is not WaveStatus.PENDING:
                return  # skipped (no members) or settled before a look saw it signalled
        await clock.sleep(LOOK_EVERY)
