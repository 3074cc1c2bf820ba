"""Late joiners brought up by an event of the run instead of at a drawn time.

A late occurrence started at a time drawn in advance seldom joins at the moment that
matters: inside a driver's read-to-write gap, when the driver has read the fleet to judge
a wave and is about to write its step. A late joiner joins the last wave while that is
pending; the step it races is the one that signals the last wave, taken the moment the
gate of the wave before falls due (its soak ends): the driver reads the fleet then to
judge that wave and signal the next. A late joiner started then races that step, and the
seeded schedule (and the write latency, if any) orders the race.
"""

from __future__ import annotations

from coordinator.virtual_time import VirtualClock
from persistence import Store
from schemas import LifecycleKind, WaveStatus

LOOK_EVERY = 1.0
"""Simulated seconds between looks at the wakeup (a wave's soak is known once it is
signalled, so the start itself falls exactly at the gate, not on a look)."""


async def until_gate_due(store: Store, clock: VirtualClock, latest: float) -> None:
    """Return the moment the health gate before the wakeup's last wave falls due (of the
    last wave with members before it); at once if that wave is past or never signalled,
    and by ``latest`` (the fleet's clock, Unix seconds) at the latest: a wakeup that never
    comes does not keep it down for good."""
    while clock.now() < latest:
        found = await store.rollouts(kind=LifecycleKind.WAKEUP, limit=1)
        if found:
            wakeup = found[0]
            before = [w for w in wakeup.waves[:-1] if w.members]
            if wakeup.status.is_finished or not before:
                return
            wave = before[-1]
            if wave.status is WaveStatus.SIGNALLED and wave.next_check_at is not None:
                await clock.sleep(min(wave.next_check_at, latest) - clock.now())
                return
            if wave.status is not WaveStatus.PENDING:
                return  # skipped (no members) or settled before a look saw it signalled
        await clock.sleep(LOOK_EVERY)
