"""The heartbeat loop: every ``heartbeat_interval`` of the injected clock, tell the fleet
this occurrence is alive (and, on the real clock, re-measure the server clock's offset)."""

from __future__ import annotations

from coordinator.connectivity import Connectivity
from coordinator.member import Member
from coordinator.outage import OutageWatch
from schemas import DatabaseUnavailable

CLOCK_REALIGN_INTERVAL = 60.0  # seconds between measurements of the server clock offset


async def heartbeat_loop(
    member: Member, connectivity: Connectivity, outage: OutageWatch, *, real_clock: bool
) -> None:
    clock, store = member.clock, member.store
    aligned_at = clock.now()
    while not member.winding_down:
        await clock.sleep(member.settings.heartbeat_interval)
        if member.winding_down:
            return
        try:
            await store.heartbeat(member.me)
            connectivity.heartbeat_landed()
            await outage.answered()
            if real_clock and clock.now() - aligned_at > CLOCK_REALIGN_INTERVAL:
                offset = await store.align_clock_with_server()
                aligned_at = clock.now()
                member.log.debug("clock_aligned", offset=round(offset, 4))
        except DatabaseUnavailable as exc:
            outage.failed()
            member.log.warning("heartbeat_failed", error=str(exc))
