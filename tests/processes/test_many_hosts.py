"""Many hosts, for real: occurrences on two network hosts (Linux network namespaces, each
joined to this machine by its own veth link) share one PostgreSQL server across that
hop. One host's link is pulled while the fleet serves; its occurrences keep serving and
rejoin when the link is back. A shutdown then rolls out across both hosts.

PostgreSQL listens on loopback only, so each host reaches it through a relay bound to
its link's address on this side (``tests/tcp_proxy.py``); the relay tells which address
every connection came from, which proves the traffic crossed the link."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import anyio
import pytest
from fleet import Fleet, coordinator, coordinator_env, wait_members, wait_rollout
from invariants import check_fleet_invariants
from network import Host, Relay, namespaces_unavailable
from sqlalchemy import make_url

from persistence import Store
from schemas import LifecycleKind, OccurrenceState, RolloutStatus

pytestmark = pytest.mark.processes

PER_HOST = 3
LINK_DOWN = 15.0  # seconds: past a member's TTL (10 s) and a transaction's deadline


@pytest.fixture
def hosts(postgres_url: str) -> Iterator[list[tuple[Host, Relay]]]:
    why_not = namespaces_unavailable()
    if why_not:
        pytest.skip(f"many-hosts test needs network namespaces: {why_not}")
    url = make_url(postgres_url)
    made: list[tuple[Host, Relay]] = []
    try:
        for subnet in (1, 2):
            host = Host(f"coord{os.getpid() % 10000}h{subnet}", subnet)
            made.append((host, Relay(host.gateway, url.host or "127.0.0.1", url.port or 5432)))
            host.create()
            made[-1][1].start()
        yield made
    finally:
        for host, relay in made:
            relay.kill()
            host.destroy()


async def test_a_fleet_across_two_hosts_survives_a_pulled_link_and_shuts_down_in_waves(
    tmp_path: Path, postgres_url: str, hosts: list[tuple[Host, Relay]]
) -> None:
    base_env = coordinator_env(
        postgres_url,
        AGENT_OCCURRENCE_COUNT=str(PER_HOST * len(hosts)),
        COORDINATOR_EXPLORER_SOAK="2",
        COORDINATOR_EARLY_ADOPTER_SOAK="2",
    )
    fleet = Fleet(tmp_path, base_env)
    placement: dict[str, Host] = {}
    store = await Store.open(postgres_url)
    try:
        for n, (host, relay) in enumerate(hosts):
            env = {**base_env, "COORDINATOR_DATABASE_URL": relay.url_for(postgres_url)}
            for i in range(PER_HOST):
                occurrence_id = f"host{n + 1}-occurrence-{i + 1}"
                placement[occurrence_id] = host
                fleet.start(occurrence_id, wrapper=host.command(), env=env)

        wakeup = await wait_rollout(store, LifecycleKind.WAKEUP, deadline=180)
        assert wakeup.status is RolloutStatus.COMPLETED
        await wait_members(
            store,
            lambda ms: sum(m.state is OccurrenceState.WORK for m in ms) == len(placement),
            deadline=60,
            what="every occurrence on both hosts serving",
        )
        for host, relay in hosts:  # every connection crossed that host's own link
            assert set(relay.peers()) == {host.address}

        cut_host, _ = hosts[1]
        cut_host.cut_link()
        try:
            await anyio.sleep(LINK_DOWN)
            assert all(p.poll() is None for p in fleet.processes.values()), "a process gave up"
        finally:
            cut_host.mend_link()
        await wait_members(  # heartbeats from the cut host land again
            store,
            lambda ms: all(store.now() - m.last_heartbeat_at < 5 for m in ms),
            deadline=90,
            what="fresh heartbeats from both hosts",
        )

        stopped = coordinator(
            "shutdown", "--reason", "two-host drill", "--wait", env=base_env, timeout=240
        )
        assert stopped.returncode == 0, stopped.stdout + stopped.stderr
        codes = await fleet.wait_exits(deadline=90)
        assert set(codes.values()) == {0}, {
            k: fleet.log_of(k)[-3000:] for k, c in codes.items() if c != 0
        }
        done = await wait_rollout(store, LifecycleKind.SHUTDOWN, deadline=30)
        assert done.status is RolloutStatus.COMPLETED
        await check_fleet_invariants(store)
        groups = {m for wave in done.waves for m in wave.members}
        assert groups == set(placement)  # the plan spanned both hosts
        cut_logs = "".join(fleet.log_of(k) for k, host in placement.items() if host is cut_host)
        assert "database_retry" in cut_logs  # the cut host noticed, and waited it out
        assert "Traceback" not in "".join(fleet.log_of(k) for k in placement)
    finally:
        fleet.stop_all()
        await store.close()
