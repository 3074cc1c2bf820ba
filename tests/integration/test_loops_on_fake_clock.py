"""The loops run on the injected clock: driven by a fake one, the emergency loop looks
for commands only when that clock says a poll interval has passed, and heartbeats land
only as it moves (real SQLite file, the real store)."""

from __future__ import annotations

import time
from pathlib import Path

import anyio
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from coordinator.clock import FakeClock
from coordinator.connectivity import Connectivity
from coordinator.driver import RolloutDriver
from coordinator.emergency import make_verifier
from coordinator.emergency_loop import EmergencyLoop
from coordinator.heartbeat_loop import heartbeat_loop
from coordinator.hooks import LifecycleHooks
from coordinator.logs import get_logger
from coordinator.member import Member
from coordinator.outage import OutageWatch
from coordinator.run_state import registered
from coordinator.run_tracker import RunTracker
from coordinator.signing import new_command, sign
from persistence import Store
from schemas import AckVerdict, Settings, load_settings

POLL = 0.2  # seconds of the fake clock between emergency checks
REAL_WAIT = 1.0  # real seconds, several poll intervals: long enough for a wrong clock


def _settings(database: Path) -> Settings:
    return load_settings(
        database_url=f"sqlite+aiosqlite:///{database}",
        occurrence_id="occ-1",
        agent_occurrence_count=1,
        poll_interval=POLL,
        heartbeat_interval=1.0,
        member_ttl=30,
        lease_ttl=10,
    )


async def _member(store: Store, settings: Settings, clock: FakeClock) -> Member:
    me = await store.register("occ-1", host="h", pid=1, protocol_version=1)
    log = get_logger("coordinator")
    connectivity = Connectivity(clock, settings.heartbeat_interval)
    driver = RolloutDriver(store, settings, log, connectivity)
    tracker = RunTracker()
    tracker.become(registered(tracker.run))
    return Member(me, store, settings, clock, tracker, driver, log)


async def test_the_fake_clock_drives_the_emergency_check(tmp_path: Path) -> None:
    settings = _settings(tmp_path / "fleet.db")
    clock = FakeClock()
    store = await Store.open(settings.database_url, clock=clock.now, server_time=False)
    try:
        member = await _member(store, settings, clock)
        # No trusted key: the command is refused, and this occurrence records its refusal
        # (an answer that leaves the run serving). No change feed: only the clock wakes it.
        loop = EmergencyLoop(member, LifecycleHooks(), make_verifier(settings), lambda: None)
        with anyio.fail_after(60):
            async with anyio.create_task_group() as tg:
                tg.start_soon(loop.run)
                signed = sign(
                    new_command("drill", ["occ-1"], now=time.time(), audience="fleet"),
                    Ed25519PrivateKey.generate(),
                )
                record = await store.submit_emergency(signed, issued_by="test")
                await anyio.sleep(REAL_WAIT)
                assert await store.emergency_acks(record.command_id) == []
                clock.advance(POLL)
                while not (acks := await store.emergency_acks(record.command_id)):
                    await anyio.sleep(0.02)
                assert [a.verdict for a in acks] == [AckVerdict.REFUSED]
                assert not member.winding_down
                tg.cancel_scope.cancel()
    finally:
        await store.close()


async def test_heartbeats_land_as_the_fake_clock_moves(tmp_path: Path) -> None:
    settings = _settings(tmp_path / "fleet.db")
    clock = FakeClock()
    store = await Store.open(settings.database_url, clock=clock.now, server_time=False)
    try:
        member = await _member(store, settings, clock)
        connectivity = Connectivity(clock, settings.heartbeat_interval)
        outage = OutageWatch(store, "occ-1")
        started = member.me.last_heartbeat_at

        async def last_heartbeat() -> float:
            (row,) = await store.members()
            return row.last_heartbeat_at

        with anyio.fail_after(60):
            async with anyio.create_task_group() as tg:
                tg.start_soon(
                    lambda: heartbeat_loop(member, connectivity, outage, real_clock=False)
                )
                await anyio.sleep(REAL_WAIT)
                assert await last_heartbeat() == started
                for beat in (1, 2):
                    clock.advance(settings.heartbeat_interval)
                    while await last_heartbeat() != started + beat * settings.heartbeat_interval:
                        await anyio.sleep(0.02)
                tg.cancel_scope.cancel()
    finally:
        await store.close()
